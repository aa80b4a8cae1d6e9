"""Praxis agent: one libp2p host (Noise + yamux) with the Praxis protocols and an HTTP API."""

from __future__ import annotations

from typing import Any

from .p2p._workarounds import install_import_diet

# Before anything imports libp2p (agent.keys and agent.p2p do): keeps the
# py-libp2p subsystems an agent never uses off the start path (QUIC, DHT,
# pubsub, relay, TLS/AutoTLS, ...).  See agent/p2p/_workarounds.py.
install_import_diet()

__all__ = ["Config", "ConfigError", "load_config", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy: `python -m agent local` and `--check` need no pydantic models
    # before they parse their arguments.
    if name in ("Config", "ConfigError", "load_config"):
        from . import config

        return getattr(config, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Praxis agent: one libp2p host (Noise + yamux) with the Praxis protocols and an HTTP API."""

from .config import Config, ConfigError, load_config

__all__ = ["Config", "ConfigError", "load_config", "__version__"]
__version__ = "0.1.0"

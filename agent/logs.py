"""Logging: one line per event, plain text or JSON lines (``logging.format``)."""

from __future__ import annotations

import json
import logging
import sys
import time

__all__ = ["setup_logging"]

# py-libp2p logs a great deal (every stream, every identify, an ERROR for every
# refused dial the agent already reports in its own words); the agent's lines
# are what users grep for, so libp2p speaks only at DEBUG.
_NOISY = ("multiaddr", "zeroconf", "uvicorn.access", "async_service")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "text", name: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        prefix = f"[{name}] " if name else ""
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {prefix}%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(level if level == "DEBUG" else "WARNING")
    # Importing libp2p runs its own setup_logging(), which detaches the
    # "libp2p" logger (propagate=False, no handler: bare lines on stderr).
    import libp2p  # noqa: F401

    lib = logging.getLogger("libp2p")
    lib.handlers.clear()
    lib.propagate = True
    lib.setLevel("DEBUG" if level == "DEBUG" else "CRITICAL")

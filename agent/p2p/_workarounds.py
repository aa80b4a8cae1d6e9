"""Every py-libp2p 0.8.x workaround, in one place.  Applied once, before a host is built.

Each entry names the behaviour it works around, measured on libp2p 0.8.1.
"""

from __future__ import annotations

import logging

__all__ = ["apply"]

log = logging.getLogger("agent.p2p")
_applied = False

# Yamux receive window we advertise.  0.8.1 starts every stream at 256 KiB and
# grows it slowly, so a 4 MiB message crawls through dozens of window updates
# (and a writer blocked for 5 s without window fails: yamux.py "Timed out
# waiting for window update").  16 MiB is go-yamux's maximum.
YAMUX_INITIAL_WINDOW = 16 * 1024 * 1024


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True

    # 1. libp2p.network.swarm._HAPPY_EYEBALLS_DELAY: dial_peer waits 250 ms
    #    after starting a dial even when the peer has a single address, so every
    #    connect() costs at least 250 ms.  We always dial one address at a time.
    import libp2p.network.swarm as swarm

    swarm._HAPPY_EYEBALLS_DELAY = 0.0

    # 2. Yamux windows (see YAMUX_INITIAL_WINDOW).
    import libp2p.stream_muxer.yamux.yamux as yamux

    if getattr(yamux, "DEFAULT_WINDOW_SIZE", None) is not None:
        yamux.DEFAULT_WINDOW_SIZE = YAMUX_INITIAL_WINDOW
    log.debug("py-libp2p workarounds applied")

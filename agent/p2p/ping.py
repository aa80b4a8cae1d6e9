"""Today's liveness: one libp2p ping (/ipfs/ping/1.0.0) per peer and interval,
on a stream kept per peer; a peer that misses MISSED_PINGS_LIMIT in a row is
disconnected.  Kept apart behind the narrow interface P2PService uses
(``run``, ``is_alive``, ``forget``) so a better detector (agent/p2p/liveness.py,
SWIM/Lifeguard) can replace it whole.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio
from libp2p.host.ping import ID as PING_PROTOCOL, PING_LENGTH as PING_SIZE

from .. import constants as C
from .peers import PeerTable

__all__ = ["PingLiveness", "MISSED_PINGS_LIMIT", "PING_TIMEOUT_FACTOR"]

log = logging.getLogger("agent.p2p")

# Consecutive unanswered pings before a peer is dropped: with ping_interval 2 s
# a paused or partitioned peer is gone in 6-8 s, while one slow ping on a busy
# machine does not evict anybody.
MISSED_PINGS_LIMIT = 3
# A ping may take this many ping intervals: on a loaded 2-core machine with
# dozens of agents a healthy peer can be slow for a moment.  A paused or
# partitioned peer is still dropped within 3 × 1.5 intervals (~9 s at 2 s).
PING_TIMEOUT_FACTOR = 1.5


class PingLiveness:
    def __init__(
        self,
        peers: PeerTable,
        interval: float,
        has_connection: Callable[[str], bool],
        open_stream: Callable[[str, str], Awaitable[Any]],
        drop: Callable[[str, str], None],
        disconnect: Callable[[str, str], Awaitable[None]],
        spawn: Callable[..., None],
    ) -> None:
        """``drop(peer_id, why)`` forgets a peer whose connection is gone;
        ``disconnect(peer_id, why)`` closes a connection to a silent one."""
        self.peers = peers
        self.interval = interval
        self._has_connection = has_connection
        self._open = open_stream
        self._drop = drop
        self._disconnect = disconnect
        self._spawn = spawn
        self._streams: dict[str, Any] = {}

    def is_alive(self, peer_id: str) -> bool:
        rec = self.peers.get(peer_id)
        return rec is not None and rec.missed_pings == 0

    def forget(self, peer_id: str) -> None:
        stream = self._streams.pop(peer_id, None)
        if stream is not None:
            self._spawn(_reset_quietly, stream)

    async def run(self) -> None:
        while True:
            await trio.sleep(self.interval)
            for peer_id in self.peers.ids():
                if not self._has_connection(peer_id):
                    # A connection can close without a "disconnected"
                    # notification reaching us (it raced the "connected" one).
                    self._drop(peer_id, "disconnected")
                    continue
                self._spawn(self._ping_one, peer_id, self.interval * PING_TIMEOUT_FACTOR)

    async def _ping_one(self, peer_id: str, timeout: float) -> None:
        """Not libp2p.host.ping.PingService: its ping_iter holds one lock for all
        peers while it opens a stream, so a single silent peer made every
        other peer's ping time out and the agent dropped them all."""
        rec = self.peers.get(peer_id)
        if rec is None:
            return
        t0 = time.perf_counter()
        stream = self._streams.get(peer_id)
        try:
            with trio.fail_after(timeout):
                if stream is None:
                    stream = await self._open(peer_id, PING_PROTOCOL)
                    self._streams[peer_id] = stream
                    t0 = time.perf_counter()
                payload = os.urandom(PING_SIZE)
                await stream.write(payload)
                echo = b""
                while len(echo) < PING_SIZE:
                    chunk = await stream.read(PING_SIZE - len(echo))
                    if not chunk:
                        raise ConnectionError("ping stream closed")
                    echo += chunk
                if echo != payload:
                    raise ValueError("ping payload mismatch")
        except Exception:
            if self._streams.pop(peer_id, None) is not None and stream is not None:
                self._spawn(_reset_quietly, stream)
            rec.missed_pings += 1
            if rec.missed_pings >= MISSED_PINGS_LIMIT and peer_id in self.peers:
                log.warning("Peer %s stopped answering pings (%d missed); dropping it", peer_id, rec.missed_pings)
                await self._disconnect(peer_id, "dropped (not answering)")
            return
        rec.missed_pings = 0
        rec.rtt_ms = (time.perf_counter() - t0) * 1000


async def _reset_quietly(stream: Any) -> None:
    with trio.move_on_after(C.DISCONNECT_TIMEOUT):
        try:
            await stream.reset()
        except Exception:
            pass

"""Failure detection that stays calm on a busy machine.

Two parts:

* :class:`Detector` — pure state machine, no I/O, no clock of its own (every
  call takes ``now``), so unit tests drive it with a fake clock.  It follows
  SWIM with the Lifeguard refinements as hashicorp/memberlist implements them:

  - any frame received from a peer is proof of life (``observe``);
  - a probe that goes unanswered makes the peer *suspect*; it is dropped only
    when the suspicion timeout passes with nothing heard from it;
  - the probe timeout follows the peer's measured RTT (RFC 6298 smoothed RTT
    + 4 × variance), so a slow-but-alive peer gets the time it needs;
  - local health (memberlist's "awareness"): a loop that is itself late
    does not blame its peers.  Time during which our own loop was stalled
    does not count towards any probe or suspicion deadline (the "stall
    clock"), and recent stalls multiply every timeout by (score + 1).

* :class:`Liveness` — the trio side: one watcher task per peer that probes
  over its own ``/ipfs/ping/1.0.0`` stream when the peer has been silent for
  a (jittered) ping interval, and a ticker that samples this loop's lag and
  asks the detector who is suspect or gone.  It reaches the host only through
  the callables it is given (open a stream, is-connected, drop, on_change).
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio

from .. import constants as C
from .. import errors
from . import _workarounds

__all__ = ["Detector", "Liveness", "ALIVE", "SUSPECT", "PING_PROTOCOL", "PING_SIZE", "handle_ping"]

log = logging.getLogger("agent.p2p")

ALIVE = "alive"
SUSPECT = "suspect"

# The libp2p ping protocol (same id and payload as libp2p.host.ping), served
# by our own handler: see handle_ping.
PING_PROTOCOL = "/ipfs/ping/1.0.0"
PING_SIZE = 32


# ============================================================== the detector
@dataclass
class _State:
    last_heard: float
    state: str = ALIVE
    srtt: float | None = None
    rttvar: float = 0.0
    # The probe in flight: when it was sent, its timeout, the stall clock then.
    probe_at: float | None = None
    probe_timeout: float = 0.0
    probe_stall0: float = 0.0
    # Suspicion: since when, for how long, the stall clock then.
    suspect_at: float = 0.0
    suspect_timeout: float = 0.0
    suspect_stall0: float = 0.0


class Detector:
    """Who is alive, who is suspect, who is gone.  Not thread-safe: one loop owns it."""

    def __init__(
        self,
        interval: float,
        *,
        probe_timeout_min: float = C.LIVENESS_PROBE_TIMEOUT_MIN,
        suspicion_mult: float = C.LIVENESS_SUSPICION_MULT,
        suspicion_min: float = C.LIVENESS_SUSPICION_MIN,
        lag_notable: float = C.LIVENESS_LAG_NOTABLE,
        max_multiplier: int = C.LIVENESS_MAX_HEALTH_MULTIPLIER,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        # Never more than half an interval as the floor: a test with a 0.5 s
        # interval still gets a 0.25 s floor, not one longer than its period.
        self.timeout_min = min(probe_timeout_min, interval / 2)
        self.suspicion_mult = suspicion_mult
        self.suspicion_min = suspicion_min
        self.lag_notable = lag_notable
        self.max_multiplier = max(1, max_multiplier)
        self._peers: dict[str, _State] = {}
        # Local health.
        self.stall_clock = 0.0  # seconds our own loop has been stalled, in total
        self.health = 0  # awareness score: 0 healthy .. max_multiplier - 1
        self._health_clean_since: float | None = None

    # ----------------------------------------------------------- membership
    def add(self, peer: str, now: float) -> None:
        if peer not in self._peers:
            self._peers[peer] = _State(last_heard=now)

    def remove(self, peer: str) -> None:
        self._peers.pop(peer, None)

    def __contains__(self, peer: str) -> bool:
        return peer in self._peers

    def peers(self) -> list[str]:
        return list(self._peers)

    def state(self, peer: str) -> str | None:
        st = self._peers.get(peer)
        return None if st is None else st.state

    def rtt(self, peer: str) -> float | None:
        st = self._peers.get(peer)
        return None if st is None else st.srtt

    def last_heard(self, peer: str) -> float | None:
        st = self._peers.get(peer)
        return None if st is None else st.last_heard

    # -------------------------------------------------------------- evidence
    def observe(self, peer: str, now: float) -> bool:
        """Any frame from ``peer``: proof of life.  True if it refuted a suspicion."""
        st = self._peers.get(peer)
        if st is None:
            return False
        if now > st.last_heard:
            st.last_heard = now
        if st.state == SUSPECT:
            st.state = ALIVE
            st.probe_at = None
            return True
        return False

    def probe_started(self, peer: str, now: float) -> float:
        """A probe goes out now; returns the time it is given before the peer is suspect."""
        st = self._peers.get(peer)
        if st is None:
            return self.probe_timeout(peer)
        st.probe_at = now
        st.probe_timeout = self.probe_timeout(peer)
        st.probe_stall0 = self.stall_clock
        return st.probe_timeout

    def probe_acked(self, peer: str, rtt: float, now: float) -> bool:
        """The echo came back after ``rtt`` seconds (late ones count too: they
        teach the estimator).  True if it refuted a suspicion."""
        st = self._peers.get(peer)
        if st is None:
            return False
        rtt = max(rtt, 0.0)
        if st.srtt is None:
            st.srtt, st.rttvar = rtt, rtt / 2
        else:
            st.rttvar = (1 - C.LIVENESS_RTT_BETA) * st.rttvar + C.LIVENESS_RTT_BETA * abs(st.srtt - rtt)
            st.srtt = (1 - C.LIVENESS_RTT_ALPHA) * st.srtt + C.LIVENESS_RTT_ALPHA * rtt
        st.probe_at = None
        return self.observe(peer, now)

    def probe_failed(self, peer: str, now: float) -> None:
        """The probe ended without an echo (stream reset, closed, gave up):
        its deadline is now; ``tick`` decides, as for a timeout."""
        st = self._peers.get(peer)
        if st is not None and st.probe_at is not None:
            st.probe_timeout = min(st.probe_timeout, max(0.0, now - st.probe_at))

    # ---------------------------------------------------------- local health
    def loop_lag(self, lag: float, now: float) -> None:
        """Our own loop woke ``lag`` seconds late.  That time is not held
        against peers (stall clock), and a notable lag raises the score."""
        if lag <= 0:
            lag = 0.0
        self.stall_clock += lag
        if lag >= self.lag_notable:
            steps = 1 + int(lag / self.interval)
            self.health = min(self.max_multiplier - 1, self.health + steps)
            self._health_clean_since = now
        elif self.health and self._health_clean_since is not None:
            if now - self._health_clean_since >= self.interval:
                self.health -= 1
                self._health_clean_since = now

    @property
    def multiplier(self) -> int:
        return self.health + 1

    # -------------------------------------------------------------- timeouts
    def probe_timeout(self, peer: str) -> float:
        st = self._peers.get(peer)
        if st is None or st.srtt is None:
            base = self.interval * C.LIVENESS_PROBE_TIMEOUT_INITIAL
        else:
            base = st.srtt + C.LIVENESS_RTT_K * st.rttvar
        base = min(max(base, self.timeout_min), self.interval)
        return base * self.multiplier

    def suspicion_timeout(self) -> float:
        return max(self.suspicion_mult * self.interval, self.suspicion_min) * self.multiplier

    def next_probe_at(self, peer: str, jitter: float = 1.0) -> float | None:
        """When to probe ``peer``: after a (jittered) interval of silence.
        Anything heard from it — its own pings included — pushes this back,
        so two agents that ping each other send about one ping per interval."""
        st = self._peers.get(peer)
        if st is None:
            return None
        return st.last_heard + self.interval * jitter

    # ------------------------------------------------------------------ tick
    def tick(self, now: float) -> tuple[list[str], list[str]]:
        """Advance time: ``(newly suspect, to drop)``.  Dropped peers are removed."""
        suspects: list[str] = []
        drops: list[str] = []
        for peer, st in list(self._peers.items()):
            if st.state == ALIVE:
                if st.probe_at is None:
                    continue
                if st.last_heard >= st.probe_at:
                    st.probe_at = None  # heard from it since the probe went out
                    continue
                stalled = self.stall_clock - st.probe_stall0
                if now - stalled < st.probe_at + st.probe_timeout:
                    continue
                st.state = SUSPECT
                st.suspect_at = now
                st.suspect_timeout = self.suspicion_timeout()
                st.suspect_stall0 = self.stall_clock
                st.probe_at = None
                suspects.append(peer)
            else:
                stalled = self.stall_clock - st.suspect_stall0
                # A worsening local health lengthens a running suspicion too.
                timeout = max(st.suspect_timeout, self.suspicion_timeout())
                if now - stalled >= st.suspect_at + timeout:
                    drops.append(peer)
                    del self._peers[peer]
        return suspects, drops


# ============================================================ the trio side
async def handle_ping(stream: Any) -> None:
    """Echo 32-byte pings for as long as the peer keeps the stream open
    (instead of libp2p's handler: see _workarounds.own_ping_handler)."""
    try:
        while True:
            data = b""
            while len(data) < PING_SIZE:
                chunk = await stream.read(PING_SIZE - len(data))
                if not chunk:
                    return
                data += chunk
            await stream.write(data)
    except Exception:
        await _reset_quietly(stream)


class Liveness:
    """Probes peers and drops the dead ones, around a :class:`Detector`.

    ``open_stream(peer)`` opens a ping stream; ``connected(peer)`` says whether
    the host still has a connection; ``drop(peer, reason)`` removes the peer
    (the owner closes what it must); ``on_change(peer, state, rtt_ms)``
    reports state and RTT for the peer table.  All run on the trio loop.
    """

    def __init__(
        self,
        interval: float,
        *,
        open_stream: Callable[[str], Awaitable[Any]],
        connected: Callable[[str], bool],
        drop: Callable[[str, str], None],
        on_change: Callable[[str, str, float | None], None] | None = None,
        clock: Callable[[], float] = trio.current_time,
        rng: random.Random | None = None,
    ) -> None:
        self.detector = Detector(interval)
        self.interval = interval
        self._open = open_stream
        self._connected = connected
        self._drop = drop
        self._on_change = on_change or (lambda p, s, r: None)
        self._clock = clock
        self._rng = rng or random.Random()
        self._nursery: trio.Nursery | None = None
        self._watchers: dict[str, trio.CancelScope] = {}
        self._streams: dict[str, Any] = {}
        self._has_peers = trio.Event()

    # --------------------------------------------------- hooks for the host
    def add(self, peer: str) -> None:
        if peer in self.detector:
            return
        self.detector.add(peer, self._clock())
        self._has_peers.set()
        if self._nursery is not None:
            self._start_watcher(peer)

    def remove(self, peer: str) -> None:
        """The peer left for another reason (disconnected, refused): stop watching."""
        self.detector.remove(peer)
        scope = self._watchers.pop(peer, None)
        if scope is not None:
            scope.cancel()
        stream = self._streams.pop(peer, None)
        if stream is not None and self._nursery is not None:
            self._nursery.start_soon(_reset_quietly, stream)

    def watch(self, peer: str, muxed_conn: Any = None) -> None:
        """A connection to ``peer`` is up: watch the peer, and take every
        frame read on that connection as proof of life."""
        self.add(peer)
        if muxed_conn is not None:
            _workarounds.observe_frames(muxed_conn, lambda: self.observe(peer))

    def forget(self, peer: str) -> None:
        """The service dropped the peer (any reason)."""
        self.remove(peer)

    def is_alive(self, peer: str) -> bool:
        """Not suspected (routing prefers these)."""
        return self.detector.state(peer) != SUSPECT

    def observe(self, peer: str) -> None:
        """Any frame from ``peer`` (called per yamux frame: keep it cheap)."""
        if self.detector.observe(peer, self._clock()):
            log.info("Peer %s answered again; no longer suspect", peer)
            self._on_change(peer, ALIVE, None)

    def state(self, peer: str) -> str | None:
        return self.detector.state(peer)

    # ------------------------------------------------------------- the loops
    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            for peer in self.detector.peers():
                self._start_watcher(peer)
            tick = self.interval / C.LIVENESS_TICKS_PER_INTERVAL
            while True:
                if not self.detector.peers():
                    # Idle means no work: no ticks while nobody is watched.
                    self._has_peers = trio.Event()
                    await self._has_peers.wait()
                expected = self._clock() + tick
                await trio.sleep_until(expected)
                now = self._clock()
                self.detector.loop_lag(now - expected, now)
                self._tick(now)

    def _tick(self, now: float) -> None:
        suspects, drops = self.detector.tick(now)
        for peer in suspects:
            log.info(
                "Peer %s is suspect: no answer to a ping within %.2fs; dropping it in %.1fs unless it answers",
                peer, self.detector.probe_timeout(peer), self.detector.suspicion_timeout(),
            )
            self._on_change(peer, SUSPECT, None)
        for peer in drops:
            log.warning("Peer %s stopped answering pings; dropping it", peer)
            self.remove(peer)
            self._drop(peer, C.DROP_PING_TIMEOUT)

    def _start_watcher(self, peer: str) -> None:
        assert self._nursery is not None
        scope = trio.CancelScope()
        self._watchers[peer] = scope
        self._nursery.start_soon(self._watch, peer, scope)

    def _jitter(self) -> float:
        j = C.LIVENESS_JITTER
        return self._rng.uniform(1 - j, 1 + j)

    async def _watch(self, peer: str, scope: trio.CancelScope) -> None:
        with scope:
            # First probe at a random point of the first interval: agents that
            # connected together do not probe together.
            await trio.sleep(self._rng.uniform(0, self.interval))
            jitter = self._jitter()
            last_probe: float | None = None
            while peer in self.detector:
                due = self.detector.next_probe_at(peer, jitter)
                if due is None:
                    return
                if last_probe is not None:
                    # At most one probe per interval, whatever happens to them.
                    due = max(due, last_probe + self.interval * jitter)
                if due > self._clock():
                    await trio.sleep_until(due)
                    continue  # heard from it meanwhile? then ``due`` moved on
                if not self._connected(peer):
                    # A connection can close without its "disconnected"
                    # notification reaching us (it raced "connected").
                    self.remove(peer)
                    self._drop(peer, C.DROP_DISCONNECTED)
                    return
                last_probe = self._clock()
                try:
                    await self._probe(peer)
                except Exception as e:  # noqa: BLE001 - containment: one peer's watcher, not the loop
                    errors.internal(e, f"liveness probe of {peer}")
                jitter = self._jitter()

    async def _probe(self, peer: str) -> None:
        det = self.detector
        t0 = self._clock()
        det.probe_started(peer, t0)
        # The probe's own timeout only makes the peer suspect (tick); the
        # echo is awaited longer so a late one still refutes and teaches the
        # RTT estimator.
        limit = max(det.probe_timeout(peer), self.interval) + self.interval
        stream = self._streams.get(peer)
        ok = False
        with trio.move_on_after(limit):
            try:
                if stream is None:
                    stream = await self._open(peer)
                    self._streams[peer] = stream
                    t0 = self._clock()
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
                ok = True
            except Exception as e:
                log.debug("Ping to %s failed: %s", peer, e)
        if ok:
            now = self._clock()
            refuted = det.probe_acked(peer, now - t0, now)
            if refuted:
                log.info("Peer %s answered again; no longer suspect", peer)
            self._on_change(peer, ALIVE, (now - t0) * 1000)
            return
        det.probe_failed(peer, self._clock())
        # A stream that failed or hangs is not reused: the next probe opens a fresh one.
        if self._streams.get(peer) is stream:
            self._streams.pop(peer, None)
        if stream is not None and self._nursery is not None:
            self._nursery.start_soon(_reset_quietly, stream)


async def _reset_quietly(stream: Any) -> None:
    with trio.move_on_after(C.DISCONNECT_TIMEOUT):
        try:
            await stream.reset()
        except Exception:
            pass


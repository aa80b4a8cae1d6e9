"""What this agent has been doing: recent tool calls and per-peer figures over
the last minute (calls/s, error rate, p50/p99).  Pure bookkeeping, no I/O.

Fed from one hook point, :func:`recorded` around ``ToolRouter.invoke``: every
call that enters through HTTP, MCP or A2A passes there, whether it runs here or
on a peer.  Thread-safe: the HTTP app records and the cluster page reads.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Activity", "Call", "recorded", "WINDOW_S", "RECENT_CALLS"]

# Figures cover the last minute: long enough to have a p99 worth reading at a
# few calls per second, short enough that a peer that stopped failing looks
# healthy again soon.
WINDOW_S = 60.0
# Calls listed on the page; the window keeps its own, longer bound below.
RECENT_CALLS = 50
# Upper bound on calls remembered for the window, so a flood costs bounded
# memory (at 1000 calls/s the figures then cover the last ~20 s).
WINDOW_MAX_CALLS = 20_000


class Call:
    __slots__ = ("seq", "at", "tool", "peer_id", "outcome", "duration_ms")

    def __init__(self, seq: int, at: float, tool: str, peer_id: str | None, outcome: str, duration_ms: float) -> None:
        self.seq, self.at, self.tool, self.peer_id = seq, at, tool, peer_id
        self.outcome, self.duration_ms = outcome, duration_ms

    def public(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": round(self.at, 3),
            "tool": self.tool,
            "peer_id": self.peer_id,
            "outcome": self.outcome,
            "duration_ms": round(self.duration_ms, 3),
        }


class Activity:
    def __init__(self, clock: Callable[[], float] = time.time, window_s: float = WINDOW_S,
                 recent: int = RECENT_CALLS, window_max: int = WINDOW_MAX_CALLS) -> None:
        self._clock = clock
        self._window_s = window_s
        self._lock = threading.Lock()
        self._recent: deque[Call] = deque(maxlen=recent)
        self._window: deque[Call] = deque(maxlen=window_max)
        self._seq = 0
        self.started = clock()

    @property
    def seq(self) -> int:
        """Grows with every call: a cheap "anything new?" for the page's stream."""
        return self._seq

    def record(self, tool: str, peer_id: str | None, outcome: str, duration_ms: float) -> None:
        with self._lock:
            self._seq += 1
            call = Call(self._seq, self._clock(), tool, peer_id, outcome, duration_ms)
            self._recent.append(call)
            self._window.append(call)

    def recent(self) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            return [c.public() for c in reversed(self._recent)]

    def per_peer(self) -> dict[str, dict[str, Any]]:
        """``{peer_id: {calls, calls_per_s, error_rate, p50_ms, p99_ms}}`` over the window.

        calls/s divides by the window, or by the time since the agent started
        when that is shorter, so a fresh agent's rate is not understated.
        """
        now = self._clock()
        horizon = now - self._window_s
        with self._lock:
            while self._window and self._window[0].at < horizon:
                self._window.popleft()
            calls = list(self._window)
        span = max(1.0, min(self._window_s, now - self.started))
        by_peer: dict[str, list[Call]] = {}
        for c in calls:
            by_peer.setdefault(c.peer_id or "", []).append(c)
        out = {}
        for peer, cs in by_peer.items():
            durations = sorted(c.duration_ms for c in cs)
            errors = sum(1 for c in cs if c.outcome != "ok")
            out[peer] = {
                "calls": len(cs),
                "calls_per_s": round(len(cs) / span, 3),
                "error_rate": round(errors / len(cs), 4),
                "p50_ms": round(quantile(durations, 0.50), 3),
                "p99_ms": round(quantile(durations, 0.99), 3),
            }
        return out


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an already sorted, non-empty list."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values), max(1, math.ceil(q * len(sorted_values) - 1e-9)))
    return sorted_values[rank - 1]


def recorded(invoke: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Decorate ``ToolRouter.invoke``: record each call in ``self.activity`` when set.

    The outcome is ``ok`` or the error's code; the peer is the one that ran the
    tool, else the one named in the error or by the caller.
    """

    @functools.wraps(invoke)
    async def wrapper(self: Any, name: str, arguments: dict[str, Any], peer_id: str | None = None) -> Any:
        activity: Activity | None = getattr(self, "activity", None)
        if activity is None:
            return await invoke(self, name, arguments, peer_id)
        t0 = time.perf_counter()
        try:
            routed = await invoke(self, name, arguments, peer_id)
        except BaseException as e:
            code = getattr(e, "code", None) or ("timeout" if isinstance(e, TimeoutError) else "error")
            if isinstance(e, Exception):
                activity.record(name, getattr(e, "peer_id", None) or peer_id, str(code),
                                (time.perf_counter() - t0) * 1000)
            raise
        activity.record(name, routed.peer_id, "ok", (time.perf_counter() - t0) * 1000)
        return routed

    return wrapper

"""agent.activity: the record behind the cluster page's per-peer figures."""

from __future__ import annotations

import asyncio

import pytest

from agent.activity import Activity, quantile, recorded
from agent.errors import RemoteError, ToolError


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_quantile_is_nearest_rank():
    values = sorted(float(v) for v in range(1, 101))
    assert quantile(values, 0.5) == 50.0
    assert quantile(values, 0.99) == 99.0
    assert quantile([7.0], 0.99) == 7.0
    assert quantile([], 0.5) == 0.0


def test_per_peer_figures_over_the_window():
    clock = Clock()
    a = Activity(clock=clock, window_s=60)
    clock.t += 100  # the agent has run longer than the window
    for i in range(9):
        a.record("echo", "A", "ok", 1.0 + i)
    a.record("echo", "A", "timeout", 100.0)
    a.record("describe", "B", "ok", 5.0)
    stats = a.per_peer()
    assert stats["A"]["calls"] == 10
    assert stats["A"]["error_rate"] == 0.1
    assert stats["A"]["p50_ms"] == 5.0
    assert stats["A"]["p99_ms"] == 100.0
    assert stats["A"]["calls_per_s"] == round(10 / 60, 3)
    assert stats["B"] == {"calls": 1, "calls_per_s": round(1 / 60, 3), "error_rate": 0.0, "p50_ms": 5.0, "p99_ms": 5.0}


def test_calls_leave_the_window_after_a_minute_but_stay_in_recent():
    clock = Clock()
    a = Activity(clock=clock, window_s=60, recent=3)
    a.record("echo", "A", "ok", 1.0)
    clock.t += 61
    a.record("echo", "B", "ok", 2.0)
    assert set(a.per_peer()) == {"B"}
    for _ in range(3):
        a.record("echo", "C", "ok", 1.0)
    recent = a.recent()
    assert len(recent) == 3 and recent[0]["seq"] == 5 and all(c["peer_id"] == "C" for c in recent)


def test_a_young_agent_divides_by_its_age_not_the_window():
    clock = Clock()
    a = Activity(clock=clock, window_s=60)
    clock.t += 10
    for _ in range(20):
        a.record("echo", "A", "ok", 1.0)
    assert a.per_peer()["A"]["calls_per_s"] == 2.0


class _Routed:
    def __init__(self, peer_id: str) -> None:
        self.peer_id = peer_id


class _Router:
    def __init__(self, outcome) -> None:
        self.outcome = outcome
        self.activity = Activity()

    @recorded
    async def invoke(self, name, arguments, peer_id=None):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return _Routed(self.outcome)


def test_recorded_notes_success_with_the_peer_that_ran_it():
    r = _Router("P1")
    assert asyncio.run(r.invoke("echo", {})).peer_id == "P1"
    [call] = r.activity.recent()
    assert (call["tool"], call["peer_id"], call["outcome"]) == ("echo", "P1", "ok")
    assert call["duration_ms"] >= 0


@pytest.mark.parametrize(
    "exc, peer, outcome",
    [
        (RemoteError("P2", "tool_failed", "boom"), "P2", "tool_failed"),
        (ToolError("unknown_tool", "nope"), "asked", "unknown_tool"),
        (asyncio.TimeoutError(), "asked", "timeout"),
    ],
)
def test_recorded_notes_failures_with_their_code_and_reraises(exc, peer, outcome):
    r = _Router(exc)
    with pytest.raises(type(exc)):
        asyncio.run(r.invoke("t", {}, "asked"))
    [call] = r.activity.recent()
    assert (call["peer_id"], call["outcome"]) == (peer, outcome)


def test_recorded_without_an_activity_is_a_plain_call():
    r = _Router("P1")
    r.activity = None
    assert asyncio.run(r.invoke("echo", {})).peer_id == "P1"

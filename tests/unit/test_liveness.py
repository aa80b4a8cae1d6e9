"""The failure detector (agent.p2p.liveness.Detector) driven by a fake clock."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from agent import constants as C
from agent.p2p.liveness import ALIVE, SUSPECT, Detector, Liveness

I = 2.0  # ping interval of these tests


def run(det: Detector, start: float, end: float, step: float = 0.5, lag: float = 0.0):
    """Tick from ``start`` to ``end``; each tick reports ``lag``.  Returns (suspects, drops) with times."""
    suspects, drops = [], []
    t = start
    while t <= end + 1e-9:
        det.loop_lag(lag, t)
        s, d = det.tick(t)
        suspects += [(p, t) for p in s]
        drops += [(p, t) for p in d]
        t += step
    return suspects, drops


def test_missed_ping_makes_suspect_before_drop():
    det = Detector(I)
    det.add("a", 0.0)
    timeout = det.probe_started("a", 2.0)
    suspects, drops = run(det, 2.0, 2.0 + timeout - 0.01, step=0.05)
    assert suspects == [] and drops == [] and det.state("a") == ALIVE
    suspects, drops = run(det, 2.0 + timeout, 2.0 + timeout)
    assert [p for p, _ in suspects] == ["a"] and drops == []
    assert det.state("a") == SUSPECT
    t_suspect = suspects[0][1]
    # Still there for the whole suspicion timeout, then dropped.
    _, drops = run(det, t_suspect, t_suspect + det.suspicion_timeout() - 0.01, step=0.05)
    assert drops == [] and det.state("a") == SUSPECT
    _, drops = run(det, t_suspect + det.suspicion_timeout(), t_suspect + det.suspicion_timeout())
    assert [p for p, _ in drops] == ["a"]
    assert "a" not in det


def test_default_detection_of_a_silent_peer_fits_in_ten_seconds():
    # Worst case on an idle machine: silence starts right after a frame, the
    # next probe goes out after a jittered interval, then timeout + suspicion.
    det = Detector(I)
    det.add("a", 0.0)
    det.observe("a", 0.0)
    probe_at = I * (1 + C.LIVENESS_JITTER)
    det.probe_started("a", probe_at)
    _, drops = run(det, probe_at, 10.0, step=I / C.LIVENESS_TICKS_PER_INTERVAL)
    assert [p for p, _ in drops] == ["a"]


@pytest.mark.parametrize("evidence", ["frame", "ack"])
def test_any_frame_is_proof_of_life(evidence):
    det = Detector(I)
    det.add("a", 0.0)
    det.probe_started("a", 2.0)
    run(det, 2.0, 4.0)
    assert det.state("a") == SUSPECT
    if evidence == "frame":
        assert det.observe("a", 5.0) is True  # e.g. a tool answer or its own ping
    else:
        assert det.probe_acked("a", 3.0, 5.0) is True  # a late echo
    assert det.state("a") == ALIVE
    _, drops = run(det, 5.0, 30.0)
    assert drops == []


def test_frame_during_probe_prevents_suspicion():
    det = Detector(I)
    det.add("a", 0.0)
    det.probe_started("a", 2.0)
    det.observe("a", 2.1)  # the echo is late, but other frames arrived
    suspects, _ = run(det, 2.0, 6.0)
    assert suspects == [] and det.state("a") == ALIVE


def test_probe_timeout_follows_measured_rtt():
    det = Detector(I)
    det.add("fast", 0.0)
    det.add("slow", 0.0)
    for i in range(20):
        det.probe_acked("fast", 0.001, float(i))
        det.probe_acked("slow", 0.9 + 0.1 * (i % 2), float(i))
    fast, slow = det.probe_timeout("fast"), det.probe_timeout("slow")
    assert fast == pytest.approx(det.timeout_min)  # floor, not 1 ms
    assert slow > 1.0  # srtt ≈ 0.95 plus variance
    assert slow > fast
    # The slow peer answering in just over 1 s is not suspected; a fast peer would be.
    det.probe_started("slow", 100.0)
    det.probe_started("fast", 100.0)
    suspects, _ = run(det, 100.0, 101.05, step=0.05)
    assert [p for p, _ in suspects] == ["fast"]
    det.probe_acked("slow", 1.05, 101.05)
    assert det.state("slow") == ALIVE


def test_timeout_is_capped_by_the_interval_without_local_trouble():
    det = Detector(I)
    det.add("a", 0.0)
    for i in range(20):
        det.probe_acked("a", 30.0, float(i))
    assert det.probe_timeout("a") == pytest.approx(I)


def test_own_loop_stall_does_not_blame_peers():
    det = Detector(I)
    det.add("a", 0.0)
    det.probe_started("a", 2.0)
    # Our loop stalls for 3 s: the next tick comes 3 s late.  The probe's
    # deadline (2.5 s) passed on the wall clock, but not on our own time.
    det.loop_lag(3.0, 5.5)
    suspects, drops = det.tick(5.5)
    assert suspects == [] and drops == []
    assert det.state("a") == ALIVE
    # The peer's answer, read as soon as the loop runs again, clears it.
    det.probe_acked("a", 3.5, 5.5)
    assert det.state("a") == ALIVE


def test_stall_during_suspicion_extends_it():
    det = Detector(I)
    det.add("a", 0.0)
    det.probe_started("a", 2.0)
    suspects, _ = run(det, 2.0, 3.0)
    assert suspects
    t0 = suspects[0][1]
    timeout = det.suspicion_timeout()
    det.loop_lag(4.0, t0 + 4.5)  # a 4 s stall inside the suspicion window
    _, drops = run(det, t0 + 4.5, t0 + timeout + 0.1, step=0.1)
    assert drops == []  # on our own time the suspicion has not run out yet


def test_lagging_loop_raises_the_multiplier_and_it_recovers():
    det = Detector(I)
    det.add("a", 0.0)
    base_probe, base_susp = det.probe_timeout("a"), det.suspicion_timeout()
    det.loop_lag(0.3, 1.0)
    det.loop_lag(0.3, 1.5)
    assert det.multiplier == 3
    assert det.probe_timeout("a") == pytest.approx(3 * base_probe)
    assert det.suspicion_timeout() == pytest.approx(3 * base_susp)
    for _ in range(20):
        det.loop_lag(10.0, 2.0)
    assert det.multiplier == C.LIVENESS_MAX_HEALTH_MULTIPLIER
    t = 2.0
    while det.multiplier > 1 and t < 100:
        t += 0.5
        det.loop_lag(0.001, t)
    assert det.multiplier == 1


def test_failed_probe_counts_at_once_and_removed_peer_is_forgotten():
    det = Detector(I)
    det.add("a", 0.0)
    det.add("b", 0.0)
    det.probe_started("a", 2.0)
    det.probe_failed("a", 2.05)  # stream reset
    suspects, _ = det.tick(2.1)
    assert suspects == ["a"]
    det.remove("b")
    assert det.observe("b", 3.0) is False and "b" not in det


# ----------------------------------------------------- the trio loop, fake clock
class _EchoStream:
    """A ping stream whose peer answers after ``delay`` (None: never)."""

    def __init__(self, delay: float | None) -> None:
        self.delay = delay
        self._pending = b""

    async def write(self, data: bytes) -> None:
        self._pending = data

    async def read(self, n: int) -> bytes:
        if self.delay is None:
            await trio.sleep_forever()
        await trio.sleep(self.delay)
        data, self._pending = self._pending, b""
        return data

    async def reset(self) -> None:
        pass


@pytest.mark.parametrize("delay,dropped", [(0.001, False), (1.5, False), (None, True)])
def test_liveness_loop_drops_only_the_silent_peer(delay, dropped):
    drops: list[tuple[str, str]] = []
    states: list[str] = []

    async def main() -> None:
        async def open_stream(peer: str) -> _EchoStream:
            return _EchoStream(delay)

        lv = Liveness(
            I,
            open_stream=open_stream,
            connected=lambda p: True,
            drop=lambda p, r: drops.append((p, r)),
            on_change=lambda p, s, r: states.append(s),
            rng=random.Random(1),
        )
        lv.add("peer")
        async with trio.open_nursery() as n:
            n.start_soon(lv.run)
            await trio.sleep(40)
            n.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    if dropped:
        assert drops == [("peer", C.DROP_PING_TIMEOUT)]
        assert SUSPECT in states
    else:
        assert drops == []


def test_liveness_loop_drops_a_peer_whose_connection_is_gone():
    drops: list[tuple[str, str]] = []

    async def main() -> None:
        async def open_stream(peer: str) -> _EchoStream:
            return _EchoStream(0.001)

        lv = Liveness(I, open_stream=open_stream, connected=lambda p: False,
                      drop=lambda p, r: drops.append((p, r)), rng=random.Random(2))
        lv.add("peer")
        async with trio.open_nursery() as n:
            n.start_soon(lv.run)
            await trio.sleep(10)
            n.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert drops == [("peer", C.DROP_DISCONNECTED)]


# ------------------------------------------------------- start storm, gone list
class _FakeRaw:
    def __init__(self, ip: str) -> None:
        self.ip = ip
        self.closed = False

    def get_remote_address(self):
        return (self.ip, 1234)

    async def close(self) -> None:
        self.closed = True


class _FakeSwarm:
    def __init__(self) -> None:
        self.running = 0
        self.most = 0

    async def upgrade_inbound_raw_conn(self, raw, maddr):
        self.running += 1
        self.most = max(self.most, self.running)
        await trio.sleep(0.5)  # a handshake
        self.running -= 1
        return raw


def test_handshakes_beyond_the_slots_wait_instead_of_being_refused():
    from libp2p.network.exceptions import SwarmException

    from agent.p2p import _workarounds

    swarm = _FakeSwarm()
    _workarounds.limit_pending_handshakes(swarm, slots=4, total=64, per_ip=16, queue_wait=5.0)
    ok, refused = [], []

    async def one(raw):
        try:
            ok.append(await swarm.upgrade_inbound_raw_conn(raw, None))
        except SwarmException:
            refused.append(raw)

    async def main():
        async with trio.open_nursery() as n:
            for i in range(16):  # 16 dialers from 16 addresses at once
                n.start_soon(one, _FakeRaw(f"10.0.0.{i}"))
            for _ in range(18):  # 18 from one address: 2 over its bound
                n.start_soon(one, _FakeRaw("10.0.1.1"))

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert swarm.most == 4  # never more than the slots at once
    assert len(refused) == 2 and all(r.ip == "10.0.1.1" and r.closed for r in refused)
    # 32 handshakes of 0.5 s, 4 at a time, all within the 5 s queue wait:
    # every one beyond the slots waited its turn and completed.
    assert len(ok) == 32


def test_handshake_total_bound_refuses_at_once():
    from libp2p.network.exceptions import SwarmException

    from agent.p2p import _workarounds

    swarm = _FakeSwarm()
    _workarounds.limit_pending_handshakes(swarm, slots=2, total=6, per_ip=16, queue_wait=60.0)
    ok, refused = [], []

    async def one(raw):
        try:
            ok.append(await swarm.upgrade_inbound_raw_conn(raw, None))
        except SwarmException:
            refused.append(raw)

    async def main():
        async with trio.open_nursery() as n:
            for i in range(10):
                n.start_soon(one, _FakeRaw(f"10.0.0.{i}"))

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    assert len(ok) == 6 and len(refused) == 4


def test_bootstrap_backoff_is_jittered_but_grows():
    from agent.p2p.discovery import jittered

    rng = random.Random(3)
    draws = [jittered(4.0, rng) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in draws)
    assert len({round(d, 6) for d in draws}) > 100  # not in lockstep


def test_gone_list_keeps_recent_departures_of_known_peers():
    from agent.p2p.peers import PeerTable

    t = PeerTable()
    for i in range(C.GONE_LIST_SIZE + 5):
        rec = t.ensure(f"p{i}", [])
        rec.card = {"name": f"w{i}"}
        t.remove(f"p{i}", C.DROP_PING_TIMEOUT)
    t.ensure("nocard", [])
    t.remove("nocard", C.DROP_DISCONNECTED)  # never shown to users: not listed
    gone = t.gone()
    assert len(gone) == C.GONE_LIST_SIZE
    assert gone[0]["peer_id"] == f"p{C.GONE_LIST_SIZE + 4}" and gone[0]["name"] == f"w{C.GONE_LIST_SIZE + 4}"
    assert {g["reason"] for g in gone} == {C.DROP_PING_TIMEOUT}


def test_short_intervals_keep_a_suspicion_floor():
    assert Detector(0.5).suspicion_timeout() == pytest.approx(C.LIVENESS_SUSPICION_MIN)
    assert Detector(I).suspicion_timeout() == pytest.approx(C.LIVENESS_SUSPICION_MULT * I)


def test_metrics_show_suspect_peers_how_they_joined_and_drops_by_reason():
    from prometheus_client.parser import text_string_to_metric_families

    from agent.metrics import Metrics
    from agent.p2p.peers import PeerRecord

    peers = [PeerRecord(peer_id="12D3A", card={"name": "a"}, state="suspect", joined_via="bootstrap"),
             PeerRecord(peer_id="12D3B", card={"name": "b"}, state="alive", joined_via="mdns")]
    m = Metrics()
    m.describe_agent("orchestrator", "orchestrator", "12D3Self", "0.1.0", lambda: peers)
    m.peer_drops.labels(C.DROP_PING_TIMEOUT).inc()
    fams = {f.name: f for f in text_string_to_metric_families(m.render().decode())}
    info = {s.labels["peer_id"]: s.labels for s in fams["praxis_peer_info"].samples}
    assert (info["12D3A"]["state"], info["12D3A"]["joined_via"]) == ("suspect", "bootstrap")
    assert (info["12D3B"]["state"], info["12D3B"]["joined_via"]) == ("connected", "mdns")
    [drop] = [s for s in fams["praxis_peer_drops"].samples if s.name == "praxis_peer_drops_total"]
    assert drop.labels == {"reason": C.DROP_PING_TIMEOUT} and drop.value == 1

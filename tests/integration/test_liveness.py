"""Failure detection and start-up with real hosts on 127.0.0.1.

The orchestrator runs with the default ping interval (2 s), as users run it:
a paused worker must turn *suspect* before it is dropped, a killed one must
go at once, a slow one must stay, and 20 workers started together must all
arrive.  Waits are generous; nothing here asserts how fast.
"""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from agent.config import load_config
from agent.constants import DROP_DISCONNECTED, DROP_PING_TIMEOUT
from agent.keys import load_or_create_seed, peer_id_from_seed, publish_public_entry
from agent.runtime import Agent

from .conftest import CONFIGS, AgentProc, agent_sets, free_port, on_loop, wait_for

PING = "p2p.ping_interval=2.0"


def _sets(name, root, p2p, api):
    # agent_sets pins a 0.5 s ping interval for speed; these tests use the default.
    return [s for s in agent_sets(name, root, p2p, api) if not s.startswith("p2p.ping_interval=")] + [PING]


def _drops(url: str, reason: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    for fam in text_string_to_metric_families(text):
        if fam.name == "praxis_peer_drops":
            return sum(s.value for s in fam.samples
                       if s.name == "praxis_peer_drops_total" and s.labels.get("reason") == reason)
    return 0.0


def _by_name(proc: AgentProc) -> dict:
    return {p["name"]: p for p in proc.peers()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    orch_p2p, orch_api = free_port(), free_port()
    seed = load_or_create_seed(root / "orchestrator")
    publish_public_entry(root, "localhost", peer_id_from_seed(seed), "orchestrator")
    boot = f"p2p.bootstrap_nodes=[/dns4/localhost/tcp/{orch_p2p}]"
    procs = {"orchestrator": AgentProc("orchestrator.yaml", _sets("orchestrator", root, orch_p2p, orch_api),
                                       root / "orchestrator.log")}
    try:
        for name in ("worker-paused", "worker-killed"):
            procs[name] = AgentProc("worker.yaml", _sets(name, root, free_port(), free_port()) + [boot],
                                    root / f"{name}.log")
        for p in procs.values():
            p.wait_healthy()
        yield {"root": root, "procs": procs, "orch_p2p": orch_p2p, "boot": boot}
    finally:
        for p in procs.values():
            p.kill(signal.SIGTERM)


def test_peers_show_state_and_how_they_joined(small):
    orch, worker = small["procs"]["orchestrator"], small["procs"]["worker-paused"]
    peers = wait_for(lambda: (b := _by_name(orch)) and {"worker-paused", "worker-killed"} <= set(b) and b,
                     timeout=30, what="both workers in /peers")
    assert peers["worker-paused"]["state"] == "alive"
    assert peers["worker-paused"]["joined_via"] == "inbound"
    mine = wait_for(lambda: _by_name(worker).get("orchestrator"), timeout=30, what="orchestrator in worker's /peers")
    assert mine["joined_via"] == "bootstrap"
    wait_for(lambda: _by_name(worker)["orchestrator"]["rtt_ms"] is not None, timeout=30, what="an RTT sample")


def test_paused_worker_is_suspect_then_dropped_for_ping_timeout(small):
    orch, paused = small["procs"]["orchestrator"], small["procs"]["worker-paused"]
    wait_for(lambda: "worker-paused" in _by_name(orch), timeout=30, what="worker-paused in /peers")
    before = _drops(orch.url, DROP_PING_TIMEOUT)
    seen: list[str] = []
    paused.proc.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        def gone() -> bool:
            rec = _by_name(orch).get("worker-paused")
            if rec is not None and rec["state"] not in seen:
                seen.append(rec["state"])
            return rec is None

        wait_for(gone, timeout=60, interval=0.05, what="paused worker dropped")
        print(f"\npaused worker left /peers after {time.monotonic() - t0:.2f}s (states seen: {seen})")
        assert "suspect" in seen  # suspected before it was dropped
        assert _drops(orch.url, DROP_PING_TIMEOUT) == before + 1
        assert "worker-killed" in _by_name(orch)  # the silent peer took nobody with it
    finally:
        paused.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: _by_name(orch).get("worker-paused", {}).get("state") == "alive", timeout=60,
             what="resumed worker back in /peers")


def test_killed_worker_is_dropped_as_disconnected(small):
    orch, killed = small["procs"]["orchestrator"], small["procs"]["worker-killed"]
    wait_for(lambda: "worker-killed" in _by_name(orch), timeout=30, what="worker-killed in /peers")
    before = {r: _drops(orch.url, r) for r in (DROP_DISCONNECTED, DROP_PING_TIMEOUT)}
    t0 = time.monotonic()
    killed.kill(signal.SIGKILL)
    wait_for(lambda: "worker-killed" not in _by_name(orch), timeout=30, interval=0.02, what="killed worker dropped")
    print(f"\nkilled worker left /peers after {time.monotonic() - t0:.2f}s")
    assert _drops(orch.url, DROP_DISCONNECTED) == before[DROP_DISCONNECTED] + 1
    assert _drops(orch.url, DROP_PING_TIMEOUT) == before[DROP_PING_TIMEOUT]


def _inprocess(root, name, config, extra=()):
    sets = _sets(name, root, 0, free_port()) + list(extra)
    agent = Agent(load_config(CONFIGS / config, overrides=sets, environ={}))
    agent.publish_identity()
    return agent


def _block_loop(seconds: float):
    async def block() -> None:
        time.sleep(seconds)  # a handler that blocks the event loop, on purpose

    return block


def test_a_worker_with_a_slow_loop_is_not_evicted(small):
    orch = small["procs"]["orchestrator"]
    before = _drops(orch.url, DROP_PING_TIMEOUT)
    slow = _inprocess(small["root"], "worker-slow", "worker.yaml", [small["boot"]])
    slow.start_p2p()
    try:
        wait_for(lambda: "worker-slow" in _by_name(orch), timeout=30, what="worker-slow in /peers")
        for _ in range(5):
            on_loop(slow, _block_loop(1.5))
            assert "worker-slow" in _by_name(orch)
            time.sleep(0.5)
        time.sleep(3)
        assert "worker-slow" in _by_name(orch)
        assert _drops(orch.url, DROP_PING_TIMEOUT) == before
    finally:
        slow.stop_p2p()


def _busy_loop(seconds: float, block: float, gap: float):
    async def busy() -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(block)  # the loop is ours only ``gap`` s out of every block + gap
            await trio.sleep(gap)

    return busy


def test_a_stalled_orchestrator_does_not_blame_its_workers(tmp_path):
    """Own-lag tolerance: an orchestrator whose loop stalls for 3 s with a
    0.5 s ping interval (six intervals!), then is busy 90 % of the time for
    6 s, keeps its workers."""
    orch = _inprocess(tmp_path, "orchestrator", "orchestrator.yaml", ["p2p.ping_interval=0.5"])
    orch.start_p2p()
    procs = []
    try:
        addr = f"/ip4/127.0.0.1/tcp/{orch.service.port}/p2p/{orch.service.peer_id}"
        for i in range(2):
            name = f"worker-{i}"
            procs.append(AgentProc("worker.yaml", _sets(name, tmp_path, free_port(), free_port())
                                   + [f"p2p.bootstrap_nodes=[{addr}]"], tmp_path / f"{name}.log"))
        for p in procs:
            p.wait_healthy()

        def names():
            return {r.card.get("name") for r in orch.service.peers.with_cards()}

        wait_for(lambda: {"worker-0", "worker-1"} <= names(), timeout=30, what="workers connected")
        time.sleep(1.0)  # some RTT samples
        on_loop(orch, _block_loop(3.0))
        time.sleep(2.0)
        assert {"worker-0", "worker-1"} <= names()
        on_loop(orch, _busy_loop(6.0, 0.9, 0.1), timeout=30)
        assert {"worker-0", "worker-1"} <= names()
        assert orch.service.metrics.peer_drops.labels(DROP_PING_TIMEOUT)._value.get() == 0
    finally:
        for p in procs:
            p.kill(signal.SIGTERM)
        orch.stop_p2p()


def test_twenty_workers_started_at_once_all_arrive(small):
    """No start storm: 20 workers (in this process) bootstrap to one orchestrator together."""
    orch = small["procs"]["orchestrator"]
    names = [f"storm-{i:02d}" for i in range(20)]
    agents = [_inprocess(small["root"], n, "worker.yaml", [small["boot"]]) for n in names]
    errors: list[BaseException] = []

    def start(a: Agent) -> None:
        try:
            a.start_p2p()
        except BaseException as e:  # reported below
            errors.append(e)

    go = [threading.Thread(target=start, args=(a,)) for a in agents]
    t0 = time.monotonic()
    try:
        for t in go:
            t.start()
        for t in go:
            t.join(60)
        assert not errors, errors
        wait_for(lambda: set(names) <= set(_by_name(orch)), timeout=180, interval=0.5,
                 what="all 20 storm workers in /peers")
        print(f"\n20 workers in /peers {time.monotonic() - t0:.1f}s after they were started together")
        time.sleep(4)  # two ping intervals: nobody is evicted after arriving
        assert set(names) <= set(_by_name(orch))
    finally:
        for a in agents:
            a.stop_p2p()

"""Fault containment with real agents on 127.0.0.1 (issue 8): no request takes a
worker down, and a P2P loop that does die is visible (/health 503, exit code 4).

Each test here failed on the code before agent/serving.py: the worker's P2P
loop died (silently, /health kept saying ok) or the caller got a plain-text 500.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import httpx
import pytest

from agent.constants import EXIT_P2P_DIED
from agent.errors import Unavailable, http_status

from .conftest import CONFIGS, REPO, AgentProc, agent_sets, free_port, running_cluster, wait_for

WORKERS = {"worker-filesystem", "worker-analytics"}
CALL_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def small_cluster(tmp_path_factory):
    """An orchestrator and two workers; the workers' tools time out after 0.5 s."""
    root = tmp_path_factory.mktemp("containment")
    timeout = f"tools.call_timeout={CALL_TIMEOUT}"
    with running_cluster(root, [
        ("worker-filesystem", "worker_filesystem.yaml", [timeout]),
        ("worker-analytics", "worker_analytics.yaml", [timeout, f"tools.analytics.root={root / 'data'}"]),
    ]) as c:
        orch = c["procs"]["orchestrator"]
        wait_for(lambda: WORKERS <= {p["name"] for p in orch.peers()}, 30, what="both workers in /peers")
        yield c

def _invoke(orch: AgentProc, tool: str, arguments: dict, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{orch.url}/tools/{tool}/invoke", json={"arguments": arguments}, timeout=timeout)


def _assert_worker_serves(cluster: dict, worker: str) -> None:
    """The worker is still in the orchestrator's /peers, healthy, and answers a routed call."""
    orch = cluster["procs"]["orchestrator"]
    assert cluster["procs"][worker].health().status_code == 200
    assert worker in {p["name"] for p in orch.peers()}
    tool, args, expect = {
        "worker-analytics": ("describe", {"values": [1, 2, 3]}, lambda r: r["count"] == 3),
        "worker-filesystem": ("file_info", {"path": "."}, lambda r: isinstance(r, dict)),
    }[worker]
    r = _invoke(orch, tool, args)
    assert r.status_code == 200, r.text
    assert expect(r.json()["result"])
    # And still there a few ping intervals later (a dead loop is dropped after missed pings).
    for _ in range(3):
        r = httpx.get(f"{cluster['procs'][worker].url}/health", timeout=2)
        assert r.status_code == 200
    wait_for(lambda: worker in {p["name"] for p in orch.peers()}, 5, what=f"{worker} still in /peers")


def _error(r: httpx.Response) -> dict:
    assert r.headers["content-type"].startswith("application/json"), r.text[:200]
    return r.json()["error"]


def test_a_tool_over_the_call_timeout_is_504_and_the_worker_keeps_serving(small_cluster):
    orch = small_cluster["procs"]["orchestrator"]
    values = [(i * 7919) % 100003 for i in range(250_000)]
    r = _invoke(orch, "describe", {"values": values})
    assert r.status_code == 504, r.text[:300]
    assert _error(r)["code"] == "timeout"
    _assert_worker_serves(small_cluster, "worker-analytics")


def test_a_result_json_cannot_carry_is_422_not_a_500(small_cluster):
    orch = small_cluster["procs"]["orchestrator"]
    r = _invoke(orch, "describe", {"values": [1e308, -1e308]})  # sums to infinity on the worker
    assert r.status_code == 422, r.text[:300]
    assert _error(r)["code"] == "invalid_arguments"
    _assert_worker_serves(small_cluster, "worker-analytics")


def test_an_answer_over_the_frame_limit_is_413_and_the_worker_keeps_serving(small_cluster):
    orch = small_cluster["procs"]["orchestrator"]
    data_dir = small_cluster["root"] / "data" / "worker-filesystem"
    (data_dir / "big.bin").write_bytes(os.urandom(3_900_000))  # 5.2 MB as base64: over 4 MiB
    r = _invoke(orch, "read_file", {"path": "big.bin", "encoding": "base64"})
    assert r.status_code == 413, r.text[:300]
    err = _error(r)
    assert err["code"] == "too_large" and str(data_dir) not in err["message"]
    _assert_worker_serves(small_cluster, "worker-filesystem")


def test_a_file_name_that_is_not_utf8_does_not_take_the_worker_down(small_cluster):
    orch = small_cluster["procs"]["orchestrator"]
    data_dir = small_cluster["root"] / "data" / "worker-filesystem"
    weird = os.path.join(os.fsencode(data_dir / "odd"), b"latin1-\xe9.txt")
    os.makedirs(os.path.dirname(weird), exist_ok=True)
    with open(weird, "wb") as f:
        f.write(b"x")
    r = _invoke(orch, "list_directory", {"path": "odd"})
    # The tool may list the name escaped (200) or refuse it (an error), but as JSON.
    body = r.json()
    assert ("result" in body) if r.status_code == 200 else body["error"]["code"], r.text[:300]
    assert str(data_dir) not in r.text
    _assert_worker_serves(small_cluster, "worker-filesystem")


def test_a_request_over_the_frame_limit_is_413_before_it_is_sent(small_cluster):
    orch = small_cluster["procs"]["orchestrator"]
    content = "a\n" * (2_200_000)  # 4.4 MB as text, 6.6 MB as escaped JSON
    r = _invoke(orch, "write_file", {"path": "too-big.txt", "content": content})
    assert r.status_code == 413, r.text[:300]
    assert _error(r)["code"] == "too_large"
    assert not (small_cluster["root"] / "data" / "worker-filesystem" / "too-big.txt").exists()
    _assert_worker_serves(small_cluster, "worker-filesystem")


# --- a loop that dies anyway -------------------------------------------------------------

_SABOTEUR = textwrap.dedent(
    """
    import asyncio, sys, threading, time
    from agent.config import load_config
    from agent.runtime import Agent

    agent = Agent(load_config(sys.argv[1], overrides=sys.argv[2:], environ={}))

    def kill_the_loop():
        while agent.service.state != "running":
            time.sleep(0.05)
        time.sleep(0.5)

        async def essential_task_fails():
            raise RuntimeError("P2P loop killed on purpose by the test")

        # An essential task in the loop's own nursery raises: the loop ends.
        agent.service._thread.run_sync_soon(lambda: agent.service._nursery.start_soon(essential_task_fails))

    threading.Thread(target=kill_the_loop, daemon=True).start()
    sys.exit(asyncio.run(agent.serve()))
    """
)


def test_a_dead_p2p_loop_turns_health_503_and_exits_4(tmp_path):
    api = free_port()
    sets = agent_sets("doomed", tmp_path, free_port(), api) + ["p2p.bootstrap_nodes=[]"]
    log = open(tmp_path / "doomed.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SABOTEUR, str(CONFIGS / "worker.yaml"), *sets],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        url = f"http://127.0.0.1:{api}/health"

        def unavailable():
            if proc.poll() is not None:
                raise AssertionError(f"exited ({proc.returncode}) before /health said 503")
            r = httpx.get(url, timeout=1)
            return r.status_code == 503 and "killed on purpose" in r.text and r

        r = wait_for(unavailable, 30, interval=0.05, what="/health 503 with the reason")
        assert r.json()["status"] == "unavailable"
        assert proc.wait(30) == EXIT_P2P_DIED
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        log.close()
    assert "P2P loop died" in (tmp_path / "doomed.log").read_text(errors="replace")


def test_a_call_when_the_loop_is_gone_is_unavailable_503(tmp_path):
    from agent.config import load_config
    from agent.runtime import Agent

    config = load_config(CONFIGS / "orchestrator.yaml", overrides=agent_sets("gone", tmp_path, 0, free_port()),
                         environ={})
    agent = Agent(config)  # never started: the loop is not there
    with pytest.raises(Unavailable) as info:
        asyncio.run(agent.service.call_tool("12D3KooWAnyPeer", "echo", {}, 1.0))
    assert http_status(info.value) == 503

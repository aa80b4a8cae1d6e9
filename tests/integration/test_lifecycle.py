"""Start, stop, health, tokens, mDNS and the command line, against real processes and sockets."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from agent.config import load_config

from .conftest import CONFIGS, REPO, AgentProc, agent_sets, free_port, wait_for


def test_health_follows_the_p2p_host_503_200_503(tmp_path):
    from agent.runtime import Agent

    api = free_port()
    config = load_config(CONFIGS / "worker.yaml", overrides=agent_sets("life", tmp_path, 0, api) + ["p2p.bootstrap_nodes=[]"], environ={})
    agent = Agent(config)
    gate = threading.Event()
    real_start = agent.start_p2p

    def gated_start():
        gate.wait(20)  # hold the host back so the 'starting' state is observable
        real_start()

    agent.start_p2p = gated_start
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("code", asyncio.run(agent.serve(install_signal_handlers=False))))
    t.start()
    try:
        url = f"http://127.0.0.1:{api}/health"
        r = wait_for(lambda: httpx.get(url, timeout=1), what="API up")
        assert r.status_code == 503 and r.json()["status"] == "unavailable" and "starting" in r.json()["reason"]
        gate.set()
        ok = wait_for(lambda: (r := httpx.get(url, timeout=1)).status_code == 200 and r, what="200")
        assert ok.json()["peer_id"] == agent.peer_id
        agent.stop_p2p()
        r = httpx.get(url, timeout=2)
        assert r.status_code == 503 and r.json()["reason"] == "P2P host is stopped"
    finally:
        gate.set()
        agent.request_stop()
        t.join(15)
    assert not t.is_alive() and box["code"] == 0


def test_sigterm_stops_the_agent_cleanly_within_seconds(tmp_path):
    p = AgentProc("worker.yaml", agent_sets("term", tmp_path, free_port(), free_port()) + ["p2p.bootstrap_nodes=[]"],
                  tmp_path / "term.log")
    p.wait_healthy()
    t0 = time.monotonic()
    p.proc.send_signal(signal.SIGTERM)
    code = p.proc.wait(10)
    took = time.monotonic() - t0
    print(f"SIGTERM → exit in {took:.2f}s")
    assert code == 0
    log = p.log()
    assert "P2P host stopped" in log and "Agent term stopped" in log
    p.kill()


def test_token_guards_mutating_endpoints_only(tmp_path):
    token = "s3cret-token-0123456789"
    p = AgentProc("worker.yaml", agent_sets("tok", tmp_path, free_port(), free_port()) + ["p2p.bootstrap_nodes=[]"],
                  tmp_path / "tok.log", env={"PRAXIS_API_TOKEN": token})
    try:
        p.wait_healthy()
        call = {"arguments": {"message": "hi"}}
        assert httpx.post(p.url + "/tools/echo/invoke", json=call).status_code == 401
        assert httpx.post(p.url + "/tools/echo/invoke", json=call,
                          headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.post(p.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code == 401
        assert httpx.post(p.url + "/a2a", json={}).status_code == 401
        ok = httpx.post(p.url + "/tools/echo/invoke", json=call, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["result"] == {"message": "hi"}
        for path in ("/health", "/peers", "/card", "/.well-known/agent-card.json", "/tools", "/metrics"):
            r = httpx.get(p.url + path)
            assert r.status_code == 200, path
            assert token not in r.text
        # No endpoint returns key material.
        seed = (tmp_path / "tok" / "node.key").read_bytes()
        for path in ("/health", "/card", "/tools", "/peers"):
            assert seed.hex() not in httpx.get(p.url + path).text
        assert token not in p.log()
    finally:
        p.kill(signal.SIGTERM)


def test_two_agents_find_each_other_by_mdns_alone(tmp_path):
    a = AgentProc("orchestrator.yaml", agent_sets("mdns-a", tmp_path, free_port(), free_port(), mdns=True),
                  tmp_path / "a.log")
    b = AgentProc("worker.yaml", agent_sets("mdns-b", tmp_path, free_port(), free_port(), mdns=True)
                  + ["p2p.bootstrap_nodes=[]"], tmp_path / "b.log")
    try:
        a.wait_healthy()
        b.wait_healthy()
        wait_for(lambda: {p["name"] for p in a.peers()} == {"mdns-b"}, timeout=30, what="a sees b")
        wait_for(lambda: {p["name"] for p in b.peers()} == {"mdns-a"}, timeout=30, what="b sees a")
        assert "via mDNS" in a.log() + b.log()
    finally:
        a.kill(signal.SIGTERM)
        b.kill(signal.SIGTERM)


def _run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "agent", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(
    "sets, expect",
    [
        (["p2p.port=70000"], "p2p.port"),
        (["p2p.max_peers=0"], "p2p.max_peers"),
        (["p2p.max_peer=3"], "did you mean 'max_peers'"),
        (["p2p.bootstrap_nodes=[/dns4/x/udp/1]"], "p2p.bootstrap_nodes[0]"),
    ],
)
def test_bad_config_exits_2_with_one_line_and_creates_nothing(tmp_path, sets, expect):
    keystore = tmp_path / "ks"
    args = ["--config", str(CONFIGS / "worker.yaml"), "--set", f"p2p.keystore_path={keystore}"]
    for s in sets:
        args += ["--set", s]
    r = _run_cli(*args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0] and "worker.yaml" in lines[0]
    assert not keystore.exists()


def test_corrupt_key_exits_2_and_is_left_untouched(tmp_path):
    ks = tmp_path / "ks"
    ks.mkdir(mode=0o700)
    (ks / "node.key").write_bytes(b"short")
    (ks / "node.key").chmod(0o600)
    r = _run_cli("--config", str(CONFIGS / "worker.yaml"), "--set", f"p2p.keystore_path={ks}",
                 "--set", f"api.port={free_port()}", "--set", "p2p.port=0")
    assert r.returncode == 2
    assert "Failed to load keypair" in r.stderr
    assert (ks / "node.key").read_bytes() == b"short"


def test_port_in_use_fails_with_the_reason(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        r = _run_cli("--config", str(CONFIGS / "worker.yaml"),
                     *sum([["--set", x] for x in agent_sets("busy", tmp_path, busy, free_port())], []),
                     "--set", "p2p.bootstrap_nodes=[]")
    assert r.returncode == 1
    assert "P2P host failed to start" in r.stderr

"""``python -m agent local`` as a supervisor: real processes on 127.0.0.1.

The supervisor's children are found through /proc (not through what it
prints), so these tests judge what it does, not what it says it does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from .conftest import REPO, wait_for

WORKERS = 2  # worker-filesystem and worker-analytics
READY = 90.0  # four Python processes starting on a shared 2-core machine


def _free_block(n: int) -> int:
    """A base port such that base .. base+n-1 are all free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n >= 65535:
            continue
        try:
            socks = []
            for port in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports")


def _children(pid: int) -> dict[int, str]:
    """Direct children of ``pid`` -> their agent.name (from the command line)."""
    out: dict[int, str] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = (task / "children").read_text().split()
        except OSError:
            continue
        for k in map(int, kids):
            try:
                argv = Path(f"/proc/{k}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            names = [a.decode()[len("agent.name="):] for a in argv if a.startswith(b"agent.name=")]
            out[k] = names[0] if names else "?"
    return out


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


class Supervisor:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp / "tmpdir"
        self.tmp.mkdir()
        self.api = _free_block(WORKERS + 1)
        self.p2p = _free_block(WORKERS + 1)
        self.log_path = tmp / "local.log"
        self._log = open(self.log_path, "wb")
        env = {**os.environ, "TMPDIR": str(self.tmp), "PYTHONUNBUFFERED": "1"}
        env.pop("PRAXIS_API_TOKEN", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "local", "--workers", str(WORKERS),
             "--api-port", str(self.api), "--p2p-port", str(self.p2p)],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.api}"
        self._seen: set[int] = set()  # every agent pid seen, killed at teardown if still there

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def keystores(self) -> list[Path]:
        return sorted(self.tmp.glob("praxis-local-*"))

    def peers(self) -> set[str]:
        return {p["name"] for p in httpx.get(self.url + "/peers", timeout=5).json()}

    def wait_ready(self) -> dict[int, str]:
        def ready():
            assert self.proc.poll() is None, f"supervisor exited {self.proc.returncode}:\n{self.log()[-3000:]}"
            for port in range(self.api, self.api + WORKERS + 1):
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code != 200:
                    return False
            return {"worker-filesystem", "worker-analytics"} <= self.peers()

        wait_for(ready, timeout=READY, interval=0.3, what="every agent healthy and both workers in /peers")
        kids = _children(self.proc.pid)
        assert sorted(kids.values()) == ["orchestrator", "worker-analytics", "worker-filesystem"], kids
        return kids

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        # Whatever the code under test left behind must not outlive the test.
        for pid in self._seen:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


@pytest.fixture
def supervisor(tmp_path):
    sup = Supervisor(tmp_path)
    try:
        yield sup
    finally:
        sup._seen |= set(_children(sup.proc.pid))
        sup.close()


def test_sigterm_stops_every_agent_and_removes_the_keystore(supervisor):
    kids = supervisor.wait_ready()
    supervisor._seen |= set(kids)
    [root] = supervisor.keystores()
    assert (root / "orchestrator" / "node.key").exists()  # the private keys live there while it runs

    supervisor.proc.send_signal(signal.SIGTERM)
    assert supervisor.proc.wait(40) == 0, supervisor.log()[-3000:]

    left = [pid for pid in kids if not _gone(pid)]
    assert left == [], f"agents still running after SIGTERM: {[kids[p] for p in left]}"
    assert supervisor.keystores() == [], "temporary keystore root left behind"
    assert list(supervisor.tmp.rglob("node.key")) == []
    for port in range(supervisor.api, supervisor.api + WORKERS + 1):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


def test_a_killed_worker_is_reported_and_restarted_while_the_others_keep_running(supervisor):
    kids = supervisor.wait_ready()
    supervisor._seen |= set(kids)
    by_name = {n: p for p, n in kids.items()}
    victim, bystander = by_name["worker-filesystem"], by_name["worker-analytics"]
    peer_ids = {p["name"]: p["peer_id"] for p in httpx.get(supervisor.url + "/peers", timeout=5).json()}

    os.kill(victim, signal.SIGKILL)

    def restarted():
        assert supervisor.proc.poll() is None, f"supervisor exited:\n{supervisor.log()[-3000:]}"
        now = {n: p for p, n in _children(supervisor.proc.pid).items()}
        return now.get("worker-filesystem") not in (None, victim) and now

    now = wait_for(restarted, timeout=30, interval=0.2, what="worker-filesystem restarted")
    supervisor._seen |= set(now.values())
    # One clear line: who, which pid, how it ended, and that it is restarted.
    lines = [ln for ln in supervisor.log().splitlines() if f"pid {victim}" in ln and "worker-filesystem" in ln]
    assert any("-9" in ln and "SIGKILL" in ln and "restart" in ln for ln in lines), supervisor.log()[-3000:]
    # The others were never touched.
    assert now["orchestrator"] == by_name["orchestrator"] and now["worker-analytics"] == bystander

    # Back in the cluster with the same identity, and really serving: a file
    # written through the orchestrator is handled by the new process.
    def back():
        peers = {p["name"]: p["peer_id"] for p in httpx.get(supervisor.url + "/peers", timeout=5).json()}
        if peers.get("worker-filesystem") != peer_ids["worker-filesystem"]:
            return False
        r = httpx.post(supervisor.url + "/tools/write_file/invoke",
                       json={"arguments": {"path": "after-restart.txt", "content": "x"}}, timeout=10)
        return r.status_code == 200 and r.json()["peer_id"] == peer_ids["worker-filesystem"]

    wait_for(back, timeout=60, interval=0.5, what="restarted worker-filesystem in /peers and serving")
    assert "worker-analytics" in supervisor.peers()
    assert supervisor.proc.poll() is None

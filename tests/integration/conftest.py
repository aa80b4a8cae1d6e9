"""Real agents on 127.0.0.1: subprocesses (``python -m agent``) and, where a test
needs to speak the P2P protocols itself, an in-process agent as the client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import load_config
from agent.keys import load_or_create_seed, peer_id_from_seed, publish_public_entry
from agent.runtime import Agent

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
READY_TIMEOUT = 90.0  # generous: CI machines are loaded; only "healthy before the deadline" is asserted


# Lines the fuzzers report (cases run, answers by status), printed in the
# terminal summary so a CI log shows the counts.
FUZZ_REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    if FUZZ_REPORT:
        terminalreporter.section("fuzzing")
        for line in FUZZ_REPORT:
            terminalreporter.write_line(line)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.1, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except Exception as e:  # not up yet
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def agent_sets(name: str, root: Path, p2p_port: int, api_port: int, mdns: bool = False) -> list[str]:
    return [
        f"agent.name={name}",
        f"p2p.port={p2p_port}",
        "p2p.host=127.0.0.1",
        f"p2p.keystore_path={root / name}",
        f"p2p.keystore_root={root}",
        "p2p.mdns_interfaces=[127.0.0.1]",
        f"p2p.peer_discovery={'true' if mdns else 'false'}",
        "p2p.ping_interval=0.5",
        "api.host=127.0.0.1",
        f"api.port={api_port}",
        f"tools.filesystem.root={root / 'data' / name}",
    ]


class AgentProc:
    """``python -m agent`` as a child process."""

    def __init__(self, config: str, sets: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.api_port = int(next(s.split("=", 1)[1] for s in sets if s.startswith("api.port=")))
        self.url = f"http://127.0.0.1:{self.api_port}"
        cmd = [sys.executable, "-m", "agent", "--config", str(CONFIGS / config)]
        for s in sets:
            cmd += ["--set", s]
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def health(self) -> httpx.Response:
        return httpx.get(self.url + "/health", timeout=2)

    def wait_healthy(self, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
        def ok() -> Any:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited with {self.proc.returncode}: {self.log()}")
            r = self.health()
            return r.json() if r.status_code == 200 else None

        return wait_for(ok, timeout, what=f"{self.url}/health")

    def peers(self) -> list[dict[str, Any]]:
        return httpx.get(self.url + "/peers", timeout=5).json()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@contextmanager
def running_cluster(root: Path, workers: list[tuple[str, str, list[str]]]):
    """An orchestrator and ``workers`` (name, config, extra sets) as processes.

    Workers bootstrap to ``/dns4/localhost/tcp/<port>`` with no PeerID: they
    resolve it from ``<root>/localhost/peer.id`` in the shared keystore, as
    Docker workers do for ``/dns4/orchestrator``.  Yields ``{"root", "procs",
    "ports"}`` once every agent is healthy; SIGTERMs them all at the end.
    """
    names = ["orchestrator", *(name for name, _, _ in workers)]
    ports = {n: (free_port(), free_port()) for n in names}
    orch_seed = load_or_create_seed(root / "orchestrator")
    publish_public_entry(root, "localhost", peer_id_from_seed(orch_seed), "orchestrator")
    boot = f"p2p.bootstrap_nodes=[/dns4/localhost/tcp/{ports['orchestrator'][0]}]"
    specs = [("orchestrator", "orchestrator.yaml", [])] + [(n, c, [boot, *extra]) for n, c, extra in workers]
    procs: dict[str, AgentProc] = {}
    try:
        for name, config, extra in specs:
            p2p, api = ports[name]
            procs[name] = AgentProc(config, agent_sets(name, root, p2p, api) + extra, root / f"{name}.log")
        for p in procs.values():
            p.wait_healthy()
        yield {"root": root, "procs": procs, "ports": ports}
    finally:
        for p in procs.values():
            p.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """An orchestrator and three workers (filesystem, analytics, generic)."""
    root = tmp_path_factory.mktemp("keys")
    with running_cluster(root, [
        ("worker-filesystem", "worker_filesystem.yaml", []),
        ("worker-analytics", "worker_analytics.yaml", [f"tools.analytics.root={root / 'data'}"]),
        ("worker-1", "worker.yaml", []),
    ]) as c:
        yield c

def inprocess_agent(root: Path, name: str, role_config: str = "orchestrator.yaml", extra: list[str] = ()) -> Agent:
    """An agent in this process (P2P only, no HTTP) used as a protocol client."""
    sets = agent_sets(name, root, 0, free_port()) + list(extra)
    config = load_config(CONFIGS / role_config, overrides=sets, environ={})
    agent = Agent(config)
    agent.publish_identity()
    agent.start_p2p()
    return agent


@pytest.fixture
def client_factory():
    made: list[Agent] = []

    def make(root: Path, name: str, role_config: str = "orchestrator.yaml", extra: list[str] = ()) -> Agent:
        a = inprocess_agent(root, name, role_config, extra)
        made.append(a)
        return a

    yield make
    for a in made:
        a.stop_p2p()


def p2p_addr(port: int, peer_id: str) -> str:
    return f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id}"


def on_loop(agent: Agent, fn, *args, timeout: float = 15.0) -> Any:
    """Run a trio coroutine on the agent's P2P loop and wait for it."""
    return agent.service.submit(fn, *args).result(timeout)

"""The local supervisor's decisions, without processes: fake children."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from agent import local
from agent.constants import LOCAL_RESTART_BACKOFF_FIRST, LOCAL_RESTART_BACKOFF_MAX, LOCAL_RESTART_RESET_AFTER


class FakeProc:
    _next_pid = 1000

    def __init__(self) -> None:
        FakeProc._next_pid += 1
        self.pid = FakeProc._next_pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


def make_cluster(monkeypatch, tmp_path: Path, workers: int = 2) -> local.LocalCluster:
    cluster = local.LocalCluster(workers, 8000, 9000, tmp_path)
    launched: list[str] = []

    def fake_launch(a: local.AgentSpec) -> None:
        a.proc = FakeProc()  # type: ignore[assignment]
        a.restart_at = None
        a.history.append(a.proc.pid)
        launched.append(a.name)

    monkeypatch.setattr(cluster, "_launch", fake_launch)
    monkeypatch.setattr(local, "_healthy", lambda port: True)
    cluster.launched = launched  # type: ignore[attr-defined]
    cluster.agents = cluster.plan()
    for a in cluster.agents:
        cluster._launch(a)
        a.started_at = 0.0
    return cluster


def test_exit_codes_are_described_with_the_signal_name():
    assert local.describe_exit(-9) == "code -9 (killed by SIGKILL)"
    assert local.describe_exit(-15) == "code -15 (killed by SIGTERM)"
    assert local.describe_exit(1) == "code 1"


def test_backoff_doubles_up_to_the_cap():
    seq, b = [], None
    for _ in range(10):
        b = local.next_backoff(b)
        seq.append(b)
    assert seq[0] == LOCAL_RESTART_BACKOFF_FIRST and seq[1] == 2 * LOCAL_RESTART_BACKOFF_FIRST
    assert max(seq) == LOCAL_RESTART_BACKOFF_MAX and seq == sorted(seq)


def test_a_dead_agent_is_reported_then_restarted_after_its_backoff_alone(monkeypatch, tmp_path, capsys):
    cluster = make_cluster(monkeypatch, tmp_path)
    fs = next(a for a in cluster.agents if a.name == "worker-filesystem")
    others = {a.name: a.pid for a in cluster.agents if a is not fs}
    old_pid = fs.pid
    fs.proc.returncode = -9

    cluster.check(now=5.0)
    line = capsys.readouterr().err
    assert f"worker-filesystem (pid {old_pid}) exited with code -9 (killed by SIGKILL)" in line
    assert "restarting it in 1s" in line
    assert fs.restart_at == 5.0 + LOCAL_RESTART_BACKOFF_FIRST

    cluster.check(now=5.5)  # backoff not over yet
    assert fs.pid == old_pid
    cluster.check(now=6.0)
    assert fs.pid != old_pid and fs.restarts == 1
    assert {a.name: a.pid for a in cluster.agents if a is not fs} == others
    assert cluster.launched.count("worker-filesystem") == 2

    # Dies again soon after: the delay doubles.
    fs.started_at = 6.0
    fs.proc.returncode = 1
    cluster.check(now=7.0)
    assert fs.restart_at == 7.0 + 2 * LOCAL_RESTART_BACKOFF_FIRST


def test_an_agent_that_stayed_up_long_starts_its_backoff_over(monkeypatch, tmp_path):
    cluster = make_cluster(monkeypatch, tmp_path)
    a = cluster.agents[1]
    a.backoff = LOCAL_RESTART_BACKOFF_MAX
    a.started_at = 0.0
    a.proc.returncode = 1
    cluster.check(now=LOCAL_RESTART_RESET_AFTER + 1)
    assert a.backoff == LOCAL_RESTART_BACKOFF_FIRST


def test_nothing_is_restarted_once_stopping(monkeypatch, tmp_path):
    cluster = make_cluster(monkeypatch, tmp_path)
    cluster.stopping = True
    for a in cluster.agents:
        a.proc.returncode = -15
    cluster.check(now=100.0)
    assert all(a.restart_at is None for a in cluster.agents)
    assert len(cluster.launched) == len(cluster.agents)


def test_stale_roots_of_dead_supervisors_are_swept_live_ones_kept(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / "praxis-local-stale"
    (stale / "orchestrator").mkdir(parents=True)
    (stale / "orchestrator" / "node.key").write_bytes(b"k" * 32)
    (stale / local.PID_FILE).write_text(f"{dead.pid}\n")
    live = tmp_path / "praxis-local-live"
    live.mkdir()
    (live / local.PID_FILE).write_text(f"{os.getpid()}\n")
    foreign = tmp_path / "praxis-local-nopid"
    foreign.mkdir()

    assert local.sweep_stale_roots(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists()

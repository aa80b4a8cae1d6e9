"""``python -m agent local``: a supervisor for an orchestrator and N workers as
processes on 127.0.0.1.

- A temporary keystore root (``$TMPDIR/praxis-local-*``) holds every agent's
  key and public entry, and the tools' data; it is removed when the supervisor
  stops, so no private ``node.key`` is left behind.
- SIGTERM, SIGINT (Ctrl-C) or SIGHUP to the supervisor stops every agent
  (SIGTERM, then SIGKILL after a grace period) and then removes that root.
- An agent that dies is reported on one line (name, pid, exit code) and
  restarted with the same identity and ports after a backoff (1 s, 2 s, 4 s …
  up to 30 s); the others keep running and the supervisor never exits because
  one of them died.
- mDNS is bound to 127.0.0.1, so nothing is multicast on real interfaces.

Agents run in their own session (a Ctrl-C in the terminal reaches only the
supervisor, which then stops them in order) and, on Linux, get SIGTERM from
the kernel should the supervisor itself be killed with SIGKILL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .constants import (
    LOCAL_POLL_INTERVAL,
    LOCAL_READY_TIMEOUT,
    LOCAL_RESTART_BACKOFF_FIRST,
    LOCAL_RESTART_BACKOFF_MAX,
    LOCAL_RESTART_RESET_AFTER,
    LOCAL_STOP_GRACE,
)
from .keys import load_or_create_seed, peer_id_from_seed

__all__ = ["main", "LocalCluster", "AgentSpec", "describe_exit", "next_backoff"]

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
PREFIX = "[local]"
TMP_PREFIX = "praxis-local-"
# In each temporary root: the supervisor's pid, so a later run can tell a root
# left by a supervisor that was killed with SIGKILL from one still in use.
PID_FILE = "supervisor.pid"


def say(msg: str) -> None:
    """One supervisor line on stderr (the agents' own logs share the terminal)."""
    print(f"{PREFIX} {msg}", file=sys.stderr, flush=True)


def describe_exit(code: int) -> str:
    """``-9`` -> ``"code -9 (killed by SIGKILL)"``; ``1`` -> ``"code 1"``."""
    if code < 0:
        try:
            return f"code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"code {code} (killed by signal {-code})"
    return f"code {code}"


def next_backoff(previous: float | None) -> float:
    """Restart delay after a death: first, then doubled, capped."""
    if previous is None:
        return LOCAL_RESTART_BACKOFF_FIRST
    return min(previous * 2, LOCAL_RESTART_BACKOFF_MAX)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (Linux only)."""
    try:
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:  # not Linux / no libc: the supervisor's own stop still applies
        pass


@dataclass
class AgentSpec:
    """One supervised agent: how to start it, and its current process."""

    name: str
    config: str
    api: int
    p2p: int
    sets: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float | None = None
    restart_at: float | None = None  # set while it waits to be restarted
    announced_healthy: bool = True
    history: list[int] = field(default_factory=list)  # pids it has had

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class LocalCluster:
    def __init__(self, workers: int, api_port: int, p2p_port: int, root: Path, configs: Path = CONFIGS,
                 extra: list[str] | None = None, env: dict[str, str] | None = None) -> None:
        self.workers = workers
        self.api_port = api_port
        self.p2p_port = p2p_port
        self.root = root
        self.configs = configs
        self.extra = extra or []
        self.env = env
        self.agents: list[AgentSpec] = []
        self.stopping = False

    def _command(self, a: AgentSpec) -> list[str]:
        keystore = self.root / a.name
        return [
            sys.executable, "-m", "agent", "--config", str(self.configs / a.config),
            "--set", f"agent.name={a.name}",
            "--set", f"p2p.port={a.p2p}",
            "--set", "p2p.host=127.0.0.1",
            "--set", f"p2p.keystore_path={keystore}",
            "--set", f"p2p.keystore_root={self.root}",
            "--set", "p2p.mdns_interfaces=[127.0.0.1]",
            "--set", "api.host=127.0.0.1",
            "--set", f"api.port={a.api}",
            "--set", f"tools.filesystem.root={self.root / 'data'}",
            "--set", f"tools.analytics.root={self.root / 'data'}",
            *[x for s in a.sets + self.extra for x in ("--set", s)],
        ]

    def _launch(self, a: AgentSpec) -> None:
        a.proc = subprocess.Popen(
            self._command(a),
            env=dict(os.environ if self.env is None else self.env),
            stdin=subprocess.DEVNULL,
            # Own session: a terminal's Ctrl-C reaches only the supervisor,
            # which stops the agents itself (and does not mistake their exit
            # for a crash to restart).
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        a.started_at = time.monotonic()
        a.restart_at = None
        a.history.append(a.proc.pid)

    def plan(self) -> list[AgentSpec]:
        """The agents to run: orchestrator first, then the workers bootstrapping to it."""
        orch_id = peer_id_from_seed(load_or_create_seed(self.root / "orchestrator"))
        boot = f"[/ip4/127.0.0.1/tcp/{self.p2p_port}/p2p/{orch_id}]"
        agents = [AgentSpec("orchestrator", "orchestrator.yaml", self.api_port, self.p2p_port, [])]
        kinds = [("worker-filesystem", "worker_filesystem.yaml"), ("worker-analytics", "worker_analytics.yaml")]
        for i in range(self.workers):
            name, config = kinds[i] if i < len(kinds) else (f"worker-{i - 1}", "worker.yaml")
            agents.append(AgentSpec(name, config, self.api_port + 1 + i, self.p2p_port + 1 + i,
                                    [f"p2p.bootstrap_nodes={boot}"]))
        return agents

    def start(self) -> None:
        self.agents = self.plan()
        for a in self.agents:
            self._launch(a)
            say(f"{a.name} started: pid {a.pid}, http://127.0.0.1:{a.api}")

    # --- supervision ---------------------------------------------------------
    def check(self, now: float | None = None) -> None:
        """One supervision step: report deaths, schedule and perform restarts."""
        if self.stopping:
            return
        now = time.monotonic() if now is None else now
        for a in self.agents:
            if a.restart_at is not None:
                if now >= a.restart_at:
                    a.restarts += 1
                    self._launch(a)
                    a.announced_healthy = False
                    say(f"{a.name} restarted (restart #{a.restarts}): pid {a.pid}")
                continue
            if a.proc is None or a.proc.poll() is None:
                if not a.announced_healthy and a.proc is not None and _healthy(a.api):
                    a.announced_healthy = True
                    say(f"{a.name} is healthy again: pid {a.pid}, http://127.0.0.1:{a.api}/health")
                continue
            # It died on its own (the supervisor is not stopping).
            up = now - a.started_at
            if up >= LOCAL_RESTART_RESET_AFTER:
                a.backoff = None
            a.backoff = next_backoff(a.backoff)
            a.restart_at = now + a.backoff
            say(f"agent {a.name} (pid {a.proc.pid}) exited with {describe_exit(a.proc.returncode)} "
                f"after {up:.1f}s; restarting it in {a.backoff:.0f}s; the other agents keep running")

    def wait_ready(self, timeout: float = LOCAL_READY_TIMEOUT, stop: Callable[[], bool] = lambda: False) -> bool:
        """Wait until every agent answers /health 200 (agents that die meanwhile are restarted)."""
        deadline = time.monotonic() + timeout
        pending = {a.name for a in self.agents}
        while pending and time.monotonic() < deadline and not stop():
            self.check()
            for a in self.agents:
                if a.name in pending and a.alive() and _healthy(a.api):
                    pending.discard(a.name)
            if pending:
                time.sleep(LOCAL_POLL_INTERVAL)
        return not pending

    def stop(self, grace: float = LOCAL_STOP_GRACE) -> None:
        """SIGTERM every agent, SIGKILL what is left after ``grace``, reap all."""
        self.stopping = True
        live = [a for a in self.agents if a.alive()]
        for a in live:
            try:
                a.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for a in live:
            try:
                a.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{a.name} (pid {a.pid}) did not stop within {grace:.0f}s: SIGKILL")
                a.proc.kill()
                a.proc.wait()
        for a in self.agents:  # reap anything that exited on its own earlier
            if a.proc is not None:
                a.proc.poll()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:  # noqa: S310 (loopback)
            return r.status == 200
    except Exception:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_roots(tmpdir: Path) -> list[Path]:
    """Remove temporary roots (private keys included) whose supervisor is gone.

    Only a SIGKILL of the supervisor can leave one behind; the next run
    clears it. Roots without a pid file are not ours to judge and stay.
    """
    removed = []
    for d in tmpdir.glob(TMP_PREFIX + "*"):
        try:
            pid = int((d / PID_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if not _pid_alive(pid):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


class _StopFlag:
    """Set by SIGTERM/SIGINT/SIGHUP; the supervisor's loops look at it."""

    def __init__(self) -> None:
        self.signum: int | None = None

    def __call__(self, signum, _frame) -> None:
        if self.signum is None:
            self.signum = signum

    def __bool__(self) -> bool:
        return self.signum is not None


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="praxis-agent local", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", "-n", type=int, default=3, help="number of workers (default 3)")
    p.add_argument("--api-port", type=int, default=8000, help="orchestrator API port; workers take the next ones")
    p.add_argument("--p2p-port", type=int, default=9000, help="orchestrator P2P port; workers take the next ones")
    p.add_argument("--keys-dir", type=Path, default=None,
                   help="keystore root to use and keep (default: a temporary directory, removed on exit)")
    args = p.parse_args(argv)
    if args.workers < 0:
        p.error("--workers must be >= 0")

    flag = _StopFlag()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, flag)

    tmp = None
    if not args.keys_dir:
        for d in sweep_stale_roots(Path(tempfile.gettempdir())):
            say(f"removed {d}, left by a supervisor that was killed")
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX))
        (tmp / PID_FILE).write_text(f"{os.getpid()}\n")
    root = args.keys_dir or tmp
    cluster = LocalCluster(args.workers, args.api_port, args.p2p_port, root)
    try:
        say(f"supervisor pid {os.getpid()}, keystore {root}" + (" (temporary)" if tmp else ""))
        cluster.start()
        ok = cluster.wait_ready(stop=lambda: bool(flag))
        if not flag:
            print("\nPraxis local cluster" + ("" if ok else " (some agents not healthy yet)") + f" — keystore {root}")
            for a in cluster.agents:
                print(f"  {a.name:<20} http://127.0.0.1:{a.api}/health  pid {a.pid}")
            print("Ctrl-C (or SIGTERM to this process) stops them all; an agent that dies is restarted.",
                  flush=True)
        while not flag:
            cluster.check()
            time.sleep(LOCAL_POLL_INTERVAL)
        say(f"{signal.Signals(flag.signum).name}: stopping {sum(a.alive() for a in cluster.agents)} agents")
        return 0
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        cluster.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            say(f"stopped; removed {tmp}" + (" (NOT removed!)" if tmp.exists() else ""))
        else:
            say(f"stopped; keystore kept in {root} (--keys-dir)")

"""Shared helpers: progress lines, ports, child processes, HTTP polling, statistics."""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
RESULTS = REPO / "bench" / "results"
HOST = "127.0.0.1"

_T0 = time.monotonic()


def log(msg: str) -> None:
    """A progress line, flushed at once."""
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------- statistics
def percentile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    if len(sorted_values) == 1:
        return sorted_values[0]
    k = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def summarize(samples_s: list[float]) -> dict[str, float]:
    """Latency summary in milliseconds."""
    s = sorted(samples_s)
    if not s:
        return {"n": 0}
    ms = 1000.0
    return {
        "n": len(s),
        "p50_ms": percentile(s, 50) * ms,
        "p90_ms": percentile(s, 90) * ms,
        "p99_ms": percentile(s, 99) * ms,
        "p999_ms": percentile(s, 99.9) * ms,
        "min_ms": s[0] * ms,
        "max_ms": s[-1] * ms,
        "mean_ms": sum(s) / len(s) * ms,
    }


def median(values: list[float]) -> float:
    return percentile(sorted(values), 50)


# ----------------------------------------------------------- child processes
class Procs:
    """Every child process this run starts; :meth:`stop_all` ends them (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        self._procs: list[tuple[str, subprocess.Popen, Any]] = []

    def start(self, name: str, cmd: list[str], log_path: Path | None = None,
              stdout: Any = None, env: dict[str, str] | None = None) -> subprocess.Popen:
        logf = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=stdout if stdout is not None else logf,
            stderr=logf,
            env={**os.environ, **(env or {})},
        )
        self._procs.append((name, proc, logf))
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 10.0) -> None:
        """SIGTERM one child, wait, SIGKILL if needed."""
        for i, (_, p, logf) in enumerate(self._procs):
            if p is proc:
                self._terminate([p], timeout)
                _close(logf)
                _close(p.stdin)
                _close(p.stdout)
                del self._procs[i]
                return

    def stop_all(self, timeout: float = 10.0) -> None:
        procs = [p for _, p, _ in self._procs]
        self._terminate(procs, timeout)
        for _, p, logf in self._procs:
            _close(logf)
            _close(p.stdin)
            _close(p.stdout)
        self._procs.clear()

    @staticmethod
    def _terminate(procs: list[subprocess.Popen], timeout: float) -> None:
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass


def _close(f: Any) -> None:
    if f is not None and f is not subprocess.DEVNULL and hasattr(f, "close"):
        try:
            f.close()
        except Exception:
            pass


def agent_cmd(config: str, sets: list[str]) -> list[str]:
    """``python -m agent --config configs/<config> --set ...``."""
    cmd = [sys.executable, "-m", "agent", "--config", str(CONFIGS / config)]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def agent_sets(name: str, root: Path, p2p_port: int, api_port: int, bootstrap: list[str] | None = None) -> list[str]:
    """Loopback-only overrides: own keystore under ``root``, no mDNS, explicit bootstrap list."""
    boot = "[" + ",".join(bootstrap or []) + "]"
    return [
        f"agent.name={name}",
        f"p2p.port={p2p_port}",
        f"p2p.host={HOST}",
        f"p2p.keystore_path={root / name}",
        f"p2p.keystore_root={root}",
        "p2p.peer_discovery=false",
        f"p2p.bootstrap_nodes={boot}",
        f"api.host={HOST}",
        f"api.port={api_port}",
        f"tools.filesystem.root={root / 'data'}",
        f"tools.analytics.root={root / 'data'}",
    ]


# ------------------------------------------------------------------ polling
def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        try:
            return r.status, json.loads(body)
        except ValueError:
            return r.status, body
    finally:
        conn.close()


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``predicate`` until truthy (exceptions count as not yet); TimeoutError after ``timeout``."""
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
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} (last: {last!r})")


def wait_healthy(proc: subprocess.Popen, port: int, timeout: float, log_path: Path | None = None) -> dict[str, Any]:
    """Poll ``/health`` until 200; RuntimeError at once if the process exits."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path and log_path.exists() else ""
            raise RuntimeError(f"process exited with {proc.returncode}: {tail}")
        try:
            status, body = http_get(port, "/health", timeout=1.0)
            if status == 200:
                return body
            last = status
        except OSError as e:
            last = e
        time.sleep(0.02)
    raise TimeoutError(f"127.0.0.1:{port}/health not 200 after {timeout:g}s (last: {last!r})")


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """One line from ``proc.stdout`` (a pipe) within ``timeout``; RuntimeError if it exits first."""
    import selectors

    fd = proc.stdout.fileno()  # type: ignore[union-attr]
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line from {proc.args!r} within {timeout:g}s")
            if sel.select(min(left, 0.2)):
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"{proc.args!r} closed stdout (exit code {proc.poll()})")
                buf += chunk
            elif proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before it was ready")
    return buf.split(b"\n", 1)[0].decode()


def inprocess_client(root: Path, name: str) -> Any:
    """An orchestrator-role agent in this process (P2P only), published into ``root``:
    workers accept its tool calls.  Caller stops it with ``stop_p2p()``."""
    from agent.config import load_config
    from agent.runtime import Agent

    config = load_config(CONFIGS / "orchestrator.yaml", overrides=agent_sets(name, root, 0, free_port()), environ={})
    agent = Agent(config)
    agent.publish_identity()
    agent.start_p2p()
    return agent

"""Section 4: the compose cluster: ready time against N, a paused and a killed worker, a restarted orchestrator.

For each N: the project's docker-compose.yml under a unique ``-p`` project name
with the orchestrator API on a free loopback port (``PRAXIS_API_PORT``),
``up -d --no-build --scale worker=N orchestrator worker`` (the named workers
are not started, so N is the number of workers), then:

1. time from ``up`` to all N workers in the orchestrator's ``/peers``
   (baseline: the time ``up -d`` itself took to return, which includes waiting
   for the orchestrator's healthcheck);
2. ``docker restart`` of the orchestrator: time until all N are back
   (baseline: the ``docker restart`` command);
3. ``docker kill`` of one worker: time until it leaves ``/peers`` (baseline:
   the ``docker kill`` command).

``down -v`` always follows (also on error or Ctrl-C).  Skipped, with the
reason, when there is no docker engine, no compose command or no image.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from typing import Any

from ._util import REPO, free_port, http_get, log
from .report import row

IMAGE = "praxis-agent:latest"  # what docker-compose.yml runs
POLL_S = 0.05
STABLE_S = 10.0  # watch /peers this long after "ready" for churn


def _ok(cmd: list[str], timeout: float = 20) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def compose_command() -> list[str] | None:
    env = os.environ.get("COMPOSE")
    if env:
        return shlex.split(env)
    if shutil.which("docker") and _ok(["docker", "compose", "version"]):
        return ["docker", "compose"]
    if shutil.which("docker-compose") and _ok(["docker-compose", "version"]):
        return ["docker-compose"]
    return None


def why_skip() -> str | None:
    if not shutil.which("docker"):
        return "no docker command"
    if not _ok(["docker", "info"], 30):
        return "no docker engine (docker info failed)"
    if compose_command() is None:
        return "neither `docker compose` nor `docker-compose` works"
    if not _ok(["docker", "image", "inspect", IMAGE]):
        return f"image {IMAGE} not found: build it with `make image`"
    return None


def _workers_in_peers(port: int) -> list[str] | None:
    try:
        status, peers = http_get(port, "/peers", timeout=2)
    except OSError:
        return None
    if status != 200 or not isinstance(peers, list):
        return None
    return [p.get("name") for p in peers if p.get("role") == "worker"]


def _containers(project: str, service: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}",
         "--filter", f"label=com.docker.compose.service={service}"],
        capture_output=True, text=True, timeout=30,
    ).stdout
    return out.split()


def _wait(pred: Any, timeout: float) -> float | None:
    """Seconds (perf_counter) when ``pred()`` first held, or None at the deadline."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if pred():
            return time.perf_counter()
        time.sleep(POLL_S)
    return None


class Project:
    def __init__(self, ctx: Any, compose: list[str], n: int) -> None:
        self.name = f"praxisbench{os.getpid()}n{n}"
        self.port = free_port()
        self.env = {**os.environ, "PRAXIS_API_PORT": str(self.port), "PRAXIS_API_BIND": "127.0.0.1"}
        self.dc = compose + ["-p", self.name, "-f", str(REPO / "docker-compose.yml")]
        self.log_path = ctx.tmp / f"compose-{self.name}.log"
        self._down_done = False
        ctx.compose_projects.append(self.down)

    def popen(self, *args: str) -> subprocess.Popen:
        logf = open(self.log_path, "ab")
        try:
            return subprocess.Popen(self.dc + list(args), cwd=REPO, env=self.env, stdout=logf, stderr=logf,
                                    stdin=subprocess.DEVNULL)
        finally:
            logf.close()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def down(self) -> None:
        if self._down_done:
            return
        self._down_done = True
        log(f"containers: {self.name}: down -v")
        p = self.popen("down", "-v", "--remove-orphans", "-t", "5")
        try:
            p.wait(300)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def _one(ctx: Any, compose: list[str], n: int) -> dict[str, Any]:
    proj = Project(ctx, compose, n)
    try:
        return _measure(proj, n, STABLE_S)
    finally:
        proj.down()


def _count(port: int) -> int | None:
    names = _workers_in_peers(port)
    return None if names is None else len(names)


def _watch(port: int, until: Any, timeout: float, t0: float, series: list) -> float | None:
    """Poll /peers; append (seconds since t0, worker count) on every change; return the
    perf_counter time ``until(count)`` first held, or None at the deadline."""
    deadline = time.perf_counter() + timeout
    last: Any = object()
    while time.perf_counter() < deadline:
        c = _count(port)
        now = time.perf_counter()
        if c != last:
            series.append((round(now - t0, 3), c))
            last = c
        if until(c):
            return now
        time.sleep(POLL_S)
    return None


def _stats(project: str) -> dict[str, Any]:
    """One ``docker stats`` snapshot of the project's containers: CPU (% of one core) and memory."""
    ids = _containers(project, "orchestrator") + _containers(project, "worker")
    if not ids:
        return {}
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.CPUPerc}} {{.MemUsage}}", *ids],
                         capture_output=True, text=True, timeout=60).stdout
    cpu, mem = [], []
    units = {"KiB": 1 / 1024, "MiB": 1.0, "GiB": 1024.0, "kB": 1 / 1024, "MB": 1.0, "GB": 1024.0}
    for line in out.splitlines():
        parts = line.split()
        try:
            cpu.append(float(parts[0].rstrip("%")))
            used = parts[1]
            unit = next(u for u in units if used.endswith(u))
            mem.append(float(used[: -len(unit)]) * units[unit])
        except (IndexError, ValueError, StopIteration):
            continue
    return {"containers": len(cpu), "cpu_total_pct": round(sum(cpu), 1),
            "mem_mean_mib": round(sum(mem) / len(mem), 1) if mem else None}


def _measure(proj: Project, n: int, stable_s: float) -> dict[str, Any]:
    res: dict[str, Any] = {"n": n, "project": proj.name}
    log(f"containers: N={n}: up -d --scale worker={n} (project {proj.name}, API port {proj.port})")
    t0 = time.perf_counter()
    up = proj.popen("up", "-d", "--no-build", "--scale", f"worker={n}", "orchestrator", "worker")
    timeout = 90 + 4 * n
    series: list = []
    res["ready_series"] = series
    t_up = None

    def ready(c: int | None) -> bool:
        nonlocal t_up
        if t_up is None and up.poll() is not None:
            t_up = time.perf_counter()
            if up.returncode != 0:
                raise RuntimeError(f"compose up failed ({up.returncode}): {proj.log_tail()}")
        return c is not None and c >= n and t_up is not None

    try:
        _watch(proj.port, ready, timeout, t0, series)
    finally:
        if up.poll() is None:
            up.kill()
            up.wait(10)
    first_full = next((t for t, c in series if c is not None and c >= n), None)
    first_api = next((t for t, c in series if c is not None), None)
    res.update(up_returned_s=None if t_up is None else t_up - t0, api_up_s=first_api, ready_s=first_full,
               max_seen=max((c for _, c in series if c is not None), default=0))
    res["stats_after_ready"] = _stats(proj.name)
    if first_full is None:
        res["note"] = (f"never: at most {res['max_seen']}/{n} in /peers within {timeout:.0f} s; "
                       f"cluster CPU {res['stats_after_ready'].get('cpu_total_pct')} %")
        log(f"containers: N={n}: {res['note']}")
        return res
    log(f"containers: N={n}: all in /peers after {first_full:.2f}s (compose up returned after "
        f"{_s(res['up_returned_s'])}, orchestrator API answered after {_s(first_api)}); "
        f"cluster CPU {res['stats_after_ready'].get('cpu_total_pct')} %")

    # Does it stay there?  (churn: peers dropped for missed pings and re-dialled)
    stable: list = []
    _watch(proj.port, lambda c: False, stable_s, time.perf_counter(), stable)
    res["stable_series"] = stable
    res["stable_min"] = min((c if c is not None else 0) for _, c in stable) if stable else None
    log(f"containers: N={n}: lowest worker count in /peers over the next {stable_s:g}s: {res['stable_min']}")

    orch = _containers(proj.name, "orchestrator")
    t0 = time.perf_counter()
    subprocess.run(["docker", "restart", "-t", "10", *orch], capture_output=True, timeout=120, check=True)
    t_cmd = time.perf_counter()
    restart: list = []
    # /peers fails while the new process starts, then fills up again.
    t_back = _watch(proj.port, lambda c: c is not None and c >= n, 120, t0, restart)
    res.update(restart_series=restart, restart_cmd_s=t_cmd - t0, restart_back_s=None if t_back is None else t_back - t0)
    log(f"containers: N={n}: orchestrator restarted ({res['restart_cmd_s']:.2f}s), all workers back after "
        f"{_s(res['restart_back_s'])}")

    workers = _containers(proj.name, "worker")
    if len(workers) > 1:
        _pause(proj, res, n, workers[1])
    victim = workers[0]
    name = f"worker-{victim[:12]}"
    if _wait(lambda: name in (_workers_in_peers(proj.port) or []), 15) is None:
        res["kill_note"] = f"{name} was not in /peers before the kill"
        log(f"containers: N={n}: {res['kill_note']}; kill not measured")
        return res
    t0 = time.perf_counter()
    subprocess.run(["docker", "kill", victim], capture_output=True, timeout=60, check=True)
    t_cmd = time.perf_counter()
    t_gone = _wait(lambda: name not in (_workers_in_peers(proj.port) or [name]), 30)
    res.update(kill_cmd_s=t_cmd - t0, kill_gone_s=None if t_gone is None else t_gone - t0)
    log(f"containers: N={n}: killed {name}: left /peers after {_s(res['kill_gone_s'])} "
        f"(docker kill took {res['kill_cmd_s']:.2f}s)")
    return res


def _pause(proj: Project, res: dict[str, Any], n: int, victim: str) -> None:
    """``docker pause`` one worker (no FIN, no RST: only missed pings tell): time until it leaves /peers."""
    name = f"worker-{victim[:12]}"
    if _wait(lambda: name in (_workers_in_peers(proj.port) or []), 15) is None:
        res["pause_note"] = f"{name} was not in /peers before the pause"
        return
    t0 = time.perf_counter()
    subprocess.run(["docker", "pause", victim], capture_output=True, timeout=60, check=True)
    res["pause_cmd_s"] = time.perf_counter() - t0
    try:
        t_gone = _wait(lambda: name not in (_workers_in_peers(proj.port) or [name]), 30)
    finally:
        subprocess.run(["docker", "unpause", victim], capture_output=True, timeout=60)
    res["pause_gone_s"] = None if t_gone is None else t_gone - t0
    t_back = _wait(lambda: name in (_workers_in_peers(proj.port) or []), 60)
    res["pause_back_s"] = None if t_back is None else t_back - t0
    log(f"containers: N={n}: paused {name}: left /peers after {_s(res['pause_gone_s'])}, "
        f"back {_s(res['pause_back_s'])} after the pause began")


def _s(x: float | None) -> str:
    return "never (timeout)" if x is None else f"{x:.2f}s"


def run(ctx: Any) -> dict[str, Any]:
    reason = why_skip()
    if reason:
        return {"skipped": reason}
    compose = compose_command()
    assert compose is not None
    log(f"containers: compose command: {' '.join(compose)}; N = {ctx.workers}")
    ready: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for n in ctx.workers:
        try:
            ready[str(n)] = _one(ctx, compose, n)
        except Exception as e:  # noqa: BLE001 — report it, try the next N
            errors[str(n)] = f"{type(e).__name__}: {e}"
            log(f"containers: N={n} failed: {errors[str(n)]}")
    rows = []
    for key, r in ready.items():
        n = int(key)
        target = {10: ("<=", 5.0), 50: ("<=", 20.0)}.get(n)
        rows.append(row(f"ready_{n}", f"{n} workers in /peers after compose up", "s", r["ready_s"],
                        r["up_returned_s"], "compose up -d returned", target, r.get("note", "")))
    for key, r in ready.items():
        if r.get("stable_min") is not None:
            rows.append(row(f"stable_{key}", f"lowest count in /peers during {STABLE_S:g} s after ready (N={key})",
                            "workers", r["stable_min"], int(key), "N"))
    for key, r in ready.items():
        if (r.get("stats_after_ready") or {}).get("cpu_total_pct") is not None:
            st = r["stats_after_ready"]
            rows.append(row(f"cpu_{key}", f"cluster CPU right after ready, {st['containers']} containers (N={key})",
                            "% of a core", st["cpu_total_pct"], note=f"mean RSS {st['mem_mean_mib']} MiB/container"))
    for key, r in ready.items():
        if "restart_cmd_s" in r:
            rows.append(row(f"restart_{key}", f"all {key} workers back after orchestrator restart", "s",
                            r["restart_back_s"], r["restart_cmd_s"], "docker restart command",
                            note="" if r["restart_back_s"] is not None else "never within 120 s"))
    for key, r in ready.items():
        if "pause_gone_s" in r or "pause_note" in r:
            rows.append(row(f"pause_{key}", f"paused worker leaves /peers (N={key})", "s", r.get("pause_gone_s"),
                            r.get("pause_cmd_s"), "docker pause command", ("<=", 10.0), r.get("pause_note", "")))
        if "kill_cmd_s" in r or "kill_note" in r:
            rows.append(row(f"kill_{key}", f"killed worker leaves /peers (N={key})", "s", r.get("kill_gone_s"),
                            r.get("kill_cmd_s"), "docker kill command", ("<=", 1.0), r.get("kill_note", "")))
    for key, err in errors.items():
        rows.append(row(f"ready_{key}", f"{key} workers in /peers after compose up", "s", None, note=f"failed: {err}"))
    return {"rows": rows, "data": {"ready": ready, "errors": errors, "compose": compose}}

"""Section 4: the compose cluster: ready time against N, what an idle cluster costs, a paused and a
killed worker, a restarted orchestrator.

For each N: the project's docker-compose.yml under a unique ``-p`` project name
with the orchestrator API on a free loopback port (``PRAXIS_API_PORT``),
``up -d --no-build --scale worker=N orchestrator worker`` (the named workers
are not started, so N is the number of workers), then:

1. time from ``up`` to all N workers in the orchestrator's ``/peers``
   (baseline: the time ``up -d`` itself took to return, which includes waiting
   for the orchestrator's healthcheck);
2. the next ``STABLE_S`` (60 s) with nothing to do: the lowest worker count
   in ``/peers``, live peers dropped (``praxis_peer_drops_total`` on the
   orchestrator's /metrics when it has it, else names that left ``/peers``
   between two samples), the CPU of the whole machine (/proc/stat), of the
   containers (their cgroups) and of the Docker daemon (dockerd, containerd,
   shims, and the healthcheck execs they reap), and each agent's RSS
   (see ``_hostcpu``);
3. ``docker restart`` of the orchestrator: time until all N are back
   (baseline: the ``docker restart`` command);
4. ``docker kill`` of one worker: time until it leaves ``/peers`` (baseline:
   the ``docker kill`` command).

The machine figure includes everything else running on the machine: run
the section on an otherwise idle machine.  ``IMAGE`` picks the image
(default praxis-agent:latest), ``BENCH_PROJECT`` the compose project prefix,
``BENCH_API_PORT`` the orchestrator's API port (default: a free one).

``down -v`` always follows (also on error or Ctrl-C).  Skipped, with the
reason, when there is no docker engine, no compose command or no image.
"""

from __future__ import annotations

import os
import http.client
import shlex
import shutil
import subprocess
import time
from typing import Any

from . import _hostcpu
from ._util import HOST, REPO, free_port, http_get, log
from .report import _num, row

IMAGE = os.environ.get("IMAGE", "praxis-agent:latest")  # what docker-compose.yml runs (${IMAGE})
POLL_S = 0.05
STABLE_S = 60.0  # watch /peers this long after "ready": churn, idle CPU, RSS
STABLE_POLL_S = 1.0  # gently: the orchestrator is supposed to be idle meanwhile
READY_FACTOR = 1.5  # target: all N in /peers within 1.5 x the time `compose up -d` took


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
        self.name = f"{os.environ.get('BENCH_PROJECT') or f'praxisbench{os.getpid()}'}n{n}"
        self.port = int(os.environ.get("BENCH_API_PORT") or free_port())
        self.env = {**os.environ, "PRAXIS_API_PORT": str(self.port), "PRAXIS_API_BIND": "127.0.0.1", "IMAGE": IMAGE}
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


def _drops_total(port: int) -> float | None:
    """Sum of praxis_peer_drops_total over its labels on the orchestrator, None without the metric."""
    try:
        conn = http.client.HTTPConnection(HOST, port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode(errors="replace")
        conn.close()
    except OSError:
        return None
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
              if line.startswith("praxis_peer_drops_total")]
    return sum(values) if values else None


def _start_cpu(proj: Project) -> dict[str, Any]:
    """CPU each container used from its start until now (all workers ready): start-up plus joining."""
    workers = [v for v in (_hostcpu.container_cpu_s(c) for c in _containers(proj.name, "worker")) if v is not None]
    orch = [v for v in (_hostcpu.container_cpu_s(c) for c in _containers(proj.name, "orchestrator")) if v is not None]
    return {"worker_mean_s": round(sum(workers) / len(workers), 3) if workers else None,
            "worker_max_s": round(max(workers), 3) if workers else None,
            "orchestrator_s": round(orch[0], 3) if orch else None}


def _idle_window(proj: Project, n: int, seconds: float) -> dict[str, Any]:
    """Watch an idle cluster for ``seconds``: lowest count, drops, CPU by owner, RSS per agent."""
    cids = _containers(proj.name, "orchestrator") + _containers(proj.name, "worker")
    drops0 = _drops_total(proj.port)
    cpu0 = _hostcpu.snapshot(cids)
    samples: list = []
    left: list[str] = []
    prev: set[str] | None = None
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        names = _workers_in_peers(proj.port)
        now = round(time.perf_counter() - t0, 3)
        samples.append((now, None if names is None else len(names)))
        if names is not None:
            cur = set(names)
            if prev is not None:
                left += sorted(prev - cur)
            prev = cur
        time.sleep(STABLE_POLL_S)
    cpu1 = _hostcpu.snapshot(cids)
    drops1 = _drops_total(proj.port)
    rss = [r for r in (_hostcpu.agent_rss_mib(c) for c in cids) if r is not None]
    out: dict[str, Any] = {
        "stable_series": samples,
        "stable_min": min((c if c is not None else 0) for _, c in samples) if samples else None,
        "cpu": _hostcpu.delta(cpu0, cpu1),
        "rss_mean_mib": round(sum(rss) / len(rss), 1) if rss else None,
        "rss_max_mib": round(max(rss), 1) if rss else None,
        "left_peers_sampled": left,
    }
    if drops0 is not None and drops1 is not None:
        out.update(drops=drops1 - drops0, drops_source="praxis_peer_drops_total")
    else:
        out.update(drops=len(left), drops_source=f"/peers sampled every {STABLE_POLL_S:g} s")
    return out


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
    res["cpu_to_ready"] = _start_cpu(proj)
    if first_full is None:
        res["note"] = f"never: at most {res['max_seen']}/{n} in /peers within {timeout:.0f} s"
        log(f"containers: N={n}: {res['note']}")
        return res
    log(f"containers: N={n}: all in /peers after {first_full:.2f}s (compose up returned after "
        f"{_s(res['up_returned_s'])}, orchestrator API answered after {_s(first_api)})")

    # Does it stay there, and what does doing nothing cost?
    res.update(_idle_window(proj, n, stable_s))
    cpu = res["cpu"]
    log(f"containers: N={n}: over the next {stable_s:g}s: lowest worker count {res['stable_min']}, "
        f"{res['drops']:g} live peers dropped ({res['drops_source']}); CPU in cores: machine "
        f"{cpu['machine_cores']}, containers {cpu['containers_cores']} (mean agent "
        f"{cpu['per_container_pct_mean']} % of a core), Docker daemon {cpu['daemon_cores']}, execs "
        f"{cpu['execs_cores']}, other "
        f"{cpu['other_cores']}; RSS per agent mean {res['rss_mean_mib']} MiB, max {res['rss_max_mib']} MiB")

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
        up = r.get("up_returned_s")
        target = ("<=", round(READY_FACTOR * up, 2)) if _num(up) else None
        rows.append(row(f"ready_{n}", f"{n} workers in /peers after compose up (target {READY_FACTOR:g}× up)", "s",
                        r["ready_s"], up, "compose up -d returned", target, r.get("note", "")))
    for key, r in ready.items():
        if r.get("stable_min") is not None:
            rows.append(row(f"stable_{key}", f"lowest count in /peers during {STABLE_S:g} s after ready (N={key})",
                            "workers", r["stable_min"], int(key), "N", (">=", int(key))))
            rows.append(row(f"drops_{key}", f"live peers dropped during {STABLE_S:g} s after ready (N={key})",
                            "peers", r["drops"], target=("<=", 0), note=f"from {r['drops_source']}"))
    for key, r in ready.items():
        cpu = r.get("cpu")
        if not cpu:
            continue
        rows.append(row(f"idle_machine_{key}", f"idle machine CPU, {cpu['containers']} containers (N={key})", "cores",
                        cpu["machine_cores"], target=("<=", 0.5),
                        note=f"containers {cpu['containers_cores']}, Docker daemon {cpu['daemon_cores']}, "
                             f"execs {cpu['execs_cores']}, rest of the machine {cpu['other_cores']}"))
        rows.append(row(f"idle_daemon_{key}", f"idle Docker daemon CPU (dockerd, containerd, shims) (N={key})",
                        "cores", cpu["daemon_cores"]))
        rows.append(row(f"idle_execs_{key}", f"idle docker-exec CPU (runc + healthcheck probes) (N={key})",
                        "cores", cpu["execs_cores"]))
        rows.append(row(f"idle_containers_{key}", f"idle containers CPU, all {cpu['containers']} (N={key})", "cores",
                        cpu["containers_cores"]))
        rows.append(row(f"idle_agent_{key}", f"idle agent CPU, mean per container (N={key})", "% of a core",
                        cpu["per_container_pct_mean"], target=("<=", 0.3),
                        note=f"max {cpu['per_container_pct_max']} %"))
        rows.append(row(f"rss_{key}", f"agent RSS, mean per container (N={key})", "MiB", r.get("rss_mean_mib"),
                        target=("<=", 60.0), note=f"max {r.get('rss_max_mib')} MiB"))
        st = r.get("cpu_to_ready") or {}
        if st.get("worker_mean_s") is not None:
            rows.append(row(f"cpu_to_ready_{key}", f"CPU per worker container from start to all ready (N={key})", "s",
                            st["worker_mean_s"], note=f"max {st['worker_max_s']} s; orchestrator {st['orchestrator_s']} s"))
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

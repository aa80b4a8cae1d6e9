"""Section 3: agent cold start (process start -> ``/health`` 200) and idle RSS.

Each start is a generic worker (configs/worker.yaml) with a fresh keystore
(so key creation is included), no bootstrap, no mDNS.  Baselines: the start of
``python3 -c pass`` and the RSS of an idle bare interpreter; the time ``import
agent.runtime`` takes inside a fresh interpreter is reported too, as the part of
the start that is imports.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ._util import REPO, agent_cmd, agent_sets, free_port, http_get, log, median
from .report import row

SETTLE_S = 1.0  # idle time after /health 200 before RSS is read
START_TIMEOUT = 60.0


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _time_cmd(cmd: list[str], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        out.append(time.perf_counter() - t0)
    return out


def _import_time() -> float:
    """Seconds ``import agent.runtime`` takes inside a fresh interpreter (start-up and exit excluded)."""
    code = "import time; t = time.perf_counter(); import agent.runtime; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def _bare_rss() -> float | None:
    p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        time.sleep(0.5)
        return rss_mib(p.pid)
    finally:
        p.stdin.close()  # type: ignore[union-attr]
        p.wait(10)


def _cold_start(ctx: Any, i: int) -> tuple[float, float | None]:
    root = ctx.tmp / "startup" / f"run{i}"
    root.mkdir(parents=True)
    api = free_port()
    cmd = agent_cmd("worker.yaml", agent_sets(f"cold-{i}", root, free_port(), api))
    t0 = time.perf_counter()
    proc = ctx.procs.start(f"cold-{i}", cmd, root / "agent.log")
    try:
        deadline = t0 + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"agent exited with {proc.returncode}: "
                                   f"{(root / 'agent.log').read_text(errors='replace')[-1500:]}")
            try:
                if http_get(api, "/health", timeout=1.0)[0] == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() > deadline:
                raise TimeoutError(f"no /health 200 within {START_TIMEOUT:g}s")
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        time.sleep(SETTLE_S)
        return elapsed, rss_mib(proc.pid)
    finally:
        ctx.procs.stop(proc)


def run(ctx: Any) -> dict[str, Any]:
    n = 3 if ctx.quick else 5
    bare, imports, starts, rss = [], [], [], []
    # Interleaved (pass, import, agent) so drift in the machine's load hits all three alike.
    for i in range(n):
        bare += _time_cmd([sys.executable, "-c", "pass"], 1)
        imports.append(_import_time())
        t, r = _cold_start(ctx, i)
        starts.append(t)
        if r is not None:
            rss.append(r)
        log(f"startup: #{i + 1}: agent {t:.3f} s to /health 200, idle RSS {r if r is None else round(r, 1)} MiB; "
            f"import agent.runtime {imports[-1]:.3f} s; python3 -c pass {bare[-1]:.3f} s")
    bare_rss = _bare_rss()
    data = {"cold_start_s": starts, "idle_rss_mib": rss, "python_pass_s": bare, "import_agent_runtime_s": imports,
            "bare_python_rss_mib": bare_rss, "settle_s": SETTLE_S}
    rows = [
        row("cold_start", f"agent cold start → /health 200 (median of {n})", "s", median(starts), median(bare),
            "python3 -c pass", ("<=", 1.0)),
        row("import", f"… of which: import agent.runtime, in-process (median of {n})", "s", median(imports)),
        row("idle_rss", f"idle RSS after start (+{SETTLE_S:g} s)", "MiB", median(rss) if rss else None, bare_rss,
            "bare python3", ("<=", 70)),
    ]
    return {"rows": rows, "data": data}

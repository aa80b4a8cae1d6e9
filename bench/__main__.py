"""``python -m bench [--quick] [--sections ...] [--workers 5,10,20]``.

Runs the sections in order, each in its own try (a failing section is reported,
the others still run), then writes bench/results/<UTC>.json, latest.json,
latest.md and the plots, and prints the Markdown table.  Every child process
and compose project it started is stopped in ``finally`` (also on Ctrl-C and
SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from ._util import Procs, log
from .report import machine_info, write_all

SECTIONS = ("p2p", "http", "startup", "containers")
# section name -> module of this package
MODULES = {"p2p": "p2p", "http": "invoke", "startup": "startup", "containers": "containers"}
MAX_WORKERS = 100


class Context:
    def __init__(self, quick: bool, tmp: Path, procs: Procs, workers: list[int]) -> None:
        self.quick = quick
        self.tmp = tmp
        self.procs = procs
        self.workers = workers
        self.compose_projects: list[Any] = []  # containers section registers (project, cleanup) here


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer iterations, no containers; finishes in under two minutes")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)")
    p.add_argument("--workers", default="5,10,20",
                   help=f"generic worker counts for the containers section (default 5,10,20; at most {MAX_WORKERS})")
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in args.sections if s not in SECTIONS]
    if bad:
        p.error(f"unknown section(s) {bad}; choose from {SECTIONS}")
    try:
        args.workers = sorted({int(n) for n in args.workers.split(",") if n.strip()})
    except ValueError:
        p.error("--workers takes comma-separated integers, e.g. 5,10,20")
    if not args.workers or args.workers[0] < 1 or args.workers[-1] > MAX_WORKERS:
        p.error(f"--workers: each N must be between 1 and {MAX_WORKERS}")
    return args


def _sigterm(*_: Any) -> None:
    raise KeyboardInterrupt("SIGTERM")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    signal.signal(signal.SIGTERM, _sigterm)
    started = time.gmtime()
    result: dict[str, Any] = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", started),
        "stamp": time.strftime("%Y%m%dT%H%M%SZ", started),
        "quick": args.quick,
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": machine_info(),
        "sections": [],
    }
    samples: dict[str, dict[str, list[float]]] = {}
    procs = Procs()
    interrupted = False
    log(f"bench{' --quick' if args.quick else ''}: sections {','.join(args.sections)}; "
        f"{result['machine']['cpu_count']} CPUs, load {result['machine']['loadavg_start']}")
    with tempfile.TemporaryDirectory(prefix="praxis-bench-") as tmp:
        ctx = Context(args.quick, Path(tmp), procs, args.workers)
        try:
            for name in args.sections:
                sec: dict[str, Any] = {"name": name}
                result["sections"].append(sec)
                if name == "containers" and args.quick:
                    sec["skipped"] = "--quick runs no containers"
                    log(f"{name}: skipped ({sec['skipped']})")
                    continue
                t0 = time.monotonic()
                log(f"== section {name}")
                try:
                    out = _module(name).run(ctx)
                except KeyboardInterrupt:
                    sec["error"] = "interrupted"
                    raise
                except Exception as e:  # noqa: BLE001 — report it, run the other sections
                    sec["error"] = f"{type(e).__name__}: {e}"
                    log(f"{name}: FAILED: {sec['error']}")
                    traceback.print_exc()
                    continue
                finally:
                    procs.stop_all()
                    sec["seconds"] = round(time.monotonic() - t0, 1)
                if out.get("skipped"):
                    sec["skipped"] = out["skipped"]
                    log(f"{name}: skipped ({out['skipped']})")
                sec["rows"] = out.get("rows", [])
                sec["data"] = out.get("data", {})
                if out.get("samples"):
                    samples[name] = out["samples"]
                log(f"{name}: done in {sec['seconds']}s")
        except KeyboardInterrupt:
            interrupted = True
            log("interrupted: stopping everything this run started")
        finally:
            procs.stop_all()
            for cleanup in reversed(ctx.compose_projects):
                try:
                    cleanup()
                except Exception as e:  # noqa: BLE001
                    log(f"cleanup failed: {e}")
    result["interrupted"] = interrupted
    md = write_all(result, samples)
    print()
    print(md, flush=True)
    if interrupted:
        log(f"interrupted run: bench/results/{result['stamp']}.json only (latest.* keep the last complete run)")
    else:
        log(f"results: bench/results/{result['stamp']}.json, latest.json, latest.md")
    return 130 if interrupted else 0


def _module(name: str) -> Any:
    import importlib

    return importlib.import_module(f"bench.{MODULES[name]}")


if __name__ == "__main__":
    sys.exit(main())

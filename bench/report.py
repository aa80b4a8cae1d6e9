"""Results: rows (figure | measured | baseline | ratio | target), JSON, Markdown, plots."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from ._util import REPO, RESULTS, log, percentile

__all__ = ["row", "machine_info", "write_all"]


def row(key: str, figure: str, unit: str, measured: float | None, baseline: float | None = None,
        baseline_what: str = "", target: tuple[str, float] | None = None, note: str = "") -> dict[str, Any]:
    """One figure next to its baseline.  ``ratio`` = measured / baseline (for times >1 is slower,
    for rates <1 is slower); ``target`` = ("<=" | ">=", value) in ``unit``."""
    ratio = None
    if _num(measured) and _num(baseline) and baseline:
        ratio = measured / baseline  # type: ignore[operator]
    met = None
    if target is not None and _num(measured):
        op, value = target
        met = measured <= value if op == "<=" else measured >= value  # type: ignore[operator]
    return {"key": key, "figure": figure, "unit": unit, "measured": measured, "baseline": baseline,
            "baseline_what": baseline_what, "ratio": ratio,
            "target": None if target is None else {"op": target[0], "value": target[1]}, "met": met, "note": note}


def _num(x: Any) -> bool:
    return isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x))


# ------------------------------------------------------------------ machine
def machine_info() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def ver(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "libp2p": ver("libp2p"),
        "trio": ver("trio"),
        "uvicorn": ver("uvicorn"),
        "fastapi": ver("fastapi"),
        "git_commit": commit,
        "loadavg_start": _loadavg(),
    }


def _loadavg() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


# ------------------------------------------------------------------ formats
def _fmt(x: Any, unit: str = "") -> str:
    if not _num(x):
        return "—"
    if isinstance(x, int):
        return f"{x} {unit}".strip()
    ax = abs(x)
    if ax >= 1000:
        s = f"{x:,.0f}"
    elif ax >= 100:
        s = f"{x:.0f}"
    elif ax >= 10:
        s = f"{x:.1f}"
    elif ax >= 1:
        s = f"{x:.2f}"
    else:
        s = f"{x:.3f}"
    return f"{s} {unit}".strip()


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Praxis benchmark — {result['timestamp']}{' (quick)' if result['quick'] else ''}",
        "",
        f"{m['cpu_count']} CPU × {m['cpu_model']}; Python {m['python']}; libp2p {m['libp2p']}; trio {m['trio']}; "
        f"load avg at start {m.get('loadavg_start')}, at end {m.get('loadavg_end')}; commit {m.get('git_commit')}.",
        "ratio = measured / baseline (times: > 1 is slower than the baseline; rates: < 1 is slower). "
        "Baselines were measured in the same run on the same machine.",
        "",
        "| figure | measured | baseline | ratio | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for sec in result["sections"]:
        for r in sec.get("rows", []):
            base = _fmt(r["baseline"], r["unit"])
            if r["baseline_what"] and _num(r["baseline"]):
                base += f" ({r['baseline_what']})"
            ratio = f"{r['ratio']:.2f}×" if _num(r["ratio"]) else "—"
            tgt = "—"
            if r["target"]:
                op = "≤" if r["target"]["op"] == "<=" else "≥"
                tgt = f"{op} {_fmt(r['target']['value'], r['unit'])} " + ("**met**" if r["met"] else "**missed**")
            fig = r["figure"] + (f" — {r['note']}" if r["note"] else "")
            lines.append(f"| {fig} | {_fmt(r['measured'], r['unit'])} | {base} | {ratio} | {tgt} |")
    skipped = [s for s in result["sections"] if s.get("skipped")]
    errors = [s for s in result["sections"] if s.get("error")]
    if skipped or errors:
        lines.append("")
    for s in skipped:
        lines.append(f"- section **{s['name']}** skipped: {s['skipped']}")
    for s in errors:
        lines.append(f"- section **{s['name']}** failed: {s['error']}")
    plots = result.get("plots") or []
    if plots:
        lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in plots)]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------- plots
def _plots(result: dict[str, Any], samples: dict[str, dict[str, list[float]]]) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except Exception as e:  # noqa: BLE001 — plots are optional
        log(f"report: no plots ({e})")
        return []
    out: list[str] = []
    for name, title in (("p2p", "Agent ↔ agent over libp2p vs raw TCP (loopback)"),
                        ("http", "HTTP → orchestrator → P2P → worker vs GET /health")):
        series = samples.get(name)
        if not series:
            continue
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
        every = [x * 1000 for lat in series.values() for x in lat if x > 0]
        if not every:
            continue
        lo, hi = min(every), max(every)
        bins = [lo * (hi / lo) ** (i / 100) for i in range(101)] if hi > lo else 10
        for label, lat in series.items():
            ms = sorted(x * 1000 for x in lat)
            if not ms:
                continue
            n = len(ms)
            ax1.plot(ms, [(i + 1) / n for i in range(n)], label=f"{label} (p50 {percentile(ms, 50):.3f} ms)")
            ax2.hist(ms, bins=bins, histtype="step", label=label)
        ax1.set_xscale("log")
        ax1.set_xlabel("latency (ms, log)")
        ax1.set_ylabel("fraction of calls ≤ x")
        ax1.set_title("CDF")
        ax1.grid(True, which="both", alpha=0.3)
        ax1.legend(fontsize=7)
        ax2.set_xscale("log")
        ax2.set_xlabel("latency (ms, log bins)")
        ax2.set_ylabel("calls")
        ax2.set_title("histogram")
        ax2.legend(fontsize=7)
        fig.suptitle(title)
        fig.tight_layout()
        path = RESULTS / f"latency_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(str(path.relative_to(REPO)))
    ready = next((s.get("data", {}).get("ready") for s in result["sections"] if s["name"] == "containers"), None)
    if ready:
        out.append(_ready_plot(plt, ready))
        out += _against_n_plots(plt, ready)
    return out


def _against_n_plots(plt: Any, ready: dict[str, Any]) -> list[str]:
    """One PNG per idle-cluster figure against N (containers section)."""
    ns = sorted(int(n) for n in ready)
    out: list[str] = []

    def series(get: Any) -> tuple[list[int], list[float]]:
        xs, ys = [], []
        for n in ns:
            try:
                v = get(ready[str(n)])
            except (KeyError, TypeError):
                v = None
            if _num(v):
                xs.append(n)
                ys.append(v)
        return xs, ys

    def save(fig: Any, ax: Any, name: str, ylabel: str, title: str) -> None:
        ax.set_xlabel("generic workers N")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = RESULTS / f"containers_{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(str(path.relative_to(REPO)))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(*series(lambda r: r["ready_s"]), "o-", label="all N in orchestrator /peers")
    ax.plot(*series(lambda r: r["up_returned_s"]), "s--", label="compose up -d returned")
    ax.plot(*series(lambda r: 1.5 * r["up_returned_s"]), ":", color="red", label="target 1.5 × compose up")
    save(fig, ax, "ready", "seconds", "time to all N in /peers")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(*series(lambda r: r["stable_min"] / r["n"]), "o-", label="lowest count / N, 60 s after ready")
    ax2 = ax.twinx()
    ax2.plot(*series(lambda r: r["drops"]), "s--", color="tab:red", label="live peers dropped (right axis)")
    ax2.set_ylabel("peers dropped")
    ax.set_ylim(0, 1.05)
    save(fig, ax, "stability", "fraction of N in /peers", "does it stay up? (60 s after ready)")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, label in (("machine_cores", "whole machine"), ("containers_cores", "containers"),
                       ("daemon_cores", "Docker daemon"), ("execs_cores", "docker execs (healthchecks)"),
                       ("other_cores", "rest of the machine")):
        ax.plot(*series(lambda r, k=key: r["cpu"][k]), "o-", label=label)
    ax.axhline(0.5, color="red", linestyle=":", label="target: machine ≤ 0.5 core")
    save(fig, ax, "cpu", "cores", "idle CPU against N")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(*series(lambda r: r["rss_mean_mib"]), "o-", label="mean")
    ax.plot(*series(lambda r: r["rss_max_mib"]), "s--", label="max")
    ax.axhline(60, color="red", linestyle=":", label="target ≤ 60 MiB")
    save(fig, ax, "rss", "MiB", "RSS per agent (idle)")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(*series(lambda r: r["cpu"]["per_container_pct_mean"]), "o-", label="mean per container")
    ax.plot(*series(lambda r: r["cpu"]["per_container_pct_max"]), "s--", label="max")
    ax.axhline(0.3, color="red", linestyle=":", label="target ≤ 0.3 %")
    save(fig, ax, "agent_cpu", "% of a core", "idle CPU per agent")
    return out


def _ready_plot(plt: Any, ready: dict[str, Any]) -> str:
    ns = sorted(int(n) for n in ready)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    ok = [n for n in ns if _num(ready[str(n)].get("ready_s"))]
    ax1.plot(ok, [ready[str(n)]["ready_s"] for n in ok], "o-", label="all N workers in orchestrator /peers")
    up = [n for n in ns if _num(ready[str(n)].get("up_returned_s"))]
    ax1.plot(up, [ready[str(n)]["up_returned_s"] for n in up], "s--", label="compose up -d returned (baseline)")
    for n in ns:
        if n not in ok:
            ax1.annotate(f"N={n}: never\n(max {ready[str(n)].get('max_seen')})", (n, 0), textcoords="offset points",
                         xytext=(0, 10), ha="center", color="red", fontsize=8)
    ax1.plot(up, [1.5 * ready[str(n)]["up_returned_s"] for n in up], "r:", label="target 1.5 × compose up")
    ax1.set_xlabel("generic workers N")
    ax1.set_ylabel("seconds from compose up")
    ax1.set_title("ready time against N")
    ax1.grid(True, alpha=0.3)
    ax1.legend(fontsize=8)
    for n in ns:
        series = [(t, c if c is not None else 0) for t, c in ready[str(n)].get("ready_series", [])]
        if series:
            ax2.step([t for t, _ in series], [c for _, c in series], where="post", label=f"N={n}")
    ax2.set_xlabel("seconds from compose up")
    ax2.set_ylabel("workers in orchestrator /peers")
    ax2.set_title("/peers while the cluster starts")
    ax2.grid(True, alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    path = RESULTS / "ready_vs_n.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path.relative_to(REPO))


def write_all(result: dict[str, Any], samples: dict[str, dict[str, list[float]]]) -> str:
    """Write ``<stamp>.json``; unless the run was interrupted also latest.json, latest.md and
    the plots (an interrupted run does not replace the last complete one).  Returns the Markdown."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    result["machine"]["loadavg_end"] = _loadavg()
    final = not result.get("interrupted")
    result["plots"] = _plots(result, samples) if final else []
    text = json.dumps(result, indent=2, default=str)
    (RESULTS / f"{result['stamp']}.json").write_text(text)
    md = markdown(result)
    if final:
        (RESULTS / "latest.json").write_text(text)
        (RESULTS / "latest.md").write_text(md)
    return md

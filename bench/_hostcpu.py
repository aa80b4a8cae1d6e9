"""Where an idle cluster's CPU goes, read from the host: the whole machine
(/proc/stat), the containers (their cgroups' CPU usage), the Docker daemon
(dockerd, containerd, the per-container shims; and the execs the shims
run: every healthcheck is a `docker exec`), and each agent's RSS.

Cheap on purpose: a few /proc and /sys reads, no `docker stats` (which itself
costs the daemon CPU for every container).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

__all__ = ["Snapshot", "snapshot", "delta", "agent_rss_mib", "container_cpu_s"]

HZ = os.sysconf("SC_CLK_TCK")
DAEMON_NAMES = ("dockerd", "containerd", "docker-proxy", "fuse-overlayfs")  # + containerd-shim*


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (all cores)."""
    f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    vals = [int(x) for x in f[:8]]  # user nice system idle iowait irq softirq steal
    total = sum(vals)
    idle = vals[3] + vals[4]
    return (total - idle) / HZ, total / HZ


def _cgroup_dirs(cid: str, controller: str) -> list[Path]:
    return [
        Path(f"/sys/fs/cgroup/{controller}/docker/{cid}"),  # cgroup v1, cgroupfs driver
        Path(f"/sys/fs/cgroup/{controller}/system.slice/docker-{cid}.scope"),  # v1, systemd driver
        Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope"),  # v2, systemd
        Path(f"/sys/fs/cgroup/docker/{cid}"),  # v2, cgroupfs
    ]


def container_cpu_s(cid: str) -> float | None:
    """CPU seconds a container's cgroup has used since it started."""
    for d in _cgroup_dirs(cid, "cpuacct"):
        usage = d / "cpuacct.usage"
        if usage.exists():
            return int(usage.read_text()) / 1e9
        stat = d / "cpu.stat"
        if stat.exists():
            for line in stat.read_text().splitlines():
                if line.startswith("usage_usec"):
                    return int(line.split()[1]) / 1e6
    return None


def _container_pids(cid: str) -> list[int]:
    for controller in ("memory", "cpuacct", "pids"):
        for d in _cgroup_dirs(cid, controller):
            procs = d / "cgroup.procs"
            if procs.exists():
                return [int(x) for x in procs.read_text().split()]
    return []


def agent_rss_mib(cid: str) -> float | None:
    """RSS of the largest process in the container (the agent; docker-init is < 1 MiB)."""
    best = None
    for pid in _container_pids(cid):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib = int(line.split()[1])
                    best = kib if best is None or kib > best else best
        except OSError:
            continue
    return None if best is None else best / 1024


def _shim_container(pid: str) -> str | None:
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    for i, a in enumerate(args[:-1]):
        if a == b"-id":
            return args[i + 1].decode()
    return None


def daemon_cpu_s(cids: set[str] | None = None) -> tuple[float, float]:
    """(daemon, execs) CPU seconds so far.

    daemon: dockerd, containerd (with what they reaped), docker-proxy,
    fuse-overlayfs (the storage driver's FUSE servers, when used) and the
    per-container shims' own time.  execs: what the shims reaped, i.e. runc
    for every `docker exec` (healthchecks) plus the exec'd probe processes,
    whose own CPU is also in their container's cgroup (so execs overlaps the
    containers figure by the probes' share).  With ``cids``, only the shims of
    those containers count (other containers and image builds have their own)."""
    daemon = execs = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        name = raw[raw.find("(") + 1: raw.rfind(")")]
        shim = name.startswith("containerd-shim")
        if name not in DAEMON_NAMES and not shim:
            continue
        if shim and cids is not None and _shim_container(entry.name) not in cids:
            continue
        f = raw[raw.rfind(")") + 2:].split()
        own, reaped = int(f[11]) + int(f[12]), int(f[13]) + int(f[14])  # utime+stime, cutime+cstime
        daemon += own
        if shim:
            execs += reaped
        else:
            daemon += reaped
    return daemon / HZ, execs / HZ


class Snapshot:
    def __init__(self, cids: list[str]) -> None:
        self.t = time.monotonic()
        self.busy, self.total = machine_busy_s()
        self.containers = {cid: container_cpu_s(cid) for cid in cids}
        self.daemon, self.execs = daemon_cpu_s(set(cids))


def snapshot(cids: list[str]) -> Snapshot:
    return Snapshot(cids)


def delta(a: Snapshot, b: Snapshot) -> dict[str, Any]:
    """CPU between two snapshots, in cores (1.0 = one core busy all the time)."""
    wall = b.t - a.t
    per = [b.containers[c] - a.containers[c] for c in a.containers
           if a.containers.get(c) is not None and b.containers.get(c) is not None]
    containers = sum(per)
    machine = b.busy - a.busy
    daemon = b.daemon - a.daemon
    execs = b.execs - a.execs
    return {
        "seconds": round(wall, 1),
        "machine_cores": round(machine / wall, 3),
        "containers_cores": round(containers / wall, 3),
        "daemon_cores": round(daemon / wall, 3),
        "execs_cores": round(execs / wall, 3),
        "other_cores": round((machine - containers - daemon - execs) / wall, 3),
        "per_container_pct_mean": round(100 * containers / wall / len(per), 3) if per else None,
        "per_container_pct_max": round(100 * max(per) / wall, 3) if per else None,
        "containers": len(per),
    }

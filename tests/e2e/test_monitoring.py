"""Prometheus alongside the compose cluster (profile "monitoring").

Prometheus finds the agents by Docker DNS: every running agent container is an
"up" target, a worker scaled in later appears by itself, and the recording
rules evaluate against the agents' real metrics.  The promtool unit tests of
the alerts run in the same image.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

try:  # tests/e2e is not a package (no __init__.py): conftest is top-level
    from .conftest import GENERIC_SERVICE, Cluster, log, wait_for
except ImportError:
    from conftest import GENERIC_SERVICE, Cluster, log, wait_for  # type: ignore[no-redef]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
PROM_IMAGE = os.environ.get("PROM_IMAGE", "praxis-prometheus:latest")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prom_image() -> str:
    """PROM_IMAGE built from this checkout (cached: seconds when nothing changed)."""
    if os.environ.get("PRAXIS_E2E_BUILD", "1") != "0":
        subprocess.run([str(REPO / "images" / "prometheus" / "build-image.sh")], cwd=REPO, check=True,
                       env={**os.environ, "PROM_IMAGE": PROM_IMAGE})
    return PROM_IMAGE


@pytest.fixture(scope="module")
def prometheus(cluster: Cluster, prom_image: str):
    port = _free_port()
    cluster.compose.env["PRAXIS_PROMETHEUS_PORT"] = str(port)
    cluster.compose.env["PROM_IMAGE"] = prom_image
    try:
        cluster.compose.compose("--profile", "monitoring", "up", "-d", "prometheus")
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        wait_for(lambda: http.get("/-/ready").status_code == 200, "Prometheus ready", 60)
        log(f"prometheus: http://127.0.0.1:{port}")
        yield http
        http.close()
    finally:
        # Removed here, not left to the session's `down`: the profile is not active there.
        cluster.compose.compose("--profile", "monitoring", "rm", "-s", "-f", "-v", "prometheus")


def _agent_ips(cluster: Cluster) -> dict[str, str]:
    """IP on the project network -> service, of every running agent container."""
    out = {}
    for c in cluster.containers():
        service = c.labels["com.docker.compose.service"]
        if service == "prometheus":
            continue
        c.reload()
        net = c.attrs["NetworkSettings"]["Networks"].get(cluster.network) or {}
        if net.get("IPAddress"):
            out[net["IPAddress"]] = service
    return out


def _praxis_targets(prom: httpx.Client) -> dict[str, dict]:
    active = prom.get("/api/v1/targets", params={"state": "active"}).json()["data"]["activeTargets"]
    return {t["labels"]["instance"].rsplit(":", 1)[0]: t for t in active if t["labels"]["job"] == "praxis"}


def _every_agent_up(cluster: Cluster, prom: httpx.Client) -> dict[str, dict]:
    ips = _agent_ips(cluster)
    targets = _praxis_targets(prom)
    missing = sorted(set(ips) - set(targets))
    down = sorted(ip for ip, t in targets.items() if ip in ips and t["health"] != "up")
    if missing or down:
        raise RuntimeError(f"not scraped: {missing}, not up: {down}")
    for ip, service in ips.items():
        assert targets[ip]["labels"]["service"] == service, targets[ip]["labels"]
    return targets


def _query(prom: httpx.Client, expr: str) -> list[dict]:
    body = prom.get("/api/v1/query", params={"query": expr}).json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_promtool_unit_tests_of_the_rules_pass(prom_image: str) -> None:
    for args in (["test", "rules", "/etc/praxis-prometheus/rules_test.yml"],
                 ["check", "config", "/etc/praxis-prometheus/prometheus.yml"]):
        r = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "promtool", prom_image,
                            *args], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "SUCCESS" in r.stdout + r.stderr


def test_every_agent_is_an_up_target(cluster: Cluster, prometheus: httpx.Client) -> None:
    targets = wait_for(lambda: _every_agent_up(cluster, prometheus), "every agent an up target", 90, 2)
    assert len(targets) == len(_agent_ips(cluster)), sorted(targets)


def test_a_scaled_worker_appears_by_itself(cluster: Cluster, prometheus: httpx.Client) -> None:
    n = len(cluster.generic_workers())
    cluster.compose.compose("up", "-d", "--no-recreate", "--scale", f"{GENERIC_SERVICE}={n + 1}", GENERIC_SERVICE)
    cluster.compose.wait_healthy()
    wait_for(lambda: len(cluster.generic_workers()) == n + 1, "one more generic worker", 60)
    targets = wait_for(lambda: _every_agent_up(cluster, prometheus), "the new worker an up target", 90, 2)
    assert sum(1 for t in targets.values() if t["labels"]["service"] == GENERIC_SERVICE) == n + 1


def test_rules_evaluate_against_the_agents(cluster: Cluster, prometheus: httpx.Client) -> None:
    wait_for(lambda: _every_agent_up(cluster, prometheus), "every agent an up target", 90, 2)
    workers = sum(1 for s in _agent_ips(cluster).values() if s != "orchestrator")

    def counts() -> dict[str, float]:
        got = {r["metric"]["role"]: float(r["value"][1]) for r in _query(prometheus, "role:praxis_agents:count")}
        return got if got == {"orchestrator": 1.0, "worker": float(workers)} else {}

    wait_for(counts, f"role:praxis_agents:count = 1 orchestrator, {workers} workers", 60, 2)
    # Every worker is among the orchestrator's peers, so the alert has nothing to say.
    peers = wait_for(lambda: len(r := _query(prometheus, "praxis:orchestrator_peer:info")) >= workers and r,
                     "the orchestrator's peers recorded", 60, 2)
    assert {p["metric"]["peer_role"] for p in peers} == {"worker"}
    # (A worker scaled in a moment ago may still hold the alert pending until
    # the next evaluation has its card: wait for it to clear, don't race it.)
    wait_for(lambda: not _query(prometheus, 'ALERTS{alertname="PraxisWorkerMissingFromOrchestrator"}'),
             "no worker missing from the orchestrator's peers", 60, 2)
    groups = prometheus.get("/api/v1/rules").json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) >= 9 and all(r["health"] == "ok" for r in rules), [(r["name"], r.get("lastError")) for r in rules]

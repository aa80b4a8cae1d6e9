"""The cluster on Docker Swarm, driven through the make targets (deploy/swarm).

One scenario in file order, sharing one stack: swarm-up → /health from the
host → every worker in /peers → swarm-scale N=6 → a rolling update of the
worker service under tool calls → the orchestrator's task killed and
rescheduled → swarm-down leaves nothing behind. Each step's time is printed
(and listed in the e2e summary). Only deadlines are asserted, never speed.

API port 24000 (the deploy helper's range), a unique stack name and a
temporary identity directory, so nothing is shared with `make swarm-up`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

try:  # tests/e2e is not a package (no __init__.py): conftest is top-level
    from .conftest import IN_CI, REPO, _engine_problem, dump, log, record_timing, wait_for
except ImportError:
    from conftest import IN_CI, REPO, _engine_problem, dump, log, record_timing, wait_for  # type: ignore[no-redef]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

API_PORT = int(os.environ.get("PRAXIS_SWARM_API_PORT", "24000"))
IMAGE = os.environ.get("PRAXIS_SWARM_IMAGE", "praxis-agent:latest")
NAMED = ("worker-filesystem", "worker-analytics")
STEP_TIMEOUT = 180.0


def sh(*cmd: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, check=False)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


class Swarm:
    def __init__(self, stack: str, keys: Path) -> None:
        import httpx

        self.stack = stack
        self.keys = keys
        self.api = f"http://127.0.0.1:{API_PORT}"
        self.http = httpx.Client(base_url=self.api, timeout=20.0)
        self.token = ""
        self.created_swarm = False

    def make(self, target: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        t0 = time.monotonic()
        r = sh("make", "--no-print-directory", "-C", str(REPO), target, f"STACK={self.stack}",
               f"IMAGE={IMAGE}", f"PRAXIS_API_PORT={API_PORT}", *args, check=check,
               env={"PRAXIS_DEPLOY_KEYS": str(self.keys)})
        record_timing(f"swarm: make {target} {' '.join(args)}".rstrip(), time.monotonic() - t0)
        return r

    def peers(self) -> dict[str, dict[str, Any]]:
        r = self.http.get("/peers")
        r.raise_for_status()
        return {p["name"]: p for p in r.json() if p.get("card")}

    def health(self) -> dict[str, Any]:
        r = self.http.get("/health")
        assert r.status_code == 200, r.text
        return r.json()

    def service(self, name: str) -> str:
        return f"{self.stack}_{name}"

    def containers(self, service: str | None = None) -> list[str]:
        label = f"com.docker.swarm.service.name={self.service(service)}" if service else \
            f"com.docker.stack.namespace={self.stack}"
        return sh("docker", "ps", "-q", "--filter", f"label={label}").stdout.split()

    def expected_ids(self, names: list[str]) -> dict[str, str]:
        """The PeerIDs the identity secrets derive for these names (what Swarm must keep)."""
        import sys

        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from agent.keys import derive_seed, load_identity_secret, peer_id_from_seed

        wsecret = load_identity_secret(self.keys / "worker.secret")
        return {n: peer_id_from_seed(derive_seed(wsecret, n)) for n in names}

    def wait_workers(self, names: set[str], timeout: float = STEP_TIMEOUT) -> dict[str, dict[str, Any]]:
        def probe() -> dict[str, dict[str, Any]]:
            peers = self.peers()
            missing = sorted(names - set(peers))
            extra = sorted(set(peers) - names)
            if missing or extra:
                raise RuntimeError(f"missing {missing}, unexpected {extra}")
            return peers

        return wait_for(probe, f"/peers to list exactly {sorted(names)}", timeout)

    def logs(self) -> str:
        out = []
        for svc in ("orchestrator", "worker", *NAMED):
            r = sh("docker", "service", "logs", "--tail", "40", self.service(svc), check=False)
            out.append(f"----- {svc}\n{r.stdout[-4000:]}{r.stderr[-2000:]}")
        return "\n".join(out)


def _stack_leftovers(stack: str) -> dict[str, list[str]]:
    label = f"label=com.docker.stack.namespace={stack}"
    found = {}
    for kind, cmd in (
        ("services", ["docker", "service", "ls", "-q", "--filter", label]),
        ("containers", ["docker", "ps", "-aq", "--filter", label]),
        ("networks", ["docker", "network", "ls", "-q", "--filter", label]),
        ("secrets", ["docker", "secret", "ls", "-q", "--filter", label]),
        ("configs", ["docker", "config", "ls", "-q", "--filter", label]),
        ("volumes", ["docker", "volume", "ls", "-q", "--filter", label]),
    ):
        r = sh(*cmd, check=False)
        if r.returncode == 0 and r.stdout.split():
            found[kind] = r.stdout.split()
    return found


def _swarm_state() -> str:
    return sh("docker", "info", "-f", "{{.Swarm.LocalNodeState}}").stdout.strip()


@pytest.fixture(scope="module")
def swarm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    problem = _engine_problem()
    if problem:
        (pytest.fail if IN_CI else pytest.skip)(problem)
    if sh("docker", "stack", "--help", check=False).returncode != 0:
        (pytest.fail if IN_CI else pytest.skip)("this docker CLI has no `docker stack`")
    s = Swarm(f"praxis-e2e-{secrets.token_hex(3)}", tmp_path_factory.mktemp("swarm-keys"))
    log(f"swarm stack {s.stack}, image {IMAGE}, api {s.api}, swarm state before: {_swarm_state()}")

    def teardown() -> None:
        if request.session.testsfailed and s.containers():
            print("\n[e2e] swarm service logs after a failure:\n" + s.logs(), flush=True)
        s.http.close()
        if _stack_leftovers(s.stack) or (s.created_swarm and _swarm_state() == "active"):
            s.make("swarm-down", check=False)

    request.addfinalizer(teardown)
    return s


def test_swarm_up_health_from_host(swarm: Swarm) -> None:
    assert not _stack_leftovers(swarm.stack)
    was = _swarm_state()
    r = swarm.make("swarm-up")
    if was == "inactive":
        assert "initialised a single-node swarm" in r.stderr, r.stderr[-2000:]
    else:
        assert "using the" in r.stderr, r.stderr[-2000:]
    # swarm-up records that it created the swarm in a node label (swarm.sh).
    label = sh("docker", "node", "inspect", "self", "-f",
               '{{index .Spec.Labels "praxis.swarm-created-by"}}').stdout.strip()
    swarm.created_swarm = label == "swarm-up"
    assert swarm.created_swarm or was == "active"
    swarm.token = (swarm.keys / "api.token").read_text().strip()
    body = swarm.health()
    assert body["status"] == "ok" and body["role"] == "orchestrator", dump(body)
    assert body["peer_id"] == (swarm.keys / "orchestrator.peer.id").read_text().strip()
    # The API asks for the token: host-mode ports listen on every interface.
    r = swarm.http.post("/tools/text_stats/invoke", json={"arguments": {"text": "x"}})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", r.text


def test_swarm_all_workers_in_peers(swarm: Swarm) -> None:
    t0 = time.monotonic()
    expected = swarm.expected_ids(["worker-1", "worker-2", *NAMED])
    peers = swarm.wait_workers(set(expected))
    record_timing("swarm: every worker in /peers", time.monotonic() - t0)
    assert {n: p["peer_id"] for n, p in peers.items()} == expected


def test_swarm_scale_to_6_distinct_peer_ids(swarm: Swarm) -> None:
    swarm.make("swarm-scale", "N=6")
    slots = [f"worker-{i}" for i in range(1, 7)]
    expected = swarm.expected_ids([*slots, *NAMED])
    peers = swarm.wait_workers(set(expected))
    ids = [peers[n]["peer_id"] for n in slots]
    assert len(set(ids)) == 6, ids
    assert {n: p["peer_id"] for n, p in peers.items()} == expected


def test_swarm_rolling_update_under_tool_calls(swarm: Swarm) -> None:
    import httpx

    before = {n: p["peer_id"] for n, p in swarm.peers().items()}
    calls: list[tuple[float, float, str, str]] = []  # start, end, kind, detail
    stop = threading.Event()

    def caller() -> None:
        with httpx.Client(base_url=swarm.api, timeout=60.0) as http:
            i = 0
            while not stop.is_set():
                i += 1
                t = time.monotonic()
                try:
                    r = http.post("/tools/text_stats/invoke", json={"arguments": {"text": f"call {i} a b a"}},
                                  headers={"Authorization": f"Bearer {swarm.token}"})
                    body = r.json()
                    if r.status_code == 200 and body.get("result", {}).get("words") == 5:
                        kind, detail = "ok", ""
                    elif r.status_code >= 400 and set(body.get("error", {})) >= {"code", "message"}:
                        kind, detail = "json-error", f"{r.status_code} {body['error']['code']}"
                    else:
                        kind, detail = "bad", f"{r.status_code} {r.text[:200]}"
                except Exception as exc:  # noqa: BLE001 - every other ending is a finding
                    kind, detail = "bad", f"{type(exc).__name__}: {exc}"
                calls.append((t, time.monotonic(), kind, detail))
                time.sleep(0.05)

    threads = [threading.Thread(target=caller, daemon=True) for _ in range(2)]
    for th in threads:
        th.start()
    time.sleep(2)
    t0 = time.monotonic()
    sh("docker", "service", "update", "--force", "--detach=false", swarm.service("worker"))
    update_s = time.monotonic() - t0
    record_timing("swarm: docker service update --force worker (6 tasks, stop-first)", update_s)
    t1 = time.monotonic()
    after = swarm.wait_workers(set(before))
    record_timing("swarm: every worker back in /peers after the update", time.monotonic() - t1)
    time.sleep(2)
    stop.set()
    for th in threads:
        th.join(timeout=90)

    oks = sorted(end for _, end, kind, _ in calls if kind == "ok")
    gaps = [b - a for a, b in zip(oks, oks[1:])]
    failed = [d for _, _, k, d in calls if k != "ok"]
    bad = [d for _, _, k, d in calls if k == "bad"]
    log(f"rolling update: {len(calls)} calls, {len(failed)} failed (JSON errors: "
        f"{sorted(set(failed))[:5]}), longest gap between answered calls {max(gaps, default=0):.2f}s, "
        f"longest call {max((e - s for s, e, _, _ in calls), default=0):.2f}s")
    if bad or not oks:
        # Why the orchestrator stopped answering: its task history and the
        # last words of every task (docker service logs covers dead tasks too).
        for svc in ("orchestrator", "worker"):
            ps = sh("docker", "service", "ps", "--no-trunc", "--format",
                    "{{.Name}} {{.CurrentState}} {{.Error}}", swarm.service(svc), check=False)
            logs = sh("docker", "service", "logs", "--tail", "80", swarm.service(svc), check=False)
            print(f"\n[e2e] {svc} tasks:\n{ps.stdout}\n[e2e] {svc} logs (warnings and errors):\n"
                  + "\n".join(ln for ln in (logs.stdout + logs.stderr).splitlines()
                               if any(w in ln for w in ("WARNING", "ERROR", "Exiting", "stopped"))),
                  flush=True)
    assert calls and oks, "no tool call was answered"
    assert not bad, f"calls that ended without a result or a JSON error: {bad[:5]}"
    assert {n: p["peer_id"] for n, p in after.items()} == before


def test_swarm_orchestrator_task_killed_is_rescheduled(swarm: Swarm) -> None:
    before = {n: p["peer_id"] for n, p in swarm.peers().items()}
    orch_id = swarm.health()["peer_id"]
    (old,) = swarm.containers("orchestrator")
    t0 = time.monotonic()
    sh("docker", "kill", old)

    def new_task_healthy() -> bool:
        running = swarm.containers("orchestrator")
        return bool(running) and old not in running and swarm.health()["status"] == "ok"

    wait_for(new_task_healthy, "Swarm to start a new, healthy orchestrator task", STEP_TIMEOUT)
    record_timing("swarm: orchestrator killed -> new task healthy", time.monotonic() - t0)
    after = swarm.wait_workers(set(before))
    record_timing("swarm: orchestrator killed -> every worker back", time.monotonic() - t0)
    assert swarm.health()["peer_id"] == orch_id
    assert {n: p["peer_id"] for n, p in after.items()} == before


def _others_on_user_networks(stack: str) -> list[str]:
    out = []
    for cid in sh("docker", "ps", "-q").stdout.split():
        info = json.loads(sh("docker", "inspect", cid).stdout)[0]
        if (info["Config"].get("Labels") or {}).get("com.docker.stack.namespace"):
            continue
        nets = set((info["NetworkSettings"].get("Networks") or {}))
        if nets - {"bridge", "host", "none"}:
            out.append(info["Name"].lstrip("/"))
    return out


def test_swarm_down_leaves_nothing(swarm: Swarm) -> None:
    others = _others_on_user_networks(swarm.stack)
    r = swarm.make("swarm-down")
    assert not _stack_leftovers(swarm.stack), dump(_stack_leftovers(swarm.stack))
    if not swarm.created_swarm:
        assert _swarm_state() == "active", "swarm-down left a swarm it did not create"
        assert "keeping the swarm: swarm-up did not create it" in r.stderr, r.stderr
    elif _swarm_state() == "active":
        # Only allowed when leaving would detach other projects' containers.
        assert others, f"swarm kept without a reason:\n{r.stderr}"
        assert "moby/moby#42877" in r.stderr, r.stderr
        log(f"swarm kept: containers of other projects on user-defined networks: {others}")
    else:
        nets = sh("docker", "network", "ls", "--format", "{{.Name}}").stdout.split()
        assert "docker_gwbridge" not in nets and "ingress" not in nets, nets

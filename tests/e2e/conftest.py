"""End-to-end fixtures: the real cluster from docker-compose.yml, in Docker.

How compose is driven
---------------------
testcontainers' ``DockerCompose`` (4.x) always runs ``<docker_command_path>
compose ...`` (``docker_command_path`` only replaces the binary, the
``compose`` sub-command is hard-wired), starts with ``up --wait`` and lists
containers with ``ps --format json``: all three are compose v2 only. Compose
v1 (``docker-compose`` 1.29, the only compose on the Debian machines this
project runs on) has neither the sub-command form, nor ``--wait``, nor
``ps --format``. So ``PraxisCompose`` below subclasses it and replaces just
those v2-only parts:

* the command prefix is the detected compose command (``docker compose`` when
  ``docker compose version`` works, else ``docker-compose``; ``$COMPOSE``
  overrides) plus ``-p <unique project>`` and an explicit environment;
* ``start()`` runs ``up -d`` and then waits for every container's Docker
  health status itself (the same code path for v1 and v2);
* containers are looked up with the Docker SDK by the compose labels that v1
  and v2 both set, instead of ``ps --format json``.

What it inherits from testcontainers unchanged, for both versions: the
context-manager protocol, ``stop()`` (``down --volumes``), ``get_logs()``,
``exec_in_container()`` and command error reporting. The Docker SDK client
comes from testcontainers' ``DockerClient``.

Skip / fail policy
------------------
No Docker engine reachable: every e2e test is skipped with that reason.
With an engine and ``CI=true`` nothing is ever skipped: a missing compose
command, a failed image build or a cluster that does not come up fails.

Ryuk (testcontainers' reaper container) is disabled: it would have to be
pulled from a registry, which this machine does not have. Cleanup is the
fixture's finalizer instead (``down -v`` even when a test or the start-up
fails), and every run uses a fresh project name, so runs never share state.
"""

from __future__ import annotations

import os

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

import json  # noqa: E402
import secrets  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from functools import cached_property  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Optional, TypeVar, Union  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
GENERIC_SERVICE = "worker"
NAMED_WORKERS = ("worker-filesystem", "worker-analytics")
AGENT_IMAGE = os.environ.get("IMAGE") or "praxis-agent:latest"

T = TypeVar("T")

# --- timing report -------------------------------------------------------------

_TIMINGS: list[tuple[str, float, str]] = []


def log(msg: str) -> None:
    print(f"[e2e] {msg}", flush=True)


def record_timing(name: str, seconds: float, outcome: str = "") -> None:
    _TIMINGS.append((name, seconds, outcome))
    log(f"{name}: {seconds:.1f}s {outcome}".rstrip())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # noqa: ANN001
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and item.path.parent == Path(__file__).parent:
        record_timing(item.name, rep.duration, rep.outcome)


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ANN001
    if not _TIMINGS:
        return
    terminalreporter.section("e2e scenario times")
    for name, secs, outcome in _TIMINGS:
        terminalreporter.write_line(f"{secs:7.1f}s  {name} {outcome}".rstrip())
    terminalreporter.write_line(f"{sum(t for _, t, _ in _TIMINGS):7.1f}s  total")


# Scenarios that bring up a compose project of their own run first, before the
# shared session cluster exists: one cluster at a time on the machine (the
# idle session cluster would otherwise slow their start-up), and it does not
# change what any scenario sees. Otherwise file order is kept.
OWN_CLUSTER_FILES = ("test_networks.py",)


def pytest_collection_modifyitems(session, config, items):  # noqa: ANN001
    here = Path(__file__).parent
    e2e = [i for i, item in enumerate(items) if item.path.parent == here]
    if not e2e:
        return
    first = [items[i] for i in e2e if items[i].path.name in OWN_CLUSTER_FILES]
    rest = [items[i] for i in e2e if items[i].path.name not in OWN_CLUSTER_FILES]
    for i, item in zip(e2e, first + rest):
        items[i] = item


# --- polling -------------------------------------------------------------------


def wait_for(probe: Callable[[], T], what: str, timeout: float = 90.0, interval: float = 1.0) -> T:
    """Call ``probe`` until it returns a truthy value; return that value.

    Exceptions from ``probe`` count as "not yet". On timeout an
    AssertionError names ``what`` and the last value or exception seen.
    Only the deadline is asserted, never how fast something happened.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - polling: any failure means "not yet"
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


# --- environment detection -----------------------------------------------------


def _engine_problem() -> Optional[str]:
    """None when a Docker engine answers, else why not."""
    try:
        import docker  # the Docker SDK, a dependency of testcontainers
    except ImportError as exc:
        return f"Docker SDK not installed ({exc})"
    try:
        client = docker.from_env(timeout=10)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        return f"no Docker engine reachable ({type(exc).__name__}: {exc})"
    return None


def detect_compose() -> Optional[list[str]]:
    """The compose command: $COMPOSE, else `docker compose` (v2), else `docker-compose` (v1)."""
    override = os.environ.get("COMPOSE", "").strip()
    if override:
        return shlex.split(override)
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(reason: str) -> None:
    """Skip outside CI; in CI with an engine present, fail instead."""
    if IN_CI:
        pytest.fail(f"e2e cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


# --- compose driver ------------------------------------------------------------

try:
    from testcontainers.compose import DockerCompose
except ImportError:  # pragma: no cover - reported by the fixture
    DockerCompose = None  # type: ignore[assignment,misc]

if DockerCompose is not None:

    @dataclass
    class PraxisCompose(DockerCompose):  # type: ignore[misc,valid-type]
        """testcontainers' DockerCompose made to drive compose v1 and v2 alike (see module doc)."""

        compose_cmd: list[str] = field(default_factory=lambda: ["docker", "compose"])
        project_name: str = "praxis-e2e"
        env: dict[str, str] = field(default_factory=dict)
        health_timeout: float = 180.0

        @cached_property
        def compose_command_property(self) -> list[str]:
            cmd = [*self.compose_cmd, "-p", self.project_name]
            for name in self.compose_file_name or []:
                cmd += ["-f", name]
            return cmd

        def _run_command(
            self, cmd: Union[str, list[str]], context: Optional[str] = None
        ) -> subprocess.CompletedProcess[bytes]:
            # Same as testcontainers', plus the explicit environment (API port,
            # token) for variable interpolation in docker-compose.yml.
            try:
                return subprocess.run(
                    cmd,
                    capture_output=True,
                    check=True,
                    cwd=context or str(self.context),
                    env={**os.environ, **self.env},
                )
            except subprocess.CalledProcessError as exc:
                raise RuntimeError(
                    f"{shlex.join(exc.cmd)} failed ({exc.returncode}):\n"
                    f"{exc.stdout.decode(errors='replace')[-3000:]}\n{exc.stderr.decode(errors='replace')[-3000:]}"
                ) from None

        def compose(self, *args: str) -> str:
            return self._run_command([*self.compose_command_property, *args]).stdout.decode(errors="replace")

        def start(self) -> None:
            self.compose("up", "-d")
            self.wait_healthy()

        # -- Docker SDK helpers (no `ps --format json` in v1) --

        @cached_property
        def docker(self) -> Any:
            from testcontainers.core.docker_client import DockerClient

            return DockerClient().client

        def project_containers(self, service: Optional[str] = None, include_all: bool = False) -> list[Any]:
            labels = [f"com.docker.compose.project={self.project_name}"]
            if service:
                labels.append(f"com.docker.compose.service={service}")
            found = self.docker.containers.list(all=include_all, filters={"label": labels})
            return sorted(found, key=lambda c: c.name)

        def wait_healthy(self, timeout: Optional[float] = None) -> None:
            def all_healthy() -> bool:
                pending = []
                containers = self.project_containers(include_all=True)
                for c in containers:
                    c.reload()
                    state = c.attrs["State"]
                    health = (state.get("Health") or {}).get("Status", "none")
                    if not (state["Status"] == "running" and health in ("healthy", "none")):
                        pending.append(f"{c.name}:{state['Status']}/{health}")
                if pending:
                    raise RuntimeError("not healthy: " + ", ".join(pending))
                return bool(containers)

            wait_for(all_healthy, "every container healthy", timeout or self.health_timeout)


# --- the cluster fixture -----------------------------------------------------------


@dataclass
class Cluster:
    compose: Any  # PraxisCompose
    project: str
    api: str
    token: str
    network: str
    http: Any  # httpx.Client

    # -- containers --
    def containers(self, service: Optional[str] = None, include_all: bool = False) -> list[Any]:
        return self.compose.project_containers(service, include_all)

    def container(self, service: str) -> Any:
        found = self.containers(service)
        assert len(found) == 1, f"expected one running {service} container, found {[c.name for c in found]}"
        return found[0]

    def generic_workers(self) -> list[Any]:
        return self.containers(GENERIC_SERVICE)

    @staticmethod
    def agent_name(container: Any) -> str:
        """The name a container's agent announces: worker.yaml says worker-${HOSTNAME}."""
        if container.labels.get("com.docker.compose.service") == GENERIC_SERVICE:
            return f"worker-{container.attrs['Config']['Hostname']}"
        return container.labels["com.docker.compose.service"]

    def exec(self, container: Any, *cmd: str) -> str:
        code, out = container.exec_run(list(cmd))
        text = out.decode(errors="replace")
        assert code == 0, f"{shlex.join(cmd)} in {container.name} exited {code}: {text}"
        return text

    # -- API --
    def get(self, path: str) -> Any:
        return self.http.get(path)

    def health(self) -> dict[str, Any]:
        r = self.get("/health")
        r.raise_for_status()
        return r.json()

    def peers(self) -> list[dict[str, Any]]:
        r = self.get("/peers")
        r.raise_for_status()
        return r.json()

    def peers_by_name(self) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.peers()}

    def invoke(self, tool: str, **arguments: Any) -> Any:
        return self.http.post(
            f"/tools/{tool}/invoke",
            json={"arguments": arguments},
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def wait_peers(self, present: set[str] = frozenset(), absent: set[str] = frozenset(),
                   timeout: float = 90.0) -> dict[str, dict[str, Any]]:
        """Wait until /peers lists every name in ``present`` (with a card) and none in ``absent``."""
        what = f"/peers to list {sorted(present)}" + (f" and not {sorted(absent)}" if absent else "")

        def probe() -> Optional[dict[str, dict[str, Any]]]:
            peers = self.peers_by_name()
            missing = sorted(n for n in present if not (n in peers and peers[n].get("card")))
            still = sorted(n for n in absent if n in peers)
            if missing or still:
                raise RuntimeError(f"missing {missing}, still present {still}, listed {sorted(peers)}")
            return peers or {"": {}}

        return wait_for(probe, what, timeout)

    def running_worker_names(self) -> set[str]:
        return {self.agent_name(c) for c in self.containers() if self.agent_name(c) != "orchestrator"}

    def logs(self, tail: int = 60) -> str:
        chunks = []
        for c in self.containers(include_all=True):
            try:
                text = c.logs(tail=tail).decode(errors="replace")
            except Exception as exc:  # noqa: BLE001
                text = f"(no logs: {exc})"
            chunks.append(f"----- {c.name} ({c.status})\n{text}")
        return "\n".join(chunks)


@pytest.fixture(scope="session")
def agent_image() -> str:
    """The agent image ($IMAGE, default praxis-agent:latest), built from this
    checkout once per session (both compose files use it).

    images/build-image.sh is idempotent: base image and wheel cache only when
    missing/stale, and the docker build is cached (seconds when nothing
    changed). PRAXIS_E2E_BUILD=0 uses the image as it is.
    """
    problem = _engine_problem()
    if problem:
        # No engine: a local run skips; CI must have one, so it fails there.
        (pytest.fail if IN_CI else pytest.skip)(problem)
    if os.environ.get("PRAXIS_E2E_BUILD", "1") != "0":
        t0 = time.monotonic()
        build = subprocess.run([str(REPO / "images" / "build-image.sh")], cwd=REPO, check=False,
                               env={**os.environ, "IMAGE": AGENT_IMAGE})
        if build.returncode != 0:
            pytest.fail(f"images/build-image.sh failed ({build.returncode})", pytrace=False)
        record_timing(f"image build ({AGENT_IMAGE})", time.monotonic() - t0)
    return AGENT_IMAGE


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, agent_image: str) -> Any:
    problem = _engine_problem()
    if problem:
        # No engine: a local run skips; CI must have one, so it fails there.
        (pytest.fail if IN_CI else pytest.skip)(problem)
    compose_cmd = detect_compose()
    if compose_cmd is None:
        _unavailable("neither `docker compose` nor `docker-compose` is installed")
    if DockerCompose is None:
        _unavailable("testcontainers is not installed (pip install -e '.[test]')")
    import httpx

    project = f"praxis-e2e-{secrets.token_hex(4)}"
    port = _free_port()
    token = secrets.token_hex(16)
    compose = PraxisCompose(
        context=str(REPO),
        compose_file_name=[str(COMPOSE_FILE)],
        compose_cmd=compose_cmd,
        project_name=project,
        # Workers' healthcheck every 2 s (not the 60 s default for big clusters):
        # the fixture waits on Docker's health status of every container.
        env={"PRAXIS_API_PORT": str(port), "PRAXIS_API_TOKEN": token, "PRAXIS_API_BIND": "127.0.0.1",
             "PRAXIS_WORKER_HEALTH_INTERVAL": "2s", "IMAGE": agent_image},
    )
    log(f"compose: {shlex.join(compose_cmd)}  project: {project}  api: http://127.0.0.1:{port}")
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=15.0)
    c = Cluster(compose=compose, project=project, api=f"http://127.0.0.1:{port}", token=token,
                network=f"{project}_praxis", http=http)

    def teardown() -> None:
        t1 = time.monotonic()
        if request.session.testsfailed:
            try:
                print("\n[e2e] container logs after a failure:\n" + c.logs(), flush=True)
            except Exception as exc:  # noqa: BLE001
                log(f"could not collect logs: {exc}")
        http.close()
        try:
            compose.stop(down=True)  # down --volumes
        except Exception as exc:  # noqa: BLE001
            log(f"down failed: {exc}")
        record_timing("cluster down -v", time.monotonic() - t1)

    request.addfinalizer(teardown)  # registered before start: runs even if start fails
    t1 = time.monotonic()
    try:
        compose.start()
    except Exception as exc:
        print("[e2e] cluster did not come up:\n" + c.logs(), flush=True)
        pytest.fail(f"cluster did not come up: {exc}", pytrace=False)
    record_timing("cluster up + healthy", time.monotonic() - t1)
    return c


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)[:2000]

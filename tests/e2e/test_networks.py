"""Two compose networks as two "hosts" (tests/e2e/two-networks.yml).

The orchestrator is on both networks, workers on one or the other. Checked:
far workers join by bootstrap; an mDNS-only worker joins on its own network;
mDNS announcements stay inside their network; p2p.announce_addresses is what
a peer's card carries; and no agent is handed an orchestrator address it
cannot reach (the orchestrator's card, as each worker received it, lists only
addresses on that worker's network, and the connection uses one of them).
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

try:  # tests/e2e is not a package (no __init__.py): conftest is top-level
    from .conftest import (PraxisCompose, _engine_problem, _unavailable, detect_compose, dump, log,
                           record_timing, wait_for)
except ImportError:
    from conftest import (PraxisCompose, _engine_problem, _unavailable,  # type: ignore[no-redef]
                          detect_compose, dump, log, record_timing, wait_for)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

HERE = Path(__file__).resolve().parent
COMPOSE_FILE = HERE / "two-networks.yml"
API_PORT = int(os.environ.get("PRAXIS_NETWORKS_API_PORT", "24001"))
IMAGE = os.environ.get("PRAXIS_NETWORKS_IMAGE", os.environ.get("PRAXIS_SWARM_IMAGE", "praxis-agent:latest"))
WORKERS = {"worker-a": "net_a", "worker-b": "net_b", "worker-b-mdns": "net_b", "worker-nat": "net_b"}
NAT_ADDR = "/ip4/203.0.113.7/tcp/19000"

# Browse the Praxis mDNS service from inside a container for a few seconds:
# {instance name: [addresses]}.
BROWSE = """
import json, time
from zeroconf import IPVersion, ServiceBrowser, Zeroconf
seen = {}
class L:
    def add_service(self, zc, t, name):
        info = zc.get_service_info(t, name, 3000)
        seen[name.split('.')[0]] = sorted(info.parsed_addresses()) if info else []
    update_service = add_service
    def remove_service(self, zc, t, name):
        pass
zc = Zeroconf(ip_version=IPVersion.V4Only)
ServiceBrowser(zc, "_praxis-p2p-mcp._tcp.local.", L())
time.sleep(6)
zc.close()
print(json.dumps(seen))
"""


class Nets:
    def __init__(self, compose: Any, project: str) -> None:
        self.compose = compose
        self.project = project
        import httpx

        self.http = httpx.Client(base_url=f"http://127.0.0.1:{API_PORT}", timeout=15.0)

    def container(self, service: str) -> Any:
        (c,) = self.compose.project_containers(service)
        return c

    def exec(self, service: str, *cmd: str) -> str:
        code, out = self.container(service).exec_run(list(cmd))
        text = out.decode(errors="replace")
        assert code == 0, f"{shlex.join(cmd)} in {service} exited {code}: {text}"
        return text

    def subnet(self, net: str) -> ipaddress.IPv4Network:
        info = self.compose.docker.networks.get(f"{self.project}_{net}").attrs
        return ipaddress.ip_network(info["IPAM"]["Config"][0]["Subnet"])

    def peers_seen_by(self, service: str) -> dict[str, dict[str, Any]]:
        if service == "orchestrator":
            body = self.http.get("/peers").json()
        else:
            body = json.loads(self.exec(service, "curl", "-fsS", "-m", "5", "http://127.0.0.1:8000/peers"))
        return {p["name"]: p for p in body if p.get("card")}

    def peer_id(self, service: str) -> str:
        return json.loads(self.exec(service, "curl", "-fsS", "-m", "5", "http://127.0.0.1:8000/health"))["peer_id"]


def _ips(addrs: list[str]) -> list[ipaddress.IPv4Address]:
    return [ipaddress.ip_address(a.split("/")[2]) for a in addrs if a.startswith("/ip4/")]


@pytest.fixture(scope="module")
def nets(request: pytest.FixtureRequest) -> Any:
    problem = _engine_problem()
    if problem:
        pytest.skip(problem)
    compose_cmd = detect_compose()
    if compose_cmd is None:
        _unavailable("neither `docker compose` nor `docker-compose` is installed")
    if subprocess.run(["docker", "image", "inspect", IMAGE], capture_output=True).returncode != 0:
        t0 = time.monotonic()
        build = subprocess.run([str(HERE.parents[1] / "images" / "build-image.sh")], env={**os.environ, "IMAGE": IMAGE})
        if build.returncode != 0:
            pytest.fail(f"images/build-image.sh failed ({build.returncode})", pytrace=False)
        record_timing(f"two networks: image build ({IMAGE})", time.monotonic() - t0)
    project = f"praxis-deploy-nets-{secrets.token_hex(3)}"
    compose = PraxisCompose(context=str(HERE), compose_file_name=[str(COMPOSE_FILE)], compose_cmd=compose_cmd,
                            project_name=project, env={"PRAXIS_API_PORT": str(API_PORT), "PRAXIS_IMAGE": IMAGE})
    n = Nets(compose, project)

    def teardown() -> None:
        if request.session.testsfailed:
            for svc in ("orchestrator", *WORKERS):
                try:
                    print(f"----- {svc}\n" + n.container(svc).logs(tail=40).decode(errors="replace"), flush=True)
                except Exception as exc:  # noqa: BLE001
                    log(f"no logs for {svc}: {exc}")
        n.http.close()
        compose.stop(down=True)

    request.addfinalizer(teardown)
    t0 = time.monotonic()
    log(f"two networks: project {project}, image {IMAGE}, api 127.0.0.1:{API_PORT}")
    compose.start()
    record_timing("two networks: up + healthy", time.monotonic() - t0)
    return n


def test_far_workers_join_by_bootstrap_and_mdns(nets: Nets) -> None:
    t0 = time.monotonic()

    def all_joined() -> dict[str, dict[str, Any]]:
        peers = nets.peers_seen_by("orchestrator")
        missing = sorted(set(WORKERS) - set(peers))
        if missing:
            raise RuntimeError(f"missing {missing}")
        return peers

    peers = wait_for(all_joined, "every worker of both networks in the orchestrator's /peers", 120)
    record_timing("two networks: every worker joined", time.monotonic() - t0)
    # Each one reached over its own network: the connection's address is there.
    for name, net in WORKERS.items():
        ips = _ips(peers[name]["addrs"])
        assert ips and all(ip in nets.subnet(net) for ip in ips), (name, dump(peers[name]))


def test_announce_addresses_honoured(nets: Nets) -> None:
    card = nets.peers_seen_by("orchestrator")["worker-nat"]["card"]
    assert card["addresses"] == [NAT_ADDR], dump(card)


def test_orchestrator_hands_each_worker_only_reachable_addresses(nets: Nets) -> None:
    orch_id = nets.peer_id("orchestrator")
    for name, net in WORKERS.items():
        subnet = nets.subnet(net)
        seen = wait_for(lambda n=name: nets.peers_seen_by(n).get("orchestrator"),
                        f"{name} to list the orchestrator", 60)
        assert seen["peer_id"] == orch_id
        handed = _ips(seen["card"]["addresses"])
        assert handed, dump(seen)
        unreachable = [str(ip) for ip in handed if ip not in subnet]
        assert not unreachable, f"{name} on {net} ({subnet}) was handed {unreachable}: {dump(seen['card'])}"
        used = _ips(seen["addrs"])
        assert used and all(ip in subnet for ip in used), (name, seen["addrs"])


def test_mdns_stays_inside_its_network(nets: Nets) -> None:
    ids = {svc: nets.peer_id(svc) for svc in ("orchestrator", "worker-a", "worker-b-mdns")}
    seen_a = json.loads(nets.exec("worker-a", "python", "-c", BROWSE))
    seen_b = json.loads(nets.exec("worker-b-mdns", "python", "-c", BROWSE))
    log(f"mDNS seen on net_a: {sorted(seen_a)}; on net_b: {sorted(seen_b)}")
    # Positive control: each side hears the orchestrator and its own neighbour.
    assert ids["orchestrator"] in seen_a and ids["worker-a"] in seen_a, seen_a
    assert ids["orchestrator"] in seen_b and ids["worker-b-mdns"] in seen_b, seen_b
    # Nothing crosses: net_a never hears net_b's worker, and the reverse.
    assert ids["worker-b-mdns"] not in seen_a, seen_a
    assert ids["worker-a"] not in seen_b, seen_b
    # What each side hears about the orchestrator is an address it can dial.
    for seen, net in ((seen_a, "net_a"), (seen_b, "net_b")):
        addrs = [ipaddress.ip_address(a) for a in seen[ids["orchestrator"]]]
        assert addrs and all(a in nets.subnet(net) for a in addrs), (net, seen[ids["orchestrator"]])

"""End-to-end scenarios against the compose cluster (tests/e2e/conftest.py).

The scenarios share one cluster and run in file order; each leaves the
cluster in the state the next one expects (scaling to 5, then killing one
generic worker, ...), the most disruptive one (cutting a worker off the
network) last. Every wait is a poll with a generous deadline: only
"it happened before the deadline" is asserted, never how fast.
"""

from __future__ import annotations

import secrets

import pytest

try:  # tests/e2e is not a package (no __init__.py): conftest is top-level
    from .conftest import NAMED_WORKERS, Cluster, dump, log, wait_for
except ImportError:
    from conftest import NAMED_WORKERS, Cluster, dump, log, wait_for  # type: ignore[no-redef]

# The first test's timeout also covers the session fixture: image build
# (a cold one builds the base image and wheel cache too) and cluster start.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

JOIN_TIMEOUT = 120.0
LEAVE_TIMEOUT = 120.0


def expected_workers(cluster: Cluster) -> set[str]:
    names = cluster.running_worker_names()
    assert set(NAMED_WORKERS) <= names, f"named workers not running: {sorted(names)}"
    return names


def test_orchestrator_health(cluster: Cluster) -> None:
    r = cluster.get("/health")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok", dump(body)
    assert body["name"] == "orchestrator" and body["role"] == "orchestrator", dump(body)
    assert body["peer_id"].startswith(("12D3Koo", "Qm")), dump(body)
    # The public keystore entry the workers resolve the orchestrator with.
    orch = cluster.container("orchestrator")
    published = cluster.exec(orch, "cat", "/keys/orchestrator/peer.id").strip()
    assert published == body["peer_id"]
    assert cluster.exec(orch, "cat", "/keys/orchestrator/role").strip() == "orchestrator"
    # Private seed: 0600 in a 0700 dir, owned by the agent user (uid 10001).
    mode = cluster.exec(orch, "stat", "-c", "%a %u", "/var/lib/praxis/key", "/var/lib/praxis/key/node.key").split()
    assert mode == ["700", "10001", "600", "10001"], mode


def test_peers_lists_every_worker_with_a_card(cluster: Cluster) -> None:
    names = expected_workers(cluster)
    assert len(cluster.generic_workers()) == 2, "deploy.replicas: 2 for the generic worker"
    peers = cluster.wait_peers(present=names, timeout=JOIN_TIMEOUT)
    for name in names:
        p = peers[name]
        assert p["role"] == "worker" and p["card"].get("name") == name, dump(p)
    fs_skills = {s["id"] for s in peers["worker-filesystem"]["card"].get("skills", [])}
    assert {"read_file", "write_file"} <= fs_skills, fs_skills
    generic_ids = {peers[cluster.agent_name(c)]["peer_id"] for c in cluster.generic_workers()}
    assert len(generic_ids) == 2, "each generic replica has its own identity"
    # Generic workers run with PUBLISH_PEER_ID=false and a read-only /keys:
    # only the three named agents have public entries.
    orch = cluster.container("orchestrator")
    entries = set(cluster.exec(orch, "ls", "/keys").split())
    assert entries == {"orchestrator", *NAMED_WORKERS}, entries
    w = cluster.generic_workers()[0]
    code, _ = w.exec_run(["touch", "/keys/x"])
    assert code != 0, "generic workers mount /keys read-only"


def test_analytics_worker_joins_by_mdns(cluster: Cluster) -> None:
    # worker_analytics.yaml has no bootstrap nodes: only mDNS on the compose
    # network can bring it and the orchestrator together.
    peers = cluster.wait_peers(present={"worker-analytics"}, timeout=JOIN_TIMEOUT)
    p = peers["worker-analytics"]
    assert p["role"] == "worker", dump(p)
    skills = {s["id"] for s in p["card"].get("skills", [])}
    assert skills, dump(p)


def test_write_file_through_orchestrator(cluster: Cluster) -> None:
    peers = cluster.wait_peers(present={"worker-filesystem"}, timeout=JOIN_TIMEOUT)
    fs_peer = peers["worker-filesystem"]["peer_id"]
    rel = f"e2e/{secrets.token_hex(4)}/hello.txt"
    content = f"hello from e2e {secrets.token_hex(8)} \u2713\n"

    r = cluster.invoke("write_file", path=rel, content=content)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["peer_id"] == fs_peer, dump(body)
    assert isinstance(body["duration_ms"], (int, float)), dump(body)

    fs = cluster.container("worker-filesystem")
    assert cluster.exec(fs, "cat", f"/data/{rel}") == content
    # The analytics worker shares the data volume.
    assert cluster.exec(cluster.container("worker-analytics"), "cat", f"/data/{rel}") == content

    r = cluster.invoke("read_file", path=rel)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["content"] == content, r.text
    assert r.json()["peer_id"] == fs_peer

    # Without the bearer token the orchestrator refuses the call.
    r = cluster.http.post("/tools/read_file/invoke", json={"arguments": {"path": rel}})
    assert r.status_code == 401, r.text


def test_scale_generic_workers_to_five(cluster: Cluster) -> None:
    cluster.compose.compose("up", "-d", "--scale", "worker=5", "--no-recreate")
    wait_for(lambda: len(cluster.generic_workers()) == 5, "5 generic worker containers", 60)
    cluster.compose.wait_healthy()
    names = {cluster.agent_name(c) for c in cluster.generic_workers()}
    assert len(names) == 5
    peers = cluster.wait_peers(present=names, timeout=JOIN_TIMEOUT)
    ids = {peers[n]["peer_id"] for n in names}
    assert len(ids) == 5, f"5 distinct generic-worker PeerIDs expected: {sorted(ids)}"
    log(f"generic workers: {sorted(names)}")


def test_scaling_down_and_up_leaves_no_pile_of_keys(cluster: Cluster) -> None:
    """Replica seeds live in their containers: the shared keystore holds only
    the named agents' public entries, and no volume is added per replica."""
    def volumes() -> set[str]:
        return {v.name for v in cluster.compose.docker.volumes.list(
            filters={"label": f"com.docker.compose.project={cluster.project}"})}

    before = volumes()
    for n in (2, 4, 3):
        cluster.compose.compose("up", "-d", "--scale", f"worker={n}", "--no-recreate")
        wait_for(lambda: len(cluster.generic_workers()) == n, f"{n} generic worker containers", 60)
    cluster.compose.wait_healthy()
    entries = set(cluster.exec(cluster.container("orchestrator"), "ls", "/keys").split())
    assert entries == {"orchestrator", "worker-filesystem", "worker-analytics"}, entries
    assert volumes() == before
    names = {cluster.agent_name(c) for c in cluster.generic_workers()}
    cluster.wait_peers(present=names, timeout=JOIN_TIMEOUT)


def test_killed_worker_leaves_and_returns_with_same_identity(cluster: Cluster) -> None:
    victim = cluster.generic_workers()[-1]
    name = cluster.agent_name(victim)
    before = cluster.wait_peers(present={name}, timeout=JOIN_TIMEOUT)[name]["peer_id"]
    victim.kill()  # docker kill: SIGKILL, and restart: unless-stopped does not revive it
    cluster.wait_peers(absent={name}, timeout=LEAVE_TIMEOUT)
    victim.reload()
    assert victim.status != "running", "a killed container is not restarted"
    # Stop/start keeps the identity (seed in the container's writable layer).
    victim.start()
    after = cluster.wait_peers(present={name}, timeout=JOIN_TIMEOUT)[name]["peer_id"]
    assert after == before
    # And kill it again: from here on one replica stays down.
    victim.kill()
    cluster.wait_peers(absent={name}, timeout=LEAVE_TIMEOUT)


def test_orchestrator_restart_workers_come_back(cluster: Cluster) -> None:
    names = expected_workers(cluster)
    peer_id = cluster.health()["peer_id"]
    orch = cluster.container("orchestrator")
    orch.restart(timeout=10)
    def healthy() -> dict:
        r = cluster.get("/health")
        return r.json() if r.status_code == 200 else {}

    body = wait_for(healthy, "orchestrator /health 200 after the restart", 120)
    assert body["peer_id"] == peer_id, "the orchestrator keeps its identity (orchestrator-key volume)"
    cluster.wait_peers(present=names, timeout=JOIN_TIMEOUT)
    log(f"back after the restart: {sorted(names)}")


def test_network_disconnect_and_reconnect(cluster: Cluster) -> None:
    victim = cluster.generic_workers()[0]
    name = cluster.agent_name(victim)
    before = cluster.wait_peers(present={name}, timeout=JOIN_TIMEOUT)[name]["peer_id"]
    others = expected_workers(cluster) - {name}
    net = cluster.compose.docker.networks.get(cluster.network)
    # Compose gave the container DNS aliases on the network (its service name
    # among them): a disconnect drops them and a plain connect does not bring
    # them back, so Docker's DNS would no longer list it under "worker"
    # (Prometheus finds the agents that way, test_monitoring.py).
    victim.reload()
    aliases = victim.attrs["NetworkSettings"]["Networks"][cluster.network]["Aliases"]
    assert "worker" in aliases, aliases
    net.disconnect(victim)
    try:
        # It leaves; everybody else stays.
        cluster.wait_peers(present=others, absent={name}, timeout=LEAVE_TIMEOUT)
    finally:
        net.connect(victim, aliases=aliases)
    peers = cluster.wait_peers(present=others | {name}, timeout=JOIN_TIMEOUT)
    assert peers[name]["peer_id"] == before
    # Back as it was: the service name resolves to it again.
    victim.reload()
    ip = victim.attrs["NetworkSettings"]["Networks"][cluster.network]["IPAddress"]
    orch = cluster.container("orchestrator")
    wait_for(lambda: ip in cluster.exec(orch, "getent", "ahostsv4", "worker").split(),
             f"Docker DNS to list {ip} under the service name again", 30)

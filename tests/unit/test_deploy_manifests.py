"""Offline checks of the deployment manifests (deploy/k8s, deploy/swarm).

Kubernetes: the kustomization is rendered (no kubectl here) by the small
renderer below, which knows exactly the kustomize features deploy/k8s uses: resources, namespace, configMapGenerator,
secretGenerator, generatorOptions) and every object is validated with
kubernetes-validate against the newest bundled schema, strictly (unknown
fields fail). Then the properties the deployment relies on are checked.
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from agent.keys import derive_seed, load_identity_secret, peer_id_from_seed  # noqa: E402

K8S = REPO / "deploy" / "k8s"
STACK = REPO / "deploy" / "swarm" / "stack.yml"

kubernetes_validate = pytest.importorskip("kubernetes_validate")  # in the test extras

_spec = importlib.util.spec_from_file_location("gen_keys", REPO / "gen_keys.py")
gen_keys = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_keys)


# --- rendering ------------------------------------------------------------------


def _generated(kind: str, gen: dict[str, Any], base: Path, opts: dict[str, Any]) -> dict[str, Any]:
    assert opts.get("disableNameSuffixHash") is True, "the renderer below does not add name hashes"
    data = {}
    for spec in gen.get("files", []):
        key, _, rel = spec.partition("=")
        raw = (base / rel).read_bytes()
        data[key] = base64.b64encode(raw).decode() if kind == "Secret" else raw.decode()
    assert set(gen) <= {"name", "files"}, f"renderer does not know {set(gen) - {'name', 'files'}}"
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": gen["name"]}, "data": data}
    if kind == "Secret":
        obj["type"] = "Opaque"
    if opts.get("labels"):
        obj["metadata"]["labels"] = dict(opts["labels"])
    return obj


def render_kustomization(base: Path) -> list[dict[str, Any]]:
    kz = yaml.safe_load((base / "kustomization.yaml").read_text())
    known = {"apiVersion", "kind", "namespace", "resources", "generatorOptions",
             "secretGenerator", "configMapGenerator"}
    assert set(kz) <= known, f"renderer does not know {set(kz) - known}"
    objs: list[dict[str, Any]] = []
    for res in kz.get("resources", []):
        objs += [d for d in yaml.safe_load_all((base / res).read_text()) if d]
    opts = kz.get("generatorOptions", {})
    for kind, key in (("Secret", "secretGenerator"), ("ConfigMap", "configMapGenerator")):
        objs += [_generated(kind, g, base, opts) for g in kz.get(key, [])]
    ns = kz.get("namespace")
    for o in objs:
        if ns and o["kind"] != "Namespace":
            o["metadata"]["namespace"] = ns
    return objs


@pytest.fixture(scope="module")
def k8s_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, d, ignore=shutil.ignore_patterns("*.secret", "*.peer.id", "*.role"))
    assert gen_keys.main(["--deploy-dir", str(d / "secrets")]) == 0
    return d


@pytest.fixture(scope="module")
def rendered(k8s_dir: Path) -> list[dict[str, Any]]:
    return render_kustomization(k8s_dir)


def by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


# --- schema validation -----------------------------------------------------------


def test_every_object_validates_against_the_newest_schema(rendered):
    version = kubernetes_validate.latest_version()
    assert tuple(int(x) for x in version.split(".")[:2]) >= (1, 30), version
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in rendered)
    assert len(kinds) >= 11, kinds
    for obj in rendered:
        kubernetes_validate.validate(copy.deepcopy(obj), version, strict=True)


def test_validation_catches_a_broken_manifest(rendered):
    """The check above can fail: a misspelt field is rejected."""
    sts = copy.deepcopy(by_kind(rendered, "StatefulSet")["worker"])
    sts["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, kubernetes_validate.latest_version(), strict=True)


def _pod(sts: dict[str, Any]) -> dict[str, Any]:
    return sts["spec"]["template"]["spec"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_statefulsets_hardened_probed_and_sized(rendered):
    sets = by_kind(rendered, "StatefulSet")
    assert set(sets) == {"orchestrator", "worker"}
    for name, sts in sets.items():
        pod = _pod(sts)
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, name
        assert sc["capabilities"]["drop"] == ["ALL"]
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            assert c[probe]["httpGet"]["path"] == "/health", (name, probe)
        assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
        assert c["imagePullPolicy"] != "Always", "no registry: the image is loaded into the nodes"
        # Everything the agent writes is an emptyDir: the root stays read-only.
        writable = {m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")}
        assert writable <= {"/tmp", "/data"}, writable


def test_orchestrator_services_and_identity(rendered):
    services = by_kind(rendered, "Service")
    assert services["orchestrator"]["spec"]["clusterIP"] == "None"
    assert services["orchestrator"]["spec"]["ports"][0]["port"] == 9000
    assert services["orchestrator-api"]["spec"]["ports"][0]["port"] == 8000
    orch = _pod(by_kind(rendered, "StatefulSet")["orchestrator"])
    env = _env(orch["containers"][0])
    assert env["PRAXIS_AGENT_NAME"] == "orchestrator"
    secrets = [v["secret"]["secretName"] for v in orch["volumes"] if "secret" in v]
    assert secrets == ["praxis-orchestrator-identity"]


def test_configmap_peer_id_is_the_orchestrators_derived_id(rendered, k8s_dir):
    cm = by_kind(rendered, "ConfigMap")["praxis-orchestrator-id"]
    secret = load_identity_secret(k8s_dir / "secrets" / "orchestrator.secret")
    assert cm["data"]["peer.id"].strip() == peer_id_from_seed(derive_seed(secret, "orchestrator"))
    assert cm["data"]["role"].strip() == "orchestrator"
    sec = by_kind(rendered, "Secret")["praxis-orchestrator-identity"]
    assert base64.b64decode(sec["data"]["identity.secret"]).strip() == secret


def test_workers_derive_identity_per_pod_and_never_see_the_orchestrator_secret(rendered):
    pod = _pod(by_kind(rendered, "StatefulSet")["worker"])
    (c,) = pod["containers"]
    env = _env(c)
    assert env["PRAXIS_AGENT_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["PRAXIS__P2P__IDENTITY_SECRET_FILE"].startswith("/var/run/praxis/identity/")
    assert env["ORCHESTRATOR_HOST"] == "orchestrator"
    vols = {v["name"]: v for v in pod["volumes"]}
    secrets = {v["secret"]["secretName"] for v in vols.values() if "secret" in v}
    assert secrets == {"praxis-worker-identity"}
    # 0440 + fsGroup: the only mode the agent user can read a Secret file with.
    assert vols["identity"]["secret"]["defaultMode"] == 0o440
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert vols[mounts["/keys/orchestrator"]]["configMap"]["name"] == "praxis-orchestrator-id"


def test_disruption_budget_and_network_policy(rendered):
    pdbs = by_kind(rendered, "PodDisruptionBudget")
    assert pdbs["worker"]["spec"]["maxUnavailable"] == 1
    (np,) = by_kind(rendered, "NetworkPolicy").values()
    ports = sorted(p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"])
    assert ports == [8000, 9000]
    assert set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"}


# --- Swarm stack file ------------------------------------------------------------


def test_swarm_stack_dnsrr_host_ports_and_secret_scoping():
    stack = yaml.safe_load(STACK.read_text())
    services = stack["services"]
    assert set(services) == {"orchestrator", "worker-filesystem", "worker-analytics", "worker"}
    for name, svc in services.items():
        assert svc["deploy"]["endpoint_mode"] == "dnsrr", name  # no IPVS
        assert svc["deploy"]["update_config"]["order"] == "stop-first", name  # one PeerID per slot
        assert svc["environment"]["PRAXIS__P2P__PEER_DISCOVERY"] == "false", name
        holders = {s["source"] for s in svc.get("secrets", [])}
        assert holders == ({"orchestrator_secret"} if name == "orchestrator" else {"worker_secret"}), name
    (port,) = services["orchestrator"]["ports"]
    assert port["mode"] == "host" and port["target"] == 8000
    assert services["worker"]["environment"]["PRAXIS_AGENT_NAME"] == "worker-{{.Task.Slot}}"
    for svc in ("worker", "worker-filesystem", "worker-analytics"):
        targets = {c["target"] for c in services[svc]["configs"]}
        assert targets == {"/keys/orchestrator/peer.id", "/keys/orchestrator/role"}

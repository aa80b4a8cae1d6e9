"""Run by test_import_diet.py in a fresh interpreter: start an orchestrator and
a worker in this process (real sockets on 127.0.0.1), call a worker's tool
through the orchestrator, then report which kept-off modules are loaded.

Prints one JSON object on stdout."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agent.config import load_config  # noqa: E402  (agent/__init__ installs the diet first)
from agent.keys import load_or_create_seed, peer_id_from_seed  # noqa: E402
from agent.p2p import _workarounds  # noqa: E402
from agent.runtime import Agent  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(config: str, name: str, root: Path, sets: list[str]) -> tuple[Agent, int]:
    api = free_port()
    cfg = load_config(REPO / "configs" / config, environ={}, overrides=[
        f"agent.name={name}", "p2p.host=127.0.0.1", f"p2p.keystore_path={root / name}",
        f"p2p.keystore_root={root}", "p2p.peer_discovery=false", "api.host=127.0.0.1", f"api.port={api}",
        *sets,
    ])
    agent = Agent(cfg)
    ready = threading.Event()
    threading.Thread(target=lambda: asyncio.run(agent.serve(False, ready)), daemon=True).start()
    if not ready.wait(30):
        raise SystemExit(f"{name} did not start")
    return agent, api


def get(port: int, path: str, body: dict | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="praxis-diet-"))
    orch_port = free_port()
    orch_id = peer_id_from_seed(load_or_create_seed(root / "orchestrator"))
    orch, orch_api = start("orchestrator.yaml", "orchestrator", root, [f"p2p.port={orch_port}"])
    worker, _ = start("worker.yaml", "worker-1", root, [
        f"p2p.port={free_port()}", f"p2p.bootstrap_nodes=[/ip4/127.0.0.1/tcp/{orch_port}/p2p/{orch_id}]",
        f"tools.analytics.root={root}",
    ])
    deadline = time.monotonic() + 30
    peers: list = []
    while time.monotonic() < deadline:
        peers = get(orch_api, "/peers")  # type: ignore[assignment]
        if any(p.get("name") == "worker-1" and p.get("card") for p in peers):
            break
        time.sleep(0.1)
    # text_stats runs only on the worker: this crosses Noise + yamux both ways.
    answer = get(orch_api, "/tools/text_stats/invoke", {"arguments": {"text": "one two three"}})
    health = get(orch_api, "/health")
    loaded = {}
    for name, module in sorted(sys.modules.items()):
        if _workarounds.diet_covers(name) and not isinstance(module, _workarounds._StandInModule):
            loaded[name] = getattr(module, "__file__", None)
    from libp2p.crypto.keys import KeyType
    from libp2p.crypto.serialization import key_type_to_public_key_deserializer as deserializers

    print(json.dumps({"key_types": sorted(KeyType(k).name for k in deserializers), "diet": _workarounds.diet_installed(), "peers": [p.get("name") for p in peers],
                      "answer": answer, "health": health.get("status"),  # type: ignore[union-attr]
                      "real_kept_off_modules": loaded,
                      "modules": sorted(sys.modules)}))
    sys.stdout.flush()
    for a in (worker, orch):
        a.request_stop()
    time.sleep(0.5)


if __name__ == "__main__":
    main()

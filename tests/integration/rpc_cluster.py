"""An orchestrator and one worker on 127.0.0.1 for the SDK tests.

The orchestrator keeps only ``echo`` so every other tool (``sleep``,
``describe``) is routed to the worker over P2P, which is what the MCP and A2A
endpoints must be tested through.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import httpx

from agent.keys import load_or_create_seed, peer_id_from_seed, publish_public_entry

from .conftest import AgentProc, agent_sets, free_port, wait_for


WORKER_TIMEOUT = 3


def start(root: Path) -> dict[str, Any]:
    (op2p, oapi), (wp2p, wapi) = (free_port(), free_port()), (free_port(), free_port())
    orch_seed = load_or_create_seed(root / "orchestrator")
    publish_public_entry(root, "localhost", peer_id_from_seed(orch_seed), "orchestrator")
    boot = f"p2p.bootstrap_nodes=[/dns4/localhost/tcp/{op2p}]"
    procs = {}
    try:
        procs["orchestrator"] = AgentProc(
            "orchestrator.yaml", agent_sets("orchestrator", root, op2p, oapi) + ["agent.tools=[echo]"],
            root / "orchestrator.log",
        )
        # The worker gives up on a call after 3 s (the orchestrator waits 30 s):
        # a sleep of 5 s is then a tool error *at the peer*.
        procs["worker"] = AgentProc(
            "worker.yaml", agent_sets("worker-1", root, wp2p, wapi) + [boot, f"tools.call_timeout={WORKER_TIMEOUT}"],
            root / "worker.log",
        )
        for p in procs.values():
            p.wait_healthy()
        orch = procs["orchestrator"]

        def worker_tools_visible() -> bool:
            tools = httpx.get(orch.url + "/tools", timeout=5).json()
            return any("sleep" in {t["name"] for t in p["tools"]} for p in tools["peers"])

        wait_for(worker_tools_visible, 30, what="the worker's tools at the orchestrator")
    except BaseException:
        stop(procs)
        raise
    return procs


def stop(procs: dict[str, AgentProc]) -> None:
    for p in procs.values():
        p.kill(signal.SIGTERM)

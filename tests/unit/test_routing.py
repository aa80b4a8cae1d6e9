"""Routing without sockets: a fake service with a real peer table."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent import errors
from agent.errors import PeerUnavailable, PraxisError
from agent.execution import ToolExecutor
from agent.p2p.peers import PeerTable
from agent.routing import ToolRouter
from agent.tools import build_registry


class FakeService:
    peer_id = "me"

    def __init__(self, n: int, dead: set[str] = frozenset(), unsent: set[str] = frozenset(),
                 sent: set[str] = frozenset(), suspect: set[str] = frozenset()) -> None:
        self.peers = PeerTable()
        for i in range(n):
            rec = self.peers.ensure(f"w{i}", [])
            rec.card = {"name": f"w{i}", "tools": [{"name": "describe"}]}
        self.dead, self.unsent, self.sent, self.suspect = dead, unsent, sent, suspect
        self.calls: list[str] = []

    def is_alive(self, peer_id: str) -> bool:
        return peer_id not in self.suspect

    async def call_tool(self, peer_id: str, tool: str, arguments: dict[str, Any], timeout: float) -> Any:
        self.calls.append(peer_id)
        if peer_id in self.unsent:
            raise PeerUnavailable(f"{peer_id} refused the stream", unsent=True)
        if peer_id in self.sent:
            raise PeerUnavailable(f"{peer_id} went away mid-call")
        return {"by": peer_id}


def _router(svc: FakeService, tmp_path: Path) -> ToolRouter:
    tools = build_registry(["system"], fs_root=tmp_path, analytics_root=tmp_path, max_bytes=1024)
    return ToolRouter(svc, ToolExecutor(tools, 1.0), 1.0)


def test_an_unsent_call_is_retried_on_another_provider(tmp_path):
    svc = FakeService(3, unsent={"w0", "w1"}, suspect=set())
    routed = asyncio.run(_router(svc, tmp_path).invoke("describe", {"values": [1]}))
    assert routed.result == {"by": "w2"} and len(svc.calls) == 3


def test_at_most_three_attempts(tmp_path):
    svc = FakeService(5, unsent={f"w{i}" for i in range(5)})
    with pytest.raises(PeerUnavailable):
        asyncio.run(_router(svc, tmp_path).invoke("describe", {"values": [1]}))
    assert len(svc.calls) == 3


def test_a_call_that_may_have_left_is_not_sent_twice(tmp_path):
    svc = FakeService(2, sent={"w0", "w1"})
    with pytest.raises(PeerUnavailable):
        asyncio.run(_router(svc, tmp_path).invoke("describe", {"values": [1]}))
    assert len(svc.calls) == 1


def test_alive_providers_come_first(tmp_path):
    svc = FakeService(3, suspect={"w0", "w1"})
    router = _router(svc, tmp_path)
    for _ in range(4):
        assert asyncio.run(router.invoke("describe", {"values": [1]})).peer_id == "w2"


def test_an_unknown_peer_is_not_found_and_local_tools_run_here(tmp_path):
    svc = FakeService(1)
    router = _router(svc, tmp_path)
    with pytest.raises(PraxisError) as info:
        asyncio.run(router.invoke("describe", {}, peer_id="garbage"))
    assert errors.http_status(info.value) == 404
    assert asyncio.run(router.invoke("echo", {"a": 1})).peer_id == "me"

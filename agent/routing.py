"""Capability routing for the HTTP entry points (asyncio side).

A tool runs here if this agent has it, else on a connected peer whose card
advertises it (spread: fewest calls in flight, ties taken in turn), else on the
``peer_id`` the caller named.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from .activity import recorded
from .p2p.service import P2PService, PeerUnavailable, RemoteError
from .tools import ToolError, ToolRegistry

__all__ = ["ToolRouter", "Routed"]


class Routed:
    __slots__ = ("result", "peer_id", "duration_ms")

    def __init__(self, result: Any, peer_id: str, duration_ms: float) -> None:
        self.result, self.peer_id, self.duration_ms = result, peer_id, duration_ms


class ToolRouter:
    def __init__(self, service: P2PService, tools: ToolRegistry, timeout: float) -> None:
        self._svc = service
        self._tools = tools
        self._timeout = timeout
        self._turn = itertools.count()
        self._validators: dict[str, tuple[int, Any]] = {}

    async def run_local(self, name: str, arguments: dict[str, Any]) -> Any:
        tool = self._tools.get(name)
        if tool is None or not tool.blocking:
            return self._tools.call(name, arguments)
        try:
            return await asyncio.wait_for(asyncio.to_thread(self._tools.call, name, arguments), self._timeout)
        except asyncio.TimeoutError:
            raise ToolError("timeout", f"tool '{name}' did not finish within {self._timeout:g}s") from None

    def list_tools(self) -> list[dict[str, Any]]:
        """Tools reachable from here: ours, then peers' (first provider's schema)."""
        seen = {t["name"] for t in self._tools.describe_all()}
        out = list(self._tools.describe_all())
        for rec in self._svc.peers.with_cards():
            for t in (rec.card or {}).get("tools", []):
                if t["name"] not in seen:
                    seen.add(t["name"])
                    out.append(t)
        return out

    @recorded
    async def invoke(self, name: str, arguments: dict[str, Any], peer_id: str | None = None) -> Routed:
        t0 = time.perf_counter()
        me = self._svc.peer_id
        if peer_id == me or (peer_id is None and self._tools.get(name) is not None):
            result = await self.run_local(name, arguments)
            return Routed(result, me, (time.perf_counter() - t0) * 1000)
        if peer_id is not None and peer_id != me:
            rec = self._svc.peers.get(peer_id)
            if rec is None or rec.card is None:
                raise PeerUnavailable(f"peer {peer_id} is not connected")
            if name not in rec.tool_names():
                raise ToolError("unknown_tool", f"peer {peer_id} does not advertise tool '{name}'")
            target = rec
        else:
            providers = self._svc.peers.providers(name)
            if not providers:
                raise ToolError("unknown_tool", f"no agent in reach has tool '{name}'")
            turn = next(self._turn)
            least = min(p.inflight for p in providers)
            idle = [p for p in providers if p.inflight == least]
            target = idle[turn % len(idle)]
        self._check_arguments(target.peer_id, target.card or {}, name, arguments)
        try:
            result = await self._svc.call_tool(target.peer_id, name, arguments, self._timeout)
        except TimeoutError as e:
            raise asyncio.TimeoutError(str(e)) from None
        return Routed(result, target.peer_id, (time.perf_counter() - t0) * 1000)

    def _check_arguments(self, peer_id: str, card: dict[str, Any], name: str, arguments: dict[str, Any]) -> None:
        """Validate against the schema the peer's card advertises: a 422 without a round trip."""
        schema = next((t.get("inputSchema") for t in card.get("tools", []) if t.get("name") == name), None)
        if not isinstance(schema, dict):
            return
        key = f"{peer_id}/{name}"
        cached = self._validators.get(key)
        if cached is None or cached[0] != id(card):
            try:
                cached = (id(card), Draft202012Validator(schema))
            except SchemaError:
                return  # the peer will validate; its schema is its business
            self._validators[key] = cached
        err = next(iter(cached[1].iter_errors(arguments)), None)
        if err is not None:
            path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            raise ToolError("invalid_arguments", f"arguments{path}: {err.message}")


def http_status_for(exc: BaseException) -> int:
    if isinstance(exc, (ToolError, RemoteError)):
        return {
            "unknown_tool": 404,
            "invalid_arguments": 422,
            "forbidden": 403,
            "not_found": 404,
            "too_large": 413,
            "timeout": 504,
        }.get(exc.code, 500 if isinstance(exc, ToolError) else 502)
    if isinstance(exc, asyncio.TimeoutError):
        return 504
    if isinstance(exc, PeerUnavailable):
        return 502
    return 500

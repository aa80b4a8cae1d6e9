"""Capability routing for the HTTP entry points (asyncio side).

A tool runs here if this agent has it (through the one local execution path,
:class:`agent.execution.ToolExecutor`), else on a connected peer whose card
advertises it, else on the ``peer_id`` the caller named.  Among providers,
peers that are alive come first, then the one with fewest calls in flight,
ties taken in turn.  A request that certainly never left this agent
(:class:`~agent.errors.PeerUnavailable` with ``unsent``) is tried on the next
provider, at most :data:`~agent.constants.ROUTE_ATTEMPTS` in all; a request
that may have reached a peer is never sent twice (tools write files).

Arguments are validated once, by the agent that runs the tool (in its worker
thread, under the call timeout): checking 250 000 values against a schema
takes seconds, and doing it here too blocked this agent's whole HTTP loop.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from . import errors
from .activity import recorded
from .constants import ROUTE_ATTEMPTS
from .errors import NOT_FOUND, UNKNOWN_TOOL, PeerUnavailable, PraxisError, ToolError
from .execution import ToolExecutor
from .p2p.peers import PeerRecord

__all__ = ["ToolRouter", "Routed"]


class Routed:
    __slots__ = ("result", "peer_id", "duration_ms")

    def __init__(self, result: Any, peer_id: str, duration_ms: float) -> None:
        self.result, self.peer_id, self.duration_ms = result, peer_id, duration_ms


class ToolRouter:
    """``service`` needs: ``peer_id``, ``peers`` (PeerTable), ``is_alive(peer_id)``
    and ``async call_tool(peer_id, tool, arguments, timeout)``."""

    def __init__(self, service: Any, executor: ToolExecutor, timeout: float) -> None:
        self._svc = service
        self._exec = executor
        self._timeout = timeout
        self._turn = itertools.count()

    def list_tools(self) -> list[dict[str, Any]]:
        """Tools reachable from here: ours, then peers' (first provider's schema)."""
        local = self._exec.tools.describe_all()
        seen = {t["name"] for t in local}
        out = list(local)
        for rec in self._svc.peers.with_cards():
            for t in (rec.card or {}).get("tools", []):
                if t["name"] not in seen:
                    seen.add(t["name"])
                    out.append(t)
        return out

    @recorded
    async def invoke(self, name: str, arguments: dict[str, Any], peer_id: str | None = None) -> Routed:
        """Run ``name`` here or on a peer.  Raises PraxisError subclasses only:
        ToolError (local), RemoteError (the peer's answer), PeerUnavailable,
        CallTimeout, Unavailable (P2P side gone), PraxisError(not_found/too_large)."""
        t0 = time.perf_counter()
        me = self._svc.peer_id
        if peer_id == me or (peer_id is None and self._exec.has(name)):
            result = await self._exec.run(name, arguments)
            return Routed(result, me, (time.perf_counter() - t0) * 1000)
        if peer_id is not None:
            rec = self._svc.peers.get(peer_id)
            if rec is None or rec.card is None:
                raise PraxisError(NOT_FOUND, f"no connected peer with id {errors.clip(repr(peer_id), 80)}")
            if name not in rec.tool_names():
                raise ToolError(UNKNOWN_TOOL, f"peer {peer_id} does not advertise tool '{name}'")
            candidates = [rec]
        else:
            providers = self._svc.peers.providers(name)
            if not providers:
                raise ToolError(UNKNOWN_TOOL, f"no agent in reach has tool '{name}'")
            candidates = self._order(providers)
        last: PeerUnavailable | None = None
        for target in candidates[:ROUTE_ATTEMPTS]:
            try:
                result = await self._svc.call_tool(target.peer_id, name, arguments, self._timeout)
            except PeerUnavailable as e:
                if not e.unsent:
                    raise
                last = e  # never left this agent: safe to try the next provider
                continue
            return Routed(result, target.peer_id, (time.perf_counter() - t0) * 1000)
        raise last or PeerUnavailable(f"no provider of '{name}' could be reached", unsent=True)

    def _order(self, providers: list[PeerRecord]) -> list[PeerRecord]:
        """Alive before suspect, then fewest in flight; ties rotate per call."""
        turn = next(self._turn)
        n = len(providers)
        ranked = sorted(
            enumerate(providers),
            key=lambda ip: (not self._svc.is_alive(ip[1].peer_id), ip[1].inflight, (ip[0] - turn) % n),
        )
        return [p for _, p in ranked]

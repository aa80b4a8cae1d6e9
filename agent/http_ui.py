"""The live cluster page: ``GET /ui``, its assets, ``/ui/state`` and the
server-sent event stream ``/ui/events``.

The page state is built by pure functions (:func:`page_state`, :func:`gone_view`)
from what the agent already holds: the peer table, the activity record and the
A2A task store.  One snapshot per agent is cached for ``constants.UI_SNAPSHOT_TTL_S`` so
any number of open pages cost one build per tick.  Every asset is shipped in the
package (``agent/ui/``): the cluster has no internet.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from .constants import GONE_KEEP_S, SSE_KEEPALIVE_S, UI_SNAPSHOT_TTL_S, UI_SSE_RETRY_MS, UI_STREAM_TICK_S
from .errors import NOT_FOUND, PraxisError, error_body, http_status

if TYPE_CHECKING:
    from .runtime import Agent

__all__ = ["ui_router", "page_state", "gone_view", "peer_view"]

# Recent A2A tasks shown.
RECENT_TASKS = 20

_ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


# ------------------------------------------------------------------ page state
def peer_view(rec: Any, stats: dict[str, Any] | None) -> dict[str, Any]:
    """One connected peer as the page shows it (state connected/suspect,
    joined_via bootstrap/mdns/inbound/dial, RTT from liveness)."""
    card = rec.card or {}
    return {
        "peer_id": rec.peer_id,
        "name": card.get("name") or rec.peer_id[:12],
        "role": rec.registry_role or card.get("role") or "unknown",
        "state": rec.shown_state(),  # connected/suspect (gone peers: gone_view)
        "joined_via": rec.joined_via,
        "rtt_ms": None if rec.rtt_ms is None else round(rec.rtt_ms, 2),
        "addrs": list(rec.addrs),
        "tools": sorted(t.get("name", "?") for t in card.get("tools", [])),
        "connected_since": round(rec.connected_since, 3),
        "stats": stats,
    }


def gone_view(reported: list[dict[str, Any]], current: set[str], now: float,
              keep_s: float = GONE_KEEP_S) -> list[dict[str, Any]]:
    """Peers that left, as the page shows them for ``keep_s``: the peer table's
    recently-gone list (newest first; filled on every drop, with its reason),
    less peers that are back (``current``) and departures older than ``keep_s``."""
    out: list[dict[str, Any]] = []
    seen = set(current)
    for entry in reported:
        pid, when = entry.get("peer_id"), _epoch(entry.get("when"))
        if not pid or pid in seen or when is None or now - when > keep_s:
            continue
        seen.add(pid)  # a peer that left twice: its newest departure only
        out.append({
            "peer_id": pid, "name": entry.get("name") or pid[:12], "role": entry.get("role") or "unknown",
            "state": "gone", "joined_via": entry.get("joined_via"), "rtt_ms": None,
            "addrs": list(entry.get("addrs") or []), "tools": list(entry.get("tools") or []),
            "connected_since": None, "stats": None, "gone_at": when, "reason": entry.get("reason"),
        })
    return sorted(out, key=lambda v: -v["gone_at"])


def _epoch(iso: Any) -> float | None:
    """A UTC timestamp (the peer table's ``2026-12-06T14:30:50Z``, A2A's
    ``2026-12-06T14:30:50.123Z``) as seconds since the epoch."""
    try:
        return datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return None


def task_view(task: dict[str, Any]) -> dict[str, Any]:
    tool = None
    for msg in task.get("history", [])[:1]:
        for part in msg.get("parts", []) if isinstance(msg, dict) else []:
            data = part.get("data") if isinstance(part, dict) else None
            if isinstance(data, dict) and isinstance(data.get("tool"), str):
                tool = data["tool"]
    status = task.get("status", {})
    created = (task.get("metadata") or {}).get("createdAt")
    state = status.get("state")
    duration_ms = None
    start, end = _epoch(created), _epoch(status.get("timestamp"))
    if start is not None and end is not None and state in _FINISHED_TASK_STATES:
        duration_ms = round((end - start) * 1000, 1)
    return {"id": task.get("id"), "tool": tool, "state": state, "at": created or status.get("timestamp"),
            "duration_ms": duration_ms}


_FINISHED_TASK_STATES = ("completed", "failed", "canceled", "rejected")


def page_state(me: dict[str, Any], peers: list[dict[str, Any]], gone: list[dict[str, Any]],
               calls: list[dict[str, Any]], tasks: list[dict[str, Any]], tools: list[dict[str, Any]],
               token_required: bool) -> dict[str, Any]:
    return {
        "me": me,
        "peers": sorted(peers, key=lambda p: (p["role"] != "orchestrator", p["name"])),
        "gone": gone,
        "calls": calls,
        "tasks": tasks,
        "tools": tools,
        "token_required": token_required,
    }


def _recent_tasks(store: Any, n: int = RECENT_TASKS) -> list[dict[str, Any]]:
    """The newest ``n`` A2A tasks (TaskStore.list is newest first)."""
    tasks, _, _ = store.list(page_size=n)
    return [task_view(t) for t in tasks]


class _Snapshots:
    """The agent's page state, rebuilt at most every ``constants.UI_SNAPSHOT_TTL_S``."""

    def __init__(self, agent: "Agent") -> None:
        self._agent = agent
        self._at = 0.0
        self._state: dict[str, Any] = {}
        self._json = ""

    def _build(self) -> dict[str, Any]:
        a = self._agent
        svc = a.service
        activity = getattr(a, "activity", None)
        stats = activity.per_peer() if activity is not None else {}
        peers = [peer_view(r, stats.get(r.peer_id)) for r in svc.peers.with_cards()]
        gone = gone_view(svc.peers.gone(), {p["peer_id"] for p in peers}, time.time())
        me = {
            "peer_id": svc.peer_id,
            "name": a.config.agent.name,
            "role": a.config.agent.role,
            "state": "connected" if svc.state == "running" else svc.state,
            "addrs": list(svc.listen_addrs),
            "tools": sorted(t["name"] for t in a.tools.describe_all()),
            "version": a.config.agent.version,
            "started_at": round(time.time() - (time.monotonic() - a.started_at), 3),
            "stats": stats.get(svc.peer_id),
        }
        return page_state(
            me, peers, gone,
            activity.recent() if activity is not None else [],
            _recent_tasks(a.tasks),
            a.router.list_tools(),
            a.config.api.token is not None,
        )

    def get(self) -> tuple[dict[str, Any], str]:
        now = time.monotonic()
        if not self._json or now - self._at >= UI_SNAPSHOT_TTL_S:
            self._state = self._build()
            self._json = json.dumps(self._state, separators=(",", ":"), ensure_ascii=False)
            self._at = now
        return self._state, self._json


# ---------------------------------------------------------------------- routes
def _asset(name: str) -> str:
    return resources.files("agent.ui").joinpath(name).read_text(encoding="utf-8")


def render_page(state_json: str) -> str:
    # "</" inside the inlined JSON would end the <script> element early.
    safe = state_json.replace("</", "<\\/")
    return _asset("index.html").replace("{{STATE}}", safe)


def ui_router(agent: "Agent") -> APIRouter:
    router = APIRouter(responses={500: {"description": "an unforeseen failure (see the incident id in the agent's log)"}})
    snaps = _Snapshots(agent)

    @router.get("/ui", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        # The first state is inlined so the page paints without waiting for the stream.
        return HTMLResponse(render_page(snaps.get()[1]), headers={"Cache-Control": "no-store"})

    @router.get("/ui/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        media = _ASSETS.get(name)
        if media is None:
            err = PraxisError(NOT_FOUND, f"no asset '{name}' in /ui/static")
            return JSONResponse(error_body(err), http_status(err))
        return Response(_asset(name), media_type=media, headers={"Cache-Control": "max-age=300"})

    @router.get("/ui/state")
    async def state() -> Response:
        return Response(snaps.get()[1], media_type="application/json")

    # The page's own server-sent event stream: not part of the API contract
    # (and an endless stream is no case for a schema fuzzer).
    @router.get("/ui/events", include_in_schema=False)
    async def events(request: Request) -> StreamingResponse:
        async def stream():
            yield f"retry: {UI_SSE_RETRY_MS}\n\n"
            last, quiet_since = "", time.monotonic()
            # Ends when the P2P side stops, so an open page never holds up shutdown.
            while agent.service.state == "running" and not await request.is_disconnected():
                body = snaps.get()[1]
                if body != last:
                    yield f"event: state\ndata: {body}\n\n"
                    last, quiet_since = body, time.monotonic()
                elif time.monotonic() - quiet_since > SSE_KEEPALIVE_S:
                    yield ": keepalive\n\n"
                    quiet_since = time.monotonic()
                await asyncio.sleep(UI_STREAM_TICK_S)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    return router

"""The HTTP API every agent serves (FastAPI).  Shapes are a contract: see README."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from typing import TYPE_CHECKING, Any

from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from .messages import INVALID_REQUEST, PARSE_ERROR, rpc_error
from .http_ui import ui_router
from .metrics import CONTENT_TYPE_LATEST
from .p2p.service import PeerUnavailable, RemoteError
from .routing import http_status_for
from .tools import ToolError

if TYPE_CHECKING:
    from .runtime import Agent

__all__ = ["create_app"]


class InvokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arguments: dict[str, Any] = Field(default_factory=dict)
    peer_id: str | None = None


def create_app(agent: "Agent") -> FastAPI:
    app = FastAPI(title="Praxis agent", version=agent.config.agent.version, docs_url="/docs", redoc_url=None)
    token = agent.config.api.token

    # async: a plain def dependency would send every request through a thread.
    async def require_token(authorization: str | None = Header(default=None)) -> None:
        if token is None:
            return
        supplied = authorization[7:] if authorization and authorization.startswith("Bearer ") else ""
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            raise _Unauthorized()

    @app.exception_handler(_Unauthorized)
    async def _unauth(request: Request, exc: _Unauthorized) -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "unauthorized", "message": "missing or wrong bearer token"}},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.get("/health")
    async def health() -> JSONResponse:
        svc = agent.service
        if svc.state != "running":
            reason = svc.failure if svc.state == "failed" else f"P2P host is {svc.state}"
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "name": agent.config.agent.name,
                "role": agent.config.agent.role,
                "peer_id": svc.peer_id,
                "uptime_s": round(time.monotonic() - agent.started_at, 3),
                "version": agent.config.agent.version,
                "p2p": {"listening": svc.listen_addrs, "connected_peers": len(svc.peers.with_cards())},
            }
        )

    @app.get("/peers")
    async def peers() -> list[dict[str, Any]]:
        return [rec.public() for rec in agent.service.peers.with_cards()]

    @app.get("/card")
    @app.get("/.well-known/agent-card.json")
    async def card() -> JSONResponse:
        if not agent.service.card:
            return JSONResponse({"status": "unavailable", "reason": "P2P host not started"}, status_code=503)
        return JSONResponse(agent.service.card)

    @app.get("/tools")
    async def tools() -> dict[str, Any]:
        return {
            "local": agent.tools.describe_all(),
            "peers": [
                {"peer_id": r.peer_id, "name": (r.card or {}).get("name"), "tools": (r.card or {}).get("tools", [])}
                for r in agent.service.peers.with_cards()
            ],
        }

    @app.post("/tools/{name}/invoke", dependencies=[Depends(require_token)])
    async def invoke(name: str, body: InvokeBody = Body(default_factory=InvokeBody)) -> JSONResponse:
        t0 = time.perf_counter()
        try:
            routed = await agent.router.invoke(name, body.arguments, body.peer_id)
        except (ToolError, RemoteError, PeerUnavailable, asyncio.TimeoutError) as e:
            status = http_status_for(e)
            agent.metrics.requests.labels("http_invoke", "http", str(status)).inc()
            code = getattr(e, "code", None) or ("timeout" if status == 504 else "peer_unavailable")
            payload: dict[str, Any] = {"error": {"code": code, "message": getattr(e, "message", None) or str(e)}}
            if isinstance(e, RemoteError):
                payload["peer_id"] = e.peer_id
            return JSONResponse(payload, status_code=status)
        agent.metrics.requests.labels("http_invoke", "http", "200").inc()
        agent.metrics.latency.labels("http_invoke", "http").observe(time.perf_counter() - t0)
        return JSONResponse(
            {"result": routed.result, "peer_id": routed.peer_id, "duration_ms": round(routed.duration_ms, 3)}
        )

    async def _jsonrpc(request: Request, dispatcher: Any, proto: str) -> Response:
        raw = await request.body()
        try:
            obj = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as e:
            return JSONResponse(rpc_error(None, PARSE_ERROR, f"invalid JSON: {e}"))
        if not isinstance(obj, dict):
            return JSONResponse(rpc_error(None, INVALID_REQUEST, "expected a JSON object"))
        t0 = time.perf_counter()
        answer = await dispatcher.handle(obj)
        outcome = "error" if answer and "error" in answer else "ok"
        agent.metrics.requests.labels(proto, "http", outcome).inc()
        agent.metrics.latency.labels(proto, "http").observe(time.perf_counter() - t0)
        if answer is None:
            return Response(status_code=204)
        return JSONResponse(answer)

    @app.post("/a2a", dependencies=[Depends(require_token)])
    async def a2a(request: Request) -> Response:
        return await _jsonrpc(request, agent.http_a2a, "a2a")

    @app.post("/mcp", dependencies=[Depends(require_token)])
    async def mcp(request: Request) -> Response:
        return await _jsonrpc(request, agent.http_mcp, "mcp")

    @app.get("/metrics")
    async def metrics() -> Response:
        if not agent.config.metrics.enabled:
            return JSONResponse({"error": {"code": "disabled", "message": "metrics.enabled is false"}}, 404)
        return Response(agent.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(ui_router(agent))
    return app


class _Unauthorized(Exception):
    pass

"""HTTP side of MCP and A2A: ``POST /a2a`` (JSON or SSE), ``POST /mcp``
(streamable HTTP, JSON answers, no sessions), and the A2A agent card at
``/.well-known/agent-card.json`` with URLs as the client reached us.

Every request gets an answer of its own, whatever it sends: bodies are
bounded (413), JSON that cannot be parsed or nests too deep is a JSON-RPC
error, and an answer that cannot be encoded (NaN from a tool) becomes an
error answer rather than a 500 that would also cost the kept-alive
connection.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .card import for_base_url
from .constants import HTTP_BODY_ENVELOPE
from .errors import BAD_REQUEST, TOO_LARGE, UNAVAILABLE, PraxisError, error_body, http_status, internal
from .messages import INTERNAL_ERROR, dumps, rpc_error
from .rpc import _jsonrpc
from .rpc.mcp import PROTOCOL_VERSION_META

if TYPE_CHECKING:
    from .runtime import Agent

__all__ = ["create_rpc_router"]

A2A_VERSION_HEADER = "a2a-version"
MCP_VERSION_HEADER = "mcp-protocol-version"
# MCP 2026-07-28 sends JSON-RPC errors with these HTTP statuses.
_MCP_MODERN_STATUS = {-32700: 400, -32600: 400, -32602: 400, -32020: 400, -32021: 400, -32022: 400, -32601: 404}

_RPC_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["jsonrpc", "method"],
    "properties": {
        "jsonrpc": {"const": "2.0"},
        "id": {"type": ["string", "integer"]},
        "method": {"type": "string"},
        "params": {"type": ["object", "array"]},
    },
}
_RPC_ANSWER = {"description": "JSON-RPC 2.0 answer (result or error)", "content": {"application/json": {"schema": {"type": "object"}}}}
_ERROR = {"content": {"application/json": {"schema": {"type": "object", "required": ["error"]}}}}


def _openapi(streams: bool) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": _RPC_ANSWER,
        "202": {"description": "notification accepted (no answer)"},
        "401": {"description": "missing or wrong bearer token", **_ERROR},
        "413": {"description": "body larger than p2p.max_message_size + 64 KiB", **_ERROR},
        "500": {"description": "an unforeseen failure (see the incident id in the agent's log)", **_ERROR},
    }
    if not streams:
        # MCP 2026-07-28 sends some JSON-RPC errors with these statuses.
        responses["400"] = {"description": "JSON-RPC error (bad params, unsupported protocol version)", **_ERROR}
        responses["404"] = {"description": "JSON-RPC error: method not found (2026-07-28 requests)", **_ERROR}
        responses["406"] = {"description": "Accept allows neither application/json nor text/event-stream", **_ERROR}
    else:
        responses["200"] = {
            **_RPC_ANSWER,
            "content": {**_RPC_ANSWER["content"], "text/event-stream": {"schema": {"type": "string"}}},
        }
    return {
        "requestBody": {"required": True, "content": {"application/json": {"schema": _RPC_REQUEST_SCHEMA}}},
        "responses": responses,
    }


def _dumps(answer: dict[str, Any]) -> bytes:
    """Encode an answer; one that cannot be (NaN, absurd nesting) becomes an error answer."""
    try:
        return dumps(answer)
    except (ValueError, TypeError, RecursionError) as e:
        err = internal(e, "encoding a JSON-RPC answer")
        fallback = rpc_error(answer.get("id"), INTERNAL_ERROR, f"the answer cannot be encoded as JSON ({type(e).__name__}); {err.message}")
        return json.dumps(fallback).encode()


async def _read_body(request: Request, limit: int) -> bytes | Response:
    """The body, or a 413 once it is known to exceed ``limit`` (read no further)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Response:
    err = PraxisError(TOO_LARGE, f"request body over the limit of {limit} bytes")
    return JSONResponse(error_body(err), status_code=http_status(err))


def _not_allowed(what: str) -> Response:
    err = PraxisError(BAD_REQUEST, what)
    return JSONResponse(error_body(err), status_code=405, headers={"Allow": "POST"})


def create_rpc_router(agent: "Agent", require_token: Callable[..., Any]) -> APIRouter:
    router = APIRouter()
    auth = [Depends(require_token)]
    # The API's bound (agent._asgi.LimitBody) already refuses larger declared
    # bodies; this one also holds for the router alone (unit tests, other apps).
    limit = agent.config.p2p.max_message_size + HTTP_BODY_ENVELOPE

    def observe(proto: str, answer: dict[str, Any] | None, t0: float) -> None:
        outcome = "error" if answer and "error" in answer else "ok"
        agent.metrics.requests.labels(proto, "http", outcome).inc()
        agent.metrics.latency.labels(proto, "http").observe(time.perf_counter() - t0)

    async def decode(request: Request) -> tuple[dict[str, Any] | None, Response | None]:
        body = await _read_body(request, limit)
        if isinstance(body, Response):
            return None, body
        obj, error = _jsonrpc.decode(body)
        if error is not None:
            return None, Response(_dumps(error), media_type="application/json")
        return obj, None

    # ------------------------------------------------------------------ A2A
    @router.post("/a2a", dependencies=auth, openapi_extra=_openapi(streams=True))
    async def a2a(request: Request) -> Response:
        t0 = time.perf_counter()
        obj, early = await decode(request)
        if early is not None:
            return early
        assert obj is not None
        version = request.headers.get(A2A_VERSION_HEADER)
        dispatcher = agent.http_a2a
        if dispatcher.is_streaming(obj.get("method")):
            agent.metrics.requests.labels("a2a", "http", "stream").inc()
            return StreamingResponse(
                _sse(dispatcher.stream(obj, a2a_version=version)),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store"},
            )
        answer = await dispatcher.handle(obj, a2a_version=version)
        observe("a2a", answer, t0)
        if answer is None:
            return Response(status_code=202)
        return Response(_dumps(answer), media_type="application/json")

    @router.get("/a2a", include_in_schema=False)
    async def a2a_get() -> Response:
        return _not_allowed("A2A JSON-RPC is POST /a2a")

    # ------------------------------------------------------------------ MCP
    @router.post("/mcp", dependencies=auth, openapi_extra=_openapi(streams=False))
    async def mcp(request: Request) -> Response:
        t0 = time.perf_counter()
        accept = request.headers.get("accept", "*/*").lower()
        wants_json = any(m in accept for m in ("application/json", "*/*", "application/*"))
        if not wants_json and "text/event-stream" not in accept:
            err = PraxisError(BAD_REQUEST, "MCP answers application/json (or text/event-stream); Accept allows neither")
            return JSONResponse(error_body(err), status_code=406)
        obj, early = await decode(request)
        if early is not None:
            return early
        assert obj is not None
        headers = {MCP_VERSION_HEADER: request.headers[MCP_VERSION_HEADER]} if MCP_VERSION_HEADER in request.headers else {}
        answer = await agent.http_mcp.handle(obj, headers=headers)
        observe("mcp", answer, t0)
        if answer is None:
            return Response(status_code=202)
        status = 200
        params = obj.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        if "error" in answer and isinstance(meta, dict) and PROTOCOL_VERSION_META in meta:
            status = _MCP_MODERN_STATUS.get(answer["error"].get("code"), 200)
        if wants_json:
            return Response(_dumps(answer), status_code=status, media_type="application/json")
        return Response(b"event: message\ndata: " + _dumps(answer) + b"\n\n", status_code=status, media_type="text/event-stream")

    @router.get("/mcp", include_in_schema=False)
    async def mcp_get() -> Response:
        # Streamable HTTP: 405 = this server offers no server-initiated stream.
        return _not_allowed("this MCP server has no server-to-client stream; POST requests to /mcp")

    @router.delete("/mcp", include_in_schema=False)
    async def mcp_delete() -> Response:
        return _not_allowed("this MCP server keeps no sessions")

    # ------------------------------------------------------------------ card
    @router.get(
        "/.well-known/agent-card.json",
        responses={
            "503": {"description": "P2P host not started", **_ERROR},
            "500": {"description": "an unforeseen failure (see the incident id in the agent's log)", **_ERROR},
        },
    )
    async def agent_card(request: Request) -> JSONResponse:
        card = agent.service.card
        if not card:
            err = PraxisError(UNAVAILABLE, "P2P host not started")
            return JSONResponse(error_body(err), status_code=http_status(err))
        # URLs as this client reached us (a container's own address is not
        # what a client behind a port mapping can dial).
        return JSONResponse(for_base_url(card, str(request.base_url)))

    return router


async def _sse(answers: AsyncIterator[dict[str, Any] | None]) -> AsyncIterator[bytes]:
    async for answer in answers:
        if answer is None:
            yield b": keep-alive\n\n"
        else:
            yield b"data: " + _dumps(answer) + b"\n\n"

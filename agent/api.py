"""The HTTP API every agent serves (FastAPI).  Shapes are a contract: see README.

Every error answer is ``{"error": {"code", "message", ...}}`` with a code from
:mod:`agent.errors` and the status :func:`agent.errors.http_status` gives it:
exceptions are mapped to errors in one place (:func:`as_error`), request
validation, unknown routes and wrong methods answer in the same shape, and
the ASGI middlewares of :mod:`agent._asgi` bound request bodies (413) and turn
anything unforeseen into a 500 ``internal`` answer with an incident id.
"""

from __future__ import annotations

import hmac
import math
import time
from typing import TYPE_CHECKING, Any, Literal

from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import errors as E
from ._asgi import ContainErrors, LimitBody
from .constants import HTTP_BODY_ENVELOPE
from .errors import CallTimeout, PraxisError, Unavailable, error_body, http_status, internal
from .http_rpc import create_rpc_router
from .http_ui import ui_router
from .metrics import CONTENT_TYPE_LATEST
from .p2p._bridge import LoopGone
from .peerid import PEER_ID_PATTERN, is_peer_id

if TYPE_CHECKING:
    from .runtime import Agent

__all__ = ["create_app", "as_error", "InvokeBody", "ErrorBody"]

# Arguments nested deeper than this are refused (422): every JSON codec on the
# way (this response, the P2P frame, the peer's parser) recurses per level,
# and Python's recursion limit is 1000 frames.
MAX_ARGUMENT_DEPTH = 200

class InvokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arguments: dict[str, Any] = Field(default_factory=dict, description="The tool's arguments (its inputSchema).")
    peer_id: str | None = Field(
        default=None,
        description="Run on this peer (a libp2p PeerID); default: here if this agent has the tool, "
        "else on a connected peer that advertises it.",
        # Declared for clients and fuzzers; enforced below, with a readable message.
        json_schema_extra={"pattern": PEER_ID_PATTERN},
    )

    @field_validator("peer_id")
    @classmethod
    def _peer_id(cls, value: str | None) -> str | None:
        if value is not None and not is_peer_id(value):
            raise ValueError("not a libp2p PeerID (12D3KooW…, 16Uiu2H… or Qm…, base58)")
        return value

    @field_validator("arguments")
    @classmethod
    def _json_only(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Python's JSON parser accepts NaN and Infinity, which no answer may
        # carry (and no peer need accept); iterative, as nesting is hostile.
        stack: list[tuple[Any, int]] = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError("NaN and Infinity are not JSON numbers")
            if isinstance(item, (dict, list)):
                if depth > MAX_ARGUMENT_DEPTH:
                    raise ValueError(f"nested deeper than {MAX_ARGUMENT_DEPTH} levels")
                children = item.values() if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
        return value


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")
    code: Literal[E.CODES]  # type: ignore[valid-type]
    message: str = Field(description="What failed, where and why; no local paths, keys or tracebacks.")
    incident: str | None = Field(default=None, description="For internal errors: the id logged with the traceback.")


class ErrorBody(BaseModel):
    """The one error shape of every HTTP answer that is not a success."""

    model_config = ConfigDict(extra="allow")
    error: ErrorDetail
    peer_id: str | None = Field(default=None, description="The peer that answered with this error, if any.")


class InvokeResult(BaseModel):
    result: Any = Field(description="The tool's result.")
    peer_id: str = Field(description="The agent that ran the tool.")
    duration_ms: float


class HealthDown(BaseModel):
    status: Literal["unavailable"]
    reason: str


def _err(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_INTERNAL = {500: _err("an unforeseen failure (see the incident id in the agent's log)")}
_BODY = {
    400: _err("malformed request: not JSON or not an object"),
    413: _err("request body over p2p.max_message_size + 64 KiB"),
    **_INTERNAL,
}
_INVOKE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": InvokeResult, "description": "the tool's result"},
    401: _err("missing or wrong bearer token"),
    403: _err("forbidden (e.g. a path outside the tool root)"),
    404: _err("unknown tool, unknown peer, or a file that does not exist"),
    422: _err("invalid arguments (schema error, bad peer_id, non-finite numbers)"),
    502: _err("the peer is unreachable or broke the protocol"),
    503: _err("this agent cannot serve now (P2P side stopped)"),
    504: _err("no answer within tools.call_timeout"),
    **_BODY,
    500: _err("the tool failed, or an unforeseen failure"),
}

# Codes for HTTP errors raised by the framework itself (routing, body parsing).
_STATUS_CODE = {
    400: E.BAD_REQUEST,
    401: E.UNAUTHORIZED,
    403: E.FORBIDDEN,
    404: E.NOT_FOUND,
    405: E.BAD_REQUEST,
    413: E.TOO_LARGE,
    422: E.INVALID_ARGUMENTS,
    503: E.UNAVAILABLE,
}


def as_error(exc: BaseException, where: str) -> PraxisError:
    """The error answer for any exception: the API layer's one mapping."""
    if isinstance(exc, PraxisError):
        return exc
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is TimeoutError
        return CallTimeout(str(exc) or "no answer within the call timeout")
    if isinstance(exc, LoopGone):
        return Unavailable(f"this agent cannot serve now: {exc}")
    return internal(exc, where)


def error_response(err: PraxisError, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(err, **extra), status_code=http_status(err), headers=headers)


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "request"


def validation_error(exc: RequestValidationError) -> PraxisError:
    """FastAPI's validation errors as one error: where and why, first three."""
    problems = list(exc.errors())
    code = E.INVALID_ARGUMENTS
    parts = []
    for p in problems[:3]:
        loc = tuple(p.get("loc") or ())
        if p.get("type") == "json_invalid":
            code = E.BAD_REQUEST
            pos = loc[1] if len(loc) > 1 else "?"
            parts.append(f"body: invalid JSON at character {pos}: {(p.get('ctx') or {}).get('error', '')}")
            continue
        if len(loc) <= 1:  # the body (or a parameter) as a whole has the wrong shape
            code = E.BAD_REQUEST
        msg = str(p.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{_where(loc)}: {msg}")
    if len(problems) > 3:
        parts.append(f"and {len(problems) - 3} more")
    return PraxisError(code, "; ".join(parts) or "invalid request")


def create_app(agent: "Agent") -> FastAPI:
    app = FastAPI(title="Praxis agent", version=agent.config.agent.version, docs_url="/docs", redoc_url=None)
    token = agent.config.api.token

    # Outermost last: ContainErrors also covers LimitBody.
    app.add_middleware(LimitBody, max_bytes=agent.config.p2p.max_message_size + HTTP_BODY_ENVELOPE)
    app.add_middleware(ContainErrors)

    # async: a plain def dependency would send every request through a thread.
    async def require_token(authorization: str | None = Header(default=None)) -> None:
        if token is None:
            return
        supplied = authorization[7:] if authorization and authorization.startswith("Bearer ") else ""
        if not hmac.compare_digest(supplied.encode(), token.encode()):
            raise _Unauthorized()

    @app.exception_handler(_Unauthorized)
    async def _unauth(request: Request, exc: _Unauthorized) -> JSONResponse:
        return error_response(
            PraxisError(E.UNAUTHORIZED, "missing or wrong bearer token"), headers={"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODE.get(exc.status_code, E.BAD_REQUEST if exc.status_code < 500 else E.INTERNAL)
        if exc.status_code == 404:
            message = f"no route {request.url.path!r}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path!r}"
        elif isinstance(exc.__cause__, RecursionError):
            message = "body: JSON nested too deeply to parse"
        elif isinstance(exc.__cause__, ValueError):  # e.g. an integer of over 4300 digits
            message = f"body: cannot be parsed: {exc.__cause__}"
        else:
            message = f"{request.url.path}: {exc.detail}"
        err = PraxisError(code, message)
        return JSONResponse(error_body(err), status_code=exc.status_code, headers=exc.headers)

    # Exceptions a handler lets through, mapped as_error does; anything else
    # reaches ContainErrors (500 internal).
    for known in (PraxisError, LoopGone, TimeoutError):

        @app.exception_handler(known)
        async def _known(request: Request, exc: Exception) -> JSONResponse:
            return error_response(as_error(exc, f"HTTP {request.method} {request.url.path}"))

    @app.get("/health", responses={503: {"model": HealthDown, "description": "the P2P side is not running"}, **_INTERNAL})
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

    @app.get("/peers", responses=_INTERNAL)
    async def peers() -> list[dict[str, Any]]:
        return [rec.public() for rec in agent.service.peers.with_cards()]

    @app.get("/card", responses={503: _err("P2P host not started"), **_INTERNAL})
    async def card() -> JSONResponse:
        if not agent.service.card:
            return error_response(Unavailable("P2P host not started"))
        return JSONResponse(agent.service.card)

    @app.get("/tools", responses=_INTERNAL)
    async def tools() -> dict[str, Any]:
        return {
            "local": agent.tools.describe_all(),
            "peers": [
                {"peer_id": r.peer_id, "name": (r.card or {}).get("name"), "tools": (r.card or {}).get("tools", [])}
                for r in agent.service.peers.with_cards()
            ],
        }

    @app.post("/tools/{name}/invoke", dependencies=[Depends(require_token)], responses=_INVOKE_RESPONSES)
    async def invoke(name: str, body: InvokeBody = Body(default_factory=InvokeBody)) -> JSONResponse:
        t0 = time.perf_counter()
        me = agent.service.peer_id
        try:
            if body.peer_id is not None and body.peer_id != me and agent.service.peers.get(body.peer_id) is None:
                raise PraxisError(E.NOT_FOUND, f"peer {body.peer_id} is not known to this agent (see /peers)")
            routed = await agent.router.invoke(name, body.arguments, body.peer_id)
            answer = {"result": routed.result, "peer_id": routed.peer_id, "duration_ms": round(routed.duration_ms, 3)}
            try:
                response = JSONResponse(answer)
            except (ValueError, TypeError, RecursionError) as exc:  # NaN, Infinity, or nesting in a result
                if routed.peer_id == me:
                    raise
                raise PraxisError(
                    E.PROTOCOL_ERROR, f"the answer of peer {routed.peer_id} cannot be sent as JSON ({exc})"
                ) from None
        except Exception as exc:  # noqa: BLE001 - every failure is an error answer
            err = as_error(exc, f"invoke {name!r}")
            status = http_status(err)
            agent.metrics.requests.labels("http_invoke", "http", str(status)).inc()
            extra = {"peer_id": err.peer_id} if isinstance(err, E.RemoteError) else {}
            return error_response(err, **extra)
        agent.metrics.requests.labels("http_invoke", "http", "200").inc()
        agent.metrics.latency.labels("http_invoke", "http").observe(time.perf_counter() - t0)
        return response

    app.include_router(create_rpc_router(agent, require_token))  # /a2a, /mcp, agent card

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={
            200: {"description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}},
            404: _err("metrics.enabled is false"),
            **_INTERNAL,
        },
    )
    async def metrics() -> Response:
        if not agent.config.metrics.enabled:
            return error_response(PraxisError(E.NOT_FOUND, "metrics are disabled (metrics.enabled is false)"))
        return Response(agent.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.include_router(ui_router(agent))
    return app


class _Unauthorized(Exception):
    pass

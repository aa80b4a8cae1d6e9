"""JSON-RPC 2.0 plumbing shared by the MCP and A2A dispatchers.  Pure: no I/O.

Every failure becomes an error answer for that one request: a handler never
raises into the transport (an exception there once cost a whole P2P loop, and
over HTTP it cost the kept-alive connection).
"""

from __future__ import annotations

import abc

import json
import logging
from typing import Any

from ..constants import RPC_MAX_JSON_DEPTH
from ..errors import PraxisError, internal, rpc_code
from ..messages import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    ProtocolError,
    parse_rpc_request,
    rpc_error,
    rpc_result,
)

__all__ = ["decode", "too_deep", "request_id", "error_answer", "Dispatcher"]

log = logging.getLogger("agent.rpc")


def decode(raw: bytes) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Decode one HTTP body: ``(request, None)`` or ``(None, error answer)``."""
    try:
        obj = json.loads(raw)
    except RecursionError:
        # The C decoder guards its recursion; deeply nested input lands here.
        return None, rpc_error(None, PARSE_ERROR, "invalid JSON: nested too deeply")
    except (UnicodeDecodeError, ValueError) as e:
        return None, rpc_error(None, PARSE_ERROR, f"invalid JSON: {str(e)[:200]}")
    if isinstance(obj, list):
        return None, rpc_error(None, INVALID_REQUEST, "batch requests are not supported: send one JSON object")
    if not isinstance(obj, dict):
        return None, rpc_error(None, INVALID_REQUEST, f"expected a JSON object, got {type(obj).__name__}")
    return obj, None


def too_deep(obj: Any, limit: int = RPC_MAX_JSON_DEPTH) -> bool:
    """True if ``obj`` nests containers deeper than ``limit``.

    Iterative (the point is to avoid recursion) and it only descends into
    containers, so a flat list of a million numbers costs one pass over it.
    """
    if not isinstance(obj, (dict, list)):
        return False
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
    return False


def request_id(request: Any) -> Any:
    rid = request.get("id") if isinstance(request, dict) else None
    return rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None


def error_answer(rid: Any, exc: BaseException, where: str) -> dict[str, Any]:
    """The error answer for anything a handler raised."""
    if isinstance(exc, ProtocolError):
        return rpc_error(rid, exc.code, exc.message, getattr(exc, "data", None))
    if isinstance(exc, PraxisError):
        return rpc_error(rid, rpc_code(exc), exc.message, {"code": exc.code})
    if isinstance(exc, RecursionError):
        return rpc_error(rid, INVALID_REQUEST, "request nested too deeply")
    err = internal(exc, where)
    return rpc_error(rid, INTERNAL_ERROR, err.message, {"code": err.code})


class Dispatcher(abc.ABC):
    """Method table → coroutine; subclasses fill :meth:`route`."""

    where = "rpc"

    @abc.abstractmethod
    def route(self, method: str, request: dict[str, Any], **context: Any) -> Any:
        """Return ``async fn(params) -> result`` for ``method`` or raise ProtocolError."""

    async def handle(self, request: dict[str, Any], **context: Any) -> dict[str, Any] | None:
        """Answer one decoded JSON-RPC request; ``None`` for a notification.

        ``context`` carries transport facts (e.g. HTTP headers) a dialect
        needs; P2P callers pass none.
        """
        rid = request_id(request)
        try:
            if too_deep(request):
                raise ProtocolError(INVALID_REQUEST, f"request nested deeper than {RPC_MAX_JSON_DEPTH} levels")
            rid, method, params = parse_rpc_request(request)
            fn = self.route(method, request, **context)
            result = await fn(params)
        except Exception as e:  # one request's failure is that request's answer
            if "id" not in request:
                return None
            return error_answer(rid, e, f"{self.where} {str(request.get('method'))[:60]}")
        if "id" not in request:
            return None
        return rpc_result(rid, result)

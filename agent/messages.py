"""Message shapes of the Praxis protocols, and their validation.  Pure: no I/O.

- ``/praxis/tool/1.0.0``: ``{"id", "tool", "arguments"}`` → ``{"id", "result"}``
  or ``{"id", "error": {"code", "message"}}``.
- ``/praxis/mcp/1.0.0`` and ``/praxis/a2a/1.0.0``: JSON-RPC 2.0.
- ``/praxis/card/1.0.0``: one JSON object, the agent card.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "ProtocolError",
    "PARSE_ERROR",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "INVALID_PARAMS",
    "INTERNAL_ERROR",
    "dumps",
    "loads_object",
    "parse_tool_request",
    "tool_result",
    "tool_error",
    "parse_tool_response",
    "parse_rpc_request",
    "rpc_result",
    "rpc_error",
    "validate_card",
]

# JSON-RPC 2.0 error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class ProtocolError(Exception):
    """A message that cannot be served; ``code`` is the JSON-RPC code to answer with."""

    def __init__(self, code: int, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


def dumps(obj: Any) -> bytes:
    """``obj`` as compact UTF-8 JSON: the one encoder for the wire and HTTP answers.

    ``allow_nan=False``: ``NaN``/``Infinity`` are not JSON, and a peer or an
    HTTP client would choke on them; callers turn the ValueError into an error.
    """
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def loads_object(data: bytes) -> dict[str, Any]:
    """Decode one frame as a JSON object, or raise ProtocolError(-32700/-32600)."""
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProtocolError(PARSE_ERROR, f"invalid JSON: {e}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(INVALID_REQUEST, f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _check_id(obj: dict[str, Any]) -> Any:
    rid = obj.get("id")
    if isinstance(rid, bool) or (rid is not None and not isinstance(rid, (str, int))):
        raise ProtocolError(INVALID_REQUEST, "'id' must be a string or an integer")
    return rid


# --- tool protocol ------------------------------------------------------------

def parse_tool_request(obj: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    rid = _check_id(obj)
    if rid is None:
        raise ProtocolError(INVALID_REQUEST, "tool request needs an 'id'")
    tool = obj.get("tool")
    if not isinstance(tool, str) or not tool:
        raise ProtocolError(INVALID_REQUEST, "tool request needs 'tool' (a non-empty string)", rid)
    args = obj.get("arguments", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError(INVALID_REQUEST, "'arguments' must be a JSON object", rid)
    extra = set(obj) - {"id", "tool", "arguments"}
    if extra:
        raise ProtocolError(INVALID_REQUEST, f"unknown field(s) {sorted(extra)} in tool request", rid)
    return rid, tool, args


def tool_result(rid: Any, result: Any) -> dict[str, Any]:
    return {"id": rid, "result": result}


def tool_error(rid: Any, code: str, message: str) -> dict[str, Any]:
    return {"id": rid, "error": {"code": code, "message": message}}


def parse_tool_response(obj: dict[str, Any]) -> tuple[Any, Any, dict[str, str] | None]:
    """Return ``(id, result, error)``; exactly one of result/error is meaningful."""
    rid = obj.get("id")
    if "error" in obj:
        err = obj["error"]
        if not isinstance(err, dict) or not isinstance(err.get("code"), str):
            raise ProtocolError(INVALID_REQUEST, "malformed error in tool response", rid)
        return rid, None, {"code": err["code"], "message": str(err.get("message", ""))}
    if "result" not in obj:
        raise ProtocolError(INVALID_REQUEST, "tool response has neither 'result' nor 'error'", rid)
    return rid, obj["result"], None


# --- JSON-RPC 2.0 ---------------------------------------------------------------

def parse_rpc_request(obj: dict[str, Any]) -> tuple[Any, str, Any]:
    """Validate a JSON-RPC 2.0 request; return ``(id, method, params)``."""
    try:
        rid = _check_id(obj)
    except ProtocolError:
        raise
    if obj.get("jsonrpc") != "2.0":
        raise ProtocolError(INVALID_REQUEST, "'jsonrpc' must be \"2.0\"", rid)
    method = obj.get("method")
    if not isinstance(method, str) or not method:
        raise ProtocolError(INVALID_REQUEST, "'method' must be a non-empty string", rid)
    params = obj.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, (dict, list)):
        raise ProtocolError(INVALID_REQUEST, "'params' must be an object or an array", rid)
    return rid, method, params


def rpc_result(rid: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def rpc_error(rid: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": err}


# --- card ---------------------------------------------------------------------------

_CARD_REQUIRED = {"name": str, "peer_id": str, "role": str}


def validate_card(obj: dict[str, Any]) -> dict[str, Any]:
    """Check the fields we rely on; other fields are kept as the peer sent them."""
    for key, typ in _CARD_REQUIRED.items():
        if not isinstance(obj.get(key), typ):
            raise ProtocolError(INVALID_REQUEST, f"card field '{key}' missing or not a {typ.__name__}")
    tools = obj.get("tools", [])
    if not isinstance(tools, list) or not all(
        isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools
    ):
        raise ProtocolError(INVALID_REQUEST, "card field 'tools' must be a list of {name, ...}")
    return obj

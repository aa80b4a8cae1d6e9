"""The one error vocabulary of the agent.  Pure: no I/O.

Every failure a caller can see has a ``code`` from :data:`CODES`.  Tools raise
:class:`ToolError`; the P2P layer raises :class:`PeerUnavailable`,
:class:`RemoteError` and :class:`CallTimeout`; a call cut short raises
:class:`Cancelled`; an agent shutting down raises :class:`Unavailable`.
Each transport maps from here in one place:

- HTTP: :data:`HTTP_STATUS` (used by the API layer only);
- JSON-RPC (MCP, A2A): :data:`RPC_CODE`;
- P2P tool answers: ``{"id", "error": {"code", "message"}}`` with the same codes.

Error answers are JSON of one shape, ``{"error": {"code", "message", ...}}``,
and never carry local paths, keys or tracebacks: an unforeseen exception
becomes :func:`internal`, whose message names only an incident id that is
also logged next to the traceback.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

__all__ = [
    "CODES",
    "UNKNOWN_TOOL",
    "INVALID_ARGUMENTS",
    "FORBIDDEN",
    "NOT_FOUND",
    "TOO_LARGE",
    "TOOL_FAILED",
    "TIMEOUT",
    "CANCELLED",
    "PEER_UNAVAILABLE",
    "UNAVAILABLE",
    "UNAUTHORIZED",
    "BAD_REQUEST",
    "INTERNAL",
    "PROTOCOL_ERROR",
    "HTTP_STATUS",
    "RPC_CODE",
    "PraxisError",
    "ToolError",
    "RemoteError",
    "PeerUnavailable",
    "CallTimeout",
    "Cancelled",
    "Unavailable",
    "error_body",
    "from_wire",
    "internal",
    "http_status",
    "rpc_code",
    "clip",
    "redact_paths",
]

log = logging.getLogger("agent.errors")

# --- codes -------------------------------------------------------------------
UNKNOWN_TOOL = "unknown_tool"  # no such tool here / on that peer / anywhere
INVALID_ARGUMENTS = "invalid_arguments"  # arguments fail the tool's schema or its checks
FORBIDDEN = "forbidden"  # caller not allowed (role, path outside the roots)
NOT_FOUND = "not_found"  # a file, peer or task that does not exist
TOO_LARGE = "too_large"  # a request or an answer over a size bound
TOOL_FAILED = "tool_failed"  # the tool ran and failed (I/O error, ...)
TIMEOUT = "timeout"  # no answer within the call timeout
CANCELLED = "cancelled"  # the caller cancelled the call
PEER_UNAVAILABLE = "peer_unavailable"  # no usable connection to the peer
UNAVAILABLE = "unavailable"  # this agent cannot serve now (starting, stopping, P2P dead)
UNAUTHORIZED = "unauthorized"  # missing or wrong bearer token
BAD_REQUEST = "bad_request"  # malformed request (not JSON, wrong shape)
INTERNAL = "internal"  # a failure nobody foresaw; see the incident id in the log
PROTOCOL_ERROR = "protocol_error"  # a peer broke the wire protocol

CODES = (
    UNKNOWN_TOOL,
    INVALID_ARGUMENTS,
    FORBIDDEN,
    NOT_FOUND,
    TOO_LARGE,
    TOOL_FAILED,
    TIMEOUT,
    CANCELLED,
    PEER_UNAVAILABLE,
    UNAVAILABLE,
    UNAUTHORIZED,
    BAD_REQUEST,
    INTERNAL,
    PROTOCOL_ERROR,
)

# HTTP status for each code (the API layer's one mapping).
HTTP_STATUS = {
    UNKNOWN_TOOL: 404,
    INVALID_ARGUMENTS: 422,
    FORBIDDEN: 403,
    NOT_FOUND: 404,
    TOO_LARGE: 413,
    TOOL_FAILED: 500,
    TIMEOUT: 504,
    CANCELLED: 499,
    PEER_UNAVAILABLE: 502,
    UNAVAILABLE: 503,
    UNAUTHORIZED: 401,
    BAD_REQUEST: 400,
    INTERNAL: 500,
    PROTOCOL_ERROR: 502,
}

# JSON-RPC error code for each code (MCP and A2A).  -32602 "invalid params"
# and -32601 "method not found" are the standard ones; the rest sit in the
# implementation-defined server-error range -32000..-32099, clear of A2A's
# own -32001..-32009 task errors.
RPC_CODE = {
    UNKNOWN_TOOL: -32602,
    INVALID_ARGUMENTS: -32602,
    FORBIDDEN: -32010,
    NOT_FOUND: -32011,
    TOO_LARGE: -32012,
    TOOL_FAILED: -32013,
    TIMEOUT: -32014,
    CANCELLED: -32015,
    PEER_UNAVAILABLE: -32016,
    UNAVAILABLE: -32017,
    UNAUTHORIZED: -32018,
    BAD_REQUEST: -32600,
    INTERNAL: -32603,
    PROTOCOL_ERROR: -32019,
}

# Error messages quote offending values; keep a hostile 4 MiB argument from
# being echoed back whole.
MAX_MESSAGE_CHARS = 500


# An absolute path, but not a multiaddr (/ip4/…/tcp/…) nor part of a URL.
_ABS_PATH = re.compile(r"(?<![\w:/])/(?!(?:ip4|ip6|dns|dns4|dns6|tcp|udp|p2p)/)(?:[\w.@+-]+/)*[\w.@+-]+")


def redact_paths(text: str) -> str:
    """``text`` with absolute local paths replaced by ``<path>``: for reasons
    that reach an HTTP answer (e.g. /health's) while the log keeps the original."""
    return _ABS_PATH.sub("<path>", text)


def clip(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."


class PraxisError(Exception):
    """Base of every error a caller may see: a ``code`` from :data:`CODES` and a message."""

    code: str = INTERNAL

    def __init__(self, code: str | None = None, message: str = "", **details: Any) -> None:
        code = code or type(self).code
        if code not in HTTP_STATUS:
            # Never raise from an error constructor (that once took a whole P2P
            # loop down): an unknown code is reported as an internal error.
            log.error("unknown error code %r (message %r)", code, message)
            code = INTERNAL
        message = clip(str(message))
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.details}

    def __reduce__(self) -> Any:
        # Subclasses take other constructor arguments; rebuild from state.
        return (_rebuild, (type(self), self.__dict__))


def _rebuild(cls: type, state: dict[str, Any]) -> PraxisError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("code"), state.get("message"))
    err.__dict__.update(state)
    return err


class ToolError(PraxisError):
    """A tool call failed in a way the caller should see."""

    code = TOOL_FAILED


class RemoteError(PraxisError):
    """A peer answered with an error; ``code``/``message`` are the peer's."""

    def __init__(self, peer_id: str, code: str, message: str) -> None:
        super().__init__(code, message)
        self.peer_id = peer_id


class PeerUnavailable(PraxisError):
    """No usable connection to the peer.  ``unsent`` is True when the request
    certainly never left this agent, so it is safe to try another provider."""

    code = PEER_UNAVAILABLE

    def __init__(self, message: str = "peer unavailable", unsent: bool = False) -> None:
        super().__init__(PEER_UNAVAILABLE, message)
        self.unsent = unsent


class CallTimeout(PraxisError):
    code = TIMEOUT

    def __init__(self, message: str = "no answer within the call timeout") -> None:
        super().__init__(TIMEOUT, message)


class Cancelled(PraxisError):
    code = CANCELLED

    def __init__(self, message: str = "the call was cancelled") -> None:
        super().__init__(CANCELLED, message)


class Unavailable(PraxisError):
    code = UNAVAILABLE

    def __init__(self, message: str = "this agent cannot serve now") -> None:
        super().__init__(UNAVAILABLE, message)


def error_body(err: PraxisError, **extra: Any) -> dict[str, Any]:
    """The documented error shape: ``{"error": {"code", "message", ...}, ...extra}``."""
    return {"error": err.to_dict(), **extra}


def from_wire(peer_id: str, error: Any) -> RemoteError:
    """A peer's ``{"code", "message"}`` as a :class:`RemoteError` (codes we do
    not know are kept as ``protocol_error`` rather than trusted)."""
    if not isinstance(error, dict):
        return RemoteError(peer_id, PROTOCOL_ERROR, "malformed error answer")
    code = error.get("code")
    message = error.get("message")
    if not isinstance(code, str) or code not in HTTP_STATUS:
        return RemoteError(peer_id, PROTOCOL_ERROR, f"unknown error code {clip(repr(code), 60)}")
    return RemoteError(peer_id, code, message if isinstance(message, str) else "")


def internal(exc: BaseException, where: str) -> PraxisError:
    """An unforeseen exception as an error answer: logged with its traceback
    under an incident id; the answer carries only the id."""
    incident = uuid.uuid4().hex[:12]
    log.error("internal error in %s (incident %s)", where, incident, exc_info=exc)
    return PraxisError(INTERNAL, f"internal error (incident {incident}); see the agent's log", incident=incident)


def http_status(err: BaseException) -> int:
    if isinstance(err, PraxisError):
        return HTTP_STATUS.get(err.code, 500)
    return 500


def rpc_code(err: BaseException) -> int:
    if isinstance(err, PraxisError):
        return RPC_CODE.get(err.code, -32603)
    return -32603

"""MCP server side: revisions 2024-11-05 … 2025-11-25 (``initialize`` handshake)
and 2026-07-28 (stateless: ``server/discover``, per-request ``_meta``).

No sessions are kept: every request stands alone, so the same dispatcher
answers ``POST /mcp`` and ``/praxis/mcp/1.0.0``.  A request whose
``params._meta`` names a protocol version is a 2026-07-28 request; anything
else is a handshake-era one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..constants import MCP_CACHE_TTL_MS
from ..errors import TIMEOUT, UNKNOWN_TOOL, PraxisError, internal
from ..messages import INVALID_PARAMS, METHOD_NOT_FOUND, ProtocolError
from ._jsonrpc import Dispatcher

__all__ = [
    "McpDispatcher",
    "HANDSHAKE_VERSIONS",
    "MODERN_VERSIONS",
    "MCP_PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "HEADER_MISMATCH",
    "PROTOCOL_VERSION_META",
]

Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]
ListTools = Callable[[], list[dict[str, Any]]]

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
MCP_PROTOCOL_VERSION = HANDSHAKE_VERSIONS[-1]  # what initialize offers when the client's is unknown
PROTOCOL_VERSION_META = "io.modelcontextprotocol/protocolVersion"
SERVER_INFO_META = "io.modelcontextprotocol/serverInfo"
# MCP's own JSON-RPC codes (2026-07-28).
UNSUPPORTED_PROTOCOL_VERSION = -32022
HEADER_MISMATCH = -32020


def _perr(code: int, message: str, data: Any = None) -> ProtocolError:
    err = ProtocolError(code, message)
    err.data = data  # type: ignore[attr-defined]  (read by _jsonrpc.error_answer)
    return err


class McpDispatcher(Dispatcher):
    where = "mcp"

    def __init__(self, name: str, version: str, list_tools: ListTools, invoke: Invoke) -> None:
        self._info = {"name": name, "version": version}
        self._list_tools = list_tools
        self._invoke = invoke
        self._methods: dict[str, Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]] = {
            "initialize": self._initialize,
            "ping": self._ping,
            "server/discover": self._discover,
            "tools/list": self._tools_list,
            "tools/call": self._tools_call,
        }

    def route(self, method: str, request: dict[str, Any], headers: Mapping[str, str] | None = None, **_: Any) -> Any:
        params = request.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        modern = isinstance(meta, dict) and PROTOCOL_VERSION_META in meta
        if modern:
            version = meta[PROTOCOL_VERSION_META]  # type: ignore[index]
            if not isinstance(version, str):
                raise _perr(INVALID_PARAMS, f"_meta['{PROTOCOL_VERSION_META}'] must be a string")
            header = headers.get("mcp-protocol-version") if headers is not None else None
            if header is not None and header != version:
                raise _perr(HEADER_MISMATCH, "MCP-Protocol-Version header does not match _meta's protocol version")
            if version not in MODERN_VERSIONS:
                raise _perr(
                    UNSUPPORTED_PROTOCOL_VERSION,
                    f"protocol version {version[:40]!r} is not supported",
                    {"supported": [*HANDSHAKE_VERSIONS, *MODERN_VERSIONS], "requested": version},
                )
        if method.startswith("notifications/"):
            return self._ping  # nothing to do; the caller gets no answer (no id)
        fn = self._methods.get(method)
        if fn is None or (modern and method == "initialize"):
            raise ProtocolError(METHOD_NOT_FOUND, f"method '{method[:80]}' not found")

        async def call(params: Any) -> dict[str, Any]:
            if not isinstance(params, dict):
                raise ProtocolError(INVALID_PARAMS, f"'{method}' takes named params (an object)")
            result = await fn(params)
            if modern:
                # 2026-07-28: every result says what it is; lists say how
                # long they may be cached (the same for every caller).
                result.setdefault("resultType", "complete")
                if method == "tools/list":
                    result.update(cacheScope="public", ttlMs=MCP_CACHE_TTL_MS)
            return result

        return call

    def _capabilities(self) -> dict[str, Any]:
        return {"tools": {"listChanged": False}}

    async def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        asked = params.get("protocolVersion")
        return {
            "protocolVersion": asked if asked in HANDSHAKE_VERSIONS else MCP_PROTOCOL_VERSION,
            "capabilities": self._capabilities(),
            "serverInfo": dict(self._info),
        }

    async def _discover(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "supportedVersions": [*HANDSHAKE_VERSIONS, *MODERN_VERSIONS],
            "capabilities": self._capabilities(),
            "cacheScope": "public",
            "ttlMs": MCP_CACHE_TTL_MS,
            "_meta": {SERVER_INFO_META: dict(self._info)},
        }

    async def _ping(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _tools_list(self, params: dict[str, Any]) -> dict[str, Any]:
        tools = [
            {k: t[k] for k in ("name", "title", "description", "inputSchema", "outputSchema", "annotations") if k in t}
            for t in self._list_tools()
        ]
        return {"tools": tools}

    async def _tools_call(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        args = params.get("arguments")
        args = {} if args is None else args
        if not isinstance(name, str) or not isinstance(args, dict):
            raise ProtocolError(INVALID_PARAMS, "tools/call needs 'name' (string) and 'arguments' (object)")
        try:
            result = await self._invoke(name, args)
        except PraxisError as e:
            if e.code == UNKNOWN_TOOL:
                # MCP: an unknown tool is a protocol error; everything else a
                # tool did (bad arguments, a peer's failure, a timeout) is a
                # result with isError, so a model can read it and adapt.
                raise ProtocolError(INVALID_PARAMS, f"{e.code}: {e.message}") from None
            return _error_result(e)
        except (asyncio.TimeoutError, TimeoutError) as e:
            return _error_result(PraxisError(TIMEOUT, str(e) or "no answer within the call timeout"))
        except Exception as e:  # noqa: BLE001 - a bug is reported with an incident id, as a tool error
            return _error_result(internal(e, f"mcp tools/call {name[:60]}"))
        structured = result if isinstance(result, dict) else {"result": result}
        return {
            "content": [{"type": "text", "text": json.dumps(result, ensure_ascii=False)}],
            "structuredContent": structured,
            "isError": False,
        }


def _error_result(e: PraxisError) -> dict[str, Any]:
    error = {"code": e.code, "message": e.message}
    peer = getattr(e, "peer_id", None)
    if peer:
        error["peer_id"] = peer
    return {
        "content": [{"type": "text", "text": f"{e.code}: {e.message}"}],
        "structuredContent": {"error": error},
        "isError": True,
    }

"""MCP and A2A JSON-RPC dispatchers.

Framework-neutral: ``handle(request) -> answer | None`` only awaits the
callables it is given, so the same dispatchers serve the trio side
(``/praxis/mcp|a2a/1.0.0`` streams) and the asyncio side (``POST /mcp``,
``POST /a2a``, see ``agent.http_rpc``).  A2A streaming is asyncio-only.

- ``mcp``: MCP 2024-11-05 … 2025-11-25 (initialize) and 2026-07-28 (stateless);
- ``a2a`` + ``a2a_wire``: A2A 1.0 and 0.3 side by side;
- ``tasks``: the bounded A2A task store.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .a2a import A2ADispatcher
from .mcp import MCP_PROTOCOL_VERSION, McpDispatcher
from .tasks import TaskStore

__all__ = ["Invoke", "ListTools", "McpDispatcher", "A2ADispatcher", "TaskStore", "MCP_PROTOCOL_VERSION"]

Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]
ListTools = Callable[[], list[dict[str, Any]]]

"""MCP and A2A JSON-RPC dispatchers.

Framework-neutral: they only ``await`` the callables they are given, so the same
dispatcher serves the trio side (``/praxis/mcp|a2a/1.0.0`` streams) and the
asyncio side (``POST /mcp`` and ``POST /a2a``).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from .messages import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    TASK_NOT_CANCELABLE,
    TASK_NOT_FOUND,
    ProtocolError,
    parse_rpc_request,
    rpc_error,
    rpc_result,
)
from .tools import ToolError

__all__ = ["Invoke", "ListTools", "McpDispatcher", "A2ADispatcher", "TaskStore", "MCP_PROTOCOL_VERSION"]

Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]
ListTools = Callable[[], list[dict[str, Any]]]

MCP_PROTOCOL_VERSION = "2025-06-18"


class _Dispatcher:
    methods: dict[str, str] = {}

    async def handle(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """Answer one decoded JSON-RPC request; ``None`` for a notification."""
        rid = request.get("id") if isinstance(request.get("id"), (str, int)) else None
        try:
            rid, method, params = parse_rpc_request(request)
            name = self.methods.get(method)
            if name is None:
                raise ProtocolError(METHOD_NOT_FOUND, f"method '{method}' not found", rid)
            if not isinstance(params, dict):
                raise ProtocolError(INVALID_PARAMS, f"'{method}' takes named params (an object)", rid)
            result = await getattr(self, name)(params)
        except ProtocolError as e:
            return rpc_error(rid, e.code, e.message)
        except Exception as e:  # a bug must not kill the stream: answer -32603
            return rpc_error(rid, INTERNAL_ERROR, f"internal error: {type(e).__name__}: {e}")
        if "id" not in request:
            return None
        return rpc_result(rid, result)


class McpDispatcher(_Dispatcher):
    methods = {
        "initialize": "_initialize",
        "ping": "_ping",
        "tools/list": "_tools_list",
        "tools/call": "_tools_call",
        "notifications/initialized": "_ping",
    }

    def __init__(self, name: str, version: str, list_tools: ListTools, invoke: Invoke) -> None:
        self._name = name
        self._version = version
        self._list_tools = list_tools
        self._invoke = invoke

    async def _initialize(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "protocolVersion": MCP_PROTOCOL_VERSION,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": self._name, "version": self._version},
        }

    async def _ping(self, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    async def _tools_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"tools": self._list_tools()}

    async def _tools_call(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        args = params.get("arguments", {}) or {}
        if not isinstance(name, str) or not isinstance(args, dict):
            raise ProtocolError(INVALID_PARAMS, "tools/call needs 'name' (string) and 'arguments' (object)")
        try:
            result = await self._invoke(name, args)
        except ToolError as e:
            if e.code in ("unknown_tool", "invalid_arguments"):
                raise ProtocolError(INVALID_PARAMS, f"{e.code}: {e.message}") from None
            # A tool that ran and failed is a tool result with isError, per MCP.
            return {
                "content": [{"type": "text", "text": f"{e.code}: {e.message}"}],
                "isError": True,
            }
        structured = result if isinstance(result, dict) else {"result": result}
        return {
            "content": [{"type": "text", "text": json.dumps(result, ensure_ascii=False)}],
            "structuredContent": structured,
            "isError": False,
        }


_TERMINAL = {"completed", "failed", "canceled", "rejected"}


class TaskStore:
    """A2A tasks, bounded (oldest finished tasks evicted first), thread-safe."""

    def __init__(self, max_tasks: int = 1000) -> None:
        self._tasks: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_tasks

    def create(self, message: dict[str, Any], context_id: str) -> dict[str, Any]:
        task = {
            "kind": "task",
            "id": str(uuid.uuid4()),
            "contextId": context_id,
            "status": {"state": "submitted", "timestamp": _now()},
            "history": [message],
            "artifacts": [],
        }
        with self._lock:
            self._tasks[task["id"]] = task
            while len(self._tasks) > self._max:
                oldest = next(iter(self._tasks))
                self._tasks.pop(oldest)
        return task

    def get(self, task_id: str) -> dict[str, Any] | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return json.loads(json.dumps(task)) if task is not None else None

    def update(self, task_id: str, state: str, **fields: Any) -> dict[str, Any] | None:
        """Move a task to ``state`` unless it is already terminal (e.g. canceled)."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            if task["status"]["state"] not in _TERMINAL:
                task["status"] = {"state": state, "timestamp": _now(), **fields.pop("status_extra", {})}
                for k, v in fields.items():
                    task[k] = v
            return json.loads(json.dumps(task))

    def cancel(self, task_id: str) -> dict[str, Any]:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                raise ProtocolError(TASK_NOT_FOUND, f"task {task_id} not found")
            if task["status"]["state"] in _TERMINAL:
                raise ProtocolError(
                    TASK_NOT_CANCELABLE,
                    f"task {task_id} is {task['status']['state']} and cannot be canceled",
                )
            task["status"] = {"state": "canceled", "timestamp": _now()}
            return json.loads(json.dumps(task))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class A2ADispatcher(_Dispatcher):
    """``message/send`` runs the tool call a message carries as a task.

    The message carries the call as a data part ``{"tool": ..., "arguments": ...}``
    (or a text part holding that JSON); the result becomes the task's artifact.
    """

    methods = {"message/send": "_send", "tasks/get": "_get", "tasks/cancel": "_cancel"}
    _artifact_ids = itertools.count(1)

    def __init__(self, store: TaskStore, invoke: Invoke) -> None:
        self._store = store
        self._invoke = invoke

    async def _send(self, params: dict[str, Any]) -> dict[str, Any]:
        message = params.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
            raise ProtocolError(INVALID_PARAMS, "message/send needs 'message' with a 'parts' list")
        tool, args = _tool_call_of(message)
        context_id = message.get("contextId") or str(uuid.uuid4())
        task = self._store.create(message, context_id)
        self._store.update(task["id"], "working")
        try:
            result = await self._invoke(tool, args)
        except ToolError as e:
            if e.code in ("unknown_tool", "invalid_arguments"):
                done = self._store.update(
                    task["id"], "rejected", status_extra={"message": _agent_text(f"{e.code}: {e.message}")}
                )
            else:
                done = self._store.update(
                    task["id"], "failed", status_extra={"message": _agent_text(f"{e.code}: {e.message}")}
                )
            return done or task
        artifact = {
            "artifactId": f"result-{next(self._artifact_ids)}",
            "name": f"{tool} result",
            "parts": [{"kind": "data", "data": result if isinstance(result, dict) else {"result": result}}],
        }
        done = self._store.update(task["id"], "completed", artifacts=[artifact])
        return done or task

    async def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        task_id = params.get("id")
        if not isinstance(task_id, str):
            raise ProtocolError(INVALID_PARAMS, "tasks/get needs 'id' (string)")
        task = self._store.get(task_id)
        if task is None:
            raise ProtocolError(TASK_NOT_FOUND, f"task {task_id} not found")
        return task

    async def _cancel(self, params: dict[str, Any]) -> dict[str, Any]:
        task_id = params.get("id")
        if not isinstance(task_id, str):
            raise ProtocolError(INVALID_PARAMS, "tasks/cancel needs 'id' (string)")
        return self._store.cancel(task_id)


def _agent_text(text: str) -> dict[str, Any]:
    return {"role": "agent", "kind": "message", "messageId": str(uuid.uuid4()),
            "parts": [{"kind": "text", "text": text}]}


def _tool_call_of(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for part in message["parts"]:
        if not isinstance(part, dict):
            continue
        data = part.get("data") if part.get("kind", "data") == "data" else None
        if data is None and part.get("kind") == "text" and isinstance(part.get("text"), str):
            try:
                data = json.loads(part["text"])
            except json.JSONDecodeError:
                data = None
        if isinstance(data, dict) and isinstance(data.get("tool"), str):
            args = data.get("arguments", {}) or {}
            if not isinstance(args, dict):
                raise ProtocolError(INVALID_PARAMS, "'arguments' in the data part must be an object")
            return data["tool"], args
    raise ProtocolError(
        INVALID_PARAMS,
        "message must carry a data part {\"tool\": name, \"arguments\": {...}} (or a text part with that JSON)",
    )

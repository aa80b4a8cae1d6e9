"""A2A wire shapes, two dialects.  Pure: no I/O.

- **1.0** (``A2A-Version: 1.0``; methods ``SendMessage``, ``GetTask``, …):
  the ProtoJSON form of a2a.proto — parts ``{"data": …}`` / ``{"text": …}``
  with no ``kind``, roles ``ROLE_USER``, states ``TASK_STATE_WORKING``,
  results wrapped by type (``{"task": …}``, ``{"statusUpdate": …}``).
- **0.3** (no header or ``A2A-Version: 0.3``; methods ``message/send``, …):
  objects tagged with ``kind``, roles ``user``, states ``working``, stream
  events ``status-update`` with ``final``.

The store keeps tasks in a neutral shape (see ``agent.rpc.tasks``); these
functions read requests into it and render it back out.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from ..messages import INVALID_PARAMS, ProtocolError
from .tasks import STATES

__all__ = [
    "V1",
    "V03",
    "SUPPORTED_VERSIONS",
    "VERSION_NOT_SUPPORTED",
    "PUSH_NOT_SUPPORTED",
    "EXTENDED_CARD_NOT_CONFIGURED",
    "dialect_of",
    "read_message",
    "tool_call",
    "agent_message",
    "render_task",
    "render_event",
    "render_send_result",
    "read_state",
    "trim_history",
]

V1 = "1.0"
V03 = "0.3"
SUPPORTED_VERSIONS = (V1, V03)
# A2A error codes beyond task-not-found/not-cancelable (see agent.rpc.tasks).
PUSH_NOT_SUPPORTED = -32003
EXTENDED_CARD_NOT_CONFIGURED = -32007
VERSION_NOT_SUPPORTED = -32009

# method → (dialect, operation)
METHODS: dict[str, tuple[str, str]] = {
    "SendMessage": (V1, "send"),
    "SendStreamingMessage": (V1, "stream"),
    "GetTask": (V1, "get"),
    "ListTasks": (V1, "list"),
    "CancelTask": (V1, "cancel"),
    "SubscribeToTask": (V1, "subscribe"),
    "GetExtendedAgentCard": (V1, "extended_card"),
    "CreateTaskPushNotificationConfig": (V1, "push"),
    "GetTaskPushNotificationConfig": (V1, "push"),
    "ListTaskPushNotificationConfigs": (V1, "push"),
    "DeleteTaskPushNotificationConfig": (V1, "push"),
    "message/send": (V03, "send"),
    "message/stream": (V03, "stream"),
    "tasks/get": (V03, "get"),
    "tasks/list": (V03, "list"),
    "tasks/cancel": (V03, "cancel"),
    "tasks/resubscribe": (V03, "subscribe"),
    "agent/getAuthenticatedExtendedCard": (V03, "extended_card"),
    "tasks/pushNotificationConfig/set": (V03, "push"),
    "tasks/pushNotificationConfig/get": (V03, "push"),
    "tasks/pushNotificationConfig/list": (V03, "push"),
    "tasks/pushNotificationConfig/delete": (V03, "push"),
}
STREAMING_OPS = frozenset({"stream", "subscribe"})


def dialect_of(method: str) -> tuple[str, str] | None:
    """``(dialect, operation)`` for a method name: the name decides the dialect
    (the two sets do not overlap), the ``A2A-Version`` header is only checked."""
    return METHODS.get(method)


def _bad(message: str) -> ProtocolError:
    return ProtocolError(INVALID_PARAMS, message)


# --- reading requests ---------------------------------------------------------

def read_message(params: dict[str, Any]) -> dict[str, Any]:
    """The request's ``message`` in the neutral shape (either dialect)."""
    message = params.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("parts"), list):
        raise _bad("needs 'message' with a 'parts' list")
    parts: list[dict[str, Any]] = []
    for part in message["parts"]:
        if not isinstance(part, dict):
            raise _bad("each message part must be an object")
        if "data" in part:
            parts.append({"data": part["data"]})
        elif isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        else:
            parts.append({"text": "(a file part; this agent reads data and text parts only)"})
    role = message.get("role")
    out: dict[str, Any] = {
        "messageId": message["messageId"] if isinstance(message.get("messageId"), str) else str(uuid.uuid4()),
        "role": "agent" if role in ("agent", "ROLE_AGENT") else "user",
        "parts": parts,
    }
    if isinstance(message.get("contextId"), str) and message["contextId"]:
        out["contextId"] = message["contextId"]
    return out


def tool_call(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The tool call a (neutral) message carries: a data part ``{"tool", "arguments"}``,
    or a text part holding that JSON."""
    for part in message["parts"]:
        data = part.get("data")
        if data is None and isinstance(part.get("text"), str):
            try:
                data = json.loads(part["text"])
            except (ValueError, RecursionError):
                data = None
        if isinstance(data, dict) and isinstance(data.get("tool"), str):
            args = data.get("arguments")
            args = {} if args is None else args
            if not isinstance(args, dict):
                raise _bad("'arguments' in the data part must be an object")
            return data["tool"], args
    raise _bad('message must carry a data part {"tool": name, "arguments": {...}} (or a text part with that JSON)')


def read_state(value: Any, dialect: str) -> str | None:
    """A state filter (ListTasks ``status``) in the neutral vocabulary."""
    if value in (None, "", "TASK_STATE_UNSPECIFIED"):
        return None
    if not isinstance(value, str):
        raise _bad("'status' must be a task state")
    state = value[len("TASK_STATE_"):].lower() if value.startswith("TASK_STATE_") else value
    if state not in STATES:
        raise _bad(f"unknown task state {value[:40]!r}")
    return state


# --- rendering ------------------------------------------------------------------

def agent_message(text: str, task_id: str) -> dict[str, Any]:
    """The agent's status message for a task (the store adds the contextId)."""
    return {"messageId": str(uuid.uuid4()), "role": "agent", "parts": [{"text": text}], "taskId": task_id}


def _part(part: dict[str, Any], dialect: str) -> dict[str, Any]:
    if dialect == V1:
        return dict(part)
    if "data" in part:
        data = part["data"]
        return {"kind": "data", "data": data if isinstance(data, dict) else {"value": data}}
    return {"kind": "text", "text": part.get("text", "")}


def _message(msg: dict[str, Any], dialect: str) -> dict[str, Any]:
    out = {k: v for k, v in msg.items() if k in ("messageId", "contextId", "taskId")}
    out["parts"] = [_part(p, dialect) for p in msg.get("parts", [])]
    if dialect == V1:
        out["role"] = "ROLE_AGENT" if msg.get("role") == "agent" else "ROLE_USER"
    else:
        out["role"] = msg.get("role", "user")
        out["kind"] = "message"
    return out


def _status(status: dict[str, Any], dialect: str) -> dict[str, Any]:
    state = status["state"]
    out: dict[str, Any] = {
        "state": f"TASK_STATE_{state.upper()}" if dialect == V1 else state,
        "timestamp": status["timestamp"],
    }
    if status.get("message") is not None:
        out["message"] = _message(status["message"], dialect)
    return out


def _artifact(artifact: dict[str, Any], dialect: str) -> dict[str, Any]:
    out = {k: v for k, v in artifact.items() if k in ("artifactId", "name", "description")}
    out["parts"] = [_part(p, dialect) for p in artifact.get("parts", [])]
    return out


def trim_history(task: dict[str, Any], history_length: Any) -> dict[str, Any]:
    """Apply a request's ``historyLength`` (unset: all; 0: none; n: the last n)."""
    if history_length is None:
        return task
    if isinstance(history_length, bool) or not isinstance(history_length, int) or history_length < 0:
        raise _bad("'historyLength' must be a non-negative integer")
    history = task["history"]
    return {**task, "history": history[len(history) - history_length:] if history_length else []}


def render_task(task: dict[str, Any], dialect: str, include_artifacts: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": task["id"],
        "contextId": task["contextId"],
        "status": _status(task["status"], dialect),
        "history": [_message(m, dialect) for m in task["history"]],
    }
    if include_artifacts:
        out["artifacts"] = [_artifact(a, dialect) for a in task["artifacts"]]
    if dialect == V03:
        out["kind"] = "task"
    return out


def render_send_result(task: dict[str, Any], dialect: str) -> dict[str, Any]:
    """SendMessage's result: 1.0 wraps the task (``{"task": …}``), 0.3 sends it bare."""
    rendered = render_task(task, dialect)
    return {"task": rendered} if dialect == V1 else rendered


def render_event(event: dict[str, Any], dialect: str) -> dict[str, Any]:
    """A store event (``status`` or ``artifact``) as a stream result."""
    ids = {"taskId": event["taskId"], "contextId": event["contextId"]}
    if event["kind"] == "artifact":
        body = {**ids, "artifact": _artifact(event["artifact"], dialect), "append": False, "lastChunk": True}
        return {"artifactUpdate": body} if dialect == V1 else {"kind": "artifact-update", **body}
    body = {**ids, "status": _status(event["status"], dialect)}
    if dialect == V1:
        return {"statusUpdate": body}
    return {"kind": "status-update", **body, "final": bool(event.get("final"))}

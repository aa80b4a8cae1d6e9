"""The A2A task store: bounded in number and in bytes, thread-safe.  No I/O.

Tasks are kept in a wire-neutral shape (``agent.rpc.a2a_wire`` renders them
as A2A 1.0 or 0.3)::

    {"id", "contextId", "status": {"state", "timestamp", "message"?},
     "history": [message], "artifacts": [artifact]}

with states ``submitted working completed failed canceled rejected``.

Bounds: at most ``max_tasks`` tasks and ``max_bytes`` of kept messages and
artifacts; the oldest *finished* tasks go first.  A message or artifact over
``max_part_bytes`` is kept as a short placeholder: its full content reached
the caller once (in the SendMessage answer or on the stream) and is not held
afterwards.  Tasks still running are never evicted; when ``max_tasks`` of
them run at once, new ones are refused (:class:`~agent.errors.Unavailable`).

Listeners (streams) get events through a callable that must be thread-safe
and non-blocking (e.g. ``loop.call_soon_threadsafe(queue.put_nowait, ...)``):
the store calls it under its lock, from whichever thread changed the task.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..constants import A2A_MAX_KEPT_PART_BYTES, A2A_MAX_STORE_BYTES, A2A_MAX_TASKS
from ..errors import Unavailable
from ..messages import INVALID_PARAMS, ProtocolError

__all__ = ["TaskStore", "TERMINAL", "STATES", "TASK_NOT_FOUND", "TASK_NOT_CANCELABLE", "UNSUPPORTED_OPERATION", "now"]

STATES = ("submitted", "working", "completed", "failed", "canceled", "rejected")
TERMINAL = frozenset({"completed", "failed", "canceled", "rejected"})
# A2A JSON-RPC error codes (the same in 0.3 and 1.0).
TASK_NOT_FOUND = -32001
TASK_NOT_CANCELABLE = -32002
UNSUPPORTED_OPERATION = -32004

log = logging.getLogger("agent.rpc.tasks")

Listener = Callable[[dict[str, Any]], None]


def now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def _size(obj: Any) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":")))


def _keepable(obj: dict[str, Any], limit: int) -> tuple[dict[str, Any], int]:
    """``obj`` (a message or an artifact) as it will be kept, and its size."""
    size = _size(obj)
    if size <= limit:
        return obj, size
    note = {"text": f"({size} bytes, not kept: over the task store's bound of {limit} bytes per part)"}
    kept = {**obj, "parts": [note]}
    return kept, _size(kept)


@dataclass
class _Entry:
    task: dict[str, Any]
    seq: int
    size: int
    cancel: Callable[[], None] | None = None
    listeners: list[Listener] = field(default_factory=list)


class TaskStore:
    def __init__(
        self,
        max_tasks: int = A2A_MAX_TASKS,
        max_bytes: int = A2A_MAX_STORE_BYTES,
        max_part_bytes: int = A2A_MAX_KEPT_PART_BYTES,
    ) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.max_tasks, self.max_bytes, self.max_part_bytes = max_tasks, max_bytes, max_part_bytes
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    # ------------------------------------------------------------- changes
    def create(self, message: dict[str, Any], context_id: str) -> dict[str, Any]:
        task_id = str(uuid.uuid4())
        kept, size = _keepable({**message, "taskId": task_id, "contextId": context_id}, self.max_part_bytes)
        created = now()
        task = {
            "id": task_id,
            "contextId": context_id,
            "status": {"state": "submitted", "timestamp": created},
            "history": [kept],
            "artifacts": [],
            # A2A lets a task carry free-form metadata: when it was created, so
            # its duration can be told once later statuses replace this one.
            "metadata": {"createdAt": created},
        }
        with self._lock:
            running = sum(1 for e in self._entries.values() if e.task["status"]["state"] not in TERMINAL)
            if running >= self.max_tasks:
                raise Unavailable(f"{running} tasks are in progress; try again when some have finished")
            self._entries[task_id] = _Entry(task, next(self._seq), size)
            self.bytes += size
            self._evict()
            return _copy(task)

    def set_cancel(self, task_id: str, cancel: Callable[[], None]) -> None:
        """Register how to stop the running call (thread-safe callable)."""
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is not None:
                entry.cancel = cancel

    def update(
        self,
        task_id: str,
        state: str,
        message: dict[str, Any] | None = None,
        artifact: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Move a task to ``state`` unless it is already finished (e.g.
        canceled meanwhile); tell listeners.  Returns the task as kept, or
        None if it is gone or was already finished."""
        with self._lock:
            entry = self._entries.get(task_id)
            if entry is None or entry.task["status"]["state"] in TERMINAL:
                return None
            task = entry.task
            if artifact is not None:
                kept, size = _keepable(artifact, self.max_part_bytes)
                task["artifacts"] = [*task["artifacts"], kept]
                entry.size += size
                self.bytes += size
                self._emit(entry, {"kind": "artifact", "artifact": artifact})
            status: dict[str, Any] = {"state": state, "timestamp": now()}
            if message is not None:
                status["message"] = {**message, "contextId": task["contextId"]}
            task["status"] = status
            final = state in TERMINAL
            self._emit(entry, {"kind": "status", "status": status, "final": final})
            if final:
                entry.cancel = None
                entry.listeners = []
                self._evict()
            return _copy(task)

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Mark a running task canceled and stop its call."""
        with self._lock:
            entry = self._get(task_id)
            state = entry.task["status"]["state"]
            if state in TERMINAL:
                raise ProtocolError(TASK_NOT_CANCELABLE, f"task {task_id} is {state} and cannot be canceled")
            stop = entry.cancel
            status = {"state": "canceled", "timestamp": now()}
            entry.task["status"] = status
            self._emit(entry, {"kind": "status", "status": status, "final": True})
            entry.cancel = None
            entry.listeners = []
            task = _copy(entry.task)
        if stop is not None:
            try:
                stop()
            except Exception:  # noqa: BLE001 - its loop is gone: nothing left to stop
                log.warning("could not stop the call of canceled task %s", task_id, exc_info=True)
        return task

    # ------------------------------------------------------------- reading
    def get(self, task_id: str) -> dict[str, Any]:
        with self._lock:
            return _copy(self._get(task_id).task)

    def subscribe(self, task_id: str, listener: Listener) -> tuple[dict[str, Any], Callable[[], None]]:
        """The task now, and (if it is still running) ``listener`` gets every
        later event until the final one.  Returns ``(task, unsubscribe)``."""
        with self._lock:
            entry = self._get(task_id)
            if entry.task["status"]["state"] not in TERMINAL:
                entry.listeners.append(listener)
            task = _copy(entry.task)

        def unsubscribe() -> None:
            with self._lock:
                if listener in entry.listeners:
                    entry.listeners.remove(listener)

        return task, unsubscribe

    def list(
        self,
        *,
        context_id: str | None = None,
        state: str | None = None,
        page_size: int,
        page_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str, int]:
        """Newest first.  The page token is the sequence number of the last
        task of the previous page, so pages stay stable while tasks are added.
        Returns ``(tasks, next_page_token or "", total matching)``."""
        after: int | None = None
        if page_token:
            try:
                after = int(page_token)
            except ValueError:
                raise ProtocolError(INVALID_PARAMS, "invalid pageToken") from None
        with self._lock:
            matching = [
                e
                for e in reversed(self._entries.values())
                if (context_id is None or e.task["contextId"] == context_id)
                and (state is None or e.task["status"]["state"] == state)
            ]
            total = len(matching)
            if after is not None:
                matching = [e for e in matching if e.seq < after]
            page = matching[:page_size]
            more = len(matching) > page_size
            return [_copy(e.task) for e in page], (str(page[-1].seq) if more and page else ""), total

    # ------------------------------------------------------------- internals
    def _get(self, task_id: str) -> _Entry:
        entry = self._entries.get(task_id) if isinstance(task_id, str) else None
        if entry is None:
            raise ProtocolError(TASK_NOT_FOUND, f"task {str(task_id)[:80]} not found")
        return entry

    def _emit(self, entry: _Entry, event: dict[str, Any]) -> None:
        event = {**event, "taskId": entry.task["id"], "contextId": entry.task["contextId"]}
        for listener in list(entry.listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a dead stream must not stop the task
                entry.listeners.remove(listener)

    def _evict(self) -> None:
        """Drop the oldest finished tasks while over a bound (lock held)."""
        if len(self._entries) <= self.max_tasks and self.bytes <= self.max_bytes:
            return
        for task_id in list(self._entries):
            if len(self._entries) <= self.max_tasks and self.bytes <= self.max_bytes:
                break
            entry = self._entries[task_id]
            if entry.task["status"]["state"] in TERMINAL:
                del self._entries[task_id]
                self.bytes -= entry.size


def _copy(task: dict[str, Any]) -> dict[str, Any]:
    # Kept messages/artifacts are never mutated in place (update replaces
    # the lists), so a shallow copy of the containers is a stable snapshot.
    return {**task, "status": dict(task["status"]), "history": list(task["history"]),
            "artifacts": list(task["artifacts"])}

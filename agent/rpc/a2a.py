"""A2A server side, 1.0 and 0.3 side by side (see ``a2a_wire`` for the shapes).

A message carries one tool call (a data part ``{"tool", "arguments"}``); it
becomes a task that runs ``invoke`` (the router: here or on a worker over
P2P).  The task's result is its artifact; a tool error makes it ``failed``
with the error as its status message.

Where the call runs:

- On the asyncio side (``POST /a2a``) every task runs as its own asyncio task,
  so a blocking ``SendMessage`` whose client goes away leaves the task
  running, ``returnImmediately`` / ``blocking: false`` answers at once, and
  ``CancelTask`` cancels the asyncio task running ``invoke`` (the P2P layer
  carries that cancellation to the worker).
- On the trio side (``/praxis/a2a/1.0.0``) there is no nursery to run it in
  the background, so the call runs inline within a cancel scope that
  ``CancelTask`` (from either side) cancels; streaming methods are HTTP-only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ..constants import A2A_LIST_DEFAULT_PAGE, A2A_LIST_MAX_PAGE, RPC_MAX_JSON_DEPTH, SSE_KEEPALIVE_S
from ..errors import INVALID_ARGUMENTS, TIMEOUT, UNKNOWN_TOOL, PraxisError, internal
from ..messages import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, ProtocolError, parse_rpc_request, rpc_result
from . import a2a_wire as wire
from ._jsonrpc import Dispatcher, error_answer, request_id, too_deep
from .tasks import TERMINAL, UNSUPPORTED_OPERATION, TaskStore

__all__ = ["A2ADispatcher"]

Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]


def _in_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def check_version(header: str | None) -> None:
    """``A2A-Version`` must name a version we speak (missing means 0.3)."""
    if header is None or header == "":
        return
    major_minor = ".".join(header.strip().split(".")[:2])
    if major_minor not in wire.SUPPORTED_VERSIONS:
        raise ProtocolError(
            wire.VERSION_NOT_SUPPORTED,
            f"A2A version {header[:20]!r} is not supported (supported: {', '.join(wire.SUPPORTED_VERSIONS)})",
        )


def _named(params: Any, method: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise ProtocolError(INVALID_PARAMS, f"'{method}' takes named params (an object)")
    return params


class A2ADispatcher(Dispatcher):
    where = "a2a"

    def __init__(self, store: TaskStore, invoke: Invoke) -> None:
        self.store = store
        self._invoke = invoke
        self._running: set[asyncio.Task[Any]] = set()  # strong refs to background tasks

    # ---------------------------------------------------------------- routing
    def _resolve(self, method: str, a2a_version: str | None) -> tuple[str, str]:
        found = wire.dialect_of(method)
        if found is None:
            raise ProtocolError(METHOD_NOT_FOUND, f"method '{method[:80]}' not found")
        check_version(a2a_version)
        dialect, op = found
        if op == "push":
            raise ProtocolError(wire.PUSH_NOT_SUPPORTED, "push notifications are not supported; stream or poll")
        if op == "extended_card":
            raise ProtocolError(wire.EXTENDED_CARD_NOT_CONFIGURED, "there is no extended agent card")
        return dialect, op

    def is_streaming(self, method: Any) -> bool:
        found = wire.dialect_of(method) if isinstance(method, str) else None
        return found is not None and found[1] in wire.STREAMING_OPS

    def route(self, method: str, request: dict[str, Any], a2a_version: str | None = None, **_: Any) -> Any:
        dialect, op = self._resolve(method, a2a_version)
        if op in wire.STREAMING_OPS:
            raise ProtocolError(
                UNSUPPORTED_OPERATION, f"'{method}' streams over HTTP only (POST /a2a, answered as text/event-stream)"
            )
        fn = getattr(self, f"_{op}")

        async def call(params: Any) -> Any:
            return await fn(_named(params, method), dialect)

        return call

    # --------------------------------------------------------------- running
    async def _execute(self, task_id: str, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any], Any] | None:
        """Run the call and record the outcome.  Returns ``(task, full
        artifact or None)``, or None if the task was finished (canceled) first."""
        if self.store.update(task_id, "working") is None:
            return None
        try:
            result = await self._invoke(tool, args)
        except PraxisError as e:
            return self._fail(task_id, e), None
        except (asyncio.TimeoutError, TimeoutError) as e:
            return self._fail(task_id, PraxisError(TIMEOUT, str(e) or "no answer within the call timeout")), None
        except Exception as e:  # noqa: BLE001 - a bug fails this task only
            return self._fail(task_id, internal(e, f"a2a task {tool[:60]}")), None
        except BaseException:
            # Cancelled (asyncio or trio): CancelTask has marked it already;
            # anything else that cancels us (shutdown) leaves it canceled too.
            self.store.update(task_id, "canceled")
            raise
        artifact = {
            "artifactId": str(uuid.uuid4()),
            "name": f"{tool} result",
            "parts": [{"data": result if isinstance(result, dict) else {"result": result}}],
        }
        done = self.store.update(task_id, "completed", artifact=artifact)
        return (done, artifact) if done is not None else None

    def _fail(self, task_id: str, e: PraxisError) -> dict[str, Any] | None:
        text = f"{e.code}: {e.message}"
        peer = getattr(e, "peer_id", None)
        if peer:
            text += f" (peer {peer})"
        # A call the agent refused (no such tool, bad arguments) is rejected;
        # one that ran, or was routed, and failed is failed.
        state = "rejected" if e.code in (UNKNOWN_TOOL, INVALID_ARGUMENTS) else "failed"
        return self.store.update(task_id, state, message=wire.agent_message(text, task_id))

    def _spawn(self, task_id: str, tool: str, args: dict[str, Any]) -> asyncio.Task[Any]:
        loop = asyncio.get_running_loop()
        t = loop.create_task(self._execute(task_id, tool, args), name=f"a2a-task-{task_id}")
        self._running.add(t)
        t.add_done_callback(self._running.discard)
        self.store.set_cancel(task_id, lambda: loop.call_soon_threadsafe(t.cancel))
        return t

    async def _run_inline_trio(self, task_id: str, tool: str, args: dict[str, Any]) -> Any:
        import trio  # the P2P side; imported here so the asyncio side never needs it

        token = trio.lowlevel.current_trio_token()
        out = None
        with trio.CancelScope() as scope:
            self.store.set_cancel(task_id, lambda: token.run_sync_soon(scope.cancel))
            out = await self._execute(task_id, tool, args)
        return out

    def _begin(self, params: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
        message = wire.read_message(params)
        tool, args = wire.tool_call(message)
        task = self.store.create(message, message.get("contextId") or str(uuid.uuid4()))
        return task, tool, args

    # ------------------------------------------------------------ operations
    async def _send(self, params: dict[str, Any], dialect: str) -> dict[str, Any]:
        config = params.get("configuration") or {}
        if not isinstance(config, dict):
            raise ProtocolError(INVALID_PARAMS, "'configuration' must be an object")
        if dialect == wire.V1:
            blocking = not config.get("returnImmediately", False)
        else:
            blocking = config.get("blocking", True) is not False
        history_length = config.get("historyLength")
        wire.trim_history({"history": []}, history_length)  # validate before starting anything
        task, tool, args = self._begin(params)
        task_id = task["id"]
        if _in_asyncio():
            t = self._spawn(task_id, tool, args)
            if not blocking:
                # Yield once so the task is marked working before we answer.
                await asyncio.sleep(0)
                return wire.render_send_result(wire.trim_history(self._current(task), history_length), dialect)
            # asyncio.wait does not cancel t if this request is cancelled
            # (client gone): the task runs on and can be fetched later.
            await asyncio.wait({t})
            out = None if t.cancelled() else t.result()
        else:
            out = await self._run_inline_trio(task_id, tool, args)
        if out is None or out[0] is None:
            done = self._current(task)
        else:
            done, artifact = out
            if artifact is not None:
                # The store may keep only a placeholder; this answer has it whole.
                done = {**done, "artifacts": [*done["artifacts"][:-1], artifact]}
        return wire.render_send_result(wire.trim_history(done, history_length), dialect)

    def _current(self, fallback: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.store.get(fallback["id"])
        except ProtocolError:  # evicted already (store full of newer tasks)
            return fallback

    async def _get(self, params: dict[str, Any], dialect: str) -> dict[str, Any]:
        task_id = params.get("id")
        if not isinstance(task_id, str):
            raise ProtocolError(INVALID_PARAMS, "needs 'id' (string)")
        task = wire.trim_history(self.store.get(task_id), params.get("historyLength"))
        return wire.render_task(task, dialect)

    async def _cancel(self, params: dict[str, Any], dialect: str) -> dict[str, Any]:
        task_id = params.get("id")
        if not isinstance(task_id, str):
            raise ProtocolError(INVALID_PARAMS, "needs 'id' (string)")
        return wire.render_task(self.store.cancel(task_id), dialect)

    async def _list(self, params: dict[str, Any], dialect: str) -> dict[str, Any]:
        size = params.get("pageSize", A2A_LIST_DEFAULT_PAGE)
        if size in (None, 0):
            size = A2A_LIST_DEFAULT_PAGE
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= A2A_LIST_MAX_PAGE:
            raise ProtocolError(INVALID_PARAMS, f"'pageSize' must be an integer from 1 to {A2A_LIST_MAX_PAGE}")
        token = params.get("pageToken")
        context_id = params.get("contextId")
        if token is not None and not isinstance(token, str) or context_id is not None and not isinstance(context_id, str):
            raise ProtocolError(INVALID_PARAMS, "'pageToken' and 'contextId' must be strings")
        include = params.get("includeArtifacts", dialect == wire.V03)
        tasks, next_token, total = self.store.list(
            context_id=context_id or None,
            state=wire.read_state(params.get("status"), dialect),
            page_size=size,
            page_token=token or None,
        )
        history_length = params.get("historyLength")
        return {
            "tasks": [wire.render_task(wire.trim_history(t, history_length), dialect, bool(include)) for t in tasks],
            "nextPageToken": next_token,
            "pageSize": size,
            "totalSize": total,
        }

    # -------------------------------------------------------------- streaming
    async def stream(self, request: dict[str, Any], a2a_version: str | None = None) -> AsyncIterator[dict[str, Any] | None]:
        """Answers for ``SendStreamingMessage`` / ``SubscribeToTask`` (and the
        0.3 names), one per SSE event; ``None`` means "nothing new yet" (the
        HTTP layer sends a keep-alive comment).  Ends after the final status.
        Asyncio side only."""
        rid = request_id(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        def listener(event: dict[str, Any]) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        unsubscribe: Callable[[], None] | None = None
        try:
            try:
                if too_deep(request):
                    raise ProtocolError(INVALID_REQUEST, f"request nested deeper than {RPC_MAX_JSON_DEPTH} levels")
                rid, method, params = parse_rpc_request(request)
                dialect, op = self._resolve(method, a2a_version)
                params = _named(params, method)
                if op == "stream":
                    task, tool, args = self._begin(params)
                    # Listen before starting, so no event is missed.
                    task, unsubscribe = self.store.subscribe(task["id"], listener)
                    self._spawn(task["id"], tool, args)
                    first = wire.render_send_result(task, dialect)
                elif op == "subscribe":
                    task_id = params.get("id")
                    if not isinstance(task_id, str):
                        raise ProtocolError(INVALID_PARAMS, "needs 'id' (string)")
                    task, unsubscribe = self.store.subscribe(task_id, listener)
                    if task["status"]["state"] in TERMINAL:
                        raise ProtocolError(
                            UNSUPPORTED_OPERATION, f"task {task_id} is {task['status']['state']}: nothing to stream"
                        )
                    first = wire.render_send_result(task, dialect)
                else:
                    raise ProtocolError(INVALID_REQUEST, f"'{method}' does not stream; send it without SSE")
            except Exception as e:  # noqa: BLE001 - one error event, then the stream ends
                yield error_answer(rid, e, "a2a stream")
                return
            yield rpc_result(rid, first)
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), SSE_KEEPALIVE_S)
                except asyncio.TimeoutError:
                    yield None
                    continue
                yield rpc_result(rid, wire.render_event(event, dialect))
                if event["kind"] == "status" and event.get("final"):
                    return
        finally:
            if unsubscribe is not None:
                unsubscribe()

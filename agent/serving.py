"""The serving side of the Praxis request protocols (tool, MCP, A2A), on trio.

Containment by design: every request runs in its own scope, and whatever it
raises becomes an error answer for that request alone; the stream, the
connection and the loop keep serving.  Answers are checked before they are
sent: one that is not valid JSON or is over the frame limit is replaced by an
error answer for the same id instead of breaking the stream.

A caller that gives up sends ``{"id": <id>, "cancel": true}`` on the same
stream; the request with that id is cancelled (a tool running in a worker
thread is abandoned, see agent.execution) and gets no answer.

No libp2p here: a stream is anything with ``read``/``write``/``close``/``reset``
(see :class:`agent.p2p._streams.FramedStream`), so this module is unit tested
over ``trio.testing.memory_stream_pair``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

import trio

from . import constants as C
from . import errors
from .errors import FORBIDDEN, PraxisError
from .execution import ToolExecutor, check_size, encode_json
from .framing import FrameError
from .messages import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ProtocolError,
    loads_object,
    parse_rpc_request,
    parse_tool_request,
    rpc_error,
    tool_error,
    tool_result,
)

__all__ = ["Endpoint", "ToolEndpoint", "RpcEndpoint", "Authorizer", "serve_stream", "is_cancel_frame"]

log = logging.getLogger("agent.serving")

# Observer of finished requests: (protocol, outcome, started_at perf_counter).
Observe = Callable[[str, str, float], None]
# None if the caller may send tasks, else the reason it may not.
Authorize = Callable[[str], "str | None"]


class Endpoint(Protocol):
    """What one protocol contributes to :func:`serve_stream`."""

    proto: str

    async def handle(self, caller: str, request: dict[str, Any]) -> dict[str, Any] | None:
        """The answer to one request (None: no answer).  May raise anything."""

    def error_answer(self, request_id: Any, err: PraxisError) -> dict[str, Any]:
        """``err`` as this protocol's error answer."""

    def bad_input(self, err: ProtocolError) -> dict[str, Any] | None:
        """The answer to garbage, sent before the stream is reset."""


def _request_id(obj: dict[str, Any]) -> Any:
    rid = obj.get("id")
    return rid if isinstance(rid, (str, int)) and not isinstance(rid, bool) else None


def is_cancel_frame(obj: dict[str, Any]) -> bool:
    return obj.get("cancel") is True and set(obj) == {"id", "cancel"}


def cancel_frame(request_id: Any) -> dict[str, Any]:
    return {"id": request_id, "cancel": True}


class Authorizer:
    """``p2p.security.accept_tasks_from`` against the caller's verified role."""

    def __init__(self, allowed: list[str] | None, role_of: Callable[[str], str | None],
                 on_refused: Callable[[], None] = lambda: None) -> None:
        self._allowed = allowed
        self._role_of = role_of
        self._on_refused = on_refused

    def __call__(self, caller: str) -> str | None:
        if self._allowed is None:
            return None
        role = self._role_of(caller)
        if role in self._allowed:
            return None
        self._on_refused()
        return f"peer {caller} (verified role {role or 'unknown'}) may not send tasks: accept_tasks_from={self._allowed}"


class ToolEndpoint:
    """``/praxis/tool/1.0.0``: ``{"id","tool","arguments"}`` → result or error."""

    proto = C.TOOL_PROTOCOL

    def __init__(self, executor: ToolExecutor, authorize: Authorize, observe: Observe) -> None:
        self._exec = executor
        self._authorize = authorize
        self._observe = observe

    async def handle(self, caller: str, request: dict[str, Any]) -> dict[str, Any]:
        t0 = time.perf_counter()
        rid, tool, args = parse_tool_request(request)
        denied = self._authorize(caller)
        outcome = errors.INTERNAL  # unless it ends otherwise
        try:
            if denied:
                raise PraxisError(FORBIDDEN, denied)
            answer = tool_result(rid, await self._exec.run(tool, args))
            outcome = "ok"
            return answer
        except PraxisError as e:
            outcome = e.code
            raise
        except trio.Cancelled:
            outcome = errors.CANCELLED
            raise
        finally:
            self._observe(self.proto, outcome, t0)

    def error_answer(self, request_id: Any, err: PraxisError) -> dict[str, Any]:
        return {"id": request_id, "error": err.to_dict()}

    def bad_input(self, err: ProtocolError) -> dict[str, Any]:
        self._observe(self.proto, "bad_request", time.perf_counter())
        return tool_error(err.request_id, errors.BAD_REQUEST, err.message)


class RpcEndpoint:
    """``/praxis/mcp|a2a/1.0.0``: JSON-RPC 2.0 through a dispatcher's ``handle``."""

    # Methods anybody connected may call: they reveal nothing and run nothing.
    OPEN_METHODS = ("ping", "initialize")

    def __init__(self, proto: str, dispatcher: Any, authorize: Authorize, observe: Observe) -> None:
        self.proto = proto
        self._dispatcher = dispatcher
        self._authorize = authorize
        self._observe = observe

    async def handle(self, caller: str, request: dict[str, Any]) -> dict[str, Any] | None:
        t0 = time.perf_counter()
        rid, method, _ = parse_rpc_request(request)
        denied = self._authorize(caller) if method not in self.OPEN_METHODS else None
        if denied:
            self._observe(self.proto, "forbidden", t0)
            return rpc_error(rid, errors.RPC_CODE[FORBIDDEN], denied)
        outcome = "error"
        try:
            answer = await self._dispatcher.handle(request)
            outcome = "error" if answer and "error" in answer else "ok"
            return answer
        finally:
            self._observe(self.proto, outcome, t0)

    def error_answer(self, request_id: Any, err: PraxisError) -> dict[str, Any]:
        data = {"code": err.code, **err.details}
        return rpc_error(request_id, errors.rpc_code(err), err.message, data)

    def bad_input(self, err: ProtocolError) -> dict[str, Any]:
        self._observe(self.proto, "bad_request", time.perf_counter())
        return rpc_error(err.request_id, err.code, err.message)


async def serve_stream(framed: Any, endpoint: Endpoint, caller: str, where: str) -> None:
    """Serve pipelined requests on one stream until it ends; never raises.

    Each request runs as its own task with its own cancel scope; answers are
    written as they finish.  Garbage (bad frame, bad JSON, wrong shape) gets
    ``bad_input``'s answer, then the stream is reset.  An exception nobody
    foresaw in the stream machinery itself ends this stream only.
    """
    try:
        await _serve(framed, endpoint, caller, where)
    except Exception as e:  # noqa: BLE001 - containment: this stream only
        errors.internal(e, where)
        await framed.reset()


async def _serve(framed: Any, endpoint: Endpoint, caller: str, where: str) -> None:
    limiter = trio.Semaphore(C.MAX_INFLIGHT_PER_STREAM)
    inflight: dict[Any, trio.CancelScope] = {}
    limit = framed.limit

    def encoded(rid: Any, answer: dict[str, Any]) -> bytes:
        try:
            return check_size(encode_json(answer), limit)
        except PraxisError as e:
            log.warning("Answer on %s replaced by an error: %s", where, e.message)
            return check_size(encode_json(endpoint.error_answer(rid, e)), limit)

    async def one(request: dict[str, Any]) -> None:
        rid = _request_id(request)
        scope = trio.CancelScope()
        if rid is not None:
            inflight[rid] = scope
        try:
            with scope:
                try:
                    answer = await endpoint.handle(caller, request)
                except ProtocolError as e:
                    await refuse(e)
                    return
                except PraxisError as e:
                    answer = endpoint.error_answer(rid, e)
                except Exception as e:  # noqa: BLE001 - per-request containment
                    answer = endpoint.error_answer(rid, errors.internal(e, where))
                if answer is None:
                    return
                data = encoded(rid, answer)
            if scope.cancelled_caught:
                return
            try:
                await framed.write_frame(data)
            except Exception as e:  # noqa: BLE001 - the caller went away; nothing to answer to
                log.debug("Answer on %s not written: %s", where, e)
        finally:
            if rid is not None and inflight.get(rid) is scope:
                del inflight[rid]
            limiter.release()

    async def refuse(err: ProtocolError) -> None:
        log.warning("Bad request on %s: %s (stream reset)", where, err.message)
        try:
            answer = endpoint.bad_input(err)
            if answer is not None:
                with trio.move_on_after(C.REFUSAL_WRITE_TIMEOUT):
                    await framed.write_frame(encoded(err.request_id, answer))
        except Exception:  # noqa: BLE001 - the stream is being reset anyway
            pass
        await framed.reset()
        nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        while True:
            try:
                frame = await framed.read_frame()
            except FrameError as e:
                await refuse(ProtocolError(INVALID_REQUEST if "limit" in str(e) else PARSE_ERROR, str(e)))
                return
            if frame is None:
                break
            try:
                request = loads_object(frame)
            except ProtocolError as e:
                await refuse(e)
                return
            except RecursionError:
                await refuse(ProtocolError(PARSE_ERROR, "invalid JSON: nested too deeply"))
                return
            if is_cancel_frame(request):
                scope = inflight.get(_request_id(request))
                if scope is not None:
                    scope.cancel()
                continue
            await limiter.acquire()
            nursery.start_soon(one, request)
    await framed.close()


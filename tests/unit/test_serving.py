"""The serving loop over in-memory streams (no sockets): whatever one request
does, the next honest request on the same stream is answered."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest
import trio
import trio.testing

from agent import errors
from agent.errors import PraxisError, ToolError
from agent.execution import ToolExecutor, encode_json
from agent.messages import dumps
from agent.p2p._streams import FramedStream
from agent.serving import RpcEndpoint, ToolEndpoint, serve_stream
from agent.tools import Tool, ToolRegistry

LIMIT = 64 * 1024


class MemStream:
    """A trio memory stream with the libp2p stream methods FramedStream uses."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._s = stream

    async def read(self, n: int) -> bytes:
        try:
            return await self._s.receive_some(n)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return b""

    async def write(self, data: bytes) -> None:
        await self._s.send_all(data)

    async def close(self) -> None:
        await self._s.aclose()

    async def reset(self) -> None:
        await self._s.aclose()


class Probe:
    """An endpoint whose requests say what to do: ``{"id", "op", ...}``."""

    proto = "/test/1.0.0"

    def __init__(self) -> None:
        self.cancelled: list[Any] = []

    async def handle(self, caller: str, request: dict[str, Any]) -> dict[str, Any] | None:
        op = request.get("op")
        rid = request.get("id")
        if op == "echo":
            return {"id": rid, "result": request.get("value")}
        if op == "value_error":
            raise ValueError("/secret/path/of/the/agent")
        if op == "recursion":
            def down(n: int) -> int:
                return down(n + 1)
            down(0)
        if op == "tool_error":
            raise ToolError(errors.NOT_FOUND, "no such file: a.txt")
        if op == "oversize":
            return {"id": rid, "result": "x" * (LIMIT + 10)}
        if op == "nan":
            return {"id": rid, "result": [math.nan, math.inf]}
        if op == "surrogate":
            return {"id": rid, "result": "latin1-\udce9.txt"}
        if op == "silent":
            return None
        if op == "hang":
            try:
                await trio.sleep_forever()
            except trio.Cancelled:
                self.cancelled.append(rid)
                raise
        raise AssertionError(f"unknown op {op!r}")

    def error_answer(self, request_id: Any, err: PraxisError) -> dict[str, Any]:
        return {"id": request_id, "error": err.to_dict()}

    def bad_input(self, err: Any) -> dict[str, Any]:
        return {"id": err.request_id, "error": {"code": "bad_request", "message": err.message}}


async def _session(endpoint: Any, script: Any) -> None:
    """Run ``serve_stream`` on one end and ``script(client)`` on the other."""
    a, b = trio.testing.memory_stream_pair()
    server = FramedStream(MemStream(a), LIMIT)
    client = FramedStream(MemStream(b), LIMIT * 4)
    async with trio.open_nursery() as n:
        n.start_soon(serve_stream, server, endpoint, "peer-x", "test stream")
        with trio.fail_after(10):
            await script(client)
        await client.close()


async def _call(client: FramedStream, obj: dict[str, Any]) -> dict[str, Any]:
    await client.write_frame(dumps(obj))
    answer = await client.read_json()
    assert answer is not None, "stream closed instead of an answer"
    return answer


@pytest.mark.parametrize(
    "op, code",
    [
        ("value_error", errors.INTERNAL),
        ("recursion", errors.INTERNAL),
        ("tool_error", errors.NOT_FOUND),
        ("oversize", errors.TOO_LARGE),
        ("nan", errors.INVALID_ARGUMENTS),
        ("surrogate", errors.TOOL_FAILED),
    ],
)
def test_a_failing_request_gets_an_error_answer_and_the_stream_keeps_serving(op: str, code: str) -> None:
    async def script(client: FramedStream) -> None:
        answer = await _call(client, {"id": 7, "op": op})
        assert answer["id"] == 7 and answer["error"]["code"] == code, answer
        assert "/secret/path" not in answer["error"]["message"]
        assert await _call(client, {"id": 8, "op": "echo", "value": "still here"}) == {"id": 8, "result": "still here"}

    trio.run(_session, Probe(), script)


def test_an_internal_error_names_an_incident_not_the_exception() -> None:
    async def script(client: FramedStream) -> None:
        err = (await _call(client, {"id": 1, "op": "value_error"}))["error"]
        assert err["incident"] in err["message"] and "ValueError" not in err["message"]

    trio.run(_session, Probe(), script)


def test_a_cancel_frame_stops_that_request_alone() -> None:
    probe = Probe()

    async def script(client: FramedStream) -> None:
        await client.write_frame(dumps({"id": 1, "op": "hang"}))
        await client.write_frame(dumps({"id": 2, "op": "hang"}))
        await client.write_frame(dumps({"id": 1, "cancel": True}))
        # Answers come in order of completion: the echo's is the first one.
        assert await _call(client, {"id": 3, "op": "echo", "value": 3}) == {"id": 3, "result": 3}
        await client.write_frame(dumps({"id": 2, "cancel": True}))
        await client.write_frame(dumps({"id": 99, "cancel": True}))  # unknown id: ignored
        assert await _call(client, {"id": 4, "op": "echo", "value": 4}) == {"id": 4, "result": 4}
        assert probe.cancelled == [1, 2]

    trio.run(_session, probe, script)


def test_garbage_gets_an_answer_then_the_stream_is_reset() -> None:
    async def script(client: FramedStream) -> None:
        await client.write_frame(b"[1, 2")
        answer = await client.read_json()
        assert answer is not None and answer["error"]["code"] == "bad_request"
        assert await client.read_frame() is None

    trio.run(_session, Probe(), script)


def test_deeply_nested_json_is_garbage_not_a_crash() -> None:
    async def script(client: FramedStream) -> None:
        await client.write_frame(b"{\"id\": 1, \"x\": " + b"[" * 100_000 + b"]" * 100_000 + b"}")
        answer = await client.read_json()
        assert answer is not None and answer["error"]["code"] == "bad_request"

    trio.run(_session, Probe(), script)


# --- the tool protocol with the real executor ---------------------------------------

def _registry(release: threading.Event) -> ToolRegistry:
    reg = ToolRegistry()
    obj = {"type": "object"}
    reg.register(Tool("echo", "echo", obj, lambda **a: a, blocking=False))
    reg.register(Tool("slow", "blocks until released", obj, lambda **a: release.wait(30), blocking=True))
    reg.register(Tool("nan", "returns NaN", obj, lambda **a: {"mean": math.nan}, blocking=True))
    reg.register(Tool("boom", "raises", obj, lambda **a: {}["missing"], blocking=True))
    reg.register(Tool("oserror", "raises", obj, lambda **a: open("/nonexistent/secret/dir/f"), blocking=True))
    return reg


def _tool_endpoint(release: threading.Event, timeout: float = 0.2, allowed: bool = True) -> ToolEndpoint:
    executor = ToolExecutor(_registry(release), timeout)
    return ToolEndpoint(executor, lambda caller: None if allowed else "not you", lambda *a: None)


@pytest.mark.parametrize(
    "tool, args, code",
    [
        ("slow", {}, errors.TIMEOUT),
        ("nan", {}, errors.INVALID_ARGUMENTS),
        ("boom", {}, errors.INTERNAL),
        ("oserror", {}, errors.TOOL_FAILED),
        ("nope", {}, errors.UNKNOWN_TOOL),
    ],
)
def test_tool_failures_are_answers(tool: str, args: dict[str, Any], code: str) -> None:
    release = threading.Event()

    async def script(client: FramedStream) -> None:
        answer = await _call(client, {"id": 1, "tool": tool, "arguments": args})
        assert answer["error"]["code"] == code, answer
        assert "/nonexistent" not in answer["error"]["message"]
        assert await _call(client, {"id": 2, "tool": "echo", "arguments": {"a": 1}}) == {"id": 2, "result": {"a": 1}}

    try:
        trio.run(_session, _tool_endpoint(release), script)
    finally:
        release.set()


def test_a_cancelled_tool_call_is_abandoned_and_others_are_served() -> None:
    release = threading.Event()

    async def script(client: FramedStream) -> None:
        await client.write_frame(dumps({"id": 1, "tool": "slow", "arguments": {}}))
        await trio.sleep(0.05)
        await client.write_frame(dumps({"id": 1, "cancel": True}))
        assert await _call(client, {"id": 2, "tool": "echo", "arguments": {}}) == {"id": 2, "result": {}}

    try:
        trio.run(_session, _tool_endpoint(release, timeout=30), script)
    finally:
        release.set()


def test_an_unauthorised_caller_gets_forbidden() -> None:
    async def script(client: FramedStream) -> None:
        answer = await _call(client, {"id": 1, "tool": "echo", "arguments": {}})
        assert answer["error"] == {"code": "forbidden", "message": "not you"}

    trio.run(_session, _tool_endpoint(threading.Event(), allowed=False), script)


class Crashing:
    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("method") == "crash":
            raise RecursionError("deep")
        return {"jsonrpc": "2.0", "id": request.get("id"), "result": {}}


def test_rpc_dispatcher_crash_is_a_json_rpc_error() -> None:
    endpoint = RpcEndpoint("/praxis/mcp/1.0.0", Crashing(), lambda c: None, lambda *a: None)

    async def script(client: FramedStream) -> None:
        answer = await _call(client, {"jsonrpc": "2.0", "id": 5, "method": "crash"})
        assert answer["id"] == 5 and answer["error"]["code"] == errors.RPC_CODE[errors.INTERNAL]
        assert answer["error"]["data"]["code"] == errors.INTERNAL
        ok = await _call(client, {"jsonrpc": "2.0", "id": 6, "method": "ping"})
        assert ok == {"jsonrpc": "2.0", "id": 6, "result": {}}

    trio.run(_session, endpoint, script)


# --- the executor on asyncio (the HTTP side) ------------------------------------------

def test_executor_times_out_on_asyncio_too() -> None:
    import asyncio

    release = threading.Event()
    executor = ToolExecutor(_registry(release), 0.2)
    try:
        with pytest.raises(ToolError) as info:
            asyncio.run(executor.run("slow", {}))
        assert info.value.code == errors.TIMEOUT
        assert asyncio.run(executor.run("echo", {"x": [1]})) == {"x": [1]}
    finally:
        release.set()


def test_encode_json_refuses_what_json_cannot_carry() -> None:
    assert encode_json({"a": "é"}) == '{"a":"é"}'.encode()
    for bad, code in ((math.inf, errors.INVALID_ARGUMENTS), ("\udce9", errors.TOOL_FAILED)):
        with pytest.raises(ToolError) as info:
            encode_json({"v": bad})
        assert info.value.code == code



# --- the client channel (agent.p2p.pool) against the serving loop ----------------------

async def _with_channel(endpoint: Any, script: Any) -> None:
    from agent.p2p.pool import RequestChannel

    a, b = trio.testing.memory_stream_pair()
    server = FramedStream(MemStream(a), LIMIT)
    async with trio.open_nursery() as n:
        n.start_soon(serve_stream, server, endpoint, "peer-x", "test stream")
        channel = RequestChannel(FramedStream(MemStream(b), LIMIT), "test channel")
        channel.start(n)
        with trio.fail_after(10):
            await script(channel)
        await channel.aclose()


def test_a_request_over_the_limit_or_not_json_is_refused_before_sending() -> None:
    async def script(channel: Any) -> None:
        with pytest.raises(PraxisError) as info:
            await channel.request({"op": "echo", "value": "x" * LIMIT}, 5)
        assert info.value.code == errors.TOO_LARGE
        with pytest.raises(ToolError) as info:
            await channel.request({"op": "echo", "value": math.nan}, 5)
        assert info.value.code == errors.INVALID_ARGUMENTS
        answer = await channel.request({"op": "echo", "value": "fine"}, 5)
        assert answer["result"] == "fine"

    trio.run(_with_channel, Probe(), script)


@pytest.mark.parametrize("how", ["cancelled", "timeout"])
def test_a_call_given_up_sends_a_cancel_frame_and_the_server_stops_it(how: str) -> None:
    probe = Probe()

    async def script(channel: Any) -> None:
        if how == "cancelled":
            with trio.move_on_after(0.2):
                await channel.request({"op": "hang"}, 30)
        else:
            with pytest.raises(trio.TooSlowError):
                await channel.request({"op": "hang"}, 0.2)
        assert (await channel.request({"op": "echo", "value": 1}, 5))["result"] == 1
        assert probe.cancelled == [1]

    trio.run(_with_channel, probe, script)


def test_pool_maps_timeout_and_a_closed_stream_to_the_error_vocabulary() -> None:
    from agent.errors import CallTimeout, PeerUnavailable
    from agent.p2p.pool import ChannelPool

    async def main() -> None:
        a, b = trio.testing.memory_stream_pair()
        streams = {"up": MemStream(b)}

        async def open_stream(peer_id: str, proto: str) -> Any:
            if peer_id not in streams:
                raise PeerUnavailable(f"no {peer_id}", unsent=True)
            return streams[peer_id]

        pool = ChannelPool(open_stream, LIMIT, lambda *a: None)
        async with trio.open_nursery() as n:
            pool.attach(n)
            n.start_soon(serve_stream, FramedStream(MemStream(a), LIMIT), Probe(), "peer-x", "test stream")
            with pytest.raises(CallTimeout):
                await pool.request("up", "/test/1.0.0", {"op": "hang"}, 0.1)
            with pytest.raises(PeerUnavailable) as info:
                await pool.request("down", "/test/1.0.0", {"op": "echo"}, 1)
            assert info.value.unsent
            for ch in pool.drop("up"):
                await ch.aclose()
            n.cancel_scope.cancel()

    trio.run(main)

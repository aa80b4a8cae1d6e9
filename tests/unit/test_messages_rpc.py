import asyncio

import pytest

from agent.messages import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ProtocolError,
    loads_object,
    parse_rpc_request,
    parse_tool_request,
    parse_tool_response,
    validate_card,
)
from agent.rpc import A2ADispatcher, McpDispatcher, TaskStore
from agent.tools import ToolError


def run(coro):
    return asyncio.run(coro)


def test_loads_object_errors():
    with pytest.raises(ProtocolError) as e:
        loads_object(b"{nope")
    assert e.value.code == PARSE_ERROR
    with pytest.raises(ProtocolError) as e:
        loads_object(b"\xff\xfe")
    assert e.value.code == PARSE_ERROR
    with pytest.raises(ProtocolError) as e:
        loads_object(b"[1]")
    assert e.value.code == INVALID_REQUEST


def test_tool_request_shapes():
    assert parse_tool_request({"id": 1, "tool": "echo", "arguments": {"a": 1}}) == (1, "echo", {"a": 1})
    assert parse_tool_request({"id": "x", "tool": "echo"}) == ("x", "echo", {})
    for bad in ({"tool": "echo"}, {"id": 1}, {"id": 1, "tool": ""}, {"id": 1, "tool": "e", "arguments": []},
                {"id": True, "tool": "e"}, {"id": 1, "tool": "e", "extra": 1}):
        with pytest.raises(ProtocolError):
            parse_tool_request(bad)


def test_tool_response_shapes():
    assert parse_tool_response({"id": 1, "result": 5}) == (1, 5, None)
    assert parse_tool_response({"id": 1, "error": {"code": "x", "message": "m"}}) == (1, None, {"code": "x", "message": "m"})
    with pytest.raises(ProtocolError):
        parse_tool_response({"id": 1})


def test_rpc_request_shapes():
    assert parse_rpc_request({"jsonrpc": "2.0", "id": 3, "method": "ping"}) == (3, "ping", {})
    for bad in ({"id": 1, "method": "x"}, {"jsonrpc": "2.0", "id": 1}, {"jsonrpc": "2.0", "id": 1, "method": "x", "params": 5}):
        with pytest.raises(ProtocolError) as e:
            parse_rpc_request(bad)
        assert e.value.code == INVALID_REQUEST


def test_card_validation():
    good = {"name": "a", "peer_id": "p", "role": "worker", "tools": [{"name": "echo"}]}
    assert validate_card(good) is good
    for bad in ({"name": "a", "role": "worker"}, {**good, "tools": [{"x": 1}]}, {**good, "tools": "no"}):
        with pytest.raises(ProtocolError):
            validate_card(bad)


async def _invoke(name, args):
    if name == "echo":
        return args
    if name == "boom":
        raise ToolError("tool_failed", "RuntimeError: boom")
    if name == "bad":
        raise ToolError("invalid_arguments", "arguments.x: required")
    raise ToolError("unknown_tool", f"no tool {name}")


def _tools():
    return [{"name": "echo", "description": "", "inputSchema": {"type": "object"}}]


def test_mcp_methods():
    d = McpDispatcher("n", "1", _tools, _invoke)
    init = run(d.handle({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}))
    assert init["result"]["serverInfo"] == {"name": "n", "version": "1"}
    assert run(d.handle({"jsonrpc": "2.0", "id": 2, "method": "ping"}))["result"] == {}
    assert run(d.handle({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))["result"]["tools"][0]["name"] == "echo"
    ok = run(d.handle({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "echo", "arguments": {"a": 1}}}))
    assert ok["result"]["structuredContent"] == {"a": 1} and ok["result"]["isError"] is False
    assert ok["result"]["content"][0]["type"] == "text"
    failed = run(d.handle({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "boom"}}))
    assert failed["result"]["isError"] is True and "boom" in failed["result"]["content"][0]["text"]
    unknown = run(d.handle({"jsonrpc": "2.0", "id": 6, "method": "tools/call", "params": {"name": "zzz"}}))
    assert unknown["error"]["code"] == -32602
    assert run(d.handle({"jsonrpc": "2.0", "id": 7, "method": "nope"}))["error"]["code"] == -32601
    assert run(d.handle({"jsonrpc": "2.0", "method": "notifications/initialized"})) is None
    assert run(d.handle({"jsonrpc": "1.0", "id": 8, "method": "ping"}))["error"]["code"] == -32600
    assert run(d.handle({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": [1]}))["error"]["code"] == -32602


def _send(tool, args=None):
    return {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {
        "role": "user", "messageId": "m", "parts": [{"kind": "data", "data": {"tool": tool, "arguments": args or {}}}]}}}


def test_a2a_task_lifecycle():
    store = TaskStore()
    d = A2ADispatcher(store, _invoke)
    task = run(d.handle(_send("echo", {"x": 1})))["result"]
    assert task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"][0]["data"] == {"x": 1}
    got = run(d.handle({"jsonrpc": "2.0", "id": 2, "method": "tasks/get", "params": {"id": task["id"]}}))
    assert got["result"]["id"] == task["id"]
    c = run(d.handle({"jsonrpc": "2.0", "id": 3, "method": "tasks/cancel", "params": {"id": task["id"]}}))
    assert c["error"]["code"] == -32002
    assert run(d.handle({"jsonrpc": "2.0", "id": 4, "method": "tasks/get", "params": {"id": "x"}}))["error"]["code"] == -32001
    assert run(d.handle(_send("boom")))["result"]["status"]["state"] == "failed"
    assert run(d.handle(_send("bad")))["result"]["status"]["state"] == "rejected"
    text = {"jsonrpc": "2.0", "id": 5, "method": "message/send", "params": {"message": {
        "role": "user", "parts": [{"kind": "text", "text": '{"tool": "echo", "arguments": {"t": 2}}'}]}}}
    assert run(d.handle(text))["result"]["artifacts"][0]["parts"][0]["data"] == {"t": 2}
    no_call = {"jsonrpc": "2.0", "id": 6, "method": "message/send", "params": {"message": {"parts": [{"kind": "text", "text": "hi"}]}}}
    assert run(d.handle(no_call))["error"]["code"] == -32602


def test_cancel_a_working_task():
    store = TaskStore()
    task = store.create({"parts": []}, "ctx")
    store.update(task["id"], "working")
    assert store.cancel(task["id"])["status"]["state"] == "canceled"
    # A finished call does not resurrect a canceled task.
    assert store.update(task["id"], "completed")["status"]["state"] == "canceled"


def test_task_store_is_bounded():
    store = TaskStore(max_tasks=3)
    ids = [store.create({"parts": []}, "c")["id"] for _ in range(5)]
    assert store.get(ids[0]) is None and store.get(ids[-1]) is not None

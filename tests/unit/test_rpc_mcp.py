"""MCP dispatcher: both protocol eras, tool errors as isError results."""

import asyncio

from agent.errors import RemoteError, ToolError
from agent.rpc import McpDispatcher
from agent.rpc.mcp import HANDSHAKE_VERSIONS, MODERN_VERSIONS, PROTOCOL_VERSION_META


def run(coro):
    return asyncio.run(coro)


async def _invoke(name, args):
    if name == "echo":
        return args
    if name == "boom":
        raise ToolError("tool_failed", "RuntimeError: boom")
    if name == "bad":
        raise ToolError("invalid_arguments", "arguments.x: required")
    if name == "remote":
        raise RemoteError("12D3KooWpeer", "tool_failed", "ValueError: on the worker")
    if name == "slow":
        raise asyncio.TimeoutError("no answer within 1s")
    if name == "bug":
        raise KeyError("/secret/local/path")
    raise ToolError("unknown_tool", f"no tool {name}")


def _tools():
    return [{"name": "echo", "description": "d", "inputSchema": {"type": "object"}, "blocking": False}]


def _d():
    return McpDispatcher("n", "1", _tools, _invoke)


def req(method, params=None, rid=1):
    r = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        r["params"] = params
    return r


def call(name, args=None):
    return run(_d().handle(req("tools/call", {"name": name, "arguments": args or {}})))


def test_initialize_negotiates_the_requested_version():
    d = _d()
    for v in HANDSHAKE_VERSIONS:
        got = run(d.handle(req("initialize", {"protocolVersion": v})))["result"]
        assert got["protocolVersion"] == v
        assert got["serverInfo"] == {"name": "n", "version": "1"}
    assert run(d.handle(req("initialize", {"protocolVersion": "1999-01-01"})))["result"]["protocolVersion"] == "2025-11-25"


def test_tools_list_and_call():
    d = _d()
    tools = run(d.handle(req("tools/list")))["result"]["tools"]
    assert tools == [{"name": "echo", "description": "d", "inputSchema": {"type": "object"}}]  # no Praxis extras
    ok = call("echo", {"a": 1})["result"]
    assert ok["structuredContent"] == {"a": 1} and ok["isError"] is False
    assert ok["content"][0]["type"] == "text"


def test_tool_errors_are_results_with_is_error():
    # Regression (issue 8 item 6): a peer's error was JSON-RPC -32603 "internal error: RemoteError".
    remote = call("remote")
    assert "error" not in remote and remote["result"]["isError"] is True
    assert remote["result"]["structuredContent"]["error"] == {
        "code": "tool_failed", "message": "ValueError: on the worker", "peer_id": "12D3KooWpeer"}
    assert call("boom")["result"]["isError"] is True
    # 2025-11-25: invalid arguments are a tool execution error the model can read.
    assert call("bad")["result"]["isError"] is True
    assert call("slow")["result"]["structuredContent"]["error"]["code"] == "timeout"
    bug = call("bug")["result"]
    assert bug["isError"] is True and "secret" not in bug["content"][0]["text"]
    assert "incident" in bug["content"][0]["text"]
    # An unknown tool is a protocol error.
    assert call("zzz")["error"]["code"] == -32602


def test_protocol_errors():
    d = _d()
    assert run(d.handle(req("nope")))["error"]["code"] == -32601
    assert run(d.handle({"jsonrpc": "2.0", "method": "notifications/initialized"})) is None
    assert run(d.handle({"jsonrpc": "2.0", "method": "nope"})) is None  # notifications never get answers
    assert run(d.handle(req("ping", rid=8) | {"jsonrpc": "1.0"}))["error"]["code"] == -32600
    assert run(d.handle(req("tools/call", [1])))["error"]["code"] == -32602


def _modern(method, params=None, version=MODERN_VERSIONS[-1]):
    meta = {PROTOCOL_VERSION_META: version, "io.modelcontextprotocol/clientCapabilities": {}}
    return req(method, {**(params or {}), "_meta": meta})


def test_stateless_revision():
    d = _d()
    disc = run(d.handle(_modern("server/discover")))["result"]
    assert disc["supportedVersions"] == [*HANDSHAKE_VERSIONS, *MODERN_VERSIONS]
    assert disc["resultType"] == "complete" and disc["capabilities"]["tools"] == {"listChanged": False}
    assert isinstance(disc["ttlMs"], int) and disc["cacheScope"] == "public"
    listed = run(d.handle(_modern("tools/list")))["result"]
    assert listed["resultType"] == "complete" and listed["tools"][0]["name"] == "echo"
    called = run(d.handle(_modern("tools/call", {"name": "echo", "arguments": {"z": 1}})))["result"]
    assert called["structuredContent"] == {"z": 1} and called["resultType"] == "complete"
    # No handshake in the stateless revision.
    assert run(d.handle(_modern("initialize")))["error"]["code"] == -32601


def test_stateless_version_checks():
    d = _d()
    bad = run(d.handle(_modern("tools/list", version="2099-01-01")))["error"]
    assert bad["code"] == -32022 and bad["data"]["requested"] == "2099-01-01"
    assert "2026-07-28" in bad["data"]["supported"]
    mismatch = run(d.handle(_modern("tools/list"), headers={"mcp-protocol-version": "2025-11-25"}))
    assert mismatch["error"]["code"] == -32020
    ok = run(d.handle(_modern("tools/list"), headers={"mcp-protocol-version": "2026-07-28"}))
    assert "result" in ok


def test_deep_nesting_is_an_invalid_request_not_a_crash():
    # Regression (issue 8 item 7): deep JSON went on to RecursionError.
    deep = []
    for _ in range(5000):
        deep = [deep]
    got = run(_d().handle(req("tools/call", {"name": "echo", "arguments": {"x": deep}})))
    assert got["error"]["code"] == -32600 and "nested" in got["error"]["message"]

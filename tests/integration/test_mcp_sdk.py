"""The official MCP client (``mcp``, streamable HTTP) against the
orchestrator's ``/mcp``: once with the initialize handshake (2025-11-25) and
once stateless (2026-07-28, ``server/discover``).  Tools other than ``echo``
are routed over P2P to the worker."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from mcp.client import Client
from mcp.shared.exceptions import MCPError

from . import rpc_cluster

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def orch(tmp_path_factory):
    procs = rpc_cluster.start(tmp_path_factory.mktemp("mcp"))
    yield procs["orchestrator"]
    rpc_cluster.stop(procs)


@pytest.mark.parametrize("mode, version", [("legacy", "2025-11-25"), ("auto", "2026-07-28")])
def test_mcp_client_flow(orch, mode, version):
    async def go():
        async with Client(orch.url + "/mcp", mode=mode) as client:
            assert client.protocol_version == version
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"echo", "sleep", "describe"} <= set(tools)  # the worker's tools, via the orchestrator
            assert tools["describe"].input_schema["type"] == "object"
            routed = await client.call_tool("describe", {"values": [1, 2, 3, 4]})
            assert routed.is_error is False
            assert routed.structured_content["count"] == 4
            assert json.loads(routed.content[0].text)["mean"] == 2.5
            # Regression (issue 8 item 6): a worker's tool error was JSON-RPC -32603.
            failed = await client.call_tool("sleep", {"seconds": rpc_cluster.WORKER_TIMEOUT + 2})
            assert failed.is_error is True and failed.content[0].text.startswith("timeout:")
            bad = await client.call_tool("describe", {"values": "no"})
            assert bad.is_error is True and bad.content[0].text.startswith("invalid_arguments:")
            with pytest.raises(MCPError) as e:
                await client.call_tool("no_such_tool", {})
            assert e.value.error.code == -32602

    asyncio.run(go())


def test_nested_lists_keep_the_connection_usable(orch):
    # Regression (issue 8 item 7): 100 000 nested lists → RecursionError, a
    # plain-text 500, and uvicorn closed the kept-alive connection.
    deep = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with httpx.Client(base_url=orch.url, timeout=10) as http:
        for path in ("/mcp", "/a2a"):
            r = http.post(path, content=deep, headers={"content-type": "application/json"})
            assert r.status_code == 200 and r.json()["error"]["code"] == -32700
            r = http.post(path, json={"jsonrpc": "2.0", "id": 2, "method": "ping" if path == "/mcp" else "tasks/get",
                                      "params": {"id": "x"}})
            assert r.status_code == 200 and "jsonrpc" in r.json()
        # One connection served all four requests.
        assert http._transport._pool.connections and len(http._transport._pool.connections) == 1


def test_streamable_http_rules(orch):
    assert httpx.get(orch.url + "/mcp").status_code == 405
    r = httpx.post(orch.url + "/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                   headers={"Accept": "application/json, text/event-stream"})
    assert r.status_code == 202 and "mcp-session-id" not in r.headers

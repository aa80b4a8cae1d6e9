"""POST /a2a and /mcp over ASGI (no sockets): bounds, errors, SSE, the card."""

import json
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.card import build_card
from agent.errors import RemoteError
from agent.http_rpc import create_rpc_router
from agent.metrics import Metrics
from agent.rpc import A2ADispatcher, McpDispatcher, TaskStore

LIMIT = 512 * 1024


async def _invoke(name, args):
    if name == "echo":
        return args
    if name == "nan":
        return {"q": float("nan")}
    raise RemoteError("12D3KooWpeer", "tool_failed", "ValueError: on the worker")


def _tools():
    return [{"name": "echo", "description": "d", "inputSchema": {"type": "object"}}]


@pytest.fixture
def client():
    card = build_card(name="o", role="orchestrator", description="", version="1", peer_id="12D3KooWme",
                      addresses=["/ip4/10.0.0.5/tcp/9000"], protocols=[], tools=_tools(), api_url="http://10.0.0.5:8000")
    agent = SimpleNamespace(
        config=SimpleNamespace(p2p=SimpleNamespace(max_message_size=LIMIT)),
        metrics=Metrics(),
        http_a2a=A2ADispatcher(TaskStore(), _invoke),
        http_mcp=McpDispatcher("o", "1", _tools, _invoke),
        service=SimpleNamespace(card=card),
    )

    async def no_token() -> None:
        return None

    app = FastAPI()
    app.include_router(create_rpc_router(agent, no_token))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def rpc(method, params, rid=1):
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


def data_message(tool, args):
    return {"message": {"role": "ROLE_USER", "messageId": "m", "parts": [{"data": {"tool": tool, "arguments": args}}]}}


def test_a2a_body_is_bounded(client):
    # Regression (issue 8 item 5): a body of any size was read and parsed.
    big = json.dumps(rpc("SendMessage", data_message("echo", {"x": "y" * (LIMIT + 64 * 1024)})))
    r = client.post("/a2a", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    r = client.post("/mcp", content=big)
    assert r.status_code == 413


def test_deeply_nested_json_is_a_parse_error(client):
    # Regression (issue 8 item 7): RecursionError → plain-text 500.
    body = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    for path in ("/mcp", "/a2a"):
        r = client.post(path, content=body)
        assert r.status_code in (200, 400) and r.json()["error"]["code"] in (-32700, -32600)
    medium = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo", "arguments": {}}}
    node = medium["params"]["arguments"]
    for _ in range(500):
        node["a"] = {}
        node = node["a"]
    r = client.post("/mcp", json=medium)
    assert r.status_code == 200 and r.json()["error"]["code"] == -32600


def test_not_json_and_batches(client):
    assert client.post("/a2a", content=b"{nope").json()["error"]["code"] == -32700
    assert client.post("/a2a", content=b"\xff").json()["error"]["code"] == -32700
    assert client.post("/mcp", json=[rpc("ping", {})]).json()["error"]["code"] == -32600


def test_an_answer_with_nan_is_an_error_answer_not_a_500(client):
    r = client.post("/mcp", json=rpc("tools/call", {"name": "nan", "arguments": {}}))
    assert r.status_code == 200 and r.json()["error"]["code"] == -32603


def test_peer_error_over_http(client):
    r = client.post("/mcp", json=rpc("tools/call", {"name": "remote", "arguments": {}}))
    assert r.json()["result"]["isError"] is True
    r = client.post("/a2a", json=rpc("SendMessage", data_message("remote", {})), headers={"A2A-Version": "1.0"})
    task = r.json()["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_FAILED" and task["id"]


def test_a2a_sse_stream(client):
    with client.stream("POST", "/a2a", json=rpc("SendStreamingMessage", data_message("echo", {"a": 1})),
                       headers={"A2A-Version": "1.0", "Accept": "text/event-stream"}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert [next(iter(e["result"])) for e in events] == ["task", "statusUpdate", "artifactUpdate", "statusUpdate"]
    assert events[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


def test_mcp_streamable_http_rules(client):
    assert client.get("/mcp").status_code == 405
    assert client.get("/a2a").status_code == 405
    assert client.post("/mcp", json=rpc("ping", {}), headers={"Accept": "text/html"}).status_code == 406
    r = client.post("/mcp", json=rpc("ping", {}), headers={"Accept": "text/event-stream"})
    assert r.headers["content-type"].startswith("text/event-stream") and '"result":{}' in r.text
    r = client.post("/mcp", json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert r.status_code == 202 and "mcp-session-id" not in r.headers
    modern = rpc("tools/list", {"_meta": {"io.modelcontextprotocol/protocolVersion": "2099-01-01",
                                          "io.modelcontextprotocol/clientCapabilities": {}}})
    r = client.post("/mcp", json=modern)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32022


def test_card_points_at_the_jsonrpc_endpoint_as_reached(client):
    card = client.get("/.well-known/agent-card.json").json()
    assert card["url"] == "http://testserver/a2a" and card["preferredTransport"] == "JSONRPC"
    assert {(i["protocolVersion"], i["url"]) for i in card["supportedInterfaces"]} == {
        ("1.0", "http://testserver/a2a"), ("0.3", "http://testserver/a2a")}
    assert card["capabilities"]["streaming"] is True
    assert card["peer_id"] == "12D3KooWme" and card["role"] == "orchestrator" and card["tools"]

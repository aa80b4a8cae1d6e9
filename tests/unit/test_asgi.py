"""The HTTP layer without sockets: the ASGI middlewares (raw ASGI calls) and the
API's error mapping (the real FastAPI app over httpx.ASGITransport, with a stub
agent whose router raises what each test needs)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import re
from types import SimpleNamespace
from typing import Any

import base58
import httpx
import pytest

from agent._asgi import ContainErrors, LimitBody
from agent.api import MAX_ARGUMENT_DEPTH, create_app
from agent.errors import CallTimeout, PeerUnavailable, RemoteError, ToolError
from agent.metrics import Metrics
from agent.p2p._bridge import LoopGone
from agent.p2p.peers import PeerTable
from agent.peerid import ALPHABET, PEER_ID_PATTERN, is_peer_id

ME = "12D3KooWSnKvYPZsunAxXHt2GQ5UZM4649T6Qinxwz6wMMKE9kCu"
OTHER = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
SECRET = "/srv/praxis/secret-root/node.key"


# --- raw ASGI ------------------------------------------------------------------


def _scope(headers: dict[str, str], method: str = "POST", path: str = "/x") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
    }


def _run(app, scope, chunks: list[bytes]) -> tuple[list[dict], int]:
    """Call ``app``; return the messages it sent and how many receive() calls it made."""
    sent: list[dict] = []
    pending = list(chunks)
    calls = 0

    async def receive():
        nonlocal calls
        calls += 1
        if pending:
            body = pending.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(pending)}
        await asyncio.sleep(3600)  # like a server: nothing until the client goes away

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent, calls


def _answer(sent: list[dict]) -> tuple[int, dict[str, str], Any]:
    start = sent[0]
    assert start["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in sent[1:])
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    assert int(headers["content-length"]) == len(body)
    return start["status"], headers, json.loads(body)


class EchoBody:
    """An app that reads the whole body and answers with its length."""

    def __init__(self) -> None:
        self.called = False
        self.messages = 0

    async def __call__(self, scope, receive, send):
        self.called = True
        body = b""
        while True:
            m = await receive()
            self.messages += 1
            body += m.get("body", b"")
            if not m.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(len(body)).encode()})


def test_limit_body_refuses_declared_length_without_reading():
    app = EchoBody()
    sent, reads = _run(LimitBody(app, 100), _scope({"content-length": "101"}), [b"x" * 101])
    status, headers, body = _answer(sent)
    assert status == 413 and headers["content-type"] == "application/json"
    assert body["error"]["code"] == "too_large" and "100 bytes" in body["error"]["message"]
    assert not app.called and reads == 0


def test_limit_body_passes_bodies_up_to_the_bound():
    app = EchoBody()
    sent, _ = _run(LimitBody(app, 100), _scope({"content-length": "100"}), [b"x" * 60, b"x" * 40])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"100"


def test_limit_body_refuses_chunked_body_as_it_passes_the_bound():
    app = EchoBody()
    chunks = [b"x" * 40] * 10
    sent, reads = _run(LimitBody(app, 100), _scope({"transfer-encoding": "chunked"}), chunks)
    status, _, body = _answer(sent)
    assert status == 413 and body["error"]["code"] == "too_large"
    assert not app.called and reads == 3  # stopped reading at the chunk that crossed


def test_limit_body_hands_chunked_body_over_in_one_piece():
    app = EchoBody()
    sent, _ = _run(LimitBody(app, 100), _scope({"transfer-encoding": "chunked"}), [b"x" * 50, b"y" * 50])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"100" and app.messages == 1


def test_limit_body_leaves_other_scopes_alone():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(LimitBody(app, 1)({"type": "lifespan"}, None, None))
    assert seen == ["lifespan"]


@pytest.mark.parametrize("exc", [RuntimeError(SECRET), RecursionError("maximum recursion depth"), MemoryError()])
def test_contain_errors_answers_json_500_with_incident_only(exc, caplog):
    async def app(scope, receive, send):
        raise exc

    with caplog.at_level(logging.ERROR, logger="agent.errors"):
        sent, _ = _run(ContainErrors(app), _scope({}), [])
    status, headers, body = _answer(sent)
    assert status == 500 and headers["content-type"] == "application/json"
    assert set(body) == {"error"} and body["error"]["code"] == "internal"
    incident = body["error"]["incident"]
    assert f"incident {incident}" in body["error"]["message"]
    assert SECRET not in json.dumps(body) and "Traceback" not in json.dumps(body)
    # the traceback is in the log, under the incident id
    assert any(incident in r.getMessage() and r.exc_info for r in caplog.records)


def test_contain_errors_reraises_once_the_response_has_started():
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("half way")

    with pytest.raises(RuntimeError):
        _run(ContainErrors(app), _scope({}), [])


def test_contain_errors_lets_cancellation_through():
    async def app(scope, receive, send):
        raise asyncio.CancelledError()

    with pytest.raises(asyncio.CancelledError):
        _run(ContainErrors(app), _scope({}), [])


# --- PeerID format -------------------------------------------------------------


@pytest.mark.parametrize("text", [ME, OTHER, "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"])
def test_peer_ids_accepted(text):
    assert is_peer_id(text)


@pytest.mark.parametrize(
    "text", ["", "garbage", "12D3KooW", ME[:-1], ME + "1", "0OIl", "Qm" + "1" * 44, "x" * 500, "12D3KooW\u00e9"]
)
def test_non_peer_ids_refused(text):
    assert not is_peer_id(text)


def _decodes_to_a_peer_id(text: str) -> bool:
    """Independent oracle: the base58 library and the multihash layouts."""
    raw = base58.b58decode(text)
    return (
        (len(raw) == 38 and raw[:6] == bytes.fromhex("002408011220"))
        or (len(raw) == 39 and raw[:6] == bytes.fromhex("002508021221"))
        or (len(raw) == 34 and raw[:2] == bytes.fromhex("1220"))
    )


def test_pattern_is_exactly_the_peer_ids():
    """The documented pattern accepts every PeerID and nothing else, so a fuzzer
    generating from it never sends a "valid" peer_id the API refuses."""
    rng = random.Random(8)
    prefixes = {"002408011220": 32, "002508021221": 33, "1220": 32}
    for _ in range(2000):
        prefix, size = rng.choice(list(prefixes.items()))
        text = base58.b58encode(bytes.fromhex(prefix) + rng.randbytes(size)).decode()
        assert is_peer_id(text) and re.fullmatch(PEER_ID_PATTERN, text), text
        # same start and length, random rest: in the pattern iff it decodes to one
        cut = rng.randrange(2, len(text))
        other = text[:cut] + "".join(rng.choice(ALPHABET) for _ in range(len(text) - cut))
        assert is_peer_id(other) == _decodes_to_a_peer_id(other), other
        assert not is_peer_id(text[:-1]) and not is_peer_id(text + "1")


# --- the API over ASGI ---------------------------------------------------------


class StubRouter:
    def __init__(self) -> None:
        self.outcome: Any = {"ok": True}
        self.peer = ME

    async def invoke(self, name, arguments, peer_id=None):
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return SimpleNamespace(result=self.outcome, peer_id=self.peer, duration_ms=1.0)


@pytest.fixture
def stub():
    peers = PeerTable()
    peers.ensure(OTHER, [])
    agent = SimpleNamespace(
        config=SimpleNamespace(
            agent=SimpleNamespace(version="0", name="stub", role="worker"),
            api=SimpleNamespace(token=None),
            p2p=SimpleNamespace(max_message_size=2048),
            metrics=SimpleNamespace(enabled=False),
        ),
        service=SimpleNamespace(peer_id=ME, state="running", failure=None, peers=peers, card=None, listen_addrs=[]),
        router=StubRouter(),
        tools=SimpleNamespace(describe_all=lambda: []),
        metrics=Metrics(),
    )
    return agent


def _http(agent, method: str, url: str, **kw) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=create_app(agent))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.request(method, url, **kw)

    return asyncio.run(go())


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str)
    assert "detail" not in body
    return body["error"]["message"]


@pytest.mark.parametrize(
    "outcome,status,code",
    [
        (ToolError("invalid_arguments", "arguments.x: bad"), 422, "invalid_arguments"),
        (ToolError("timeout", "slow"), 504, "timeout"),
        (asyncio.TimeoutError(), 504, "timeout"),
        (CallTimeout(), 504, "timeout"),
        (LoopGone("P2P service stopped"), 503, "unavailable"),
        (PeerUnavailable("gone"), 502, "peer_unavailable"),
        (RuntimeError(SECRET), 500, "internal"),
    ],
)
def test_invoke_errors_map_in_one_place(stub, outcome, status, code):
    stub.router.outcome = outcome
    r = _http(stub, "POST", "/tools/t/invoke", json={"arguments": {}})
    message = _error(r, status, code)
    assert SECRET not in r.text and message


def test_remote_error_names_the_peer(stub):
    stub.router.outcome = RemoteError(OTHER, "forbidden", "path 'x' resolves outside the tool root")
    r = _http(stub, "POST", "/tools/t/invoke", json={"arguments": {}})
    _error(r, 403, "forbidden")
    assert r.json()["peer_id"] == OTHER


@pytest.mark.parametrize("peer", [ME, OTHER])
def test_non_finite_result_is_a_json_error(stub, peer):
    stub.router.outcome, stub.router.peer = {"mean": math.nan}, peer
    r = _http(stub, "POST", "/tools/t/invoke", json={"arguments": {}})
    if peer == ME:
        _error(r, 500, "internal")
    else:
        _error(r, 502, "protocol_error")


@pytest.mark.parametrize(
    "body,status,code,where",
    [
        (b'{"arguments": 5}', 422, "invalid_arguments", "body.arguments"),
        (b'{"arguments": {}, "peer_id": ""}', 422, "invalid_arguments", "body.peer_id"),
        (b'{"arguments": {}, "peer_id": "garbage"}', 422, "invalid_arguments", "body.peer_id"),
        (b'{"arguments": {}, "extra": 1}', 422, "invalid_arguments", "body.extra"),
        (b'{"arguments": {"x": NaN}}', 422, "invalid_arguments", "body.arguments"),
        (b'{"arguments": {"x": [-Infinity]}}', 422, "invalid_arguments", "body.arguments"),
        (b'{"arguments": ', 400, "bad_request", "invalid JSON at character 14"),
        (b"[1, 2]", 400, "bad_request", "body"),
        (b'{"arguments": {"n": ' + b"9" * 5000 + b"}}", 400, "bad_request", "4300 digits"),
        (b'{"arguments": {"m": ' + b"[" * 5000 + b"]" * 5000 + b"}}", 400, "bad_request", "nested"),
    ],
)
def test_invalid_bodies(stub, body, status, code, where):
    r = _http(stub, "POST", "/tools/t/invoke", content=body, headers={"content-type": "application/json"})
    assert where in _error(r, status, code)


def test_deep_but_parseable_arguments_refused(stub):
    deep = "[" * (MAX_ARGUMENT_DEPTH + 1) + "]" * (MAX_ARGUMENT_DEPTH + 1)
    r = _http(stub, "POST", "/tools/t/invoke", content=f'{{"arguments": {{"m": {deep}}}}}',
              headers={"content-type": "application/json"})
    assert "nested deeper" in _error(r, 422, "invalid_arguments")
    fine = "[" * 50 + "]" * 50
    r = _http(stub, "POST", "/tools/t/invoke", content=f'{{"arguments": {{"m": {fine}}}}}',
              headers={"content-type": "application/json"})
    assert r.status_code == 200


def test_unknown_peer_is_not_found(stub):
    unknown = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    r = _http(stub, "POST", "/tools/t/invoke", json={"arguments": {}, "peer_id": unknown})
    assert unknown in _error(r, 404, "not_found")
    # a connected peer and this agent itself go to the router
    for peer in (OTHER, ME):
        assert _http(stub, "POST", "/tools/t/invoke", json={"arguments": {}, "peer_id": peer}).status_code == 200


def test_body_over_the_limit(stub):
    r = _http(stub, "POST", "/tools/t/invoke", content=b"x" * 70_000, headers={"content-type": "application/json"})
    _error(r, 413, "too_large")


def test_routes_and_methods(stub):
    _error(_http(stub, "GET", "/nope"), 404, "not_found")
    r = _http(stub, "GET", "/tools/t/invoke")
    _error(r, 405, "bad_request")
    assert "POST" in r.headers["allow"]
    _error(_http(stub, "GET", "/metrics"), 404, "not_found")  # metrics disabled
    _error(_http(stub, "GET", "/card"), 503, "unavailable")  # no card yet


def test_token_errors_in_the_one_shape(stub):
    stub.config.api.token = "s3cret-token-0123456789"
    r = _http(stub, "POST", "/tools/t/invoke", json={"arguments": {}})
    _error(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


def test_openapi_declares_errors_and_bodies(stub):
    doc = _http(stub, "GET", "/openapi.json").json()
    op = doc["paths"]["/tools/{name}/invoke"]["post"]
    assert {"400", "401", "403", "404", "413", "422", "500", "502", "503", "504"} <= set(op["responses"])
    for status in ("404", "422", "500"):
        ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody")
    assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/InvokeBody")
    assert doc["components"]["schemas"]["InvokeBody"]["properties"]["peer_id"]["pattern"] == PEER_ID_PATTERN
    metrics = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    codes = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
    assert "invalid_arguments" in codes and "internal" in codes
    for path, ops in doc["paths"].items():
        for method, spec in ops.items():
            if path not in ("/mcp", "/a2a", "/.well-known/agent-card.json"):  # the JSON-RPC router's
                assert "500" in spec["responses"], (method, path)

"""Protocol fuzzer: random and truncated frames on real Noise streams, on every
``/praxis/*`` protocol, against a live worker; after each burst an honest call
still succeeds and ``/health`` is 200.

Bounded: PRAXIS_FUZZ_BURSTS bursts per protocol (default 20), each a few frames.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal

import httpx
import pytest
import trio

from agent.constants import A2A_PROTOCOL, CARD_PROTOCOL, MCP_PROTOCOL, TOOL_PROTOCOL
from agent.framing import encode_varint

from .conftest import FUZZ_REPORT, AgentProc, agent_sets, free_port, on_loop, p2p_addr

BURSTS = int(os.environ.get("PRAXIS_FUZZ_BURSTS", "20"))
PROTOCOLS = (TOOL_PROTOCOL, MCP_PROTOCOL, A2A_PROTOCOL, CARD_PROTOCOL)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-proto")
    p2p, api = free_port(), free_port()
    proc = AgentProc("worker.yaml", agent_sets("fuzz-target", root, p2p, api), root / "target.log")
    try:
        health = proc.wait_healthy()
        yield {"root": root, "proc": proc, "p2p_port": p2p, "peer_id": health["peer_id"]}
    finally:
        proc.kill(signal.SIGTERM)


def _raw_host(agent):
    svc = agent.service
    for name in ("host", "_host"):
        h = getattr(svc, name, None)
        if h is not None and hasattr(h, "new_stream"):
            return h
        inner = getattr(h, "host", None) if h is not None else None
        if inner is not None and hasattr(inner, "new_stream"):
            return inner
    raise AssertionError("no libp2p host on the service")


def _garbage(rng: random.Random) -> bytes:
    """One burst: valid frames of junk JSON, frames cut short, lying length
    prefixes, raw noise, oversize prefixes."""
    kind = rng.randrange(7)
    body = rng.randbytes(rng.randrange(0, 300))
    if kind == 0:  # a frame holding random bytes
        return encode_varint(len(body)) + body
    if kind == 1:  # truncated: the prefix promises more than arrives
        return encode_varint(len(body) + rng.randrange(1, 1000)) + body
    if kind == 2:  # a prefix over the frame limit
        return encode_varint(rng.choice([5 * 1024 * 1024, 2**40, 2**62]))
    if kind == 3:  # a non-minimal or endless varint
        return b"\x80" * rng.randrange(2, 12) + b"\x00"
    if kind == 4:  # valid JSON of the wrong shape
        obj = rng.choice([[], 1, "x", None, {"id": [1]}, {"jsonrpc": "2.0", "method": 5}, {"id": 1, "tool": "echo", "arguments": 7}])
        data = json.dumps(obj).encode()
        return encode_varint(len(data)) + data
    if kind == 5:  # deeply nested JSON
        depth = rng.randrange(1000, 60_000)
        data = b"[" * depth + b"]" * depth
        return encode_varint(len(data)) + data
    return body  # plain noise, no framing


async def _burst(host, peer_id: str, proto: str, payload: bytes) -> None:
    from libp2p.peer.id import ID

    with trio.move_on_after(3):
        try:
            stream = await host.new_stream(ID.from_base58(peer_id), [proto])
        except Exception:  # noqa: BLE001 - the target may refuse; that is allowed
            return
        try:
            await stream.write(payload)
            with trio.move_on_after(0.3):
                await stream.read(65536)
        except Exception:  # noqa: BLE001 - a reset is a fine answer to garbage
            pass
        finally:
            with trio.move_on_after(1):
                try:
                    await stream.reset()
                except Exception:  # noqa: BLE001
                    pass


def _honest(client, target) -> dict:
    return asyncio.run(client.service.call_tool(target["peer_id"], "echo", {"message": "still here"}, timeout=20))


@pytest.mark.parametrize("proto", PROTOCOLS)
def test_random_and_truncated_frames_never_hurt_honest_callers(proto, target, client_factory, request):
    client = client_factory(target["root"], f"fuzzer-{proto.split('/')[2]}")
    on_loop(client, client.service.dial, p2p_addr(target["p2p_port"], target["peer_id"]))
    host = _raw_host(client)
    rng = random.Random(f"{proto}-{BURSTS}")
    honest_ok = 0
    for i in range(BURSTS):
        payload = _garbage(rng)
        client.service.submit(_burst, host, target["peer_id"], proto, payload).result(20)
        if i % 5 == 4:
            assert _honest(client, target) == {"message": "still here"}
            honest_ok += 1
    assert _honest(client, target) == {"message": "still here"}
    honest_ok += 1
    r = httpx.get(target["proc"].url + "/health", timeout=5)
    assert r.status_code == 200, r.text
    assert target["proc"].proc.poll() is None
    FUZZ_REPORT.append(f"protocol fuzz {proto}: {BURSTS} bursts, {honest_ok} honest calls ok, /health 200")

"""Hostile and broken peers against a real agent; honest peers keep being served."""

from __future__ import annotations

import signal
import time

import multiaddr
import pytest
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport

from agent.constants import TOOL_PROTOCOL
from agent.framing import FrameDecoder, encode_frame, encode_varint
from agent.keys import keypair_from_seed, load_or_create_seed, peer_id_from_seed
from agent.messages import dumps

from .conftest import AgentProc, agent_sets, free_port, on_loop, p2p_addr, wait_for

PSK = "ab" * 32


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    """A filesystem worker that accepts tasks from orchestrators only."""
    root = tmp_path_factory.mktemp("sec")
    p2p, api = free_port(), free_port()
    proc = AgentProc(
        "worker_filesystem.yaml",
        agent_sets("target", root, p2p, api) + ["p2p.bootstrap_nodes=[]", "p2p.max_peers=3"],
        root / "target.log",
    )
    try:
        health = proc.wait_healthy()
        yield {"root": root, "proc": proc, "port": p2p, "peer_id": health["peer_id"],
               "addr": p2p_addr(p2p, health["peer_id"])}
    finally:
        proc.kill(signal.SIGTERM)


def _plaintext_dial(addr: str, claimed: KeyPair) -> BaseException | None:
    """Dial with a plaintext-only host that presents ``claimed``; return the error (None if it connected)."""

    async def main() -> BaseException | None:
        host = new_host(key_pair=create_new_key_pair(), sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(claimed)})
        async with host.run([multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
            try:
                with trio.fail_after(10):
                    await host.connect(info_from_p2p_addr(multiaddr.Multiaddr(addr)))
                    await host.new_stream(info_from_p2p_addr(multiaddr.Multiaddr(addr)).peer_id, [TOOL_PROTOCOL])
            except BaseException as e:  # noqa: BLE001 — any failure is the expected refusal
                return e
            finally:
                await host.close()
        return None

    return trio.run(main)


def _honest_call(client, target) -> dict:
    on_loop(client, client.service.dial, target["addr"], True)
    return on_loop(client, client.service._call_tool, target["peer_id"], "file_info", {"path": "."}, 10)


def test_plaintext_dialer_is_refused(target, client_factory):
    assert _plaintext_dial(target["addr"], create_new_key_pair()) is not None
    client = client_factory(target["root"], "orch-a")
    assert _honest_call(client, target)["type"] == "directory"


def test_dialer_with_only_the_orchestrators_public_key_is_refused(target, client_factory):
    orch_seed = load_or_create_seed(target["root"] / "orch-a")
    real = keypair_from_seed(orch_seed)
    impostor = KeyPair(create_new_key_pair().private_key, real.public_key)
    assert _plaintext_dial(target["addr"], impostor) is not None


def test_wrong_peer_id_in_the_address_fails_the_noise_handshake(target, client_factory):
    client = client_factory(target["root"], "orch-b")
    someone_else = peer_id_from_seed(b"\x01" * 32)
    with pytest.raises(ConnectionError):
        on_loop(client, client.service.dial, p2p_addr(target["port"], someone_else), False)
    assert _honest_call(client, target)["type"] == "directory"


def test_private_network_admits_only_peers_with_the_key(tmp_path, client_factory):
    p2p, api = free_port(), free_port()
    proc = AgentProc("worker_filesystem.yaml", agent_sets("private", tmp_path, p2p, api) + ["p2p.bootstrap_nodes=[]"],
                     tmp_path / "private.log", env={"PRAXIS_PSK": PSK})
    try:
        peer_id = proc.wait_healthy()["peer_id"]
        addr = p2p_addr(p2p, peer_id)
        outsider = client_factory(tmp_path, "orch-out", extra=["p2p.connection_timeout=3"])
        with pytest.raises((ConnectionError, TimeoutError)):
            on_loop(outsider, outsider.service.dial, addr, True)
        member = client_factory(tmp_path, "orch-in", extra=[f"p2p.security.psk={PSK}"])
        on_loop(member, member.service.dial, addr, True)
        assert on_loop(member, member.service._call_tool, peer_id, "echo", {"message": 1}, 10) == {"message": 1}
    finally:
        proc.kill(signal.SIGTERM)


def _raw_exchange(client, target, payload: bytes) -> tuple[list[bytes], bool]:
    """Open a tool stream, write raw bytes, read what comes back until the stream ends."""

    async def go():
        from libp2p.peer.id import ID

        stream = await client.service._host.new_stream(ID.from_base58(target["peer_id"]), [TOOL_PROTOCOL])
        await stream.write(payload)
        dec, frames, ended = FrameDecoder(1 << 20), [], False
        with trio.move_on_after(5):
            while True:
                try:
                    data = await stream.read(65536)
                except Exception:
                    ended = True
                    break
                if not data:
                    ended = True
                    break
                frames += dec.feed(data)
        return frames, ended

    return on_loop(client, go)


@pytest.mark.parametrize(
    "garbage, expect",
    [
        (b"\xff" * 12, "length prefix"),
        (encode_varint(64 * 1024 * 1024) + b"x", "exceeds the limit"),
        (encode_frame(b"{not json"), "invalid JSON"),
        (encode_frame(b"[1, 2]"), "expected a JSON object"),
        (encode_frame(dumps({"id": 1, "tool": 5})), "tool request needs 'tool'"),
    ],
    ids=["bad-varint", "oversize", "bad-json", "not-an-object", "wrong-shape"],
)
def test_garbage_gets_an_error_answer_then_a_reset_and_the_agent_keeps_serving(target, client_factory, garbage, expect):
    import json

    client = client_factory(target["root"], "orch-g")
    on_loop(client, client.service.dial, target["addr"], True)
    frames, ended = _raw_exchange(client, target, garbage)
    assert ended, "the stream should be reset after garbage"
    assert frames, "an error answer should come before the reset"
    err = json.loads(frames[0])["error"]
    assert err["code"] == "bad_request" and expect in err["message"]
    # Same connection, other streams: still served.
    assert on_loop(client, client.service._call_tool, target["peer_id"], "echo", {"message": "still here"}, 10) == {
        "message": "still here"
    }
    assert target["proc"].proc.poll() is None


def test_concurrent_calls_share_one_stream(target, client_factory):
    client = client_factory(target["root"], "orch-p")
    on_loop(client, client.service.dial, target["addr"], True)

    async def many():
        results = {}

        async def one(i):
            results[i] = await client.service._call_tool(target["peer_id"], "echo", {"message": i}, 10)

        async with trio.open_nursery() as n:
            for i in range(64):
                n.start_soon(one, i)
        return results

    results = on_loop(client, many)
    assert results == {i: {"message": i} for i in range(64)}
    channels = [k for k in client.service._channels if k[0] == target["peer_id"] and k[1] == TOOL_PROTOCOL]
    assert len(channels) == 1


def test_max_peers_is_enforced(target, client_factory):
    # max_peers=3 on the target; wait until earlier tests' clients have left.
    wait_for(lambda: target["proc"].peers() == [], what="no peers left from earlier tests")
    clients = [client_factory(target["root"], f"orch-m{i}") for i in range(5)]
    for c in clients:
        try:
            on_loop(c, c.service.dial, target["addr"], False)
        except Exception:
            pass

    def connected_count():
        return len(target["proc"].peers())

    wait_for(lambda: connected_count() >= 3, what="three peers with cards")
    import time

    time.sleep(1.0)
    assert connected_count() == 3
    text = __import__("httpx").get(target["proc"].url + "/metrics").text
    assert 'praxis_refused_peers_total{reason="max_peers"}' in text


def test_idle_never_handshaking_sockets_do_not_lock_honest_peers_out(target, client_factory):
    """300 TCP connections from 127.0.0.2 that never say a word; an honest peer
    from 127.0.0.1 still connects and is served."""
    import socket as socketlib

    wait_for(lambda: target["proc"].peers() == [], what="no peers left from earlier tests (max_peers=3)")
    idle = []
    try:
        for _ in range(300):
            s = socketlib.socket()
            s.bind(("127.0.0.2", 0))
            s.settimeout(5)
            try:
                s.connect(("127.0.0.1", target["port"]))
            except OSError:
                s.close()
                continue
            idle.append(s)
        assert len(idle) >= 250
        client = client_factory(target["root"], "orch-honest", extra=["p2p.connection_timeout=2"])

        def honest():
            try:
                return _honest_call(client, target)
            except ConnectionError:
                return None  # a dialler retries, as bootstrap rounds do

        # Well before the 10 s handshake timeout would free the idle sockets' slots.
        t0 = time.monotonic()
        assert wait_for(honest, timeout=30, interval=0.2, what="honest peer served")["type"] == "directory"
        print(f"honest peer served {time.monotonic() - t0:.2f}s after 300 idle sockets")
    finally:
        for s in idle:
            s.close()
    assert target["proc"].proc.poll() is None


def test_inbound_connections_over_a_lifetime_are_not_capped(target, client_factory):
    """py-libp2p kept an inbound slot per connection until the host stopped:
    after max_connections (14 at max_peers 3) connections in a lifetime, no
    peer could connect any more.  20 connect/disconnect cycles, then one more."""
    wait_for(lambda: target["proc"].peers() == [], what="no peers left from earlier tests")
    client = client_factory(target["root"], "orch-cycle", extra=["p2p.connection_timeout=3"])
    for _ in range(20):
        on_loop(client, client.service.dial, target["addr"], True)
        on_loop(client, client.service._disconnect, target["peer_id"], "test cycle")
        wait_for(lambda: target["proc"].peers() == [], timeout=30, interval=0.05, what="target saw the disconnect")
    assert _honest_call(client, target)["type"] == "directory"


def test_plaintext_development_agent_warns_and_cannot_reach_noise_agents(target, tmp_path):
    """use_noise: false is for development: a warning at start, and no silent
    downgrade of Noise peers (the connection is refused, both ways)."""
    p = AgentProc("worker.yaml", agent_sets("plain", tmp_path, free_port(), free_port())
                  + ["p2p.security.use_noise=false", f"p2p.bootstrap_nodes=[{target['addr']}]",
                     "p2p.connection_timeout=2"], tmp_path / "plain.log")
    try:
        p.wait_healthy()
        assert "SECURITY: p2p.security.use_noise is false" in p.log()
        wait_for(lambda: "Failed to connect" in p.log() or "timed out" in p.log(), what="a refused dial in the log")
        assert p.peers() == []
        assert all(peer["name"] != "plain" for peer in target["proc"].peers())
    finally:
        p.kill(signal.SIGTERM)

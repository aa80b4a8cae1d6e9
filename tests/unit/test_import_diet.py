"""The import diet (agent.p2p._workarounds.install_import_diet): py-libp2p
subsystems an agent never uses stay off its start path, and the agent still
works.  The agent runs in a fresh interpreter (this one may have imported
libp2p already), on real sockets on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.p2p import _workarounds

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("_diet_probe.py")

# Packages that came in only through the subsystems on the diet (measured
# with `python -X importtime -c 'import agent.runtime'` on libp2p 0.8.1).
HEAVY = ("aioquic", "libp2p.transport.quic", "libp2p.pubsub.gossipsub", "libp2p.kad_dht",
         "libp2p.relay.circuit_v2.transport", "libp2p.security.tls.autotls.acme", "requests", "httpx",
         "rich", "trio_websocket", "wsproto", "coincurve", "dns", "libp2p.peer.persistent")


def _run(code_or_file: list[str], **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *code_or_file], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), **env})


@pytest.fixture(scope="module")
def probe() -> dict:
    out = _run([str(PROBE)])
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_started_agent_loads_no_kept_off_module(probe: dict) -> None:
    assert probe["diet"] is True
    assert probe["real_kept_off_modules"] == {}
    # Third-party packages only the kept-off subsystems (and uvicorn's
    # WebSocket support, see agent.http_server) imported; a stand-in module
    # has a covered name, so only uncovered names are checked by presence.
    loaded = set(probe["modules"])
    assert [m for m in HEAVY if m in loaded and not _workarounds.diet_covers(m)] == []


def test_an_agent_on_the_diet_still_works(probe: dict) -> None:
    # worker-1 joined over Noise + yamux and answered a tool call routed to it.
    assert "worker-1" in probe["peers"]
    assert probe["health"] == "ok"
    assert probe["answer"]["result"]["words"] == 3


def test_rsa_and_secp256k1_keys_are_refused_by_libp2p_itself(probe: dict) -> None:
    # Their deserializers are unregistered: MissingDeserializerError, not a stand-in's ImportError.
    assert probe["key_types"] == ["Ed25519"]


def test_the_diet_can_be_switched_off() -> None:
    code = ("import agent, sys; from agent.p2p import _workarounds as w; "
            "import libp2p.transport.quic.transport as q; "
            "print(w.diet_installed(), isinstance(q, w._StandInModule), 'aioquic' in sys.modules)")
    out = _run(["-c", code], PRAXIS_IMPORT_DIET="0")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["False", "False", "True"]


def test_using_a_stand_in_says_why() -> None:
    cls = _workarounds._stand_in("libp2p.transport.quic.transport.QUICTransport", "libp2p.transport.quic")
    assert not isinstance(object(), cls)
    with pytest.raises(ImportError, match="install_import_diet.*PRAXIS_IMPORT_DIET=0"):
        cls("key")
    with pytest.raises(ImportError, match="QUICTransport.from_bytes"):
        cls.from_bytes(b"")
    # `except StandIn` never swallows a real error.
    with pytest.raises(ValueError):
        try:
            raise ValueError("real")
        except cls:  # type: ignore[misc]
            pass


def test_the_diet_covers_subsystems_not_what_an_agent_uses() -> None:
    for kept in ("libp2p.transport.quic.transport", "libp2p.pubsub.gossipsub", "libp2p.relay", "aioquic.h3"):
        assert _workarounds.diet_covers(kept), kept
    for used in ("libp2p.pubsub.pb.rpc_pb2", "libp2p.security.noise.transport", "libp2p.transport.tcp.tcp",
                 "libp2p.stream_muxer.yamux.yamux", "libp2p.crypto.ed25519", "libp2p.security.pnet.protector",
                 "libp2p.host.ping", "libp2p.identity.identify"):
        assert not _workarounds.diet_covers(used), used

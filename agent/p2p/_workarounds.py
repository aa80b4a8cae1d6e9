"""Every py-libp2p 0.8.x workaround, in one place.  Applied once, before a host is built.

Each entry names the behaviour it works around, measured on libp2p 0.8.1.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import socket
import sys
import types
import weakref
from collections.abc import Callable
from typing import Any

__all__ = [
    "install_import_diet",
    "IMPORT_DIET",
    "apply",
    "disable_auto_connector",
    "forget_failed_dial",
    "dial_only",
    "without_loopback",
    "limit_pending_handshakes",
    "observe_frames",
    "own_ping_handler",
    "multicast_from_own_interface_only",
]

log = logging.getLogger("agent.p2p")
_applied = False

# Yamux receive window we advertise.  0.8.1 starts every stream at 256 KiB and
# grows it slowly, so a 4 MiB message crawls through dozens of window updates
# (and a writer blocked for 5 s without window fails: yamux.py "Timed out
# waiting for window update").  16 MiB is go-yamux's maximum.
YAMUX_INITIAL_WINDOW = 16 * 1024 * 1024


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True

    # 1. libp2p.network.swarm._HAPPY_EYEBALLS_DELAY: dial_peer waits 250 ms
    #    after starting a dial even when the peer has a single address, so every
    #    connect() costs at least 250 ms.  We always dial one address at a time.
    import libp2p.network.swarm as swarm

    swarm._HAPPY_EYEBALLS_DELAY = 0.0

    # 2. Yamux windows (see YAMUX_INITIAL_WINDOW).
    import libp2p.stream_muxer.yamux.yamux as yamux

    if getattr(yamux, "DEFAULT_WINDOW_SIZE", None) is not None:
        yamux.DEFAULT_WINDOW_SIZE = YAMUX_INITIAL_WINDOW
    # 2b. yamux._yamux_release_on_read (PY_YAMUX_RELEASE_ON_READ, default on)
    #     sends a WINDOW_UPDATE frame after every read, however small: one
    #     extra encrypted frame per request (~20 % of a busy agent's loop).
    #     Off, updates are batched at half a window, as go-yamux does.
    if hasattr(yamux, "_yamux_release_on_read"):
        yamux._yamux_release_on_read = lambda: False
    # 2c. Import diet (9 below): key types kept off the start path leave
    #     libp2p's deserializer tables, so that a peer presenting such a key
    #     gets libp2p's own MissingDeserializerError during its handshake.
    import libp2p.crypto.serialization as serialization

    for table in (
        serialization.key_type_to_public_key_deserializer,
        serialization.key_type_to_private_key_deserializer,
    ):
        for key_type, fn in list(table.items()):
            if isinstance(fn, _StandInMeta):
                del table[key_type]

    # 7. Frames as proof of life (see observe_frames).
    _hook_yamux_reads(yamux)
    log.debug("py-libp2p workarounds applied")


def disable_auto_connector(swarm: object) -> None:
    """3. libp2p.network.auto_connector.AutoConnector dials every peer in the
    peerstore until the connection count reaches (low+high watermark)/2, and
    again on every disconnect.  It would redial peers this agent refused
    (max_peers), dropped (liveness) or that left; discovery is ours (bootstrap
    rounds and mDNS), so its dialling is switched off."""
    auto = getattr(swarm, "auto_connector", None)
    if auto is not None:

        async def _no_auto_dial() -> None:
            return None

        auto.maybe_connect = _no_auto_dial  # type: ignore[method-assign]


def forget_failed_dial(swarm: object, peer_id: object) -> None:
    """4. Swarm._negative_peer_cache refuses to dial a peer for 60 s after one
    failed dial ("recently failed all addresses").  A worker that starts a
    moment before the orchestrator would then wait a minute; our bootstrap
    rounds and mDNS already pace their retries with backoff."""
    cache = getattr(swarm, "_negative_peer_cache", None)
    if cache is not None:
        cache.evict(str(peer_id))


def dial_only(host: object, peer_id: object) -> None:
    """5. Swarm.dial_peer dials whatever the peerstore holds for a peer, and
    identify fills it with every address the peer listens on, 127.0.0.1
    included.  Redialling a peer after a partition then picked its loopback
    address and reached *this* agent's own listener (Noise: "peer id does not
    correspond to the received pubkey"), forever.  Our discovery knows the
    address to dial, so the peerstore is cleared before each dial."""
    host.get_peerstore().clear_addrs(peer_id)  # type: ignore[attr-defined]


def without_loopback(candidates: list) -> list:
    """addrs_factory for the host: do not advertise 127.0.0.1 to peers (see 5)
    unless it is all we listen on (tests and `make local`)."""
    routable = [a for a in candidates if not str(a).startswith("/ip4/127.") and not str(a).startswith("/ip6/::1/")]
    return routable or list(candidates)


def limit_pending_handshakes(
    swarm: object, *, slots: int, total: int, per_ip: int, queue_wait: float
) -> None:
    """6. Inbound connections: the swarm's limiter, and handshakes in a storm.

    Swarm._inbound_limiter holds one of max_connections slots per inbound
    connection, and its handler then waits for manager.wait_finished(): the
    slot comes back only when the swarm stops.  So after max_connections
    inbound connections in an agent's lifetime (108 at max_peers 50, counting
    every worker restart) every new inbound connection was refused.  The
    limiter is replaced: established connections are bounded by
    Swarm.add_conn's own max_connections check and by max_peers
    (P2PService._on_connected).

    Swarm.upgrade_inbound_raw_conn runs every inbound Noise + yamux handshake
    at once, each under inbound_upgrade_timeout.  With 100 workers dialling
    together on 2 cores they all crawl, all time out, and all redial: the
    start storm.  So at most ``slots`` run at once and later ones *wait* for
    a slot (FIFO, at most ``queue_wait`` s, inside the dialler's own upgrade
    timeout) rather than being refused; only beyond ``total`` running+queued,
    or ``per_ip`` from one address, is a socket closed at once.
    """
    import math
    from collections import Counter

    import trio
    from libp2p.network.exceptions import SwarmException

    swarm._inbound_limiter = trio.CapacityLimiter(math.inf)  # type: ignore[attr-defined]
    original = swarm.upgrade_inbound_raw_conn  # type: ignore[attr-defined]
    pending: Counter[str] = Counter()
    running = trio.CapacityLimiter(slots)  # FIFO-fair

    async def guarded(raw_conn, maddr):  # type: ignore[no-untyped-def]
        try:
            ip = raw_conn.get_remote_address()[0]
        except Exception:
            ip = "?"
        if pending[ip] >= per_ip or sum(pending.values()) >= total:
            await raw_conn.close()
            raise SwarmException(f"too many handshakes in progress (from {ip}: {pending[ip]})")
        pending[ip] += 1
        try:
            with trio.move_on_after(queue_wait) as waited:
                await running.acquire()
            if waited.cancelled_caught:
                await raw_conn.close()
                raise SwarmException(f"handshake from {ip} waited {queue_wait:g}s for a slot")
            try:
                return await original(raw_conn, maddr)
            finally:
                running.release()
        finally:
            pending[ip] -= 1
            if pending[ip] <= 0:
                del pending[ip]

    swarm.upgrade_inbound_raw_conn = guarded  # type: ignore[attr-defined]
    swarm._praxis_handshakes = (running, pending)  # type: ignore[attr-defined]  # for tests


# Per-connection frame observers: the secured connection a Yamux reads from →
# callable().  Weak keys: a closed connection drops out by itself.
_frame_observers: "weakref.WeakKeyDictionary[object, Callable[[], None]]" = weakref.WeakKeyDictionary()


def observe_frames(muxed_conn: object, callback: "Callable[[], None]") -> None:
    """7. Any frame is proof of life, but py-libp2p reports none: Yamux reads
    headers and bodies in handle_incoming() through the module-level
    ``read_exactly`` and tells nobody.  apply() wraps that name so each
    frame read on ``muxed_conn`` calls ``callback()`` (the liveness
    detector's observe); a busy peer whose ping echo is late but whose tool
    answers arrive is then never suspected."""
    secured = getattr(muxed_conn, "secured_conn", None)
    if secured is None:
        return
    try:
        _frame_observers[secured] = callback
    except TypeError:  # not weak-referenceable: no observation, no harm
        pass


def own_ping_handler(host: Any, protocol: str, handler: Any) -> None:
    """8. Liveness pings without libp2p.host.ping.

    - PingService.ping_iter holds one lock for all peers while it opens a
      stream: a single silent peer made every other peer's ping time out,
      and the agent dropped them all.  Liveness keeps a stream per peer.
    - The default handler (host.ping._handle_ping) gives up on a stream
      after RESP_TIMEOUT (10 s) without a ping; a ping interval of 10 s or
      more, or a peer that skips pings because it heard other frames, had
      every stream reset and renegotiated.  ``handler`` (liveness.handle_ping)
      echoes for as long as the stream is open.
    """
    host.set_stream_handler(protocol, handler)


def _hook_yamux_reads(yamux: Any) -> None:
    original = getattr(yamux, "read_exactly", None)
    if original is None or getattr(original, "_praxis_observed", False):
        return

    async def read_exactly(reader: Any, n: int, *args: Any, **kwargs: Any) -> bytes:
        data = await original(reader, n, *args, **kwargs)
        try:
            cb = _frame_observers.get(reader)
        except TypeError:  # an unhashable reader: nothing registered for it
            cb = None
        if cb is not None:
            cb()
        return data

    read_exactly._praxis_observed = True  # type: ignore[attr-defined]
    yamux.read_exactly = read_exactly


def multicast_from_own_interface_only(zc: Any) -> None:
    """python-zeroconf 0.150: a Zeroconf bound to one interface still hears
    multicast from every interface (its listen socket is bound to
    0.0.0.0:5353 and Linux's IP_MULTICAST_ALL defaults to 1), so it answers
    queries from other networks with this interface's address. Clearing
    IP_MULTICAST_ALL makes the socket receive only the memberships it joined,
    i.e. its own interface. The socket is reached through a private attribute
    (_listen_transport); when that is missing nothing is changed (logged)."""
    ip_multicast_all = getattr(socket, "IP_MULTICAST_ALL", 49)  # Linux value; absent elsewhere
    try:
        sock = zc.engine._listen_transport.transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_IP, ip_multicast_all, 0)
    except Exception as e:  # noqa: BLE001 - best effort, see above
        log.warning("mDNS: cannot restrict a responder to its interface (%s); it may answer other networks", e)


# ---------------------------------------------------------------------------
# 9. Import diet.
#
# ``import libp2p`` (any ``libp2p.*`` import runs the package ``__init__``)
# imports every subsystem py-libp2p 0.8.1 has, whether a host uses it or not:
# measured with ``python -X importtime -c 'import agent.runtime'`` it was
# ~1500 modules, ~0.8 s of CPU on the host, ~1.5 s in a container and
# ~83 MiB of RSS for ``import libp2p`` alone.  An agent uses TCP + Noise +
# yamux, identify, ping and its own discovery; the subsystems below are never
# used, so they are replaced by stand-in modules before libp2p is imported.
#
# A stand-in module answers every attribute with a stand-in class, so that
# ``from libp2p.transport.quic.config import QUICTransportConfig`` (a name
# libp2p's own modules import only for annotations and ``isinstance``) still
# works; ``isinstance(x, Stand-in)`` is False, ``except Stand-in`` never
# matches, and *using* one (calling it) raises ImportError naming this diet.
# ``PRAXIS_IMPORT_DIET=0`` switches the diet off (the real modules load).
#
# module prefix -> (who imports it on the start path, why we never use it)
IMPORT_DIET: dict[str, str] = {
    "libp2p.transport.quic": "libp2p/__init__, custom_types (a type alias), swarm (isinstance of a config): "
    "QUIC transport (aioquic, pyOpenSSL, service_identity, pylsqpack); we listen and dial on TCP only",
    "libp2p.transport.websocket": "libp2p.transport/__init__: WebSocket transport (trio_websocket, wsproto); TCP only",
    "libp2p.transport.webrtc": "new_host, only with enable_webrtc: WebRTC transport; TCP only",
    "libp2p.relay": "basic_host (is_private_ip, for AutoTLS): circuit relay v2, which pulls kad_dht and pubsub; "
    "p2p.enable_relay is accepted for compatibility only",
    "libp2p.kad_dht": "relay: Kademlia DHT; p2p.enable_dht is accepted for compatibility only",
    "libp2p.pubsub": "relay, libp2p.tools.constants: gossipsub/floodsub (statistics, netaddr); "
    "no pubsub here (libp2p.pubsub.pb stays real: custom_types and abc use its protobufs at import)",
    "libp2p.security.tls": "libp2p/__init__, libp2p.security/__init__, basic_host: TLS security and AutoTLS "
    "(ACME over requests/httpx, rich, pygments); we secure connections with Noise (or plaintext in dev)",
    "libp2p.security.secio": "libp2p/__init__, libp2p.security/__init__: SECIO, deprecated; Noise only",
    "libp2p.discovery.mdns": "basic_host, only with enable_mDNS: py-libp2p's mDNS opens every interface; "
    "agent.p2p.discovery runs its own (python-zeroconf, bound to p2p.mdns_interfaces)",
    "libp2p.discovery.upnp": "basic_host, only with enable_upnp: UPnP port mapping; never on a cluster network",
    "libp2p.discovery.bootstrap": "basic_host, only with bootstrap=: agent.p2p.discovery.Bootstrapper dials "
    "bootstrap nodes itself",
    "libp2p.discovery.rendezvous": "nothing on the start path; rendezvous discovery is not used",
    "libp2p.discovery.random_walk": "kad_dht: DHT random walk",
    "libp2p.peer.persistent": "libp2p/__init__ (re-export only): SQLite/LevelDB/RocksDB peerstores; ours is in memory",
    "libp2p.crypto.rsa": "libp2p.crypto.serialization (key deserializers): RSA keys (pycryptodome, ~5 MiB); "
    "Praxis identities are Ed25519 (agent.keys), and apply() unregisters the RSA deserializers so that a "
    "peer presenting an RSA key fails its handshake with libp2p's own MissingDeserializerError",
    "libp2p.crypto.secp256k1": "libp2p.crypto.serialization: secp256k1 keys (coincurve, ~4 MiB); as for RSA",
    "multiaddr.resolvers": "Swarm.__init__ and the TCP transport (for /dns* addresses only): dnspython, 62 "
    "modules, ~5 MiB; agent.p2p.discovery resolves names itself (getaddrinfo) and dials /ip4 addresses only. "
    "DNSResolver is replaced by _NoDNSResolver (below)",
}
# Optional dependencies of others, refused outright (ImportError, as if not
# installed) rather than stood in for: their importers test for them.
IMPORT_DIET_REFUSE: dict[str, str] = {
    "aioquic": "needed only by libp2p.transport.quic (stood in for above) and dnspython's DNS-over-QUIC "
    "(switched off below)",
}


def _dnspython_without_quic() -> None:
    # dnspython (multiaddr's DNS resolver, which Swarm builds) loads aioquic for
    # DNS-over-QUIC whenever its package metadata is installed; its public
    # switch dns._features.force turns that off.  Nobody here resolves over QUIC.
    import dns._features

    dns._features.force("doq", False)


# Run once, just before a module is first imported (the reason is in each function).
IMPORT_DIET_BEFORE: dict[str, Any] = {
    "dns.quic": _dnspython_without_quic,
}
# Real modules under a diet prefix (loaded from the real package directory).
IMPORT_DIET_KEEP: dict[str, str] = {
    "libp2p.pubsub.pb": "protobuf messages libp2p.custom_types and libp2p.abc reference at import time",
}



class _NoDNSResolver:
    """Stands in for multiaddr.resolvers.DNSResolver: the swarm builds one, and
    would use it only to dial a /dns* address, which this agent never does."""

    async def resolve(self, maddr: Any, *args: Any, **kwargs: Any) -> list:
        raise OSError(f"{maddr}: no DNS resolution in the libp2p swarm (see install_import_diet)")


# Real values for some names of stood-in modules: module -> {name: value}.
IMPORT_DIET_VALUES: dict[str, dict[str, Any]] = {
    "multiaddr.resolvers": {"DNSResolver": _NoDNSResolver},
}

_diet_finder: "_DietFinder | None" = None


def _diet_prefix(name: str) -> str | None:
    for keep in IMPORT_DIET_KEEP:
        if name == keep or name.startswith(keep + "."):
            return None
    for prefix in IMPORT_DIET:
        if name == prefix or name.startswith(prefix + "."):
            return prefix
    return None


def _kept_off(what: str, prefix: str) -> ImportError:
    return ImportError(
        f"{what} is kept off the start path by agent.p2p._workarounds.install_import_diet "
        f"({prefix}: {IMPORT_DIET[prefix]}); run with PRAXIS_IMPORT_DIET=0 to load it"
    )


class _StandInMeta(type):
    """A stand-in class: importable, usable in annotations, ``isinstance`` and
    ``except`` (it is an Exception subclass nobody raises); calling it raises."""

    _prefix: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise _kept_off(cls.__qualname__, cls._prefix)

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _stand_in(f"{cls.__qualname__}.{attr}", cls._prefix)


def _stand_in(qualname: str, prefix: str) -> type:
    cls = _StandInMeta(qualname.rsplit(".", 1)[-1], (Exception,), {"_prefix": prefix})
    cls.__qualname__ = qualname
    cls.__module__ = qualname.rsplit(".", 1)[0]
    return cls


class _StandInModule(types.ModuleType):
    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = _stand_in(f"{self.__name__}.{attr}", self.__dict__["_diet_prefix"])
        setattr(self, attr, value)  # one stand-in per name: identity checks hold
        return value


class _DietLoader(importlib.abc.Loader):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _StandInModule(spec.name, f"stand-in: {IMPORT_DIET[self.prefix]}")
        module.__dict__["_diet_prefix"] = self.prefix
        module.__dict__.update(IMPORT_DIET_VALUES.get(spec.name, {}))
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


class _DietFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        before = IMPORT_DIET_BEFORE.pop(name, None)
        if before is not None:
            before()
        for refused, why in IMPORT_DIET_REFUSE.items():
            if name == refused or name.startswith(refused + "."):
                raise ModuleNotFoundError(
                    f"{name} is kept off the start path by agent.p2p._workarounds.install_import_diet ({why})",
                    name=name,
                )
        prefix = _diet_prefix(name)
        if prefix is None:
            return None
        spec = importlib.machinery.ModuleSpec(name, _DietLoader(prefix), is_package=True)
        # A stand-in package keeps the real directory as its path, so that the
        # real submodules in IMPORT_DIET_KEEP are found by the normal finders.
        leaf = name.rsplit(".", 1)[-1]
        spec.submodule_search_locations = [os.path.join(p, leaf) for p in (path or [])]
        return spec


def diet_covers(name: str) -> bool:
    """True if module ``name`` is one the diet keeps off the start path."""
    return _diet_prefix(name) is not None or any(
        name == refused or name.startswith(refused + ".") for refused in IMPORT_DIET_REFUSE
    )


def diet_installed() -> bool:
    return _diet_finder is not None


def install_import_diet() -> bool:
    """Put the stand-ins in front of the import system; True if the diet is on.

    Call before anything imports libp2p (``agent/__init__`` does).  A no-op when
    PRAXIS_IMPORT_DIET=0, when already installed, or when libp2p is already
    imported (its subsystems are loaded by then; a stand-in would only confuse).
    """
    global _diet_finder
    if os.environ.get("PRAXIS_IMPORT_DIET", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    if _diet_finder is not None:
        return True
    if "libp2p" in sys.modules:
        return False
    _diet_finder = _DietFinder()
    sys.meta_path.insert(0, _diet_finder)
    return True

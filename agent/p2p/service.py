"""P2PService: one libp2p host (TCP + Noise + yamux) on trio, in its own thread.

Everything that runs on the trio loop is here or in the modules it imports
(_streams, discovery); the HTTP app reaches it only through the async methods
at the bottom, which go through :class:`agent.p2p._bridge.TrioThread`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.host.ping import ID as PING_PROTOCOL, PING_LENGTH as PING_SIZE
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from .. import constants as C
from ..config import Config
from ..keys import PeerRegistry, keypair_from_seed
from ..messages import (
    FORBIDDEN,
    ProtocolError,
    parse_rpc_request,
    parse_tool_request,
    parse_tool_response,
    rpc_error,
    tool_error,
    tool_result,
    validate_card,
)
from ..metrics import Metrics
from ..rpc import A2ADispatcher, McpDispatcher, TaskStore
from ..errors import PeerUnavailable, RemoteError
from ..tools import ToolError, ToolRegistry
from . import _workarounds
from ._bridge import LoopGone, TrioThread
from ._streams import ChannelClosed, FramedStream, RequestChannel, serve_requests
from .discovery import Bootstrapper, MdnsDiscovery, addresses_for_peer, interface_networks, local_ipv4_addresses
from .peers import PeerTable
from .security import resolve_psk, security_options

__all__ = ["P2PService", "PeerUnavailable", "RemoteError", "LoopGone"]

log = logging.getLogger("agent.p2p")

# --- timing, together -----------------------------------------------------------
# Bound on a Noise + yamux handshake and on opening a stream: long enough for
# a loaded 2-core machine, short enough that a peer that never completes one
# does not hold a connection slot for the whole connection_timeout.
HANDSHAKE_TIMEOUT = 10.0
# Handshakes in progress at once (see _workarounds.limit_pending_handshakes):
# per remote IP, far more than an honest host opens; in all, enough for a
# whole cluster restarting at once, few enough that an idle-socket flood from
# many addresses costs little memory and frees its slots after the handshake
# timeout.
PENDING_HANDSHAKES_PER_IP = 16
PENDING_HANDSHAKES = 128
# Consecutive unanswered pings before a peer is dropped: with ping_interval 2 s
# a paused or partitioned peer is gone in 6-8 s, while one slow ping on a busy
# machine does not evict anybody.
MISSED_PINGS_LIMIT = 3
# How long the listening side of a new connection waits for the dialler's
# card before it opens the exchange itself.
CARD_FALLBACK_DELAY = 1.0
# Looking up a new peer's role again when its keystore entry was not there
# yet: just over PeerRegistry's rescan throttle (1 s), a few times.
REGISTRY_RETRY_DELAY = 1.1
REGISTRY_RETRIES = 4
# A ping may take this many ping intervals: on a loaded 2-core machine with
# dozens of agents a healthy peer can be slow for a moment.  A paused or
# partitioned peer is still dropped within 3 × 1.5 intervals (~9 s at 2 s).
PING_TIMEOUT_FACTOR = 1.5
# How often peers found by mDNS but not connected are dialled again.
MDNS_REDIAL_INTERVAL = 2.0
# How long stop() waits for the host to close before it abandons the thread.
STOP_TIMEOUT = 5.0
# Closing a connection to a peer that vanished can hang on TCP; give up after this.
DISCONNECT_TIMEOUT = 2.0


class _Notifee(INotifee):
    def __init__(self, service: "P2PService") -> None:
        self._s = service

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._s._on_connected(conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._s._on_disconnected(conn)

    async def listen(self, network: INetwork, multiaddr: Any) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Any) -> None:
        pass


class P2PService:
    """The agent's libp2p host and the four Praxis protocols on it."""

    def __init__(
        self,
        config: Config,
        seed: bytes,
        tools: ToolRegistry,
        registry: PeerRegistry,
        metrics: Metrics,
        tasks: TaskStore | None = None,
    ) -> None:
        self.config = config
        self.p2p = config.p2p
        self.keypair = keypair_from_seed(seed)
        self.peer_id = str(ID.from_pubkey(self.keypair.public_key))
        self.tools = tools
        self.registry = registry
        self.metrics = metrics
        self.peers = PeerTable()
        self.state = "starting"
        self.failure: str | None = None
        self.listen_addrs: list[str] = []
        self.card: dict[str, Any] = {}
        self._card_extra: dict[str, Any] = {}
        self._thread = TrioThread(f"p2p-{config.agent.name}")
        self._host: Any = None
        self._nursery: trio.Nursery | None = None
        self._channels: dict[tuple[str, str], RequestChannel] = {}
        self._channel_locks: dict[tuple[str, str], trio.Lock] = {}
        self._card_events: dict[str, trio.Event] = {}
        self._bootstrapper: Bootstrapper | None = None
        self._dialing: set[str] = set()
        self._ping_streams: dict[str, Any] = {}
        self._mdns: MdnsDiscovery | None = None
        self._limit = self.p2p.max_message_size
        self._mcp = McpDispatcher(config.agent.name, config.agent.version, tools.describe_all, self._run_local_tool)
        self._a2a = A2ADispatcher(tasks or TaskStore(), self._run_local_tool)
        self.card_builder: Any = None  # set by the runtime: (addresses) -> card dict

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0) -> None:
        """Start the host; block until it listens.  Raises with the reason on failure."""
        self.state = "starting"
        try:
            self._thread.start(self._main, self._shutdown, timeout)
        except BaseException as e:
            self.state = "failed"
            self.failure = f"{type(e).__name__}: {e}"
            raise
        self.state = "running"

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        if self.state in ("stopped", "failed", "disabled"):
            return
        self.state = "stopping"
        if not self._thread.stop(timeout):
            log.warning("P2P host did not stop within %.0fs; abandoning its thread", timeout)
        self.state = "stopped"
        log.info("P2P host stopped")

    async def _main(self, nursery: trio.Nursery, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        _workarounds.apply()
        root = self.p2p.effective_keystore_root
        psk = await trio.to_thread.run_sync(resolve_psk, self.p2p.security.psk, root)
        max_conns = self.p2p.max_peers * 2 + 8
        host = new_host(
            key_pair=self.keypair,
            sec_opt=security_options(self.keypair, self.p2p.security.use_noise, self.p2p.security.noise_key),
            muxer_preference="YAMUX",
            psk=psk,
            addrs_factory=_workarounds.without_loopback,
            connection_config=ConnectionConfig(
                # max_peers is enforced per peer in _on_connected; this is the
                # swarm's own cap, with room for duplicate simultaneous dials.
                max_connections=max_conns,
                min_connections=0,
                low_watermark=0,
                high_watermark=max_conns,
                max_connections_per_peer=3,
                dial_timeout=self.p2p.connection_timeout,
                inbound_upgrade_timeout=min(self.p2p.connection_timeout, HANDSHAKE_TIMEOUT),
                outbound_upgrade_timeout=min(self.p2p.connection_timeout, HANDSHAKE_TIMEOUT),
            ),
        )
        _workarounds.disable_auto_connector(host.get_network())
        _workarounds.limit_pending_handshakes(host.get_network(), PENDING_HANDSHAKES_PER_IP, PENDING_HANDSHAKES)
        self._host = host
        self._nursery = nursery
        for proto, handler in (
            (C.CARD_PROTOCOL, self._handle_card),
            (C.TOOL_PROTOCOL, self._handle_tool),
            (C.MCP_PROTOCOL, self._handle_mcp),
            (C.A2A_PROTOCOL, self._handle_a2a),
        ):
            if proto in self.p2p.protocols:
                host.set_stream_handler(proto, handler)
        host.get_network().register_notifee(_Notifee(self))
        listen = multiaddr.Multiaddr(f"/ip4/{self.p2p.host}/tcp/{self.p2p.port}")
        async with host.run([listen]):
            if not host.get_addrs():
                # py-libp2p logs a failed bind and carries on without a listener.
                raise OSError(f"cannot listen on {listen}: address already in use or not available")
            self.listen_addrs = self._advertised_addrs()
            self.card = self.card_builder(self.listen_addrs) if self.card_builder else {}
            log.info(
                "P2P host started: peer_id=%s listening=%s security=%s%s",
                self.peer_id,
                ",".join(self.listen_addrs),
                "noise" if self.p2p.security.use_noise else "PLAINTEXT",
                " private-network(psk)" if psk else "",
            )
            if self.p2p.enable_dht or self.p2p.enable_relay:
                log.warning("p2p.enable_dht/enable_relay are accepted for compatibility; this runtime "
                            "discovers peers by bootstrap and mDNS only")
            nursery.start_soon(self._liveness_loop)
            if self.p2p.bootstrap_nodes:
                self._bootstrapper = Bootstrapper(self, self.p2p.bootstrap_nodes, root)
                nursery.start_soon(self._bootstrapper.run)
            if self.p2p.peer_discovery:
                await self._start_mdns(nursery)
            task_status.started()
            await trio.sleep_forever()

    async def _shutdown(self) -> None:
        if self._mdns is not None:
            mdns, self._mdns = self._mdns, None
            with trio.move_on_after(3):
                await trio.to_thread.run_sync(mdns.stop, abandon_on_cancel=True)
        for ch in list(self._channels.values()):
            ch.closed = True
        if self._host is not None:
            with trio.move_on_after(STOP_TIMEOUT):
                await self._host.close()

    def _advertised_addrs(self) -> list[str]:
        if self.p2p.announce_addresses:
            return list(self.p2p.announce_addresses)
        port = self._bound_port()
        if self.p2p.host in ("0.0.0.0", "::"):
            ips = local_ipv4_addresses(include_loopback=False) or ["127.0.0.1"]
        else:
            ips = [self.p2p.host]
        return [f"/ip4/{ip}/tcp/{port}/p2p/{self.peer_id}" for ip in ips]

    def _bound_port(self) -> int:
        for addr in self._host.get_addrs():
            port = addr.value_for_protocol("tcp")
            if port:
                return int(port)
        return self.p2p.port

    @property
    def port(self) -> int:
        return self._bound_port() if self._host is not None else self.p2p.port

    # ------------------------------------------------------------ connections
    def _on_connected(self, conn: INetConn) -> None:
        peer_id = str(conn.muxed_conn.peer_id)
        addrs = [str(a) for a in _conn_addrs(conn)]
        if peer_id not in self.peers and len(self.peers) >= self.p2p.max_peers:
            log.warning("Refused peer %s: max_peers (%d) reached", peer_id, self.p2p.max_peers)
            self.metrics.refused.labels("max_peers").inc()
            self._spawn(self._close_conn, conn)
            return
        new = peer_id not in self.peers
        self.peers.ensure(peer_id, addrs)
        if new:
            # The dialler opens the card exchange (one stream per connection,
            # not two); the listener steps in only if no card comes.
            inbound = getattr(getattr(conn, "direction", None), "name", "") == "INBOUND"
            self._spawn(self._identify_peer, peer_id, CARD_FALLBACK_DELAY if inbound else 0.0)

    def _on_disconnected(self, conn: INetConn) -> None:
        peer_id = str(conn.muxed_conn.peer_id)
        try:
            remaining = self._host.get_network().get_connections(conn.muxed_conn.peer_id)
        except Exception:
            remaining = []
        if remaining:
            return
        self._drop_peer(peer_id, "disconnected")

    def _drop_peer(self, peer_id: str, why: str) -> None:
        rec = self.peers.remove(peer_id)
        stream = self._ping_streams.pop(peer_id, None)
        if stream is not None:
            self._spawn(_reset_quietly, stream)
        for key in [k for k in self._channels if k[0] == peer_id]:
            ch = self._channels.pop(key)
            ch.closed = True
            self._spawn(ch.aclose)
        if rec is None:
            return
        self.metrics.connected_peers.set(len(self.peers.with_cards()))
        name = (rec.card or {}).get("name", "?")
        log.info("Peer %s (%s) %s", peer_id, name, why)
        if self._bootstrapper is not None:
            self._bootstrapper.peer_lost(peer_id)

    async def _close_conn(self, conn: INetConn) -> None:
        with trio.move_on_after(DISCONNECT_TIMEOUT):
            try:
                await conn.close()
            except Exception:
                pass

    def _spawn(self, fn: Any, *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    async def _identify_peer(self, peer_id: str, card_delay: float) -> None:
        """Exchange cards and look up the peer's verified role, side by side."""
        rec = self.peers.get(peer_id)
        if rec is None:
            return

        async def card() -> None:
            if card_delay:
                await trio.sleep(card_delay)
                if rec.card is not None or peer_id not in self.peers:
                    return
            await self._exchange_card(peer_id)

        async with trio.open_nursery() as n:
            n.start_soon(card)
            rec.registry_role = await trio.to_thread.run_sync(self._lookup_role, peer_id)
            # A peer that just published its entry may be newer than our
            # registry scan (rescans are throttled): look again a few times.
            for _ in range(REGISTRY_RETRIES):
                if rec.registry_role is not None or peer_id not in self.peers:
                    break
                await trio.sleep(REGISTRY_RETRY_DELAY)
                rec.registry_role = await trio.to_thread.run_sync(self.registry.role_of, peer_id)

    def _lookup_role(self, peer_id: str) -> str | None:
        """Verified role from the keystore; a new connection may force one rescan
        (connections are bounded by max_peers, so this cannot be flooded)."""
        role = self.registry.role_of(peer_id)
        if role is None:
            self.registry.refresh()
            role = self.registry.role_of(peer_id)
        return role

    async def _exchange_card(self, peer_id: str) -> None:
        """Initiator side: write our card, then read theirs."""
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT):
                stream = await self._host.new_stream(ID.from_base58(peer_id), [C.CARD_PROTOCOL])
                self.metrics.streams.labels(C.CARD_PROTOCOL, "out").inc()
                fs = FramedStream(stream, self._limit, self.metrics.count_bytes)
                await fs.write_json(self._card_for(peer_id))
                card = await fs.read_json()
                await fs.close()
            if card is None:
                raise ProtocolError(0, "stream closed before the card arrived")
            self._store_card(peer_id, card)
        except trio.TooSlowError:
            self.metrics.cards.labels("timeout").inc()
            log.warning("Card exchange with %s timed out", peer_id)
        except Exception as e:
            self.metrics.cards.labels("error").inc()
            if peer_id in self.peers:
                log.warning("Card exchange with %s failed: %s", peer_id, _reason(e))

    def _card_for(self, peer_id: str) -> dict[str, Any]:
        """Our card as ``peer_id`` gets it: only our addresses it can reach.

        A multi-homed agent listens on networks the peer is not on (see
        discovery.addresses_for_peer); configured announce_addresses are sent
        as they are.
        """
        addrs = self.card.get("addresses") or []
        rec = self.peers.get(peer_id)
        if self.p2p.announce_addresses or rec is None or len(addrs) < 2:
            return self.card
        kept = addresses_for_peer(addrs, rec.addrs, interface_networks())
        if kept == addrs:
            return self.card
        card = {**self.card, "addresses": kept}
        # The API URL names one of our IPs too: keep it on the peer's network.
        host = kept[0].split("/")[2]
        url = str(card.get("url", ""))
        if url.startswith("http://") and not any(f"//{a.split('/')[2]}:" in url for a in kept):
            card["url"] = f"http://{host}:{url.rsplit(':', 1)[-1]}"
        return card

    async def _handle_card(self, stream: INetStream) -> None:
        """Responder side: read the initiator's card, then write ours."""
        peer_id = str(stream.muxed_conn.peer_id)
        self.metrics.streams.labels(C.CARD_PROTOCOL, "in").inc()
        fs = FramedStream(stream, self._limit, self.metrics.count_bytes)
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT):
                card = await fs.read_json()
                if card is None:
                    return
                self._store_card(peer_id, card)
                await fs.write_json(self._card_for(peer_id))
            await fs.close()
        except Exception as e:
            self.metrics.cards.labels("error").inc()
            log.warning("Bad card from %s: %s (stream reset)", peer_id, _reason(e))
            await fs.reset()

    def _store_card(self, peer_id: str, card: dict[str, Any]) -> None:
        validate_card(card)
        if card["peer_id"] != peer_id:
            self.metrics.refused.labels("card_peer_id_mismatch").inc()
            raise ProtocolError(0, f"card claims peer_id {card['peer_id']}, connection is authenticated as {peer_id}")
        rec = self.peers.get(peer_id)
        if rec is None:
            return
        allowed = self.p2p.security.allowed_peer_types
        role = rec.registry_role or card.get("role")
        if allowed is not None and role not in allowed:
            log.warning("Refused peer %s: role %r not in allowed_peer_types %s", peer_id, role, allowed)
            self.metrics.refused.labels("peer_type").inc()
            self._spawn(self._disconnect, peer_id, "refused (peer type)")
            return
        first = rec.card is None
        rec.card = card
        self.metrics.cards.labels("ok").inc()
        self.metrics.connected_peers.set(len(self.peers.with_cards()))
        if first:
            log.info("Card exchanged with %s (%s, %s)", card.get("name"), card.get("role"), peer_id)
        ev = self._card_events.pop(peer_id, None)
        if ev is not None:
            ev.set()

    async def _disconnect(self, peer_id: str, why: str) -> None:
        with trio.move_on_after(DISCONNECT_TIMEOUT):
            try:
                await self._host.disconnect(ID.from_base58(peer_id))
            except Exception:
                pass
        self._drop_peer(peer_id, why)

    # -------------------------------------------------------------- liveness
    async def _liveness_loop(self) -> None:
        interval = self.p2p.ping_interval
        network = self._host.get_network()
        while True:
            await trio.sleep(interval)
            for peer_id in self.peers.ids():
                if not network.get_connections(ID.from_base58(peer_id)):
                    # A connection can close without a "disconnected"
                    # notification reaching us (it raced the "connected" one).
                    self._drop_peer(peer_id, "disconnected")
                    continue
                self._spawn(self._ping_one, peer_id, interval * PING_TIMEOUT_FACTOR)

    async def _ping_one(self, peer_id: str, timeout: float) -> None:
        """One libp2p ping (/ipfs/ping/1.0.0) on a stream kept per peer.

        Not libp2p.host.ping.PingService: its ping_iter holds one lock for all
        peers while it opens a stream, so a single silent peer made every
        other peer's ping time out and the agent dropped them all.
        """
        rec = self.peers.get(peer_id)
        if rec is None:
            return
        t0 = time.perf_counter()
        stream = self._ping_streams.get(peer_id)
        try:
            with trio.fail_after(timeout):
                if stream is None:
                    stream = await self._host.new_stream(ID.from_base58(peer_id), [PING_PROTOCOL])
                    self._ping_streams[peer_id] = stream
                    t0 = time.perf_counter()
                payload = os.urandom(PING_SIZE)
                await stream.write(payload)
                echo = b""
                while len(echo) < PING_SIZE:
                    chunk = await stream.read(PING_SIZE - len(echo))
                    if not chunk:
                        raise ConnectionError("ping stream closed")
                    echo += chunk
                if echo != payload:
                    raise ValueError("ping payload mismatch")
        except Exception:
            if self._ping_streams.pop(peer_id, None) is not None and stream is not None:
                self._spawn(_reset_quietly, stream)
            rec.missed_pings += 1
            if rec.missed_pings >= MISSED_PINGS_LIMIT and peer_id in self.peers:
                log.warning("Peer %s stopped answering pings (%d missed); dropping it", peer_id, rec.missed_pings)
                await self._disconnect(peer_id, "dropped (not answering)")
            return
        rec.missed_pings = 0
        rec.rtt_ms = (time.perf_counter() - t0) * 1000

    # ---------------------------------------------------------------- dialing
    async def dial(self, maddr: str | multiaddr.Multiaddr, wait_card: bool = False) -> str:
        """Connect to ``/ip4|ip6/…/tcp/…/p2p/<id>``; returns the peer id."""
        ma = maddr if isinstance(maddr, multiaddr.Multiaddr) else multiaddr.Multiaddr(maddr)
        info = info_from_p2p_addr(ma)
        peer_id = str(info.peer_id)
        if peer_id == self.peer_id:
            raise ValueError(f"{ma} is this agent")
        ev = None
        if wait_card:
            rec = self.peers.get(peer_id)
            if rec is not None and rec.card is not None:
                return peer_id
            ev = self._card_events.setdefault(peer_id, trio.Event())
        try:
            with trio.fail_after(self.p2p.connection_timeout):
                if peer_id not in self.peers:
                    _workarounds.forget_failed_dial(self._host.get_network(), info.peer_id)
                    _workarounds.dial_only(self._host, info.peer_id)
                await self._host.connect(info)
                if ev is not None:
                    await ev.wait()
        except trio.TooSlowError:
            self.metrics.dials.labels("timeout").inc()
            raise TimeoutError(f"Connection to {ma} timed out after {self.p2p.connection_timeout:g}s") from None
        except Exception as e:
            self.metrics.dials.labels("error").inc()
            raise ConnectionError(f"Failed to connect to {ma}: {_reason(e)}") from None
        self.metrics.dials.labels("ok").inc()
        return peer_id

    def is_connected(self, peer_id: str) -> bool:
        return peer_id in self.peers

    async def _start_mdns(self, nursery: trio.Nursery) -> None:
        send, recv = trio.open_memory_channel[tuple[str, list[str]]](256)

        def found(peer_id: str, addrs: list[str], role: str | None = None) -> None:  # zeroconf's thread
            # Star, as the original system describes it: workers dial the
            # orchestrators they hear of, orchestrators dial everybody; workers
            # do not mesh (N workers cost N connections, not N²/2).
            if addrs and self.config.agent.role == "worker" and role == "worker":
                return
            try:
                self._thread.run_sync_soon(_send_nowait, send, (peer_id, addrs))
            except LoopGone:
                pass

        self._mdns = MdnsDiscovery(
            service=self.p2p.mdns_service,
            peer_id=self.peer_id,
            port=self.port,
            properties={"name": self.config.agent.name, "role": self.config.agent.role},
            interfaces=self.p2p.mdns_interfaces,
            on_found=found,
            on_removed=lambda peer_id: found(peer_id, []),
        )
        # Registration probes the network for ~1.5 s: never on the trio loop.
        nursery.start_soon(self._register_mdns)
        nursery.start_soon(self._mdns_dialer, recv)

    async def _register_mdns(self) -> None:
        mdns = self._mdns
        if mdns is None:
            return
        try:
            await trio.to_thread.run_sync(mdns.start, abandon_on_cancel=True)
            log.info("Starting mDNS discovery: service %s", self.p2p.mdns_service)
        except Exception as e:
            log.error("mDNS discovery could not start: %s", _reason(e))

    async def _mdns_dialer(self, recv: trio.MemoryReceiveChannel) -> None:
        """Dial peers as mDNS reports them, and keep redialling the ones we
        lose: zeroconf reports a service once, not again after a partition."""
        known: dict[str, list[str]] = {}
        redial_at = trio.current_time() + MDNS_REDIAL_INTERVAL
        while True:
            with trio.move_on_at(redial_at):
                peer_id, addrs = await recv.receive()
                if peer_id == self.peer_id:
                    continue
                if not addrs:  # the peer said goodbye
                    known.pop(peer_id, None)
                    self.metrics.discovery.labels("mdns", "removed").inc()
                    continue
                self.metrics.discovery.labels("mdns", "found").inc()
                is_new = known.get(peer_id) != addrs
                known[peer_id] = addrs
                if peer_id not in self.peers:
                    if is_new:
                        log.info("Discovered peer %s via mDNS at %s", peer_id, ",".join(addrs))
                    self._spawn(self._dial_any, peer_id, addrs, "mdns")
                continue
            redial_at = trio.current_time() + MDNS_REDIAL_INTERVAL
            for peer_id, addrs in known.items():
                if peer_id not in self.peers and peer_id not in self._dialing:
                    self._spawn(self._dial_any, peer_id, addrs, "mdns")

    async def _dial_any(self, peer_id: str, addrs: list[str], source: str) -> None:
        if peer_id in self._dialing:
            return
        self._dialing.add(peer_id)
        try:
            for addr in addrs:
                if peer_id in self.peers:
                    return
                try:
                    await self.dial(f"{addr}/p2p/{peer_id}")
                    self.metrics.discovery.labels(source, "connected").inc()
                    return
                except Exception as e:
                    log.debug("%s", e)
        finally:
            self._dialing.discard(peer_id)

    # ------------------------------------------------------------ serving side
    def _authorized(self, caller: str) -> str | None:
        """None if ``caller`` may send tasks, else the reason it may not."""
        allowed = self.p2p.security.accept_tasks_from
        if allowed is None:
            return None
        rec = self.peers.get(caller)
        role = rec.registry_role if rec is not None else None
        if role is None:
            role = self.registry.role_of(caller)
        if role in allowed:
            return None
        self.metrics.refused.labels("accept_tasks_from").inc()
        return f"peer {caller} (verified role {role or 'unknown'}) may not send tasks: accept_tasks_from={allowed}"

    async def _run_local_tool(self, name: str, arguments: dict[str, Any]) -> Any:
        tool = self.tools.get(name)
        try:
            with trio.fail_after(self.config.tools.call_timeout):
                if tool is None or not tool.blocking:
                    return self.tools.call(name, arguments)
                return await trio.to_thread.run_sync(self.tools.call, name, arguments, abandon_on_cancel=True)
        except trio.TooSlowError:
            raise ToolError("timeout", f"tool '{name}' did not finish within {self.config.tools.call_timeout:g}s") from None

    async def _serve(self, stream: INetStream, proto: str, handle: Any, bad_input: Any) -> None:
        caller = str(stream.muxed_conn.peer_id)
        self.metrics.streams.labels(proto, "in").inc()
        fs = FramedStream(stream, self._limit, self.metrics.count_bytes)
        await serve_requests(fs, lambda req: handle(caller, req), bad_input, f"{proto} from {caller}")

    async def _handle_tool(self, stream: INetStream) -> None:
        async def handle(caller: str, req: dict[str, Any]) -> dict[str, Any]:
            t0 = time.perf_counter()
            rid, tool, args = parse_tool_request(req)
            denied = self._authorized(caller)
            if denied:
                outcome, answer = "forbidden", tool_error(rid, "forbidden", denied)
            else:
                try:
                    answer, outcome = tool_result(rid, await self._run_local_tool(tool, args)), "ok"
                except ToolError as e:
                    answer, outcome = tool_error(rid, e.code, e.message), e.code
            self._observe(C.TOOL_PROTOCOL, "server", outcome, t0)
            return answer

        def bad_input(err: ProtocolError) -> dict[str, Any]:
            self.metrics.requests.labels(C.TOOL_PROTOCOL, "server", "bad_request").inc()
            return tool_error(err.request_id, "bad_request", err.message)

        await self._serve(stream, C.TOOL_PROTOCOL, handle, bad_input)

    def _rpc_handler(self, proto: str, dispatcher: Any) -> Any:
        async def handle(caller: str, req: dict[str, Any]) -> dict[str, Any] | None:
            t0 = time.perf_counter()
            rid, method, _ = parse_rpc_request(req)
            denied = self._authorized(caller) if method not in ("ping", "initialize") else None
            if denied:
                self._observe(proto, "server", "forbidden", t0)
                return rpc_error(rid, FORBIDDEN, denied)
            answer = await dispatcher.handle(req)
            self._observe(proto, "server", "error" if answer and "error" in answer else "ok", t0)
            return answer

        def bad_input(err: ProtocolError) -> dict[str, Any]:
            self.metrics.requests.labels(proto, "server", "bad_request").inc()
            return rpc_error(err.request_id, err.code, err.message)

        return handle, bad_input

    async def _handle_mcp(self, stream: INetStream) -> None:
        await self._serve(stream, C.MCP_PROTOCOL, *self._rpc_handler(C.MCP_PROTOCOL, self._mcp))

    async def _handle_a2a(self, stream: INetStream) -> None:
        await self._serve(stream, C.A2A_PROTOCOL, *self._rpc_handler(C.A2A_PROTOCOL, self._a2a))

    def _observe(self, proto: str, side: str, outcome: str, t0: float) -> None:
        self.metrics.requests.labels(proto, side, outcome).inc()
        self.metrics.latency.labels(proto, side).observe(time.perf_counter() - t0)

    # ------------------------------------------------------------ client side
    async def _channel(self, peer_id: str, proto: str) -> RequestChannel:
        key = (peer_id, proto)
        ch = self._channels.get(key)
        if ch is not None and not ch.closed:
            return ch
        if peer_id not in self.peers:
            raise PeerUnavailable(f"peer {peer_id} is not connected")
        lock = self._channel_locks.setdefault(key, trio.Lock())
        async with lock:
            ch = self._channels.get(key)
            if ch is not None and not ch.closed:
                return ch
            try:
                with trio.fail_after(HANDSHAKE_TIMEOUT):
                    stream = await self._host.new_stream(ID.from_base58(peer_id), [proto])
            except Exception as e:
                raise PeerUnavailable(f"cannot open {proto} to {peer_id}: {_reason(e)}") from None
            self.metrics.streams.labels(proto, "out").inc()
            ch = RequestChannel(FramedStream(stream, self._limit, self.metrics.count_bytes), f"{proto} to {peer_id}")
            ch.start(self._nursery)
            self._channels[key] = ch
            return ch

    async def _request(self, peer_id: str, proto: str, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        rec = self.peers.get(peer_id)
        if rec is not None:
            rec.inflight += 1
        try:
            ch = await self._channel(peer_id, proto)
            answer = await ch.request(obj, timeout)
        except trio.TooSlowError:
            self._observe(proto, "client", "timeout", t0)
            raise TimeoutError(f"{peer_id} did not answer on {proto} within {timeout:g}s") from None
        except ChannelClosed as e:
            self._observe(proto, "client", "unavailable", t0)
            raise PeerUnavailable(f"{proto} to {peer_id}: {e}") from None
        finally:
            if rec is not None:
                rec.inflight -= 1
        self._observe(proto, "client", "error" if "error" in answer else "ok", t0)
        return answer

    async def _call_tool(self, peer_id: str, tool: str, arguments: dict[str, Any], timeout: float) -> Any:
        answer = await self._request(peer_id, C.TOOL_PROTOCOL, {"tool": tool, "arguments": arguments}, timeout)
        try:
            _, result, err = parse_tool_response(answer)
        except ProtocolError as e:
            raise RemoteError(peer_id, "bad_answer", e.message) from None
        if err is not None:
            raise RemoteError(peer_id, err["code"], err["message"])
        return result

    async def _rpc(self, peer_id: str, proto: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        original_id = request.get("id")
        answer = await self._request(peer_id, proto, dict(request), timeout)
        answer["id"] = original_id
        return answer

    # ------------------------------------------- asyncio-facing API (any thread)
    async def call_tool(self, peer_id: str, tool: str, arguments: dict[str, Any], timeout: float | None = None) -> Any:
        t = timeout or self.config.tools.call_timeout
        return await asyncio.wrap_future(self._thread.submit(self._call_tool, peer_id, tool, arguments, t))

    async def rpc(self, peer_id: str, proto: str, request: dict[str, Any], timeout: float | None = None) -> dict:
        t = timeout or self.config.tools.call_timeout
        return await asyncio.wrap_future(self._thread.submit(self._rpc, peer_id, proto, request, t))

    def submit(self, fn: Any, *args: Any) -> Any:
        """Run a trio coroutine on the P2P loop; a concurrent.futures.Future (benchmarks, tests)."""
        return self._thread.submit(fn, *args)


async def _reset_quietly(stream: Any) -> None:
    with trio.move_on_after(DISCONNECT_TIMEOUT):
        try:
            await stream.reset()
        except Exception:
            pass


def _send_nowait(send: trio.MemorySendChannel, item: Any) -> None:
    try:
        send.send_nowait(item)
    except (trio.WouldBlock, trio.ClosedResourceError):
        pass  # discovery floods are dropped, the next announcement repeats them


def _conn_addrs(conn: INetConn) -> list[Any]:
    try:
        return list(conn.get_transport_addresses())
    except Exception:
        return []


def _reason(e: BaseException) -> str:
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    text = str(e) or type(e).__name__
    cause = e.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({_reason(cause)})"
    return text

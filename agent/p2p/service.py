"""P2PService: the agent's P2P side, composed of narrow parts, on trio in its own thread.

- :class:`~agent.p2p.host.Host`: the libp2p host, listening, dialling;
- :class:`~agent.p2p.cards.CardExchange`: cards and verified roles;
- :class:`~agent.p2p.pool.ChannelPool`: client channels per peer and protocol;
- :mod:`agent.serving`: authorization and the tool/MCP/A2A endpoints;
- liveness: anything with ``run()``, ``watch(peer_id, muxed_conn)``,
  ``is_alive(peer_id)``, ``forget(peer_id)`` (today
  :class:`~agent.p2p.liveness.Liveness`, SWIM/Lifeguard; pass
  ``liveness_factory`` to replace it);
- discovery (bootstrap, mDNS) from :mod:`agent.p2p.discovery`.

This module owns the peer table's membership and the loop's life.  If an
essential task dies (the host, liveness, discovery), the service turns
``failed`` with the reason and calls ``on_failure``: /health answers 503 and the
runtime exits with :data:`~agent.constants.EXIT_P2P_DIED`.  The HTTP app
reaches the loop only through the async methods at the bottom.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any

import multiaddr
import trio
from libp2p.abc import INetConn
from libp2p.peer.id import ID

from .. import constants as C
from .. import errors
from ..config import Config
from ..errors import PeerUnavailable, RemoteError, Unavailable, redact_paths
from ..execution import ToolExecutor
from ..keys import PeerRegistry, keypair_from_seed
from ..metrics import Metrics
from ..rpc import A2ADispatcher, McpDispatcher, TaskStore
from ..serving import Authorizer, RpcEndpoint, ToolEndpoint, serve_stream
from ..tools import ToolRegistry
from . import _workarounds
from ._bridge import LoopGone, TrioThread
from ._streams import FramedStream
from .cards import CardExchange
from .discovery import Bootstrapper, MdnsDiscovery
from .host import Host, conn_addrs, reason
from .peers import PeerTable
from .liveness import PING_PROTOCOL, Liveness, handle_ping
from .pool import ChannelPool
from .security import resolve_psk

__all__ = ["P2PService", "PeerUnavailable", "RemoteError", "LoopGone"]

log = logging.getLogger("agent.p2p")

# Builds the liveness part: (service) -> object with run/watch/is_alive/forget.
LivenessFactory = Callable[["P2PService"], Any]


def _swim_liveness(svc: "P2PService") -> Liveness:
    def changed(peer_id: str, state: str, rtt_ms: float | None) -> None:
        rec = svc.peers.get(peer_id)
        if rec is not None:
            rec.state = state
            if rtt_ms is not None:
                rec.rtt_ms = rtt_ms

    return Liveness(
        svc.p2p.ping_interval,
        open_stream=lambda peer_id: svc.host.open_stream(peer_id, PING_PROTOCOL),
        connected=svc.host.has_connection,
        # Out of the table first (counted under this reason), then closed.
        drop=lambda peer_id, why: svc._spawn(svc._disconnect, peer_id, why),
        on_change=changed,
    )


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
        executor: ToolExecutor | None = None,
        liveness_factory: LivenessFactory = _swim_liveness,
    ) -> None:
        self.config = config
        self.p2p = config.p2p
        keypair = keypair_from_seed(seed)
        self.peer_id = str(ID.from_pubkey(keypair.public_key))
        self.tools = tools
        self.registry = registry
        self.metrics = metrics
        self.peers = PeerTable()
        self.state = "starting"
        self.failure: str | None = None
        # Called (from the trio thread) once if the loop dies while running.
        self.on_failure: Callable[[str], None] | None = None
        self.card_builder: Any = None  # set by the runtime: (addresses) -> card dict
        self._thread = TrioThread(f"p2p-{config.agent.name}")
        self._nursery: trio.Nursery | None = None
        self._limit = self.p2p.max_message_size
        self._bootstrapper: Bootstrapper | None = None
        self._mdns: MdnsDiscovery | None = None
        self._dialing: set[str] = set()
        self._dial_via: dict[str, str] = {}  # peer id -> why we are dialling it (bootstrap, mdns)

        self.host = Host(config, keypair, self.peer_id, metrics)
        self.cards = CardExchange(
            self.peers, registry, metrics, self._limit, self.p2p.security.allowed_peer_types,
            self.host.open_stream, lambda peer_id, why: self._spawn(self._disconnect, peer_id, C.DROP_REFUSED),
        )
        self.pool = ChannelPool(
            self.host.open_stream, self._limit,
            lambda proto, outcome, t0: self._observe(proto, "client", outcome, t0), metrics.count_bytes,
        )
        self.liveness = liveness_factory(self)

        self.executor = executor or ToolExecutor(tools, config.tools.call_timeout)
        authorize = Authorizer(
            self.p2p.security.accept_tasks_from, self._role_of,
            lambda: self.metrics.refused.labels("accept_tasks_from").inc(),
        )
        observe = lambda proto, outcome, t0: self._observe(proto, "server", outcome, t0)  # noqa: E731
        mcp = McpDispatcher(config.agent.name, config.agent.version, tools.describe_all, self.executor.run)
        a2a = A2ADispatcher(tasks or TaskStore(), self.executor.run)
        self._endpoints = {
            C.TOOL_PROTOCOL: ToolEndpoint(self.executor, authorize, observe),
            C.MCP_PROTOCOL: RpcEndpoint(C.MCP_PROTOCOL, mcp, authorize, observe),
            C.A2A_PROTOCOL: RpcEndpoint(C.A2A_PROTOCOL, a2a, authorize, observe),
        }

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout: float = 30.0) -> None:
        """Start the host; block until it listens.  Raises with the reason on failure."""
        self.state = "starting"
        try:
            self._thread.start(self._main, self._shutdown, timeout, on_crash=self._crashed)
        except BaseException as e:
            self.state = "failed"
            self.failure = redact_paths(f"{type(e).__name__}: {e}")
            raise
        if self.state == "starting":
            self.state = "running"

    def stop(self, timeout: float = C.STOP_TIMEOUT) -> None:
        if self.state in ("stopped", "failed", "disabled"):
            return
        self.state = "stopping"
        if not self._thread.stop(timeout):
            log.warning("P2P host did not stop within %.0fs; abandoning its thread", timeout)
        self.state = "stopped"
        log.info("P2P host stopped")

    def _crashed(self, exc: BaseException) -> None:
        """The loop died while running (an essential task raised): say so, loudly."""
        if self.state in ("stopping", "stopped"):
            return
        log.critical("P2P loop died: %s", reason(exc), exc_info=exc)
        # /health shows this: no local paths in an HTTP answer (the log above has them).
        self.failure = redact_paths(f"P2P loop died: {reason(exc)}")
        self.state = "failed"
        if self.on_failure is not None:
            self.on_failure(self.failure)

    async def _main(self, nursery: trio.Nursery, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        _workarounds.apply()
        root = self.p2p.effective_keystore_root
        psk = await trio.to_thread.run_sync(resolve_psk, self.p2p.security.psk, root)
        self.host.build(psk, self._on_connected, self._on_disconnected)
        _workarounds.own_ping_handler(self.host.libp2p, PING_PROTOCOL, handle_ping)
        self._nursery = nursery
        self.pool.attach(nursery)
        if C.CARD_PROTOCOL in self.p2p.protocols:
            self.host.set_handler(C.CARD_PROTOCOL, self.cards.handle)
        for proto, endpoint in self._endpoints.items():
            if proto in self.p2p.protocols:
                self.host.set_handler(proto, self._stream_handler(endpoint))
        async with self.host.listening():
            self.cards.card = self.card_builder(self.listen_addrs) if self.card_builder else {}
            self.cards.fixed_addresses = bool(self.p2p.announce_addresses)
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
            # Essential tasks: if one raises, the loop ends and the agent says so.
            nursery.start_soon(self.liveness.run)
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
            with trio.move_on_after(C.MDNS_STOP_TIMEOUT):
                await trio.to_thread.run_sync(mdns.stop, abandon_on_cancel=True)
        self.pool.close_all()
        await self.host.close()

    @property
    def listen_addrs(self) -> list[str]:
        return self.host.listen_addrs

    @property
    def card(self) -> dict[str, Any]:
        return self.cards.card

    @property
    def port(self) -> int:
        return self.host.port

    # ------------------------------------------------------------ connections
    def _on_connected(self, conn: INetConn) -> None:
        peer_id = str(conn.muxed_conn.peer_id)
        if peer_id not in self.peers and len(self.peers) >= self.p2p.max_peers:
            log.warning("Refused peer %s: max_peers (%d) reached", peer_id, self.p2p.max_peers)
            self.metrics.refused.labels("max_peers").inc()
            self._spawn(self.host.close_conn, conn)
            return
        new = peer_id not in self.peers
        rec = self.peers.ensure(peer_id, conn_addrs(conn))
        # Liveness watches the peer, and every frame on this connection is proof of life.
        self.liveness.watch(peer_id, conn.muxed_conn)
        if new:
            # The dialler opens the card exchange (one stream per connection,
            # not two); the listener steps in only if no card comes.
            inbound = getattr(getattr(conn, "direction", None), "name", "") == "INBOUND"
            rec.joined_via = "inbound" if inbound else self._dial_via.get(peer_id, "dial")
            self._spawn(self.cards.identify, peer_id, inbound)

    def _on_disconnected(self, conn: INetConn) -> None:
        if self.host.remaining_connections(conn):
            return
        self._drop_peer(str(conn.muxed_conn.peer_id), C.DROP_DISCONNECTED)

    def _drop_peer(self, peer_id: str, reason: str) -> None:
        """Forget a peer; ``reason`` is one of constants.DROP_REASONS."""
        rec = self.peers.remove(peer_id, reason)
        self.liveness.forget(peer_id)
        for ch in self.pool.drop(peer_id):
            self._spawn(ch.aclose)
        if rec is None:
            return
        self.metrics.connected_peers.set(len(self.peers.with_cards()))
        self.metrics.peer_drops.labels(reason).inc()
        name = (rec.card or {}).get("name", "?")
        log.info("Peer %s (%s) dropped: %s", peer_id, name, reason)
        if self._bootstrapper is not None:
            self._bootstrapper.peer_lost(peer_id)

    async def _disconnect(self, peer_id: str, reason: str) -> None:
        # Out of the table first, so the "disconnected" notification that
        # closing causes does not count this drop under the wrong reason.
        self._drop_peer(peer_id, reason)
        await self.host.disconnect(peer_id)

    def _spawn(self, fn: Any, *args: Any) -> None:
        """A task for one peer or one event: its failure is logged, never fatal."""
        if self._nursery is not None:
            self._nursery.start_soon(_guarded, fn, args)

    def is_connected(self, peer_id: str) -> bool:
        return peer_id in self.peers

    def is_alive(self, peer_id: str) -> bool:
        """Connected and not suspected by liveness (routing prefers these)."""
        return peer_id in self.peers and self.liveness.is_alive(peer_id)

    async def dial(self, maddr: str | multiaddr.Multiaddr, wait_card: bool = False, via: str = "dial") -> str:
        """Connect to ``/ip4|ip6/…/tcp/…/p2p/<id>``; returns the peer id.
        ``via`` (bootstrap, mdns) shows in /peers as how the peer joined."""
        ma = maddr if isinstance(maddr, multiaddr.Multiaddr) else multiaddr.Multiaddr(maddr)
        peer_id = str(ID.from_base58(ma.value_for_protocol("p2p")))
        if wait_card and self.cards.has_card(peer_id):
            return peer_id
        self._dial_via[peer_id] = via
        try:
            await self.host.dial(ma, known=peer_id in self.peers)
        finally:
            self._dial_via.pop(peer_id, None)
        if wait_card:
            try:
                with trio.fail_after(self.p2p.connection_timeout):
                    await self.cards.wait_card(peer_id)
            except trio.TooSlowError:
                raise TimeoutError(f"no card from {peer_id} within {self.p2p.connection_timeout:g}s") from None
        return peer_id

    # -------------------------------------------------------------- discovery
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
            # Workers only announce: the orchestrator browses and dials them
            # (the star above).  A browsing worker would resolve every other
            # worker's record too: mDNS traffic growing with N² at scale.
            browse=self.config.agent.role != "worker",
        )
        # Registration probes the network for ~1.5 s: never on the trio loop.
        self._spawn(self._register_mdns)
        nursery.start_soon(self._mdns_dialer, recv)

    async def _register_mdns(self) -> None:
        mdns = self._mdns
        if mdns is None:
            return
        try:
            await trio.to_thread.run_sync(mdns.start, abandon_on_cancel=True)
            log.info("Starting mDNS discovery: service %s", self.p2p.mdns_service)
        except Exception as e:
            log.error("mDNS discovery could not start: %s", reason(e))

    async def _mdns_dialer(self, recv: trio.MemoryReceiveChannel) -> None:
        """Dial peers as mDNS reports them, and keep redialling the ones we
        lose: zeroconf reports a service once, not again after a partition."""
        known: dict[str, list[str]] = {}
        redial_at = trio.current_time() + C.MDNS_REDIAL_INTERVAL
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
            redial_at = trio.current_time() + C.MDNS_REDIAL_INTERVAL
            for peer_id, addrs in known.items():
                if peer_id not in self.peers and peer_id not in self._dialing:
                    self._spawn(self._dial_any, peer_id, addrs, "mdns")

    async def _dial_any(self, peer_id: str, addrs: list[str], source: str) -> None:
        if peer_id in self._dialing:
            return
        self._dialing.add(peer_id)
        try:
            # First-dial jitter: a peer heard of on mDNS has often just
            # dialled us (workers bootstrap to the orchestrator); waiting a
            # moment spares the duplicate handshake, and a burst of
            # announcements does not become a burst of dials.
            await trio.sleep(random.uniform(0, C.MDNS_DIAL_JITTER))
            for addr in addrs:
                if peer_id in self.peers:
                    return
                try:
                    await self.dial(f"{addr}/p2p/{peer_id}", via=source)
                    self.metrics.discovery.labels(source, "connected").inc()
                    return
                except Exception as e:
                    log.debug("%s", e)
        finally:
            self._dialing.discard(peer_id)

    # ------------------------------------------------------------ serving side
    def _role_of(self, caller: str) -> str | None:
        rec = self.peers.get(caller)
        role = rec.registry_role if rec is not None else None
        return role if role is not None else self.registry.role_of(caller)

    def _stream_handler(self, endpoint: Any) -> Any:
        async def handler(stream: Any) -> None:
            caller = str(stream.muxed_conn.peer_id)
            self.metrics.streams.labels(endpoint.proto, "in").inc()
            fs = FramedStream(stream, self._limit, self.metrics.count_bytes)
            await serve_stream(fs, endpoint, caller, f"{endpoint.proto} from {caller}")

        return handler

    def _observe(self, proto: str, side: str, outcome: str, t0: float) -> None:
        self.metrics.requests.labels(proto, side, outcome).inc()
        self.metrics.latency.labels(proto, side).observe(time.perf_counter() - t0)

    # ------------------------------------------------------------ client side (trio)
    async def _call_tool(self, peer_id: str, tool: str, arguments: dict[str, Any], timeout: float) -> Any:
        rec = self.peers.get(peer_id)
        if rec is None:
            raise PeerUnavailable(f"peer {peer_id} is not connected", unsent=True)
        rec.inflight += 1
        try:
            return await self.pool.call_tool(peer_id, tool, arguments, timeout)
        finally:
            rec.inflight -= 1

    async def _rpc(self, peer_id: str, proto: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        if peer_id not in self.peers:
            raise PeerUnavailable(f"peer {peer_id} is not connected", unsent=True)
        return await self.pool.rpc(peer_id, proto, request, timeout)

    # Kept for tests and benchmarks that reach into the loop.
    @property
    def _host(self) -> Any:
        return self.host.libp2p

    @property
    def _channels(self) -> dict[tuple[str, str], Any]:
        return self.pool.channels()

    # ------------------------------------------- asyncio-facing API (any thread)
    async def call_tool(self, peer_id: str, tool: str, arguments: dict[str, Any], timeout: float | None = None) -> Any:
        t = timeout or self.config.tools.call_timeout
        return await self._bridged(self._call_tool, peer_id, tool, arguments, t)

    async def rpc(self, peer_id: str, proto: str, request: dict[str, Any], timeout: float | None = None) -> dict:
        t = timeout or self.config.tools.call_timeout
        return await self._bridged(self._rpc, peer_id, proto, request, t)

    async def _bridged(self, fn: Any, *args: Any) -> Any:
        """Run ``fn`` on the loop; cancelling the awaiting asyncio task cancels it
        there too (which sends the peer a cancel frame, see pool)."""
        try:
            return await asyncio.wrap_future(self._thread.submit(fn, *args))
        except LoopGone as e:
            raise Unavailable(f"the P2P side is not running ({e})") from None

    def submit(self, fn: Any, *args: Any) -> Any:
        """Run a trio coroutine on the P2P loop; a concurrent.futures.Future (benchmarks, tests)."""
        return self._thread.submit(fn, *args)


async def _guarded(fn: Any, args: tuple) -> None:
    try:
        await fn(*args)
    except Exception as e:  # noqa: BLE001 - containment: one peer's task, not the loop
        errors.internal(e, getattr(fn, "__qualname__", "a P2P task"))


def _send_nowait(send: trio.MemorySendChannel, item: Any) -> None:
    try:
        send.send_nowait(item)
    except (trio.WouldBlock, trio.ClosedResourceError):
        pass  # discovery floods are dropped, the next announcement repeats them


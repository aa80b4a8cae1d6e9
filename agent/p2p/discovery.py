"""Peer discovery: bootstrap rounds (trio) and mDNS (python-zeroconf, its own thread).

mDNS uses python-zeroconf directly rather than py-libp2p's MDNSDiscovery
because that one opens every interface; ours binds only to
``p2p.mdns_interfaces`` when given (tests and ``make local`` use 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ifaddr
import multiaddr
import trio

from .. import constants as C
from ..keys import resolve_peer_id
from . import _workarounds

if TYPE_CHECKING:
    from .service import P2PService

__all__ = [
    "Bootstrapper",
    "MdnsDiscovery",
    "addresses_for_peer",
    "interface_networks",
    "local_ipv4_addresses",
    "parse_bootstrap_addr",
]

log = logging.getLogger("agent.discovery")


def jittered(backoff: float, rng: Any = random) -> float:
    """A pause in [backoff/2, backoff]: still grows, no longer in lockstep."""
    return backoff / 2 + rng.uniform(0, backoff / 2)


def local_ipv4_addresses(include_loopback: bool = False) -> list[str]:
    ips: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and (include_loopback or not ip.ip.startswith("127.")):
                if ip.ip not in ips:
                    ips.append(ip.ip)
    # Non-loopback first: they are the ones another host can dial.
    return sorted(ips, key=lambda a: a.startswith("127."))


def interface_networks() -> list[ipaddress.IPv4Interface]:
    """This host's non-loopback IPv4 interfaces, each with its network prefix."""
    out: list[ipaddress.IPv4Interface] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and not ip.ip.startswith("127."):
                out.append(ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}"))
    return out


def _ip4_of(addr: str) -> ipaddress.IPv4Address | None:
    parts = addr.split("/")
    if len(parts) > 2 and parts[1] == "ip4":
        try:
            return ipaddress.IPv4Address(parts[2])
        except ValueError:
            return None
    return None


def addresses_for_peer(
    addrs: list[str], peer_addrs: list[str], networks: list[ipaddress.IPv4Interface]
) -> list[str]:
    """The ones of our ``addrs`` that a peer seen at ``peer_addrs`` can dial.

    A multi-homed agent (an orchestrator on two networks) listens on networks
    the peer is not on; handing it those addresses makes it dial into a black
    hole. When the peer sits on one of our networks, only our addresses on
    that network are kept. When it is on none (routed, NATed) nothing can be
    told, and all are kept.
    """
    peer_ips = [ip for ip in map(_ip4_of, peer_addrs) if ip is not None]
    shared = [n.network for n in networks if any(ip in n.network for ip in peer_ips)]
    if not shared:
        return list(addrs)
    kept = [a for a in addrs if (ip := _ip4_of(a)) is not None and any(ip in net for net in shared)]
    return kept or list(addrs)


def parse_bootstrap_addr(addr: str) -> tuple[str, str, int, str | None]:
    """``/dns4/orchestrator/tcp/9000[/p2p/<id>]`` → ``("dns4", "orchestrator", 9000, id|None)``."""
    ma = multiaddr.Multiaddr(addr)
    kind = host = None
    for proto in ("ip4", "ip6", "dns4", "dns6", "dns"):
        try:
            value = ma.value_for_protocol(proto)
        except Exception:
            value = None
        if value:
            kind, host = proto, value
            break
    if kind is None:
        raise ValueError(f"{addr}: no ip4/ip6/dns4/dns6 component")
    port = int(ma.value_for_protocol("tcp"))
    try:
        peer_id = ma.value_for_protocol("p2p")
    except Exception:
        peer_id = None
    return kind, str(host), port, peer_id or None


class Bootstrapper:
    """Dial the bootstrap nodes in rounds until one answers; resume when all are lost."""

    def __init__(
        self, service: "P2PService", nodes: list[str], keystore_root: Path, rng: random.Random | None = None
    ) -> None:
        self._svc = service
        self._rng = rng or random.Random()
        self._nodes = nodes
        self._root = keystore_root
        self._known: set[str] = set()  # peer ids we reached through bootstrap
        self._lost = trio.Event()
        self._waiting_logged: set[str] = set()

    def peer_lost(self, peer_id: str) -> None:
        if peer_id in self._known:
            self._lost.set()

    def _connected(self) -> bool:
        return any(self._svc.is_connected(p) for p in self._known)

    async def run(self) -> None:
        backoff = C.BOOTSTRAP_INITIAL_BACKOFF
        max_backoff = self._svc.p2p.discovery_interval
        # First-dial jitter: N workers started by one `compose up` reach the
        # orchestrator spread over a second, not in one burst of handshakes.
        await trio.sleep(self._rng.uniform(0, C.BOOTSTRAP_FIRST_DIAL_JITTER))
        while True:
            if self._connected():
                await self._lost.wait()
                self._lost = trio.Event()
                if self._connected():
                    continue
                log.info("Lost every bootstrap node; dialling again")
                backoff = C.BOOTSTRAP_INITIAL_BACKOFF
                # The orchestrator went away for all its workers at once:
                # do not all come back in the same instant either.
                await trio.sleep(self._rng.uniform(0, C.BOOTSTRAP_FIRST_DIAL_JITTER))
            if await self._round():
                backoff = C.BOOTSTRAP_INITIAL_BACKOFF
                continue
            await trio.sleep(jittered(backoff, self._rng))
            backoff = min(backoff * 2, max_backoff)

    async def _round(self) -> bool:
        ok = False
        for node in self._nodes:
            try:
                target = await self._resolve(node)
            except Exception as e:
                self._svc.metrics.discovery.labels("bootstrap", "unresolved").inc()
                log.info("Bootstrap node %s not resolvable yet: %s", node, e)
                continue
            if target is None:
                continue
            try:
                peer_id = await self._svc.dial(target, via="bootstrap")
            except Exception as e:
                self._svc.metrics.discovery.labels("bootstrap", "failed").inc()
                log.warning("%s", e)
                continue
            self._known.add(peer_id)
            self._svc.metrics.discovery.labels("bootstrap", "connected").inc()
            log.info("Connected to bootstrap node %s (%s)", node, peer_id)
            ok = True
        return ok

    async def _resolve(self, node: str) -> str | None:
        kind, host, port, peer_id = parse_bootstrap_addr(node)
        if peer_id is None:
            # The PeerID behind a bare address comes from the shared keystore;
            # never guessed from another directory.
            peer_id = await trio.to_thread.run_sync(resolve_peer_id, self._root, host)
            if peer_id is None:
                if node not in self._waiting_logged:
                    self._waiting_logged.add(node)
                    log.info("Waiting for the PeerID of %s: no %s yet", node, self._root / host / "peer.id")
                return None
        if kind in ("ip4", "ip6"):
            return f"/{kind}/{host}/tcp/{port}/p2p/{peer_id}"
        family = socket.AF_INET6 if kind == "dns6" else socket.AF_INET
        # trio runs getaddrinfo in a worker thread: the loop is never blocked on DNS.
        infos = await trio.socket.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
        if not infos:
            raise OSError(f"no address for {host}")
        ip = infos[0][4][0]
        return f"/{'ip6' if family == socket.AF_INET6 else 'ip4'}/{ip}/tcp/{port}/p2p/{peer_id}"


class MdnsDiscovery:
    """Announce this agent and browse for others with python-zeroconf.

    Zeroconf runs its own thread; ``on_found(peer_id, [multiaddr, ...], role)`` and
    ``on_removed(peer_id)`` are called on it and must hand the event over to
    the trio loop.
    """

    def __init__(
        self,
        *,
        service: str,
        peer_id: str,
        port: int,
        properties: dict[str, str],
        interfaces: list[str] | None,
        on_found: Callable[[str, list[str], str | None], None],
        on_removed: Callable[[str], None],
        browse: bool = True,
    ) -> None:
        self.service_type = f"_{service}._tcp.local."
        self._browse = browse
        self._peer_id = peer_id
        self._port = port
        self._props = {"peer_id": peer_id, **properties}
        self._interfaces = interfaces
        self._on_found = on_found
        self._on_removed = on_removed
        self._instances: list[tuple[Any, Any]] = []  # (Zeroconf, ServiceInfo) per interface
        self._browsers: list[Any] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        from zeroconf import InterfaceChoice, IPVersion, ServiceBrowser, ServiceInfo, Zeroconf

        if self._interfaces:
            groups = [list(self._interfaces)]
        else:
            # One responder per interface, each announcing only that
            # interface's address: a multi-homed agent (an orchestrator on two
            # networks) must not tell one network about an address on the
            # other, which is unreachable from there. zeroconf answers with
            # every address on every interface, hence separate instances.
            groups = [[ip] for ip in local_ipv4_addresses(include_loopback=False)] or [["127.0.0.1"]]
        instances = []
        for ips in groups:
            if self._interfaces or len(groups) > 1:
                zc = Zeroconf(interfaces=ips, ip_version=IPVersion.V4Only)
            else:
                zc = Zeroconf(interfaces=InterfaceChoice.All, ip_version=IPVersion.V4Only)
            if len(groups) > 1:
                _workarounds.multicast_from_own_interface_only(zc)
            info = ServiceInfo(
                self.service_type,
                f"{self._peer_id}.{self.service_type}",
                addresses=[socket.inet_aton(ip) for ip in ips],
                port=self._port,
                properties=self._props,
            )
            instances.append((zc, info))
        with self._lock:
            self._instances = instances
        for zc, info in instances:
            # The instances share one name (this PeerID): they must not see each
            # other as a conflict.
            zc.register_service(info, cooperating_responders=len(instances) > 1)
            if self._browse:
                self._browsers.append(ServiceBrowser(zc, self.service_type, handlers=[self._on_change]))

    def _on_change(self, zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            # The instance name is "<peer_id>.<service type>".
            peer_id = name[: -len(service_type) - 1] if name.endswith(service_type) else ""
            if peer_id and peer_id != self._peer_id:
                self._on_removed(peer_id)
            return
        if state_change not in (ServiceStateChange.Added, ServiceStateChange.Updated):
            return
        try:
            info = zeroconf.get_service_info(service_type, name, timeout=C.MDNS_RESOLVE_TIMEOUT_MS)
        except Exception as e:
            log.debug("mDNS lookup of %s failed: %s", name, e)
            return
        if info is None:
            return
        props = {k.decode(): (v.decode() if v else "") for k, v in (info.properties or {}).items()}
        peer_id = props.get("peer_id")
        if not peer_id or peer_id == self._peer_id:
            return
        addrs = [f"/ip4/{ip}/tcp/{info.port}" for ip in info.parsed_addresses() if ":" not in ip]
        if addrs:
            self._on_found(peer_id, addrs, props.get("role"))

    def stop(self) -> None:
        with self._lock:
            instances, self._instances = self._instances, []
        for browser in self._browsers:
            browser.cancel()
        self._browsers = []
        for zc, info in instances:
            try:
                zc.unregister_service(info)
            finally:
                zc.close()

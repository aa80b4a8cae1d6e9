"""The libp2p host: its construction (TCP + Noise + yamux, the workarounds),
listening, dialling, streams and disconnects.  All trio; knows nothing of the
Praxis protocols beyond their ids.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import INetConn, INetStream, INetwork, INotifee
from libp2p.network.config import ConnectionConfig
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from .. import constants as C
from ..config import Config
from ..errors import PeerUnavailable
from ..metrics import Metrics
from . import _workarounds
from .discovery import local_ipv4_addresses
from .security import security_options

__all__ = ["Host", "reason"]

log = logging.getLogger("agent.p2p")


class _Notifee(INotifee):
    def __init__(self, on_connected: Callable[[INetConn], None], on_disconnected: Callable[[INetConn], None]) -> None:
        self._up = on_connected
        self._down = on_disconnected

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        pass

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._up(conn)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._down(conn)

    async def listen(self, network: INetwork, multiaddr: Any) -> None:
        pass

    async def listen_close(self, network: INetwork, multiaddr: Any) -> None:
        pass


class Host:
    def __init__(self, config: Config, keypair: Any, peer_id: str, metrics: Metrics) -> None:
        self.config = config
        self.p2p = config.p2p
        self.keypair = keypair
        self.peer_id = peer_id
        self.metrics = metrics
        self.libp2p: Any = None
        self.listen_addrs: list[str] = []

    def build(self, psk: Any, on_connected: Callable[[INetConn], None],
              on_disconnected: Callable[[INetConn], None]) -> None:
        max_conns = self.p2p.max_peers * 2 + 8
        host = new_host(
            key_pair=self.keypair,
            sec_opt=security_options(self.keypair, self.p2p.security.use_noise, self.p2p.security.noise_key),
            muxer_preference="YAMUX",
            psk=psk,
            addrs_factory=_workarounds.without_loopback,
            connection_config=ConnectionConfig(
                # max_peers is enforced per peer by the service; this is the
                # swarm's own cap, with room for duplicate simultaneous dials.
                max_connections=max_conns,
                min_connections=0,
                low_watermark=0,
                high_watermark=max_conns,
                max_connections_per_peer=3,
                dial_timeout=self.p2p.connection_timeout,
                inbound_upgrade_timeout=min(self.p2p.connection_timeout, C.HANDSHAKE_TIMEOUT),
                outbound_upgrade_timeout=min(self.p2p.connection_timeout, C.HANDSHAKE_TIMEOUT),
            ),
        )
        _workarounds.disable_auto_connector(host.get_network())
        _workarounds.limit_pending_handshakes(
            host.get_network(),
            slots=C.HANDSHAKE_SLOTS,
            total=C.PENDING_HANDSHAKES,
            per_ip=C.PENDING_HANDSHAKES_PER_IP,
            queue_wait=C.HANDSHAKE_QUEUE_WAIT,
        )
        host.get_network().register_notifee(_Notifee(on_connected, on_disconnected))
        self.libp2p = host

    def set_handler(self, proto: str, handler: Callable[[INetStream], Any]) -> None:
        self.libp2p.set_stream_handler(proto, handler)

    @asynccontextmanager
    async def listening(self) -> AsyncIterator[None]:
        listen = multiaddr.Multiaddr(f"/ip4/{self.p2p.host}/tcp/{self.p2p.port}")
        async with self.libp2p.run([listen]):
            if not self.libp2p.get_addrs():
                # py-libp2p logs a failed bind and carries on without a listener.
                raise OSError(f"cannot listen on {listen}: address already in use or not available")
            self.listen_addrs = self._advertised_addrs()
            yield

    def _advertised_addrs(self) -> list[str]:
        if self.p2p.announce_addresses:
            return list(self.p2p.announce_addresses)
        port = self.port
        if self.p2p.host in ("0.0.0.0", "::"):
            ips = local_ipv4_addresses(include_loopback=False) or ["127.0.0.1"]
        else:
            ips = [self.p2p.host]
        return [f"/ip4/{ip}/tcp/{port}/p2p/{self.peer_id}" for ip in ips]

    @property
    def port(self) -> int:
        if self.libp2p is not None:
            for addr in self.libp2p.get_addrs():
                port = addr.value_for_protocol("tcp")
                if port:
                    return int(port)
        return self.p2p.port

    # ------------------------------------------------------------ connections
    def has_connection(self, peer_id: str) -> bool:
        try:
            return bool(self.libp2p.get_network().get_connections(ID.from_base58(peer_id)))
        except Exception:  # noqa: BLE001 - a malformed id has no connection
            return False

    async def open_stream(self, peer_id: str, proto: str) -> INetStream:
        """A new stream on an existing connection, or PeerUnavailable(unsent=True)."""
        try:
            with trio.fail_after(C.HANDSHAKE_TIMEOUT):
                return await self.libp2p.new_stream(ID.from_base58(peer_id), [proto])
        except Exception as e:  # noqa: BLE001 - whatever py-libp2p raised, the request never left
            raise PeerUnavailable(f"cannot open {proto} to {peer_id}: {reason(e)}", unsent=True) from None

    async def dial(self, maddr: str | multiaddr.Multiaddr, known: bool = False) -> str:
        """Connect to ``/ip4|ip6/…/tcp/…/p2p/<id>``; returns the peer id.
        ``known``: the peer is in the table already (skip the dial workarounds)."""
        ma = maddr if isinstance(maddr, multiaddr.Multiaddr) else multiaddr.Multiaddr(maddr)
        info = info_from_p2p_addr(ma)
        peer_id = str(info.peer_id)
        if peer_id == self.peer_id:
            raise ValueError(f"{ma} is this agent")
        try:
            with trio.fail_after(self.p2p.connection_timeout):
                if not known:
                    _workarounds.forget_failed_dial(self.libp2p.get_network(), info.peer_id)
                    _workarounds.dial_only(self.libp2p, info.peer_id)
                await self.libp2p.connect(info)
        except trio.TooSlowError:
            self.metrics.dials.labels("timeout").inc()
            raise TimeoutError(f"Connection to {ma} timed out after {self.p2p.connection_timeout:g}s") from None
        except Exception as e:
            self.metrics.dials.labels("error").inc()
            raise ConnectionError(f"Failed to connect to {ma}: {reason(e)}") from None
        self.metrics.dials.labels("ok").inc()
        return peer_id

    async def disconnect(self, peer_id: str) -> None:
        with trio.move_on_after(C.DISCONNECT_TIMEOUT):
            try:
                await self.libp2p.disconnect(ID.from_base58(peer_id))
            except Exception:  # noqa: BLE001 - gone already
                pass

    async def close_conn(self, conn: INetConn) -> None:
        with trio.move_on_after(C.DISCONNECT_TIMEOUT):
            try:
                await conn.close()
            except Exception:  # noqa: BLE001
                pass

    def remaining_connections(self, conn: INetConn) -> list[Any]:
        try:
            return list(self.libp2p.get_network().get_connections(conn.muxed_conn.peer_id))
        except Exception:  # noqa: BLE001
            return []

    async def close(self) -> None:
        if self.libp2p is not None:
            with trio.move_on_after(C.STOP_TIMEOUT):
                await self.libp2p.close()


def conn_addrs(conn: INetConn) -> list[str]:
    try:
        return [str(a) for a in conn.get_transport_addresses()]
    except Exception:  # noqa: BLE001
        return []


def reason(e: BaseException) -> str:
    """A one-line reason for a (possibly grouped, chained) exception."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    text = str(e) or type(e).__name__
    cause = e.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({reason(cause)})"
    return text

"""Card exchange (``/praxis/card/1.0.0``) and the verified role of a new peer.

The dialler writes its card and reads the peer's; the listener answers, and
opens the exchange itself only if no card came within CARD_FALLBACK_DELAY.
An exchange that fails on a live connection (a stream reset or a slow peer on
a busy machine) is retried with backoff and jitter, so a start storm does not
leave peers connected but cardless (invisible in /peers).  A peer that sends a
bad card is not asked again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import trio

from .. import constants as C
from ..keys import PeerRegistry
from ..messages import ProtocolError, validate_card
from ..metrics import Metrics
from ._streams import FramedStream
from .discovery import addresses_for_peer, interface_networks
from .peers import PeerTable

__all__ = ["CardExchange"]

log = logging.getLogger("agent.p2p")


class CardExchange:
    def __init__(
        self,
        peers: PeerTable,
        registry: PeerRegistry,
        metrics: Metrics,
        limit: int,
        allowed_peer_types: list[str] | None,
        open_stream: Callable[[str, str], Any],
        refuse: Callable[[str, str], None],
    ) -> None:
        """``open_stream(peer_id, proto)`` opens a stream (raises if it cannot);
        ``refuse(peer_id, why)`` disconnects a peer whose role is not allowed."""
        self.peers = peers
        self.registry = registry
        self.metrics = metrics
        self.card: dict[str, Any] = {}
        # True when p2p.announce_addresses is set: the card is sent as configured.
        self.fixed_addresses = False
        self._limit = limit
        self._allowed = allowed_peer_types
        self._open = open_stream
        self._refuse = refuse
        self._events: dict[str, trio.Event] = {}

    def card_for(self, peer_id: str) -> dict[str, Any]:
        """Our card as ``peer_id`` gets it: only our addresses it can reach.

        A multi-homed agent listens on networks the peer is not on (see
        discovery.addresses_for_peer); configured announce_addresses are sent
        as they are.
        """
        addrs = self.card.get("addresses") or []
        rec = self.peers.get(peer_id)
        if self.fixed_addresses or rec is None or len(addrs) < 2:
            return self.card
        kept = addresses_for_peer(addrs, rec.addrs, interface_networks())
        if kept == addrs:
            return self.card
        card = {**self.card, "addresses": kept}
        # The API URL names one of our IPs too: keep it on the peer's network.
        url = str(card.get("url", ""))
        if url.startswith("http://") and not any(f"//{a.split('/')[2]}:" in url for a in kept):
            card["url"] = f"http://{kept[0].split('/')[2]}:{url.rsplit(':', 1)[-1]}"
        return card

    async def wait_card(self, peer_id: str) -> None:
        rec = self.peers.get(peer_id)
        if rec is not None and rec.card is not None:
            return
        await self._events.setdefault(peer_id, trio.Event()).wait()

    def has_card(self, peer_id: str) -> bool:
        rec = self.peers.get(peer_id)
        return rec is not None and rec.card is not None

    # --------------------------------------------------------------- identify
    async def identify(self, peer_id: str, inbound: bool) -> None:
        """Exchange cards and look up the peer's verified role, side by side."""
        rec = self.peers.get(peer_id)
        if rec is None:
            return

        async def card() -> None:
            if inbound:
                await trio.sleep(C.CARD_FALLBACK_DELAY)
            await self.exchange(peer_id)

        async with trio.open_nursery() as n:
            n.start_soon(card)
            rec.registry_role = await trio.to_thread.run_sync(self._lookup_role, peer_id)
            # A peer that just published its entry may be newer than our
            # registry scan (rescans are throttled): look again a few times.
            for _ in range(C.REGISTRY_RETRIES):
                if rec.registry_role is not None or peer_id not in self.peers:
                    break
                await trio.sleep(C.REGISTRY_RETRY_DELAY)
                rec.registry_role = await trio.to_thread.run_sync(self.registry.role_of, peer_id)

    def _lookup_role(self, peer_id: str) -> str | None:
        """Verified role from the keystore; a new connection may force one rescan
        (connections are bounded by max_peers, so this cannot be flooded)."""
        role = self.registry.role_of(peer_id)
        if role is None:
            self.registry.refresh()
            role = self.registry.role_of(peer_id)
        return role

    async def exchange(self, peer_id: str) -> None:
        """Initiator side, retried with backoff while the peer is connected and cardless."""
        for attempt, delay in enumerate((0.0, *C.CARD_RETRY_DELAYS)):
            if delay:
                await trio.sleep(delay * (1 + random.random() / 2))
            if peer_id not in self.peers or self.has_card(peer_id):
                return
            try:
                await self._exchange_once(peer_id)
                return
            except ProtocolError as e:
                self.metrics.cards.labels("error").inc()
                log.warning("Bad card from %s: %s", peer_id, e)
                return  # a peer that lies is not asked again
            except trio.TooSlowError:
                self.metrics.cards.labels("timeout").inc()
                why = "timed out"
            except Exception as e:  # noqa: BLE001 - stream errors of any kind: try again
                self.metrics.cards.labels("error").inc()
                why = f"failed: {e or type(e).__name__}"
            if peer_id in self.peers:
                log.warning("Card exchange with %s %s (attempt %d)", peer_id, why, attempt + 1)

    async def _exchange_once(self, peer_id: str) -> None:
        with trio.fail_after(C.HANDSHAKE_TIMEOUT):
            stream = await self._open(peer_id, C.CARD_PROTOCOL)
            self.metrics.streams.labels(C.CARD_PROTOCOL, "out").inc()
            fs = FramedStream(stream, self._limit, self.metrics.count_bytes)
            try:
                await fs.write_json(self.card_for(peer_id))
                card = await fs.read_json()
            except BaseException:
                await fs.reset()
                raise
            await fs.close()
        if card is None:
            raise ConnectionError("stream closed before the card arrived")
        self.store(peer_id, card)

    async def handle(self, stream: Any) -> None:
        """Responder side: read the initiator's card, then write ours.  Never raises."""
        peer_id = str(stream.muxed_conn.peer_id)
        self.metrics.streams.labels(C.CARD_PROTOCOL, "in").inc()
        fs = FramedStream(stream, self._limit, self.metrics.count_bytes)
        try:
            with trio.fail_after(C.HANDSHAKE_TIMEOUT):
                card = await fs.read_json()
                if card is None:
                    return
                self.store(peer_id, card)
                await fs.write_json(self.card_for(peer_id))
            await fs.close()
        except Exception as e:  # noqa: BLE001 - this stream only
            self.metrics.cards.labels("error").inc()
            log.warning("Bad card from %s: %s (stream reset)", peer_id, e or type(e).__name__)
            await fs.reset()

    def store(self, peer_id: str, card: dict[str, Any]) -> None:
        validate_card(card)
        if card["peer_id"] != peer_id:
            self.metrics.refused.labels("card_peer_id_mismatch").inc()
            raise ProtocolError(0, f"card claims peer_id {card['peer_id']}, connection is authenticated as {peer_id}")
        rec = self.peers.get(peer_id)
        if rec is None:
            return
        role = rec.registry_role or card.get("role")
        if self._allowed is not None and role not in self._allowed:
            log.warning("Refused peer %s: role %r not in allowed_peer_types %s", peer_id, role, self._allowed)
            self.metrics.refused.labels("peer_type").inc()
            self._refuse(peer_id, "refused (peer type)")
            return
        first = rec.card is None
        rec.card = card
        self.metrics.cards.labels("ok").inc()
        self.metrics.connected_peers.set(len(self.peers.with_cards()))
        if first:
            log.info("Card exchanged with %s (%s, %s)", card.get("name"), card.get("role"), peer_id)
        ev = self._events.pop(peer_id, None)
        if ev is not None:
            ev.set()


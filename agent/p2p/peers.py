"""The table of connected peers: written on the trio thread, read by the HTTP app."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..constants import GONE_LIST_SIZE

__all__ = ["PeerRecord", "PeerTable", "JOINED_VIA"]

# How a peer came to be connected: we dialled it from a bootstrap address or
# after mDNS found it, or it dialled us.
JOINED_VIA = ("bootstrap", "mdns", "inbound", "dial")


@dataclass
class PeerRecord:
    peer_id: str
    addrs: list[str] = field(default_factory=list)
    connected_since: float = field(default_factory=time.time)
    card: dict[str, Any] | None = None
    # Role from the keystore registry (authenticated PeerID), not from the card.
    registry_role: str | None = None
    rtt_ms: float | None = None
    # Liveness: "alive", or "suspect" while a missed ping awaits an answer.
    state: str = "alive"
    # How it joined (JOINED_VIA), set by the service when it connects; None: not known.
    joined_via: str | None = None
    inflight: int = 0

    def public(self) -> dict[str, Any]:
        card = self.card or {}
        return {
            "peer_id": self.peer_id,
            "name": card.get("name"),
            "role": card.get("role"),
            "verified_role": self.registry_role,
            "addrs": list(self.addrs),
            "connected_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.connected_since)),
            "rtt_ms": None if self.rtt_ms is None else round(self.rtt_ms, 3),
            "state": self.state,
            "joined_via": self.joined_via,
            "card": card,
        }

    def shown_state(self) -> str:
        """The state users see (page, metrics): the table's "alive" is "connected"."""
        return "connected" if self.state == "alive" else self.state

    def tool_names(self) -> set[str]:
        return {t["name"] for t in (self.card or {}).get("tools", [])}


class PeerTable:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._peers: dict[str, PeerRecord] = {}
        self._gone: deque[dict[str, Any]] = deque(maxlen=GONE_LIST_SIZE)

    def get(self, peer_id: str) -> PeerRecord | None:
        with self._lock:
            return self._peers.get(peer_id)

    def ensure(self, peer_id: str, addrs: list[str]) -> PeerRecord:
        with self._lock:
            rec = self._peers.get(peer_id)
            if rec is None:
                rec = self._peers[peer_id] = PeerRecord(peer_id=peer_id, addrs=addrs)
            else:
                for a in addrs:
                    if a not in rec.addrs:
                        rec.addrs.append(a)
            return rec

    def remove(self, peer_id: str, reason: str | None = None) -> PeerRecord | None:
        """Forget a peer; with a ``reason``, a peer users saw (card exchanged)
        goes on the short recently-gone list."""
        with self._lock:
            rec = self._peers.pop(peer_id, None)
            if rec is not None and reason is not None and rec.card is not None:
                self._gone.append({
                    "name": rec.card.get("name"),
                    "peer_id": peer_id,
                    "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "reason": reason,
                    # What the page still shows of a gone peer.
                    "role": rec.registry_role or rec.card.get("role"),
                    "tools": sorted(rec.tool_names()),
                    "addrs": list(rec.addrs),
                    "joined_via": rec.joined_via,
                })
            return rec

    def gone(self) -> list[dict[str, Any]]:
        """Recently departed peers, newest first (for the UI)."""
        with self._lock:
            return list(reversed(self._gone))

    def __contains__(self, peer_id: str) -> bool:
        with self._lock:
            return peer_id in self._peers

    def __len__(self) -> int:
        with self._lock:
            return len(self._peers)

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._peers)

    def with_cards(self) -> list[PeerRecord]:
        """Peers whose card has been exchanged: the ones users see."""
        with self._lock:
            return [r for r in self._peers.values() if r.card is not None]

    def providers(self, tool: str) -> list[PeerRecord]:
        with self._lock:
            return [r for r in self._peers.values() if r.card is not None and tool in r.tool_names()]

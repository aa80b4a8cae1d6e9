"""Prometheus metrics of one agent (its own registry, so several agents can
share a process in tests).  prometheus_client's metrics are thread-safe, so the
trio thread and the HTTP app update them directly.

Names follow Prometheus conventions: base units in the name (``_seconds``,
``_bytes``), ``_total`` on counters, ``_info`` gauges (value 1) carrying
identity labels.  The alerting rules in images/prometheus/ depend on them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["Metrics", "CONTENT_TYPE_LATEST"]

# Request latencies on loopback are sub-millisecond; calls that run tools take
# up to the call timeout.
_LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.connected_peers = Gauge("praxis_connected_peers", "Peers connected with a card exchanged", registry=r)
        self.dials = Counter("praxis_dials_total", "Outbound dials by outcome", ["outcome"], registry=r)
        self.streams = Counter(
            "praxis_streams_total", "Streams opened, by protocol and direction", ["protocol", "direction"], registry=r
        )
        self.requests = Counter(
            "praxis_requests_total",
            "Requests by protocol, side (client/server/http) and outcome",
            ["protocol", "side", "outcome"],
            registry=r,
        )
        self.latency = Histogram(
            "praxis_request_duration_seconds",
            "Request latency by protocol and side",
            ["protocol", "side"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes = Counter("praxis_bytes_total", "Framed bytes by direction", ["direction"], registry=r)
        self.discovery = Counter(
            "praxis_discovery_events_total", "Discovery events by source and event", ["source", "event"], registry=r
        )
        self.refused = Counter("praxis_refused_peers_total", "Peers or requests refused, by reason", ["reason"], registry=r)
        self.peer_drops = Counter("praxis_peer_drops_total", "Peers dropped from the peer table, by reason", ["reason"], registry=r)
        self.cards = Counter("praxis_cards_exchanged_total", "Card exchanges by outcome", ["outcome"], registry=r)

    def describe_agent(self, name: str, role: str, peer_id: str, version: str,
                       peers: Callable[[], list[Any]]) -> None:
        """Identity of this agent, and its peers read from the peer table at scrape time."""
        info = Gauge("praxis_agent_info", "This agent (value 1)", ["agent_name", "role", "peer_id", "version"],
                     registry=self.registry)
        info.labels(name, role, peer_id, version).set(1)
        self.registry.register(_PeerCollector(peers))

    def count_bytes(self, direction: str, n: int) -> None:
        self.bytes.labels(direction).inc(n)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _PeerCollector:
    """``praxis_peer_info`` and ``praxis_peer_rtt_seconds``, one series per
    connected peer: what lets a rule ask "is every worker among the
    orchestrator's peers?".  Read at scrape time, so nothing to keep in step."""

    def __init__(self, peers: Callable[[], list[Any]]) -> None:
        self._peers = peers

    def describe(self) -> list[Any]:
        return []  # the families depend on the peer table; collected, never pre-described

    def collect(self) -> Any:
        info = GaugeMetricFamily("praxis_peer_info", "A connected peer with its card (value 1)",
                                 labels=["peer_id", "peer_name", "peer_role", "state", "joined_via"])
        rtt = GaugeMetricFamily("praxis_peer_rtt_seconds", "Last ping round trip to a peer",
                                labels=["peer_id", "peer_name"])
        for rec in self._peers():
            card = rec.card or {}
            name = str(card.get("name") or "")
            role = rec.registry_role or str(card.get("role") or "unknown")
            info.add_metric([rec.peer_id, name, role, rec.shown_state(), rec.joined_via or "unknown"], 1)
            if rec.rtt_ms is not None:
                rtt.add_metric([rec.peer_id, name], rec.rtt_ms / 1000)
        yield info
        yield rtt

"""agent.metrics: names follow Prometheus conventions and identify agent and peers
(the alerting rules in images/prometheus/rules.yml depend on both)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import Metrics
from agent.p2p.peers import PeerRecord

UNITS = ("_seconds", "_bytes")


def _families(m: Metrics) -> dict:
    return {f.name: f for f in text_string_to_metric_families(m.render().decode())}


def _metrics_with_peers(peers: list[PeerRecord]) -> Metrics:
    m = Metrics()
    m.describe_agent("orchestrator", "orchestrator", "12D3Self", "0.1.0", lambda: peers)
    m.requests.labels("/praxis/tool/1.0.0", "client", "ok").inc()
    m.latency.labels("/praxis/tool/1.0.0", "client").observe(0.003)
    m.dials.labels("ok").inc()
    m.count_bytes("in", 10)
    return m


def test_counters_end_in_total_and_histograms_carry_a_unit():
    fams = _families(_metrics_with_peers([]))
    for fam in fams.values():
        if fam.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in fam.samples), fam.name
        if fam.type == "histogram":
            assert fam.name.endswith(UNITS), fam.name
    assert "praxis_request_duration_seconds" in fams


def test_latency_buckets_span_loopback_to_the_call_timeout():
    fam = _families(_metrics_with_peers([]))["praxis_request_duration_seconds"]
    les = sorted(float(s.labels["le"]) for s in fam.samples if s.name.endswith("_bucket") and s.labels["le"] != "+Inf")
    assert les[0] <= 0.001 and les[-1] >= 10 and len(les) >= 10


def test_agent_info_and_one_peer_info_series_per_connected_peer():
    peers = [
        PeerRecord(peer_id="12D3W1", card={"name": "worker-1", "role": "worker"}, registry_role="worker", rtt_ms=2.5),
        PeerRecord(peer_id="12D3W2", card={"name": "worker-2", "role": "worker"}),
    ]
    peers[0].state, peers[0].joined_via = "suspect", "mdns"
    fams = _families(_metrics_with_peers(peers))
    [agent] = fams["praxis_agent_info"].samples
    assert agent.value == 1 and agent.labels == {"agent_name": "orchestrator", "role": "orchestrator",
                                                 "peer_id": "12D3Self", "version": "0.1.0"}
    info = {s.labels["peer_id"]: s.labels for s in fams["praxis_peer_info"].samples}
    assert info["12D3W1"] == {"peer_id": "12D3W1", "peer_name": "worker-1", "peer_role": "worker",
                              "state": peers[0].state, "joined_via": peers[0].joined_via}
    assert info["12D3W2"]["peer_role"] == "worker"
    [rtt] = fams["praxis_peer_rtt_seconds"].samples
    assert rtt.labels["peer_id"] == "12D3W1" and rtt.value == 0.0025


def test_peer_series_follow_the_table_at_scrape_time():
    peers: list[PeerRecord] = [PeerRecord(peer_id="A", card={"name": "a", "role": "worker"})]
    m = _metrics_with_peers(peers)
    assert len(_families(m)["praxis_peer_info"].samples) == 1
    peers.clear()
    assert len(_families(m).get("praxis_peer_info").samples) == 0

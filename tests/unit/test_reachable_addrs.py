"""discovery.addresses_for_peer: a multi-homed agent hands a peer only addresses it can dial."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from agent.p2p.discovery import addresses_for_peer  # noqa: E402

NETS = [ipaddress.IPv4Interface("172.21.0.2/16"), ipaddress.IPv4Interface("172.22.0.5/16")]
OURS = ["/ip4/172.21.0.2/tcp/9000/p2p/X", "/ip4/172.22.0.5/tcp/9000/p2p/X"]


def test_peer_on_one_of_our_networks_gets_that_networks_address():
    assert addresses_for_peer(OURS, ["/ip4/172.22.0.9/tcp/40000"], NETS) == [OURS[1]]
    assert addresses_for_peer(OURS, ["/ip4/172.21.7.1/tcp/1"], NETS) == [OURS[0]]


def test_peer_on_none_of_our_networks_gets_everything():
    # Routed or NATed: we cannot tell which address works for it.
    assert addresses_for_peer(OURS, ["/ip4/203.0.113.7/tcp/19000"], NETS) == OURS
    assert addresses_for_peer(OURS, [], NETS) == OURS


def test_non_ip4_addresses_are_not_dropped_for_nothing():
    ours = ["/dns4/orchestrator/tcp/9000"]
    assert addresses_for_peer(ours, ["/ip4/172.22.0.9/tcp/1"], NETS) == ours


def test_single_network_host_unchanged():
    one = [ipaddress.IPv4Interface("10.0.1.2/24")]
    ours = ["/ip4/10.0.1.2/tcp/9000/p2p/X"]
    assert addresses_for_peer(ours, ["/ip4/10.0.1.7/tcp/5"], one) == ours

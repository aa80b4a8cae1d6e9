"""Protocol ids, defaults and timing constants, in one place.

Each timing constant says why it has the value it has.
"""

from __future__ import annotations

# --- protocol ids (fixed by the original Praxis system) -----------------------
CARD_PROTOCOL = "/praxis/card/1.0.0"
TOOL_PROTOCOL = "/praxis/tool/1.0.0"
MCP_PROTOCOL = "/praxis/mcp/1.0.0"
A2A_PROTOCOL = "/praxis/a2a/1.0.0"
ALL_PROTOCOLS = (MCP_PROTOCOL, CARD_PROTOCOL, TOOL_PROTOCOL, A2A_PROTOCOL)

ROLES = ("orchestrator", "worker")

# --- defaults ----------------------------------------------------------------
DEFAULT_P2P_PORT = 9000
DEFAULT_API_PORT = 8000
DEFAULT_MDNS_SERVICE = "praxis-p2p-mcp"
# One bound for every framed message on every protocol; large enough for a
# multi-MiB file, small enough that a hostile peer cannot make us buffer much.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024

# Keystore file names (the seed's layout: <keystore_path>/node.key).
NODE_KEY_FILE = "node.key"
PEER_ID_FILE = "peer.id"
ROLE_FILE = "role"
SWARM_KEY_FILE = "swarm.key"
SEED_SIZE = 32

# --- tools -------------------------------------------------------------------
# Tool groups a node can enable by name (agent.tools.build_registry also accepts
# single tool names).
TOOL_GROUPS = {
    "system": ("echo",),
    "filesystem": ("read_file", "write_file", "list_directory", "file_info"),
    "analytics": ("describe", "text_stats"),
}
# list_directory returns at most this many entries (sorted by name) and sets
# "truncated": a listing must fit in one DEFAULT_MAX_MESSAGE_SIZE reply, and
# 10k entries of ~100 bytes each is ~1 MiB.
TOOL_MAX_LIST_ENTRIES = 10_000

# --- liveness (agent/p2p/liveness.py; SWIM/Lifeguard as in hashicorp/memberlist) --
# Why a peer left the peer table: the label of praxis_peer_drops_total{reason}
# and the "reason" of the recently-gone list.
DROP_DISCONNECTED = "disconnected"  # its last connection closed (killed, stopped, reset)
DROP_PING_TIMEOUT = "ping_timeout"  # suspected and silent for the whole suspicion timeout
DROP_REFUSED = "refused"  # refused after connecting (peer type, max_peers)
DROP_REASONS = (DROP_DISCONNECTED, DROP_PING_TIMEOUT, DROP_REFUSED)
# A probe may never be given less than this (nor more than one ping interval
# before the local-health multiplier): loopback RTTs are ~1 ms, but a GC
# pause or a busy peer can hold an answer for a few hundred ms, and a missed
# probe only makes a peer *suspect*, so this bounds noise, not detection.
LIVENESS_PROBE_TIMEOUT_MIN = 0.5
# Probe timeout before the first RTT sample, as a fraction of the ping interval.
LIVENESS_PROBE_TIMEOUT_INITIAL = 0.5
# Suspicion lasts this many ping intervals (× local-health multiplier): with the
# default 2 s interval a paused peer is suspect after ≤ 2.2 + 0.5 s and gone
# ≤ 5 s later (< 10 s), and 2-3 more probes or any frame can refute it.
LIVENESS_SUSPICION_MULT = 2.5
# ...but never less than this: with a short interval (tests use 0.5 s) a
# peer starved of CPU for a second on a loaded 2-core machine is not dead.
LIVENESS_SUSPICION_MIN = 3.0
# Pings are spread: each wait is the interval × U(1 - j, 1 + j), so agents
# started together do not ping in lockstep.
LIVENESS_JITTER = 0.1
# The liveness clock ticks at interval / this: suspicion deadlines are checked
# and this agent's own loop lag is sampled (a tick that wakes late is a
# stalled loop).  4 wake-ups per 2 s interval cost ~0.01 % of a core.
LIVENESS_TICKS_PER_INTERVAL = 4
# Local health (Lifeguard "awareness"): a tick later than this counts as a
# stall of our own loop and raises the score; each clean interval lowers it
# by one.  Timeouts are multiplied by (score + 1), at most this much.
LIVENESS_LAG_NOTABLE = 0.1
LIVENESS_MAX_HEALTH_MULTIPLIER = 4
# RTT estimator gains (RFC 6298: alpha 1/8, beta 1/4; timeout srtt + 4 rttvar).
LIVENESS_RTT_ALPHA = 0.125
LIVENESS_RTT_BETA = 0.25
LIVENESS_RTT_K = 4.0
# Recently departed peers kept for the UI (name, peer_id, when, reason).
GONE_LIST_SIZE = 32

# --- start storm ---------------------------------------------------------------
# A worker waits U(0, this) before its first bootstrap dial, so N workers
# started by one `compose up` do not handshake with the orchestrator at once.
BOOTSTRAP_FIRST_DIAL_JITTER = 1.0
# A dial to a peer found by mDNS waits U(0, this): it has often dialled us
# already (workers bootstrap to the orchestrator), and 100 announcements
# arriving together do not turn into 100 simultaneous handshakes.
MDNS_DIAL_JITTER = 1.0
# Inbound handshakes (Noise + yamux) running at once; later ones wait in a
# queue (FIFO) instead of being refused: on 2 cores, 100 concurrent Python
# handshakes all finish late and all time out, 16 at a time finish in turn.
HANDSHAKE_SLOTS = 16
# Handshakes running or queued, in all; beyond this new inbound sockets are
# closed (a flood of idle sockets from many addresses costs little).
PENDING_HANDSHAKES = 64
# Running or queued handshakes from one remote IP; beyond, refused.  Far more
# than an honest host opens (one, two when both sides dial at once).
PENDING_HANDSHAKES_PER_IP = 16
# How long a queued handshake may wait for a slot: the dialler gives up after
# its own upgrade timeout (10 s), so waiting longer serves nobody.
HANDSHAKE_QUEUE_WAIT = 5.0

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
# An HTTP request body may exceed p2p.max_message_size by this much and no more
# (413 beyond): the body wraps a payload that must fit in one frame to be
# forwarded at all ({"arguments": ..., "peer_id": ...} or a JSON-RPC envelope),
# and refusing it up front keeps a 50 MB body out of the agent's memory.
HTTP_BODY_ENVELOPE = 64 * 1024

# Keystore file names (the seed's layout: <keystore_path>/node.key).
NODE_KEY_FILE = "node.key"
PEER_ID_FILE = "peer.id"
ROLE_FILE = "role"
SWARM_KEY_FILE = "swarm.key"
SEED_SIZE = 32

# --- local supervisor (python -m agent local) ---------------------------------
# Every agent of a local cluster answers /health within this after a (re)start
# on a loaded 2-core machine (measured: 3-8 s for 4 agents).
LOCAL_READY_TIMEOUT = 30.0
# First restart delay after an agent died: short, so a one-off kill heals
# within a second or two; doubled on each further death.
LOCAL_RESTART_BACKOFF_FIRST = 1.0
# Cap of that delay: an agent that keeps crashing is retried twice a minute
# instead of spinning the CPU.
LOCAL_RESTART_BACKOFF_MAX = 30.0
# An agent that stayed up this long counts as healed: its backoff starts over.
LOCAL_RESTART_RESET_AFTER = 60.0
# SIGTERM -> SIGKILL grace on stop: an agent stops in a few seconds (P2P first,
# then HTTP), so only a hung one waits this out.
LOCAL_STOP_GRACE = 10.0
# How often the supervisor looks at its children and at its stop flag.
LOCAL_POLL_INTERVAL = 0.2

# --- tools -------------------------------------------------------------------
# Tool groups a node can enable by name (agent.tools.build_registry also accepts
# single tool names).
TOOL_GROUPS = {
    "system": ("echo", "sleep"),
    "filesystem": ("read_file", "write_file", "list_directory", "file_info"),
    "analytics": ("describe", "text_stats"),
}
# list_directory returns at most this many entries (sorted by name) and sets
# "truncated": a listing must fit in one DEFAULT_MAX_MESSAGE_SIZE reply, and
# 10k entries of ~100 bytes each is ~1 MiB.
TOOL_MAX_LIST_ENTRIES = 10_000

# --- timing and bounds of the P2P side ------------------------------------------
# Bound on a Noise + yamux handshake and on opening a stream: long enough for
# a loaded 2-core machine, short enough that a peer that never completes one
# does not hold a connection slot for the whole connection_timeout.
HANDSHAKE_TIMEOUT = 10.0
# Handshakes in progress and queued: see "start storm" below.
# How long the listening side of a new connection waits for the dialler's
# card before it opens the exchange itself.
CARD_FALLBACK_DELAY = 1.0
# A card exchange that failed on a live connection (a stream reset on a busy
# machine) is tried again after these pauses (plus up to 50 % jitter, so a
# start storm does not retry in lockstep); then the peer stays cardless.
CARD_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
# Looking up a new peer's role again when its keystore entry was not there
# yet: just over PeerRegistry's rescan throttle (1 s), a few times.
REGISTRY_RETRY_DELAY = 1.1
REGISTRY_RETRIES = 4
# How often peers found by mDNS but not connected are dialled again.
MDNS_REDIAL_INTERVAL = 2.0
# How long a zeroconf lookup of one announced service may take.
MDNS_RESOLVE_TIMEOUT_MS = 3000
# Stopping zeroconf (it says goodbye on the network) must not hold up shutdown.
MDNS_STOP_TIMEOUT = 3.0
# First pause between bootstrap rounds; doubles each failed round up to
# p2p.discovery_interval, so a worker that starts before the orchestrator joins
# within about a second of it coming up, and a missing one costs little.
# Each pause is drawn from [backoff/2, backoff] ("equal jitter"): workers that
# failed together (orchestrator restarting) do not retry together.
BOOTSTRAP_INITIAL_BACKOFF = 0.25
# How long stop() waits for the host to close before it abandons the thread.
STOP_TIMEOUT = 5.0
# Closing a connection (or resetting a stream) to a peer that vanished can hang
# on TCP; give up after this.
DISCONNECT_TIMEOUT = 2.0
# Requests one stream may have in flight on the serving side; past that the
# reader stops reading, which pushes back on the sender through yamux windows.
MAX_INFLIGHT_PER_STREAM = 256
# Writing the error answer to garbage before the stream is reset: the sender
# may not be reading, and a reset must not wait on it.
REFUSAL_WRITE_TIMEOUT = 1.0
# Sending a cancel frame for a call the caller gave up on: best effort, and it
# must not hold up the caller's own cancellation.
CANCEL_FRAME_TIMEOUT = 1.0
# A routed call whose request never left this agent (no connection, stream
# refused) is tried on another provider, at most this many attempts in all.
ROUTE_ATTEMPTS = 3
# When the P2P loop died: how long /health keeps answering 503 with the reason
# (so a watcher or a test sees why) before the process exits with EXIT_P2P_DIED.
FAILURE_EXIT_GRACE = 3.0

# --- process exit codes -----------------------------------------------------------
# The P2P loop died while running: exit non-zero so `restart: unless-stopped`
# (compose) brings the agent back instead of leaving a zombie.
EXIT_P2P_DIED = 4

# --- MCP / A2A (agent/rpc, agent/http_rpc.py) --------------------------------
# JSON nested deeper than this is refused before dispatch: no protocol message
# needs it, and deeper input makes recursive code (encoders, validators) fail
# with RecursionError far from where it came in.
RPC_MAX_JSON_DEPTH = 64
# A2A task store: at most this many tasks, and at most this many bytes of kept
# messages/artifacts; the oldest finished tasks are dropped first.  Bytes are
# bounded too because 1 000 tasks of 4 MiB each would be 4 GiB.
A2A_MAX_TASKS = 1000
A2A_MAX_STORE_BYTES = 32 * 1024 * 1024
# A message or artifact bigger than this is answered in full once (the
# SendMessage answer or the stream) but kept only as a short placeholder, so a
# few large calls cannot fill the store.
A2A_MAX_KEPT_PART_BYTES = 256 * 1024
# ListTasks page sizes (A2A 1.0 defaults: 50, at most 100).
A2A_LIST_DEFAULT_PAGE = 50
A2A_LIST_MAX_PAGE = 100
# SSE comment sent while a stream (an A2A task, the cluster page) is silent,
# so idle-read timeouts of proxies do not cut it.
SSE_KEEPALIVE_S = 15.0
# How long clients may cache server/discover and tools/list (MCP 2026-07-28):
# the tool list changes as workers come and go, so keep it short.
MCP_CACHE_TTL_MS = 5_000
# The sleep tool's upper bound: long enough to test cancellation of a running
# call, short enough that it cannot hold a worker thread for long.
SLEEP_MAX_SECONDS = 60.0

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
# Recently departed peers kept for the UI (name, peer_id, when, reason, ...).
GONE_LIST_SIZE = 32
# The page shows a departed peer, greyed as "gone", this long: time to notice
# what left and why, short enough that a replaced worker does not linger.
GONE_KEEP_S = 300.0
# How often an open cluster page's event stream looks for a change: the page
# promises updates within 2 s, so half a second leaves room for a busy machine.
UI_STREAM_TICK_S = 0.5
# A page snapshot is reused this long by every open page (and /ui/state), so
# any number of pages cost one build per tick.
UI_SNAPSHOT_TTL_S = 0.4
# The page's EventSource reconnects after this many ms once the agent is back.
UI_SSE_RETRY_MS = 1000

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

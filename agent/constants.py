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
    "system": ("echo",),
    "filesystem": ("read_file", "write_file", "list_directory", "file_info"),
    "analytics": ("describe", "text_stats"),
}
# list_directory returns at most this many entries (sorted by name) and sets
# "truncated": a listing must fit in one DEFAULT_MAX_MESSAGE_SIZE reply, and
# 10k entries of ~100 bytes each is ~1 MiB.
TOOL_MAX_LIST_ENTRIES = 10_000

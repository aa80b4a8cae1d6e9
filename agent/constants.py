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
    "system": ("echo", "sleep"),
    "filesystem": ("read_file", "write_file", "list_directory", "file_info"),
    "analytics": ("describe", "text_stats"),
}
# list_directory returns at most this many entries (sorted by name) and sets
# "truncated": a listing must fit in one DEFAULT_MAX_MESSAGE_SIZE reply, and
# 10k entries of ~100 bytes each is ~1 MiB.
TOOL_MAX_LIST_ENTRIES = 10_000

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
# SSE comment sent while a streamed task is silent, so idle-read timeouts of
# proxies do not cut a long tool call's stream.
SSE_KEEPALIVE_S = 15.0
# How long clients may cache server/discover and tools/list (MCP 2026-07-28):
# the tool list changes as workers come and go, so keep it short.
MCP_CACHE_TTL_MS = 5_000
# The sleep tool's upper bound: long enough to test cancellation of a running
# call, short enough that it cannot hold a worker thread for long.
SLEEP_MAX_SECONDS = 60.0

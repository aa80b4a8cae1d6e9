#!/usr/bin/env python3
"""Print the orchestrator's health URL and one line per peer from /peers.

    scripts/cluster-status.py [BASE_URL] [--expect N] [--timeout S]

With --expect N it first waits (up to --timeout seconds) until /peers lists
at least N peers, since workers join a moment after they turn healthy.
Standard library only (runs with the host's python3, no install needed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 (loopback URL)
        return json.load(resp)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("base_url", nargs="?", default="http://127.0.0.1:8000")
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    base = args.base_url.rstrip("/")

    deadline = time.monotonic() + args.timeout
    peers: list = []
    health: dict = {}
    while True:
        try:
            health = get(base + "/health")  # type: ignore[assignment]
            peers = get(base + "/peers")  # type: ignore[assignment]
        except (urllib.error.URLError, OSError, ValueError) as exc:
            peers, health = [], {"status": f"unreachable: {exc}"}
        if len(peers) >= args.expect or time.monotonic() >= deadline:
            break
        time.sleep(1)

    print(f"orchestrator: {base}/health  ({health.get('status')}, peer_id {health.get('peer_id', '?')})")
    print(f"peers ({len(peers)}):")
    for p in sorted(peers, key=lambda p: (str(p.get("role")), str(p.get("name")))):
        print(f"  {str(p.get('name')):<28} {str(p.get('role')):<13} {p.get('peer_id')}")
    if len(peers) < args.expect:
        print(f"WARNING: expected {args.expect} peers, /peers lists {len(peers)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Section 1: agent <-> agent over libp2p (TCP + Noise + yamux) next to raw TCP on loopback.

Processes: a worker (``python -m agent``, configs/worker.yaml), the libp2p sink
server (:mod:`bench._server`, the agent's stack plus one bench protocol) and the
raw TCP server (:mod:`bench._tcp_server`).  The client side is an in-process
orchestrator-role agent; its measuring loops run on its own trio loop
(``service.submit``), the raw TCP client on a trio loop in this thread.  Each
libp2p run is paired with its raw TCP run right before it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import multiaddr
import trio
from libp2p.network.stream.exceptions import StreamEOF
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr

from agent.messages import dumps

from . import _drive
from ._server import SINK_PROTOCOL
from ._util import (HOST, agent_cmd, agent_sets, free_port, inprocess_client, log, median, read_line, summarize,
                    wait_healthy)
from .report import row

BULK_BYTES = 64 * 1024 * 1024
BULK_CHUNK = 1024 * 1024
MESSAGE = "x" * 64
CALL_TIMEOUT = 30.0


def _plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {"seq": (1500, 6.0), "conc": (4000, 6.0), "bulk_reps": 1, "connects": 10, "warmup": 200}
    return {"seq": (10000, 20.0), "conc": (30000, 20.0), "bulk_reps": 3, "connects": 20, "warmup": 1000}


def run(ctx: Any) -> dict[str, Any]:
    plan = _plan(ctx.quick)
    root = ctx.tmp / "p2p"
    root.mkdir()
    procs = ctx.procs
    wport, wapi = free_port(), free_port()
    wlog = root / "worker.log"
    log("p2p: starting worker, libp2p sink server and raw TCP server processes")
    worker = procs.start("worker", agent_cmd("worker.yaml", agent_sets("bench-worker", root, wport, wapi)), wlog)
    server = procs.start("bench-server", [sys.executable, "-m", "bench._server", "--root", str(root)],
                         root / "server.log", stdout=subprocess.PIPE)
    tcp = procs.start("tcp-server", [sys.executable, "-m", "bench._tcp_server"], root / "tcp.log",
                      stdout=subprocess.PIPE)
    client = inprocess_client(root, "bench-client")
    try:
        return _measure(ctx, plan, client, worker, wport, wapi, wlog, server, tcp)
    finally:
        client.stop_p2p()
        for p in (worker, server, tcp):
            procs.stop(p)


def _measure(ctx: Any, plan: dict, client: Any, worker: Any, wport: int, wapi: int, wlog: Any,
             server: Any, tcp: Any) -> dict[str, Any]:
    svc = client.service

    def on_loop(fn: Any, *args: Any, timeout: float = 120.0) -> Any:
        return svc.submit(fn, *args).result(timeout)

    health = wait_healthy(worker, wapi, 60, wlog)
    wid = health["peer_id"]
    waddr = f"/ip4/{HOST}/tcp/{wport}/p2p/{wid}"
    srv = json.loads(read_line(server, 60))
    tcp_port = int(read_line(tcp, 30).split()[1])
    on_loop(svc.dial, waddr, True, timeout=30)
    on_loop(svc.dial, srv["addr"], True, timeout=30)
    log(f"p2p: connected to worker {wid[:16]}… and bench server; raw TCP server on port {tcp_port}")

    args = {"message": MESSAGE}
    first = on_loop(svc._call_tool, wid, "echo", args, CALL_TIMEOUT)
    if first != args:
        raise RuntimeError(f"echo answered {first!r}")
    # Same size on the wire as a tool request (the id grows to 5 digits during the run).
    payload = b"x" * len(dumps({"tool": "echo", "arguments": args, "id": 10000}))

    async def echo() -> None:
        await svc._call_tool(wid, "echo", args, CALL_TIMEOUT)

    async def p2p_run(inflight: int, n: int, secs: float) -> dict:
        return await _drive.trio_closed_loop(echo, inflight, n, secs)

    on_loop(p2p_run, 1, plan["warmup"], 10.0)
    data: dict[str, Any] = {"payload_bytes": len(payload)}
    runs: dict[str, dict] = {}
    for inflight in (1, 16, 64):
        n, secs = plan["seq"] if inflight == 1 else plan["conc"]
        raw = trio.run(_drive.raw_echo_run, tcp_port, payload, inflight, n, secs, plan["warmup"])
        p2p = on_loop(p2p_run, inflight, n, secs, timeout=secs + 120)
        runs[f"raw_{inflight}"], runs[f"p2p_{inflight}"] = raw, p2p
        log(f"p2p: {inflight:>2} in flight: libp2p {p2p['rate']:8.0f} calls/s "
            f"(p50 {summarize(p2p['lat'])['p50_ms']:.3f} ms)  raw TCP {raw['rate']:8.0f}/s "
            f"(p50 {summarize(raw['lat'])['p50_ms']:.3f} ms)")

    bulk_p2p, bulk_raw = [], []
    for i in range(plan["bulk_reps"]):
        bulk_raw.append(BULK_BYTES / trio.run(_drive.raw_bulk, tcp_port, BULK_BYTES, BULK_CHUNK) / 1e6)
        bulk_p2p.append(BULK_BYTES / on_loop(_p2p_bulk, svc._host, srv["peer_id"], BULK_BYTES, BULK_CHUNK) / 1e6)
        log(f"p2p: bulk 64 MiB #{i + 1}: libp2p {bulk_p2p[-1]:.1f} MB/s, raw TCP {bulk_raw[-1]:.1f} MB/s")

    n = plan["connects"]
    raw_conn = trio.run(_drive.raw_connect, tcp_port, n)
    cstats: dict[str, Any] = {"disconnect_s": [], "stale": 0, "stopped_early": False}
    # With card first: a disconnect that leaves a stale peer record spoils the loops after it.
    conn_card = on_loop(_p2p_connect_card, svc, waddr, wid, n, cstats)
    conn_only = on_loop(_p2p_connect_only, svc, waddr, wid, n, cstats)
    disc = cstats["disconnect_s"]
    stale = cstats["stale"]
    stale_note = ""
    if stale:
        stale_note = (f"{stale} of {len(disc)} host.disconnect() calls left the peer in P2PService.peers "
                      f"for >3 s (not timed{'; loop stopped early' if cstats['stopped_early'] else ''}); "
                      f"{len(conn_card)}+{len(conn_only)} samples")
    log(f"p2p: connect median: dial+card {median(conn_card) * 1e3:.2f} ms ({len(conn_card)} samples), dial only "
        f"{median(conn_only) * 1e3:.2f} ms ({len(conn_only)}), raw TCP {median(raw_conn) * 1e3:.3f} ms; "
        f"host.disconnect until dropped {median(disc) * 1e3:.0f} ms median; {stale} stale")

    s = {k: summarize(v["lat"]) for k, v in runs.items()}
    data.update({k: {**s[k], "calls": v["calls"], "seconds": v["seconds"], "rate": v["rate"]} for k, v in runs.items()})
    data["bulk_mb_s"] = {"libp2p": bulk_p2p, "raw": bulk_raw, "bytes": BULK_BYTES, "chunk": BULK_CHUNK}
    data["connect_ms"] = {"card": [t * 1e3 for t in conn_card], "no_card": [t * 1e3 for t in conn_only],
                          "raw": [t * 1e3 for t in raw_conn],
                          "host_disconnect_until_dropped": [t * 1e3 for t in disc],
                          "stale_after_disconnect": stale, "stopped_early": cstats["stopped_early"]}
    raw_what = "raw TCP, same-size framed echo"
    rows = [
        row("p2p_p50", "reused-stream tool call p50 (1 in flight)", "ms", s["p2p_1"]["p50_ms"], s["raw_1"]["p50_ms"],
            raw_what, ("<=", 0.3)),
        row("p2p_p99", "reused-stream tool call p99 (1 in flight)", "ms", s["p2p_1"]["p99_ms"], s["raw_1"]["p99_ms"],
            raw_what),
        row("p2p_rps_1", "tool calls/s, 1 in flight", "calls/s", runs["p2p_1"]["rate"], runs["raw_1"]["rate"],
            raw_what),
        row("p2p_rps_16", "tool calls/s, 16 in flight (one stream)", "calls/s", runs["p2p_16"]["rate"],
            runs["raw_16"]["rate"], raw_what + ", pipelined"),
        row("p2p_rps_64", "tool calls/s, 64 in flight (one stream)", "calls/s", runs["p2p_64"]["rate"],
            runs["raw_64"]["rate"], raw_what + ", pipelined", (">=", 3000)),
        row("bulk", "bulk 64 MiB one stream (MB = 10^6 B)", "MB/s", median(bulk_p2p), median(bulk_raw),
            "raw TCP sink", (">=", 265)),
        row("connect_card", "connect: dial+Noise+yamux+card (median)", "ms", median(conn_card) * 1e3,
            median(raw_conn) * 1e3, "raw TCP connect", ("<=", 10), stale_note),
        row("connect_nocard", "connect: dial+Noise+yamux, no card (median)", "ms", median(conn_only) * 1e3,
            median(raw_conn) * 1e3, "raw TCP connect"),
    ]
    samples = {"libp2p tool call (1 in flight)": runs["p2p_1"]["lat"],
               "raw TCP echo (1 in flight)": runs["raw_1"]["lat"],
               "libp2p tool call (64 in flight)": runs["p2p_64"]["lat"],
               "raw TCP echo (64 in flight)": runs["raw_64"]["lat"]}
    return {"rows": rows, "data": data, "samples": samples}


async def _p2p_bulk(host: Any, peer_id: str, total: int, chunk: int) -> float:
    """Seconds to push ``total`` bytes on a fresh stream and get the sink's count back (stream open excluded)."""
    stream = await host.new_stream(ID.from_base58(peer_id), [SINK_PROTOCOL])
    t0 = time.perf_counter()
    await _drive.push_bytes(stream.write, total, chunk)
    await stream.close()
    resp = b""
    while True:
        try:
            data = await stream.read(64)
        except StreamEOF:
            break
        if not data:
            break
        resp += data
    elapsed = time.perf_counter() - t0
    if int(resp or b"-1") != total:
        raise RuntimeError(f"libp2p sink counted {resp!r}, sent {total}")
    return elapsed


async def _disconnect(svc: Any, peer_id: str, stats: dict) -> bool:
    """Close every connection to the peer and wait until the service dropped it (3 s at most).
    False if the peer is still in the service's table then (the next sample would not be a fresh dial)."""
    t0 = time.perf_counter()
    with trio.move_on_after(3):
        await svc._host.disconnect(ID.from_base58(peer_id))
        while svc.is_connected(peer_id):
            await trio.sleep(0.005)
    stats["disconnect_s"].append(time.perf_counter() - t0)
    await trio.sleep(0.05)  # let the far side notice too
    if svc.is_connected(peer_id):
        stats["stale"] += 1
        return False
    return True


STALE_LIMIT = 2  # consecutive disconnects that leave the peer in the table: stop that loop


async def _p2p_connect_card(svc: Any, addr: str, peer_id: str, n: int, stats: dict) -> list[float]:
    """``service.dial(addr, wait_card=True)`` on fresh connections."""

    async def once() -> None:
        await svc.dial(addr, True)

    return await _cycles(svc, peer_id, n, stats, once)


async def _p2p_connect_only(svc: Any, addr: str, peer_id: str, n: int, stats: dict) -> list[float]:
    """``host.connect`` alone (TCP + multistream + Noise + yamux), card exchange not awaited."""
    info = info_from_p2p_addr(multiaddr.Multiaddr(addr))

    async def once() -> None:
        await svc._host.connect(info)

    times = await _cycles(svc, peer_id, n, stats, once)
    await trio.sleep(0.2)
    return times


async def _cycles(svc: Any, peer_id: str, n: int, stats: dict, connect: Any) -> list[float]:
    """Up to ``n`` (disconnect, timed connect) cycles; a cycle whose disconnect left the peer in
    the service's table is not timed, and ``STALE_LIMIT`` of those in a row end the loop."""
    times: list[float] = []
    stale = 0
    for _ in range(n):
        if not await _disconnect(svc, peer_id, stats):
            stale += 1
            if stale >= STALE_LIMIT:
                stats["stopped_early"] = True
                break
            continue
        stale = 0
        t0 = time.perf_counter()
        await connect()
        times.append(time.perf_counter() - t0)
        await trio.sleep(0.05)  # a background card exchange finishes before the next disconnect
    return times

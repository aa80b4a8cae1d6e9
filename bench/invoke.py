"""Section 2: HTTP -> orchestrator -> P2P -> worker -> back, next to ``GET /health`` on the same agent.

An orchestrator and one worker (``python -m agent``; the worker bootstraps to
the orchestrator).  ``POST /tools/echo/invoke`` with ``"peer_id": <worker>``
(the orchestrator has ``echo`` itself; naming the worker forces the P2P hop).
The client is a minimal keep-alive HTTP/1.1 client on asyncio, one connection
per caller, so its own cost stays small next to the server's (httpx costs a
few hundred microseconds a request on this kind of machine).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ._drive import asyncio_closed_loop
from ._util import HOST, agent_cmd, agent_sets, free_port, http_get, log, summarize, wait_for, wait_healthy
from .report import row

MESSAGE = "x" * 64


def _plan(quick: bool) -> dict[str, Any]:
    if quick:
        return {1: (800, 5.0), 16: (3000, 5.0), "warmup": 200}
    return {1: (5000, 15.0), 16: (20000, 15.0), "warmup": 1000}


class KeepAlive:
    """One HTTP/1.1 connection; requests are pre-encoded bytes; answers need Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer

    @classmethod
    async def open(cls, port: int) -> "KeepAlive":
        return cls(*await asyncio.open_connection(HOST, port))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.w.write(raw)
        head = await self.r.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        low = head.lower()
        i = low.find(b"content-length:")
        if i < 0:
            raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
        n = int(low[i + 15:low.index(b"\r\n", i)])
        return status, await self.r.readexactly(n)

    def close(self) -> None:
        self.w.close()


def _encode(method: str, path: str, port: int, body: bytes | None = None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


async def _load(port: int, raw: bytes, concurrency: int, n: int, secs: float, warmup: int) -> dict[str, Any]:
    conns = [await KeepAlive.open(port) for _ in range(concurrency)]
    errors: dict[int, int] = {}

    def caller(c: KeepAlive) -> Any:
        async def call() -> None:
            status, _ = await c.request(raw)
            if status != 200:
                errors[status] = errors.get(status, 0) + 1
        return call

    try:
        for _ in range(warmup):
            await conns[0].request(raw)
        res = await asyncio_closed_loop([caller(c) for c in conns], n, secs)
    finally:
        for c in conns:
            c.close()
    res["errors"] = errors
    return res


def run(ctx: Any) -> dict[str, Any]:
    plan = _plan(ctx.quick)
    root = ctx.tmp / "http"
    root.mkdir()
    from agent.keys import load_or_create_seed, peer_id_from_seed

    o_p2p, o_api, w_p2p, w_api = free_port(), free_port(), free_port(), free_port()
    orch_id = peer_id_from_seed(load_or_create_seed(root / "orchestrator"))
    boot = f"/ip4/{HOST}/tcp/{o_p2p}/p2p/{orch_id}"
    log("http: starting orchestrator and worker processes")
    olog, wlog = root / "orchestrator.log", root / "worker.log"
    orch = ctx.procs.start("orchestrator",
                           agent_cmd("orchestrator.yaml", agent_sets("orchestrator", root, o_p2p, o_api)), olog)
    worker = ctx.procs.start("worker", agent_cmd("worker.yaml", agent_sets("bench-worker", root, w_p2p, w_api, [boot])),
                             wlog)
    wait_healthy(orch, o_api, 60, olog)
    wid = wait_healthy(worker, w_api, 60, wlog)["peer_id"]
    wait_for(lambda: any(p["peer_id"] == wid for p in http_get(o_api, "/peers")[1]), 30, 0.05, "worker in /peers")
    log(f"http: worker {wid[:16]}… is in the orchestrator's /peers")

    body = json.dumps({"arguments": {"message": MESSAGE}, "peer_id": wid}).encode()
    invoke = _encode("POST", "/tools/echo/invoke", o_api, body)
    health = _encode("GET", "/health", o_api)
    first = asyncio.run(_first(o_api, invoke))
    if first.get("peer_id") != wid or first.get("result") != {"message": MESSAGE}:
        raise RuntimeError(f"invoke answered {first!r}")

    runs: dict[str, dict] = {}
    for c in (1, 16):
        n, secs = plan[c]
        runs[f"health_{c}"] = asyncio.run(_load(o_api, health, c, n, secs, plan["warmup"]))
        runs[f"invoke_{c}"] = asyncio.run(_load(o_api, invoke, c, n, secs, plan["warmup"]))
        h, i = runs[f"health_{c}"], runs[f"invoke_{c}"]
        log(f"http: concurrency {c:>2}: invoke {i['rate']:7.0f}/s p50 {summarize(i['lat'])['p50_ms']:.3f} ms "
            f"(errors {i['errors'] or 0}); /health {h['rate']:7.0f}/s p50 {summarize(h['lat'])['p50_ms']:.3f} ms")

    s = {k: summarize(v["lat"]) for k, v in runs.items()}
    data = {k: {**s[k], "calls": v["calls"], "seconds": v["seconds"], "rate": v["rate"], "errors": v["errors"]}
            for k, v in runs.items()}
    base = "GET /health, same agent"
    rows = [
        row("http_p50_1", "HTTP→orch→P2P→worker p50, concurrency 1", "ms", s["invoke_1"]["p50_ms"],
            s["health_1"]["p50_ms"], base, ("<=", 1.5)),
        row("http_p99_1", "HTTP→orch→P2P→worker p99, concurrency 1", "ms", s["invoke_1"]["p99_ms"],
            s["health_1"]["p99_ms"], base),
        row("http_rps_1", "HTTP→orch→P2P→worker calls/s, concurrency 1", "calls/s", runs["invoke_1"]["rate"],
            runs["health_1"]["rate"], base),
        row("http_p50_16", "HTTP→orch→P2P→worker p50, concurrency 16", "ms", s["invoke_16"]["p50_ms"],
            s["health_16"]["p50_ms"], base),
        row("http_p99_16", "HTTP→orch→P2P→worker p99, concurrency 16", "ms", s["invoke_16"]["p99_ms"],
            s["health_16"]["p99_ms"], base),
        row("http_rps_16", "HTTP→orch→P2P→worker calls/s, concurrency 16", "calls/s", runs["invoke_16"]["rate"],
            runs["health_16"]["rate"], base, (">=", 1000)),
    ]
    samples = {"POST /tools/echo/invoke (c=1)": runs["invoke_1"]["lat"], "GET /health (c=1)": runs["health_1"]["lat"],
               "POST /tools/echo/invoke (c=16)": runs["invoke_16"]["lat"],
               "GET /health (c=16)": runs["health_16"]["lat"]}
    return {"rows": rows, "data": data, "samples": samples}


async def _first(port: int, raw: bytes) -> dict[str, Any]:
    c = await KeepAlive.open(port)
    try:
        status, body = await c.request(raw)
    finally:
        c.close()
    if status != 200:
        raise RuntimeError(f"invoke answered HTTP {status}: {body[:300]!r}")
    return json.loads(body)

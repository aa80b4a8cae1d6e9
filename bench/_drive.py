"""Closed-loop load drivers (trio and asyncio) and the raw TCP baseline client.

A closed loop keeps ``inflight`` callers busy, each issuing its next call when
the previous one answers, until ``max_calls`` calls were issued or
``max_seconds`` passed (whichever first): bounded in count and time.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from agent.framing import FrameDecoder, encode_frame

READ_CHUNK = 256 * 1024


def _result(lat: list[float], elapsed: float, inflight: int) -> dict[str, Any]:
    return {"inflight": inflight, "calls": len(lat), "seconds": elapsed,
            "rate": len(lat) / elapsed if elapsed > 0 else 0.0, "lat": lat}


async def trio_closed_loop(call: Callable[[], Awaitable[Any]], inflight: int, max_calls: int,
                           max_seconds: float) -> dict[str, Any]:
    lat: list[float] = []
    issued = 0
    perf = time.perf_counter
    t_end = perf() + max_seconds

    async def caller() -> None:
        nonlocal issued
        while issued < max_calls and perf() < t_end:
            issued += 1
            t = perf()
            await call()
            lat.append(perf() - t)

    t0 = perf()
    async with trio.open_nursery() as nursery:
        for _ in range(inflight):
            nursery.start_soon(caller)
    return _result(lat, perf() - t0, inflight)


async def asyncio_closed_loop(callers: list[Callable[[], Awaitable[Any]]], max_calls: int,
                              max_seconds: float) -> dict[str, Any]:
    """One caller coroutine per entry of ``callers`` (e.g. one per HTTP connection)."""
    lat: list[float] = []
    issued = 0
    perf = time.perf_counter
    t_end = perf() + max_seconds

    async def caller(call: Callable[[], Awaitable[Any]]) -> None:
        nonlocal issued
        while issued < max_calls and perf() < t_end:
            issued += 1
            t = perf()
            await call()
            lat.append(perf() - t)

    t0 = perf()
    await asyncio.gather(*(caller(c) for c in callers))
    return _result(lat, perf() - t0, len(callers))


# ------------------------------------------------------------ raw TCP client
class RawEchoPipe:
    """Pipelined framed echo on one TCP connection: answers come back in order,
    so waiters are a FIFO (the agent's RequestChannel matches by id instead)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._s = stream
        self._dec = FrameDecoder(4 * 1024 * 1024)
        self._waiters: deque[trio.Event] = deque()
        self._lock = trio.Lock()

    @classmethod
    async def open(cls, port: int, nursery: trio.Nursery) -> "RawEchoPipe":
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        await stream.send_all(b"E")
        pipe = cls(stream)
        nursery.start_soon(pipe._reader)
        return pipe

    async def _reader(self) -> None:
        while True:
            try:
                data = await self._s.receive_some(READ_CHUNK)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                data = b""
            if not data:
                for ev in self._waiters:
                    ev.set()
                return
            for _ in self._dec.feed(data):
                self._waiters.popleft().set()

    async def call(self, frame: bytes) -> None:
        ev = trio.Event()
        async with self._lock:
            self._waiters.append(ev)
            await self._s.send_all(frame)
        await ev.wait()

    async def aclose(self) -> None:
        await self._s.aclose()


async def raw_echo_run(port: int, payload: bytes, inflight: int, max_calls: int, max_seconds: float,
                       warmup: int = 0) -> dict[str, Any]:
    frame = encode_frame(payload)
    async with trio.open_nursery() as nursery:
        pipe = await RawEchoPipe.open(port, nursery)
        for _ in range(warmup):
            await pipe.call(frame)
        res = await trio_closed_loop(lambda: pipe.call(frame), inflight, max_calls, max_seconds)
        nursery.cancel_scope.cancel()
    await pipe.aclose()
    return res


async def push_bytes(write: Callable[[bytes], Awaitable[Any]], total: int, chunk: int) -> None:
    """Write ``total`` zero bytes in ``chunk``-sized pieces (the bulk figure, any transport)."""
    buf = bytes(chunk)
    sent = 0
    while sent < total:
        n = min(chunk, total - sent)
        await write(buf if n == chunk else buf[:n])
        sent += n


async def raw_bulk(port: int, total: int, chunk: int) -> float:
    """Seconds to push ``total`` bytes and get the sink's count back (connect excluded)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    t0 = time.perf_counter()
    await stream.send_all(b"S")
    await push_bytes(stream.send_all, total, chunk)
    await stream.send_eof()
    resp = b""
    while True:
        data = await stream.receive_some(64)
        if not data:
            break
        resp += data
    elapsed = time.perf_counter() - t0
    await stream.aclose()
    if int(resp or b"-1") != total:
        raise RuntimeError(f"raw sink counted {resp!r}, sent {total}")
    return elapsed


async def raw_connect(port: int, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        times.append(time.perf_counter() - t0)
        await stream.aclose()
        await trio.sleep(0.01)
    return times

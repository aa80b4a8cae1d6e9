"""Framed JSON messages over libp2p streams.  All trio; the byte layout lives
in agent.framing, the client channels in agent.p2p.pool, the serving loop in
agent.serving.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import trio
from libp2p.network.stream.exceptions import StreamError

from ..framing import FrameDecoder, encode_frame
from ..messages import dumps, loads_object

__all__ = ["FramedStream", "READ_CHUNK"]

log = logging.getLogger("agent.p2p")

# How much we ask a stream for per read: big enough that a multi-MiB message
# takes few reads, small enough not to matter for memory.
READ_CHUNK = 256 * 1024


class _Batch:
    __slots__ = ("items", "done", "error")

    def __init__(self) -> None:
        self.items: list[bytes] = []
        self.done = trio.Event()
        self.error: BaseException | None = None


class FramedStream:
    """Whole frames from a stream that hands out arbitrary chunks.

    Writes are coalesced: while one task is writing, frames from other tasks
    collect in the next batch and go out in one ``stream.write`` — one yamux
    frame, one Noise message, one syscall for many small answers.  Each
    writer still learns whether its own frame was written.
    """

    __slots__ = ("stream", "limit", "_dec", "_frames", "_on_bytes", "_batch", "_flushing")

    def __init__(self, stream: Any, limit: int, on_bytes: Callable[[str, int], None] | None = None) -> None:
        self.stream = stream
        self.limit = limit
        self._dec = FrameDecoder(limit)
        self._frames: deque[bytes] = deque()
        self._on_bytes = on_bytes
        self._batch = _Batch()
        self._flushing = False

    async def read_frame(self) -> bytes | None:
        """The next frame, or None at end of stream.  Raises FrameError on garbage."""
        while not self._frames:
            try:
                data = await self.stream.read(READ_CHUNK)
            except StreamError:
                return None
            if not data:
                return None
            if self._on_bytes:
                self._on_bytes("in", len(data))
            self._frames.extend(self._dec.feed(data))
        return self._frames.popleft()

    async def read_json(self) -> dict[str, Any] | None:
        frame = await self.read_frame()
        return None if frame is None else loads_object(frame)

    async def write_frame(self, payload: bytes) -> None:
        mine = self._batch
        mine.items.append(encode_frame(payload, self.limit))
        if self._flushing:
            await mine.done.wait()
            if mine.error is not None:
                raise mine.error
            return
        self._flushing = True
        try:
            while self._batch.items:
                batch, self._batch = self._batch, _Batch()
                data = b"".join(batch.items) if len(batch.items) > 1 else batch.items[0]
                try:
                    await self.stream.write(data)
                except BaseException as e:
                    batch.error = e if isinstance(e, Exception) else StreamError("write cancelled")
                    batch.done.set()
                    raise
                batch.done.set()
                if self._on_bytes:
                    self._on_bytes("out", len(data))
        finally:
            self._flushing = False
            if self._batch.items:
                # We stopped early (error or cancellation): nobody is left to
                # write the frames queued behind us, so tell their writers.
                stuck, self._batch = self._batch, _Batch()
                stuck.error = StreamError("stream write failed")
                stuck.done.set()

    async def write_json(self, obj: Any) -> None:
        await self.write_frame(dumps(obj))

    async def reset(self) -> None:
        try:
            await self.stream.reset()
        except Exception:  # already gone: nothing left to reset
            pass

    async def close(self) -> None:
        try:
            await self.stream.close()
        except Exception:
            pass

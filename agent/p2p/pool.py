"""The client side of the request protocols: one pipelined channel per peer and
protocol, opened on first use and dropped with the peer.  All trio.

A request is checked before it is sent: one JSON cannot carry is
``invalid_arguments``, one over the frame limit is ``too_large`` (HTTP 413),
so neither breaks the stream.  A call that ends without its answer (timeout,
or the caller cancelled, e.g. an asyncio caller through the bridge) sends
``{"id", "cancel": true}`` so the peer stops the work (agent.serving).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .. import constants as C
from .. import errors
from ..errors import INVALID_ARGUMENTS, PROTOCOL_ERROR, CallTimeout, PeerUnavailable, RemoteError, ToolError
from ..execution import check_size, encode_json
from ..framing import FrameError
from ..messages import ProtocolError, parse_tool_response
from ..serving import cancel_frame
from ._streams import FramedStream

__all__ = ["RequestChannel", "ChannelClosed", "ChannelPool"]

log = logging.getLogger("agent.p2p")


class ChannelClosed(Exception):
    """The stream under a channel ended.  ``unsent``: the request never left."""

    def __init__(self, message: str, unsent: bool = False) -> None:
        super().__init__(message)
        self.unsent = unsent


class RequestChannel:
    """Many requests in flight on one stream; answers matched by ``id``.

    One reader task per channel delivers answers as they come, so a slow call
    does not hold up a fast one and no stream is opened per request.
    """

    def __init__(self, framed: FramedStream, name: str) -> None:
        self._framed = framed
        self._name = name
        self._ids = itertools.count(1)
        self._pending: dict[int, list[Any]] = {}
        self.closed = False
        self.error: str | None = None

    def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._read_loop)

    @property
    def inflight(self) -> int:
        return len(self._pending)

    async def _read_loop(self) -> None:
        try:
            while True:
                obj = await self._framed.read_json()
                if obj is None:
                    self.error = "stream closed by peer"
                    return
                slot = self._pending.get(obj.get("id"))  # type: ignore[arg-type]
                if slot is None:
                    log.debug("%s: answer for unknown id %r dropped", self._name, obj.get("id"))
                    continue
                slot[1] = obj
                slot[0].set()
        except (FrameError, ProtocolError, RecursionError) as e:
            self.error = f"bad answer from peer: {e}"
            await self._framed.reset()
        except Exception as e:  # noqa: BLE001 - this channel only, never the loop
            self.error = f"channel failed: {errors.internal(e, self._name).message}"
            await self._framed.reset()
        finally:
            self._fail_all()

    def _fail_all(self) -> None:
        self.closed = True
        for slot in self._pending.values():
            slot[0].set()  # slot[1] stays None → ChannelClosed for the waiter

    async def request(self, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``obj`` (its ``id`` is replaced) and wait for the matching answer.

        Raises ChannelClosed, trio.TooSlowError, ToolError(invalid_arguments)
        or PraxisError(too_large) (the last two before anything is sent).
        """
        if self.closed:
            raise ChannelClosed(self.error or "channel closed", unsent=True)
        rid = next(self._ids)
        obj["id"] = rid
        try:
            data = encode_json(obj, "the request")
        except ToolError as e:
            raise ToolError(INVALID_ARGUMENTS, e.message) from None
        check_size(data, self._framed.limit, "the request")
        slot: list[Any] = [trio.Event(), None]
        self._pending[rid] = slot
        sent = False
        try:
            with trio.fail_after(timeout):
                try:
                    await self._framed.write_frame(data)
                except Exception as e:  # noqa: BLE001 - a broken stream, whatever it raised
                    self.closed = True
                    raise ChannelClosed(f"stream write failed: {e}") from None
                sent = True
                await slot[0].wait()
        except BaseException:
            if sent and slot[1] is None and not self.closed:
                await self._send_cancel(rid)
            raise
        finally:
            self._pending.pop(rid, None)
        if slot[1] is None:
            raise ChannelClosed(self.error or "channel closed")
        return slot[1]

    async def _send_cancel(self, rid: int) -> None:
        """Best effort, shielded: the caller's own cancellation must go on."""
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + C.CANCEL_FRAME_TIMEOUT
            try:
                await self._framed.write_frame(encode_json(cancel_frame(rid)))
            except Exception as e:  # noqa: BLE001
                log.debug("%s: cancel frame for %d not sent: %s", self._name, rid, e)

    async def aclose(self) -> None:
        self.closed = True
        await self._framed.close()


OpenStream = Callable[[str, str], Awaitable[Any]]
Observe = Callable[[str, str, float], None]


class ChannelPool:
    """Channels by ``(peer_id, protocol)``.

    ``open_stream(peer_id, proto)`` opens a stream or raises
    PeerUnavailable(unsent=True); ``observe(proto, outcome, t0)`` counts calls.
    """

    def __init__(self, open_stream: OpenStream, limit: int, observe: Observe,
                 count_bytes: Callable[[str, int], None] | None = None) -> None:
        self._open = open_stream
        self._limit = limit
        self._observe = observe
        self._count_bytes = count_bytes
        self._channels: dict[tuple[str, str], RequestChannel] = {}
        self._locks: dict[tuple[str, str], trio.Lock] = {}
        self._nursery: trio.Nursery | None = None

    def attach(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery

    def channels(self) -> dict[tuple[str, str], RequestChannel]:
        return self._channels

    async def channel(self, peer_id: str, proto: str) -> RequestChannel:
        key = (peer_id, proto)
        ch = self._channels.get(key)
        if ch is not None and not ch.closed:
            return ch
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            ch = self._channels.get(key)
            if ch is not None and not ch.closed:
                return ch
            if self._nursery is None:
                raise PeerUnavailable("P2P side not running", unsent=True)
            stream = await self._open(peer_id, proto)
            ch = RequestChannel(FramedStream(stream, self._limit, self._count_bytes), f"{proto} to {peer_id}")
            ch.start(self._nursery)
            self._channels[key] = ch
            return ch

    async def request(self, peer_id: str, proto: str, obj: dict[str, Any], timeout: float) -> dict[str, Any]:
        t0 = time.perf_counter()
        outcome = "error"
        try:
            ch = await self.channel(peer_id, proto)
            answer = await ch.request(obj, timeout)
            outcome = "error" if "error" in answer else "ok"
            return answer
        except trio.TooSlowError:
            outcome = "timeout"
            raise CallTimeout(f"{peer_id} did not answer on {proto} within {timeout:g}s") from None
        except ChannelClosed as e:
            outcome = "unavailable"
            raise PeerUnavailable(f"{proto} to {peer_id}: {e}", unsent=e.unsent) from None
        except trio.Cancelled:
            outcome = "cancelled"
            raise
        finally:
            self._observe(proto, outcome, t0)

    async def call_tool(self, peer_id: str, tool: str, arguments: dict[str, Any], timeout: float) -> Any:
        answer = await self.request(peer_id, C.TOOL_PROTOCOL, {"tool": tool, "arguments": arguments}, timeout)
        try:
            _, result, err = parse_tool_response(answer)
        except ProtocolError as e:
            raise RemoteError(peer_id, PROTOCOL_ERROR, e.message) from None
        if err is not None:
            raise errors.from_wire(peer_id, err)
        return result

    async def rpc(self, peer_id: str, proto: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        original_id = request.get("id")
        answer = await self.request(peer_id, proto, dict(request), timeout)
        answer["id"] = original_id
        return answer

    def drop(self, peer_id: str) -> list[RequestChannel]:
        """Forget ``peer_id``'s channels; the caller closes the returned ones."""
        gone = []
        for key in [k for k in self._channels if k[0] == peer_id]:
            ch = self._channels.pop(key)
            ch.closed = True
            gone.append(ch)
            self._locks.pop(key, None)
        return gone

    def close_all(self) -> None:
        for ch in self._channels.values():
            ch.closed = True

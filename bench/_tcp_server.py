"""Raw TCP baseline server (trio, loopback): ``python -m bench._tcp_server``.

Prints ``PORT <n>`` on stdout, then serves until SIGTERM (default action), SIGINT or stdin EOF.
The first byte of a connection picks the mode:

- ``E``: echo varint-length-prefixed frames (the agent's own framing,
  :mod:`agent.framing`), in order, each read's frames answered in one write;
- ``S``: sink: count bytes until EOF, answer the count in ASCII, close.

Same async runtime (trio) and framing as the agent, without libp2p, Noise,
yamux, JSON or tool dispatch: the ratio to it is the cost of those.
"""

from __future__ import annotations

import sys

import trio

from agent.framing import FrameDecoder, encode_frame

READ_CHUNK = 256 * 1024
MAX_FRAME = 4 * 1024 * 1024


async def _echo(stream: trio.SocketStream, first: bytes) -> None:
    dec = FrameDecoder(MAX_FRAME)
    frames = dec.feed(first)
    while True:
        if frames:
            await stream.send_all(b"".join(encode_frame(f) for f in frames))
        data = await stream.receive_some(READ_CHUNK)
        if not data:
            return
        frames = dec.feed(data)


async def _sink(stream: trio.SocketStream, first: bytes) -> None:
    n = len(first)
    while True:
        data = await stream.receive_some(READ_CHUNK)
        if not data:
            break
        n += len(data)
    await stream.send_all(str(n).encode())


async def _handle(stream: trio.SocketStream) -> None:
    try:
        data = await stream.receive_some(READ_CHUNK)
        if not data:
            return
        mode, rest = data[:1], data[1:]
        if mode == b"E":
            await _echo(stream, rest)
        elif mode == b"S":
            await _sink(stream, rest)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await stream.aclose()


async def _watch_stdin(cancel: trio.CancelScope) -> None:
    # The parent closing our stdin (or dying) ends us too.
    await trio.to_thread.run_sync(sys.stdin.buffer.read, abandon_on_cancel=True)
    cancel.cancel()


async def main() -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_watch_stdin, nursery.cancel_scope)
        nursery.start_soon(trio.serve_listeners, _handle, listeners)


if __name__ == "__main__":
    try:
        trio.run(main)
    except KeyboardInterrupt:
        pass

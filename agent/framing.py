"""Unsigned-varint length-prefixed frames (the libp2p convention).

Pure: no I/O.  The same layout as js-libp2p ``lpStream`` and py-libp2p's
``VarIntLengthMsgReadWriter``, but decoded incrementally from whatever chunks a
stream hands us, because ``stream.read(n)`` returns partial data and
``read_exactly`` gives up on multi-MiB messages.
"""

from __future__ import annotations

__all__ = [
    "FrameError",
    "FrameTooLarge",
    "BadVarint",
    "FrameDecoder",
    "encode_varint",
    "encode_frame",
]

# A varint for any length we accept fits in 9 bytes (63 bits); more is garbage.
_MAX_VARINT_BYTES = 9


class FrameError(Exception):
    """The byte stream is not a valid sequence of frames."""


class FrameTooLarge(FrameError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


class BadVarint(FrameError):
    pass


def encode_varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varint must be non-negative")
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_frame(payload: bytes, limit: int | None = None) -> bytes:
    """Prefix ``payload`` with its length; refuse to build a frame over ``limit``."""
    if limit is not None and len(payload) > limit:
        raise FrameTooLarge(len(payload), limit)
    return encode_varint(len(payload)) + payload


class FrameDecoder:
    """Feed bytes in, take whole frames out.

    Keeps at most one partial frame buffered; a length prefix over ``max_size``
    raises before any of that frame's body is buffered.
    """

    __slots__ = ("max_size", "_buf", "_need")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()
        self._need: int | None = None  # body length of the frame being read

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        if data:
            self._buf += data
        frames: list[bytes] = []
        while True:
            if self._need is None:
                got = self._read_prefix()
                if got is None:
                    return frames
                self._need = got
            if len(self._buf) < self._need:
                return frames
            n = self._need
            frames.append(bytes(self._buf[:n]))
            del self._buf[:n]
            self._need = None

    def _read_prefix(self) -> int | None:
        value = 0
        for i, byte in enumerate(self._buf):
            if i >= _MAX_VARINT_BYTES:
                raise BadVarint(f"length prefix longer than {_MAX_VARINT_BYTES} bytes")
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if i > 0 and byte == 0:
                    raise BadVarint("length prefix is not minimally encoded")
                if value > self.max_size:
                    raise FrameTooLarge(value, self.max_size)
                del self._buf[: i + 1]
                return value
        if len(self._buf) >= _MAX_VARINT_BYTES:
            raise BadVarint(f"length prefix longer than {_MAX_VARINT_BYTES} bytes")
        return None

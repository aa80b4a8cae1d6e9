import json
import os

import pytest

from agent.framing import BadVarint, FrameDecoder, FrameTooLarge, encode_frame, encode_varint


@pytest.mark.parametrize("n, raw", [(0, b"\x00"), (1, b"\x01"), (127, b"\x7f"), (128, b"\x80\x01"), (300, b"\xac\x02"),
                                    (16384, b"\x80\x80\x01")])
def test_varint_matches_the_unsigned_varint_spec(n, raw):
    assert encode_varint(n) == raw


def test_whole_frames_come_out_of_arbitrary_chunks():
    msgs = [json.dumps({"i": i, "pad": "x" * (i * 37)}).encode() for i in range(50)]
    stream = b"".join(encode_frame(m) for m in msgs)
    dec = FrameDecoder(1 << 20)
    out = []
    pos = 0
    sizes = [1, 2, 3, 7, 64, 1000, 5]
    k = 0
    while pos < len(stream):
        step = sizes[k % len(sizes)]
        out += dec.feed(stream[pos:pos + step])
        pos += step
        k += 1
    assert out == msgs
    assert dec.buffered == 0


def test_a_multi_mib_frame_split_into_small_reads():
    payload = os.urandom(6 * 1024 * 1024)
    data = encode_frame(payload)
    dec = FrameDecoder(8 * 1024 * 1024)
    got = []
    for i in range(0, len(data), 65536):
        got += dec.feed(data[i:i + 65536])
    assert got == [payload]


def test_several_frames_in_one_chunk():
    dec = FrameDecoder(100)
    assert dec.feed(encode_frame(b"a") + encode_frame(b"") + encode_frame(b"bc")) == [b"a", b"", b"bc"]


def test_oversize_prefix_is_refused_before_the_body_arrives():
    dec = FrameDecoder(1024)
    with pytest.raises(FrameTooLarge) as e:
        dec.feed(encode_varint(1025))
    assert e.value.size == 1025 and e.value.limit == 1024
    assert "exceeds the limit" in str(e.value)


def test_encode_refuses_oversize():
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * 11, limit=10)


@pytest.mark.parametrize("garbage", [b"\xff" * 10, b"\x80" * 9 + b"\x01", b"\x80\x00"])
def test_bad_varints(garbage):
    with pytest.raises(BadVarint):
        FrameDecoder(1 << 62).feed(garbage)


def test_partial_prefix_waits_for_more():
    dec = FrameDecoder(1 << 20)
    data = encode_frame(b"y" * 300)
    assert dec.feed(data[:1]) == []
    assert dec.feed(data[1:]) == [b"y" * 300]

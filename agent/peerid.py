"""The text form of a libp2p PeerID, as a check and as an exact regex.  Pure.

A PeerID is base58btc of a multihash of the peer's public key: the key itself
(identity multihash) for Ed25519 ("12D3KooW…", 52 characters) and secp256k1
("16Uiu2H…", 53), sha2-256 of it for larger keys ("Qm…", 46).  Each form is a
fixed byte prefix followed by a fixed number of free bytes, so its texts are
exactly the base58 strings of one length between two bounds.
:data:`PEER_ID_PATTERN` spells those ranges out as a regular expression, so
the OpenAPI document can declare precisely the strings the API accepts (a
fuzzer generating from the pattern never produces a refused "valid" value);
:func:`is_peer_id` is the same test.
"""

from __future__ import annotations

import re

__all__ = ["PEER_ID_PATTERN", "is_peer_id"]

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

# (multihash + protobuf key header, number of key bytes after it)
_FORMS = (
    (bytes.fromhex("002408011220"), 32),  # identity, Ed25519 (KeyType 1), 32-byte key
    (bytes.fromhex("002508021221"), 33),  # identity, secp256k1 (KeyType 2), compressed point
    (bytes.fromhex("1220"), 32),  # sha2-256 of a larger key (RSA, ECDSA)
)


def _b58encode(data: bytes) -> str:
    zeros = len(data) - len(data.lstrip(b"\0"))
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = ALPHABET[r] + out
    return "1" * zeros + out


def _chars(first: int, last: int) -> str:
    """A character class for ALPHABET[first..last] (inclusive), in ASCII ranges."""
    chars = ALPHABET[first : last + 1]
    if len(chars) == 1:
        return chars
    runs, i = [], 0
    while i < len(chars):
        j = i
        while j + 1 < len(chars) and ord(chars[j + 1]) == ord(chars[j]) + 1:
            j += 1
        runs.append(chars[i] if i == j else chars[i] + ("-" if j > i + 1 else "") + chars[j])
        i = j + 1
    return "[" + "".join(runs) + "]"


def _any(n: int) -> str:
    whole = _chars(0, len(ALPHABET) - 1)
    return "" if n == 0 else whole if n == 1 else f"{whole}{{{n}}}"


def _alt(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _at_least(s: str) -> str:
    """Strings of len(s) that are >= s (equal length: text order is number order)."""
    if not s:
        return ""
    k = ALPHABET.index(s[0])
    parts = [s[0] + _at_least(s[1:])]
    if k < len(ALPHABET) - 1:
        parts.append(_chars(k + 1, len(ALPHABET) - 1) + _any(len(s) - 1))
    return _alt(parts)


def _at_most(s: str) -> str:
    if not s:
        return ""
    k = ALPHABET.index(s[0])
    parts = [_chars(0, k - 1) + _any(len(s) - 1)] if k > 0 else []
    parts.append(s[0] + _at_most(s[1:]))
    return _alt(parts)


def _between(lo: str, hi: str) -> str:
    if not lo:
        return ""
    if lo[0] == hi[0]:
        return lo[0] + _between(lo[1:], hi[1:])
    a, b = ALPHABET.index(lo[0]), ALPHABET.index(hi[0])
    parts = [lo[0] + _at_least(lo[1:])]
    if b - a > 1:
        parts.append(_chars(a + 1, b - 1) + _any(len(lo) - 1))
    parts.append(hi[0] + _at_most(hi[1:]))
    return _alt(parts)


def _pattern() -> str:
    ranges = []
    for prefix, size in _FORMS:
        lo, hi = _b58encode(prefix + b"\0" * size), _b58encode(prefix + b"\xff" * size)
        assert len(lo) == len(hi)
        ranges.append(_between(lo, hi))
    return "^(?:" + "|".join(ranges) + ")$"


PEER_ID_PATTERN = _pattern()
_PEER_ID = re.compile(PEER_ID_PATTERN)


def is_peer_id(text: str) -> bool:
    """True if ``text`` is a PeerID in one of the forms above."""
    return isinstance(text, str) and _PEER_ID.fullmatch(text) is not None

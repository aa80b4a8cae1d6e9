"""Node identity keys, public keystore entries and the optional swarm key.

Pure filesystem + crypto: no network, no trio.

Layout
------
* An agent's private keystore directory (``keystore_path``) holds
  ``node.key``: the raw 32-byte Ed25519 seed (mode 0600, directory 0700).
* A *keystore root* holds one public entry per agent,
  ``<root>/<name>/peer.id`` (base58 PeerID + newline) and
  ``<root>/<name>/role`` ("orchestrator" or "worker"), readable by the other
  agents.  In the local layout the entry directory *is* the agent's private
  keystore directory (``keys/orchestrator/{node.key,peer.id,role}``).
* ``<root>/swarm.key`` optionally holds a 64-hex pre-shared key.

Guarantees
----------
* ``node.key`` is created atomically (temp file + ``os.link``): two processes
  starting at once on one volume end up with ONE key that both use.
* An existing ``node.key`` is never overwritten, chmod-ed or "repaired" by
  :func:`load_or_create_seed`; only :func:`rotate_seed` replaces it.
* Every load failure raises :class:`KeystoreError` whose message starts with
  ``"Failed to load keypair: "`` and names the file and the reason.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import logging
import os
import re
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Callable

from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.peer.id import ID

from agent.constants import (
    NODE_KEY_FILE,
    PEER_ID_FILE,
    ROLE_FILE,
    ROLES,
    SEED_SIZE,
    SWARM_KEY_FILE,
)

__all__ = [
    "KeystoreError",
    "LOAD_ERROR_PREFIX",
    "load_or_create_seed",
    "ensure_seed",
    "rotate_seed",
    "keypair_from_seed",
    "peer_id_from_seed",
    "is_valid_peer_id",
    "validate_entry_name",
    "publish_public_entry",
    "resolve_peer_id",
    "PeerRegistry",
    "load_swarm_key",
    "generate_swarm_key",
    "IDENTITY_SECRET_MIN",
    "load_identity_secret",
    "derive_seed",
    "node_seed",
]

logger = logging.getLogger("agent.keys")

#: Every load-related KeystoreError message starts with this (users grep it).
LOAD_ERROR_PREFIX = "Failed to load keypair: "

_SWARM_KEY_HEADER = "/key/swarm/psk/1.0.0/"
_SWARM_KEY_ENCODING = "/base16/"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")

# Upper bounds when reading small public files, so a planted huge file cannot
# make a scan read megabytes.
_MAX_PEER_ID_FILE = 256
_MAX_ROLE_FILE = 64
_MAX_SWARM_KEY_FILE = 1024

# Errors from os.link meaning "this filesystem has no hard links".
_NO_LINK_ERRNOS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS}

# Permission bits are meaningless on Windows; only enforce them on POSIX.
_CHECK_MODES = os.name == "posix"


class KeystoreError(Exception):
    """A key file is missing, malformed, has unsafe permissions or cannot be read."""


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #
def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tmp_name(directory: Path, target: str) -> Path:
    return directory / f".{target}.tmp.{os.getpid()}.{secrets.token_hex(6)}"


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` exclusively (O_CREAT|O_EXCL), write, fsync, close."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    try:
        if _CHECK_MODES:
            os.fchmod(fd, mode)  # umask can only remove bits; make it exact
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic_replace(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` via temp file + os.replace (readers never see partial data)."""
    tmp = _tmp_name(path.parent, path.name)
    try:
        _write_new_file(tmp, data, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(path.parent)


def _create_exclusive_atomic(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` unless it exists. True if we created it.

    Temp file + ``os.link``: the link either fails with FileExistsError (someone
    else won) or publishes a complete file in one step.  On filesystems with no
    hard links we fall back to O_EXCL on the target itself.
    """
    tmp = _tmp_name(path.parent, path.name)
    _write_new_file(tmp, data, mode)
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in _NO_LINK_ERRNOS:
                raise
            logger.debug("hard links unsupported for %s (%s); using O_EXCL create", path, exc)
            try:
                _write_new_file(path, data, mode)
            except FileExistsError:
                return False
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    _fsync_dir(path.parent)
    return True


def _read_regular_file(path: Path, what: str, max_size: int, check_mode: bool) -> bytes:
    """Open, validate (regular file, mode) and read at most ``max_size + 1`` bytes.

    Raises KeystoreError (prefixed) on every failure except FileNotFoundError,
    which is re-raised so callers can distinguish "absent".
    """
    flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except PermissionError as exc:
        raise KeystoreError(
            f"{LOAD_ERROR_PREFIX}{what}{path} is not readable by this process "
            f"(uid {os.getuid() if hasattr(os, 'getuid') else '?'}): {exc.strerror}"
        ) from exc
    except IsADirectoryError as exc:
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}{what}{path} is a directory, expected a file") from exc
    except OSError as exc:
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}{what}{path} cannot be opened: {exc}") from exc
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise KeystoreError(f"{LOAD_ERROR_PREFIX}{what}{path} is a directory, expected a file")
        if not stat.S_ISREG(st.st_mode):
            raise KeystoreError(f"{LOAD_ERROR_PREFIX}{what}{path} is not a regular file")
        if check_mode and _CHECK_MODES and st.st_mode & 0o077:
            raise KeystoreError(
                f"{LOAD_ERROR_PREFIX}{what}{path} has mode {stat.S_IMODE(st.st_mode):04o}, "
                f"it must not be accessible by group/others (expected 0600 or stricter; "
                f"fix with: chmod 600 {path}) (the file is left untouched)"
            )
        chunks = []
        remaining = max_size + 1
        while remaining > 0:
            try:
                chunk = os.read(fd, remaining)
            except PermissionError as exc:
                raise KeystoreError(
                    f"{LOAD_ERROR_PREFIX}{what}{path} is not readable: {exc.strerror}"
                ) from exc
            except IsADirectoryError as exc:
                raise KeystoreError(
                    f"{LOAD_ERROR_PREFIX}{what}{path} is a directory, expected a file"
                ) from exc
            except OSError as exc:
                raise KeystoreError(f"{LOAD_ERROR_PREFIX}{what}{path} cannot be read: {exc}") from exc
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _load_seed_file(path: Path, check_mode: bool = True) -> bytes:
    data = _read_regular_file(path, "", SEED_SIZE, check_mode)
    if len(data) != SEED_SIZE:
        size = len(data) if len(data) <= SEED_SIZE else _file_size(path, len(data))
        raise KeystoreError(
            f"{LOAD_ERROR_PREFIX}{path} is {size} bytes, expected {SEED_SIZE} "
            f"(the file is left untouched)"
        )
    return data


def _file_size(path: Path, fallback: int) -> int | str:
    try:
        return path.stat().st_size
    except OSError:
        return f"more than {fallback - 1}"


def _ensure_private_dir(keystore_path: Path) -> None:
    if keystore_path.exists() and not keystore_path.is_dir():
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}keystore path {keystore_path} exists but is not a directory")
    created = False
    try:
        keystore_path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(keystore_path, 0o700)
        created = True
    except FileExistsError:
        pass
    except PermissionError as exc:
        raise KeystoreError(
            f"{LOAD_ERROR_PREFIX}cannot create keystore directory {keystore_path}: {exc.strerror}"
        ) from exc
    except OSError as exc:
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}cannot create keystore directory {keystore_path}: {exc}") from exc
    if created:
        if _CHECK_MODES:
            try:
                os.chmod(keystore_path, 0o700)
            except OSError:
                pass
        return
    if not keystore_path.is_dir():
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}keystore path {keystore_path} exists but is not a directory")
    if _CHECK_MODES:
        try:
            mode = stat.S_IMODE(keystore_path.stat().st_mode)
        except OSError:
            return
        if mode & 0o077:
            logger.warning(
                "keystore directory %s has mode %04o (group/others can access it); "
                "recommended 0700. Leaving it unchanged.",
                keystore_path,
                mode,
            )


# --------------------------------------------------------------------------- #
# node key
# --------------------------------------------------------------------------- #
def _wait_for_complete_seed(key_path: Path, timeout: float = 1.0) -> None:
    """After losing a creation race, give the winner a moment to finish writing.

    Only matters on filesystems without hard links (O_EXCL fallback), where
    the winner's file can briefly be shorter than a seed.  With os.link the
    file is complete the moment it appears and this returns at once.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if key_path.stat().st_size >= SEED_SIZE:
                return
        except OSError:
            return
        time.sleep(0.02)


def ensure_seed(keystore_path: Path) -> tuple[bytes, bool]:
    """Like :func:`load_or_create_seed` but also says whether this call created the key."""
    keystore_path = Path(keystore_path)
    _ensure_private_dir(keystore_path)
    key_path = keystore_path / NODE_KEY_FILE
    created = False
    if not os.path.lexists(key_path):
        try:
            created = _create_exclusive_atomic(key_path, os.urandom(SEED_SIZE), 0o600)
        except PermissionError as exc:
            raise KeystoreError(f"{LOAD_ERROR_PREFIX}cannot create {key_path}: {exc.strerror}") from exc
        except OSError as exc:
            raise KeystoreError(f"{LOAD_ERROR_PREFIX}cannot create {key_path}: {exc}") from exc
        if not created:
            _wait_for_complete_seed(key_path)
    try:
        seed = _load_seed_file(key_path)
    except FileNotFoundError as exc:
        # Dangling symlink or removed between our checks: report, never guess.
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}{key_path} does not exist (dangling symlink?)") from exc
    if created:
        logger.info("created new node key %s (peer id %s)", key_path, peer_id_from_seed(seed))
    return seed, created


def load_or_create_seed(keystore_path: Path) -> bytes:
    """Return the 32-byte seed in ``<keystore_path>/node.key``, creating it atomically if absent."""
    return ensure_seed(keystore_path)[0]


def rotate_seed(keystore_path: Path) -> bytes:
    """Replace ``node.key`` with a fresh random seed (temp + os.replace, 0600) and return it."""
    keystore_path = Path(keystore_path)
    _ensure_private_dir(keystore_path)
    key_path = keystore_path / NODE_KEY_FILE
    if key_path.is_dir():
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}{key_path} is a directory, refusing to replace it")
    seed = os.urandom(SEED_SIZE)
    try:
        _write_atomic_replace(key_path, seed, 0o600)
    except OSError as exc:
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}cannot write {key_path}: {exc}") from exc
    logger.info("rotated node key %s (new peer id %s)", key_path, peer_id_from_seed(seed))
    return seed


def keypair_from_seed(seed: bytes) -> KeyPair:
    """Ed25519 KeyPair for a 32-byte seed (deterministic)."""
    if not isinstance(seed, (bytes, bytearray)) or len(seed) != SEED_SIZE:
        raise ValueError(f"seed must be {SEED_SIZE} bytes, got {len(seed) if hasattr(seed, '__len__') else type(seed)}")
    return create_new_key_pair(bytes(seed))


def peer_id_from_seed(seed: bytes) -> str:
    """Base58 PeerID for a 32-byte seed."""
    return ID.from_pubkey(keypair_from_seed(seed).public_key).to_base58()


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def is_valid_peer_id(peer_id: str) -> bool:
    """True if ``peer_id`` is base58 of a well-formed identity or sha2-256 multihash.

    ``ID.from_base58`` alone accepts any base58 string (e.g. ``"abc"``), so we
    also check the multihash framing.
    """
    if not isinstance(peer_id, str) or not peer_id or len(peer_id) > 128:
        return False
    try:
        raw = ID.from_base58(peer_id).to_bytes()
        code, pos = _read_varint(raw, 0)
        length, pos = _read_varint(raw, pos)
    except Exception:
        return False
    if len(raw) - pos != length:
        return False
    if code == 0x12:  # sha2-256
        return length == 32
    if code == 0x00:  # identity (inlined public key, e.g. Ed25519)
        return 0 < length <= 42
    return False


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


def validate_entry_name(name: str) -> str:
    """Return ``name`` if it is a safe single path component, else raise ValueError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or name in (".", "..") or ".." in name:
        raise ValueError(
            f"invalid keystore entry name {name!r}: use letters, digits, '.', '_' and '-' "
            f"(a single directory name, no path separators)"
        )
    if name == SWARM_KEY_FILE:
        raise ValueError(f"invalid keystore entry name {name!r}: reserved for the swarm key")
    return name


# --------------------------------------------------------------------------- #
# public entries
# --------------------------------------------------------------------------- #
def _read_text_if_exists(path: Path, limit: int) -> str | None:
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError:
        return None
    if len(data) > limit:
        return None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return None


def publish_public_entry(root: Path, name: str, peer_id: str, role: str) -> Path:
    """Write ``<root>/<name>/peer.id`` and ``role`` (atomic, 0644); return the entry dir.

    A missing entry directory is created 0755; an existing one keeps its mode
    (it may be the 0700 private keystore dir).  Files whose content is already
    identical are not rewritten.
    """
    validate_entry_name(name)
    if role not in ROLES:
        raise ValueError(f"invalid role {role!r}, expected one of {', '.join(ROLES)}")
    if not is_valid_peer_id(peer_id):
        raise ValueError(f"invalid peer id {peer_id!r}")
    root = Path(root)
    entry = root / name
    try:
        root.mkdir(parents=True, exist_ok=True)
        os.mkdir(entry, 0o755)
        if _CHECK_MODES:
            os.chmod(entry, 0o755)
    except FileExistsError:
        if not entry.is_dir():
            raise KeystoreError(f"cannot publish public entry: {entry} exists but is not a directory")
    for fname, content in ((PEER_ID_FILE, peer_id + "\n"), (ROLE_FILE, role + "\n")):
        target = entry / fname
        if _read_text_if_exists(target, 1024) == content:
            continue
        try:
            _write_atomic_replace(target, content.encode("ascii"), 0o644)
        except OSError as exc:
            raise KeystoreError(f"cannot publish public entry: writing {target} failed: {exc}") from exc
    return entry


def _read_peer_id_file(path: Path) -> str | None:
    """Validated PeerID from a peer.id file; None (with warning) if corrupt; FileNotFoundError if absent."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_PEER_ID_FILE + 1)
    except FileNotFoundError:
        raise
    except OSError as exc:
        logger.warning("cannot read %s: %s", path, exc)
        return None
    if len(data) > _MAX_PEER_ID_FILE:
        logger.warning("ignoring %s: larger than %d bytes", path, _MAX_PEER_ID_FILE)
        return None
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    if not is_valid_peer_id(text):
        logger.warning("ignoring %s: not a valid base58 PeerID", path)
        return None
    return text


def resolve_peer_id(root: Path, name: str) -> str | None:
    """PeerID of entry ``name`` under ``root``, or None.

    Order: ``<root>/<name>/peer.id`` (corrupt → None, warning); else the seed
    in ``<root>/<name>/node.key`` if readable and 32 bytes (the seed doc's
    fallback; group/other-readable keys are accepted here since we only derive
    the public id); else None.  Never looks anywhere else.
    """
    try:
        validate_entry_name(name)
    except ValueError as exc:
        logger.warning("cannot resolve peer id: %s", exc)
        return None
    entry = Path(root) / name
    try:
        return _read_peer_id_file(entry / PEER_ID_FILE)
    except FileNotFoundError:
        pass
    key_path = entry / NODE_KEY_FILE
    try:
        seed = _load_seed_file(key_path, check_mode=False)
    except FileNotFoundError:
        return None
    except KeystoreError as exc:
        logger.warning("cannot resolve peer id for %r from %s: %s", name, key_path, exc)
        return None
    return peer_id_from_seed(seed)


class PeerRegistry:
    """Map PeerIDs to entry names and roles by scanning ``<root>/*/peer.id``.

    The scan is cached.  A lookup miss triggers a rescan at most once per
    ``min_rescan_interval`` seconds (a hostile peer cannot make us scan the
    disk per request); hits are refreshed once the cache is older than
    ``max_age`` seconds (None = never), so a rotated key loses its role.
    A PeerID published under two names with different roles gets role None.
    """

    def __init__(
        self,
        root: Path,
        min_rescan_interval: float = 1.0,
        *,
        max_age: float | None = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = Path(root)
        self.min_rescan_interval = float(min_rescan_interval)
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._by_peer: dict[str, tuple[str, str | None]] = {}
        self._last_scan: float | None = None
        self.scan_count = 0

    # -- scanning --------------------------------------------------------- #
    def _scan(self) -> dict[str, tuple[str, str | None]]:
        result: dict[str, tuple[str, str | None]] = {}
        try:
            entries = sorted(os.scandir(self.root), key=lambda e: e.name)
        except OSError as exc:
            logger.debug("cannot scan keystore root %s: %s", self.root, exc)
            return result
        for de in entries:
            try:
                if not de.is_dir():
                    continue
            except OSError:
                continue
            try:
                pid = _read_peer_id_file(Path(de.path) / PEER_ID_FILE)
            except FileNotFoundError:
                continue
            if pid is None:
                continue
            role_text = _read_text_if_exists(Path(de.path) / ROLE_FILE, _MAX_ROLE_FILE)
            role = role_text.strip() if role_text is not None else None
            if role is not None and role not in ROLES:
                logger.warning("ignoring role %r in %s", role, Path(de.path) / ROLE_FILE)
                role = None
            if pid in result:
                first_name, first_role = result[pid]
                logger.warning(
                    "peer id %s is published under both %r and %r", pid, first_name, de.name
                )
                if first_role != role:
                    result[pid] = (first_name, None)
                continue
            result[pid] = (de.name, role)
        return result

    def refresh(self) -> None:
        """Rescan now (ignores the throttle)."""
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        self._by_peer = self._scan()
        self._last_scan = self._clock()
        self.scan_count += 1

    def _lookup(self, peer_id: str) -> tuple[str, str | None] | None:
        if not isinstance(peer_id, str):
            return None
        with self._lock:
            now = self._clock()
            if self._last_scan is None or (
                self.max_age is not None and now - self._last_scan >= self.max_age
            ):
                self._refresh_locked()
            hit = self._by_peer.get(peer_id)
            if hit is None and now - self._last_scan >= self.min_rescan_interval:
                self._refresh_locked()
                hit = self._by_peer.get(peer_id)
            return hit

    # -- public ----------------------------------------------------------- #
    def role_of(self, peer_id: str) -> str | None:
        hit = self._lookup(peer_id)
        return hit[1] if hit else None

    def name_of(self, peer_id: str) -> str | None:
        hit = self._lookup(peer_id)
        return hit[0] if hit else None

    def resolve(self, name: str) -> str | None:
        return resolve_peer_id(self.root, name)


# --------------------------------------------------------------------------- #
# swarm key (private network PSK)
# --------------------------------------------------------------------------- #
def load_swarm_key(root: Path) -> str | None:
    """The 64-hex PSK in ``<root>/swarm.key`` (lowercase), or None if absent.

    Accepts a bare 64-hex line or the go-ipfs format
    (``/key/swarm/psk/1.0.0/`` / ``/base16/`` / ``<hex>``).  The file must be
    0600 or stricter.
    """
    path = Path(root) / SWARM_KEY_FILE
    try:
        data = _read_regular_file(path, "swarm key ", _MAX_SWARM_KEY_FILE, check_mode=True)
    except FileNotFoundError:
        return None
    if len(data) > _MAX_SWARM_KEY_FILE:
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}swarm key {path} is larger than {_MAX_SWARM_KEY_FILE} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}swarm key {path} is not ASCII text") from exc
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) == 1 and _HEX64.match(lines[0]):
        return lines[0].lower()
    if len(lines) == 3 and lines[0] == _SWARM_KEY_HEADER:
        if lines[1] != _SWARM_KEY_ENCODING:
            raise KeystoreError(
                f"{LOAD_ERROR_PREFIX}swarm key {path} uses encoding {lines[1]!r}, only {_SWARM_KEY_ENCODING} is supported"
            )
        if _HEX64.match(lines[2]):
            return lines[2].lower()
    raise KeystoreError(
        f"{LOAD_ERROR_PREFIX}swarm key {path} is malformed: expected 64 hex characters, "
        f"either alone or after '{_SWARM_KEY_HEADER}' and '{_SWARM_KEY_ENCODING}' lines"
    )


def generate_swarm_key(root: Path) -> Path:
    """Create ``<root>/swarm.key`` (go-ipfs format, 0600). Raises FileExistsError if present."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / SWARM_KEY_FILE
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "swarm key already exists, refusing to overwrite", str(path))
    content = f"{_SWARM_KEY_HEADER}\n{_SWARM_KEY_ENCODING}\n{secrets.token_hex(32)}\n".encode("ascii")
    if not _create_exclusive_atomic(path, content, 0o600):
        raise FileExistsError(errno.EEXIST, "swarm key already exists, refusing to overwrite", str(path))
    return path


# --------------------------------------------------------------------------- #
# derived identities (Swarm task slots, Kubernetes StatefulSet pods)
# --------------------------------------------------------------------------- #
#: Shortest accepted identity secret: 128 bits, below that a seed could be guessed.
IDENTITY_SECRET_MIN = 16
_MAX_IDENTITY_SECRET_FILE = 4096
# Domain separation: the same secret used for anything else never yields a node seed.
_SEED_CONTEXT = b"praxis/node-seed/v1\x00"


def load_identity_secret(path: Path) -> bytes:
    """The bytes of an identity secret file (trailing newline dropped).

    Group read is accepted, unlike ``node.key``: Kubernetes mounts Secret files
    group-readable for ``fsGroup`` (0440) and offers no per-file owner, so the
    agent user can only read them through its group. Access by others is not.
    """
    path = Path(path)
    try:
        data = _read_regular_file(path, "identity secret ", _MAX_IDENTITY_SECRET_FILE, check_mode=False)
    except FileNotFoundError as exc:
        raise KeystoreError(f"{LOAD_ERROR_PREFIX}identity secret {path} does not exist") from exc
    if _CHECK_MODES:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError as exc:
            raise KeystoreError(f"{LOAD_ERROR_PREFIX}identity secret {path} cannot be read: {exc}") from exc
        if mode & 0o007:
            raise KeystoreError(
                f"{LOAD_ERROR_PREFIX}identity secret {path} has mode {mode:04o}, it must not be "
                f"accessible by others (expected 0400, 0440 or stricter)"
            )
    if len(data) > _MAX_IDENTITY_SECRET_FILE:
        raise KeystoreError(
            f"{LOAD_ERROR_PREFIX}identity secret {path} is larger than {_MAX_IDENTITY_SECRET_FILE} bytes"
        )
    data = data.rstrip(b"\r\n")
    if len(data) < IDENTITY_SECRET_MIN:
        raise KeystoreError(
            f"{LOAD_ERROR_PREFIX}identity secret {path} is {len(data)} bytes, "
            f"expected at least {IDENTITY_SECRET_MIN}"
        )
    return data


def derive_seed(secret: bytes, name: str) -> bytes:
    """The Ed25519 seed of agent ``name``: HMAC-SHA256(secret, context + name).

    Deterministic, so a rescheduled Swarm task or Kubernetes pod with the same
    name (``worker-<slot>``, ``worker-<ordinal>``) gets the same PeerID without
    any volume; different names give unrelated keys.
    """
    if len(secret) < IDENTITY_SECRET_MIN:
        raise ValueError(f"identity secret must be at least {IDENTITY_SECRET_MIN} bytes")
    validate_entry_name(name)
    return hmac.new(bytes(secret), _SEED_CONTEXT + name.encode("ascii"), hashlib.sha256).digest()


def node_seed(keystore_path: Path, identity_secret_file: Path | None, name: str) -> bytes:
    """This agent's seed: derived from the identity secret when one is configured,
    else ``<keystore_path>/node.key`` (created if absent)."""
    if identity_secret_file is None:
        return load_or_create_seed(keystore_path)
    return derive_seed(load_identity_secret(identity_secret_file), name)

"""Unit tests for agent.keys (node key, public entries, registry, swarm key)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import stat
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from libp2p.peer.id import ID  # noqa: E402

from agent import keys  # noqa: E402
from agent.keys import (  # noqa: E402
    KeystoreError,
    PeerRegistry,
    ensure_seed,
    generate_swarm_key,
    keypair_from_seed,
    load_or_create_seed,
    load_swarm_key,
    peer_id_from_seed,
    publish_public_entry,
    resolve_peer_id,
    rotate_seed,
)

PREFIX = "Failed to load keypair: "


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _write(p: Path, data: bytes, mode: int = 0o600) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    os.chmod(p, mode)


# --------------------------------------------------------------------------- #
# create / reload
# --------------------------------------------------------------------------- #
def test_create_then_reload_same_peer_id(tmp_path):
    ks = tmp_path / "a" / "b" / "orchestrator"
    seed1 = load_or_create_seed(ks)
    assert len(seed1) == 32
    seed2 = load_or_create_seed(ks)
    assert seed1 == seed2
    assert peer_id_from_seed(seed1) == peer_id_from_seed(seed2)
    # the seed doc's derivation
    kp = keypair_from_seed(seed1)
    assert ID.from_pubkey(kp.public_key).to_base58() == peer_id_from_seed(seed1)
    assert peer_id_from_seed(seed1).startswith("12D3KooW")


def test_created_modes(tmp_path):
    old = os.umask(0o022)
    try:
        ks = tmp_path / "ks"
        load_or_create_seed(ks)
    finally:
        os.umask(old)
    assert _mode(ks / "node.key") == 0o600
    assert _mode(ks) == 0o700
    # no temp files left behind
    assert sorted(p.name for p in ks.iterdir()) == ["node.key"]


def test_ensure_seed_reports_created(tmp_path):
    seed, created = ensure_seed(tmp_path / "k")
    assert created
    seed2, created2 = ensure_seed(tmp_path / "k")
    assert seed2 == seed and not created2


def test_deterministic_peer_id():
    seed = bytes(range(32))
    assert peer_id_from_seed(seed) == peer_id_from_seed(bytes(range(32)))
    assert peer_id_from_seed(seed) != peer_id_from_seed(b"\x00" * 32)
    with pytest.raises(ValueError):
        keypair_from_seed(b"short")


def test_existing_dir_mode_left_alone_with_warning(tmp_path, caplog):
    ks = tmp_path / "ks"
    ks.mkdir()
    os.chmod(ks, 0o755)
    with caplog.at_level(logging.WARNING, logger="agent.keys"):
        load_or_create_seed(ks)
    assert _mode(ks) == 0o755
    assert any("0755" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- #
# refusing bad existing keys, never touching them
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("size", [0, 31, 33])
def test_wrong_size_rejected_and_untouched(tmp_path, size):
    ks = tmp_path / "orchestrator"
    ks.mkdir(mode=0o700)
    data = os.urandom(size)
    _write(ks / "node.key", data)
    with pytest.raises(KeystoreError) as ei:
        load_or_create_seed(ks)
    msg = str(ei.value)
    assert msg.startswith(PREFIX)
    assert str(ks / "node.key") in msg
    assert f"is {size} bytes, expected 32" in msg
    assert "left untouched" in msg
    assert (ks / "node.key").read_bytes() == data
    assert _mode(ks / "node.key") == 0o600


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_group_or_other_accessible_rejected(tmp_path, mode):
    ks = tmp_path / "w"
    ks.mkdir(mode=0o700)
    data = os.urandom(32)
    _write(ks / "node.key", data, mode)
    with pytest.raises(KeystoreError) as ei:
        load_or_create_seed(ks)
    msg = str(ei.value)
    assert msg.startswith(PREFIX) and str(ks / "node.key") in msg
    assert f"{mode:04o}" in msg
    assert (ks / "node.key").read_bytes() == data
    assert _mode(ks / "node.key") == mode  # not "repaired"


def test_stricter_mode_accepted(tmp_path):
    ks = tmp_path / "w"
    seed = os.urandom(32)
    _write(ks / "node.key", seed, 0o400)
    assert load_or_create_seed(ks) == seed


def test_node_key_is_directory(tmp_path):
    # Really fails, even as root.
    ks = tmp_path / "w"
    (ks / "node.key").mkdir(parents=True)
    with pytest.raises(KeystoreError) as ei:
        load_or_create_seed(ks)
    msg = str(ei.value)
    assert msg.startswith(PREFIX) and "is a directory" in msg and str(ks / "node.key") in msg
    assert (ks / "node.key").is_dir()


def test_unreadable_key(tmp_path, monkeypatch):
    # chmod 000 does not stop root, so simulate EACCES at the open() call for
    # node.key only; this fails identically as root and non-root.
    ks = tmp_path / "w"
    data = os.urandom(32)
    _write(ks / "node.key", data)
    real_open = os.open
    target = str(ks / "node.key")

    def fake_open(path, flags, *a, **kw):
        if os.fspath(path) == target:
            raise PermissionError(13, "Permission denied", target)
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(keys.os, "open", fake_open)
    with pytest.raises(KeystoreError) as ei:
        load_or_create_seed(ks)
    monkeypatch.undo()
    msg = str(ei.value)
    assert msg.startswith(PREFIX) and "not readable" in msg and target in msg
    assert (ks / "node.key").read_bytes() == data


def test_keystore_path_is_a_file(tmp_path):
    f = tmp_path / "ks"
    f.write_bytes(b"x")
    with pytest.raises(KeystoreError, match="not a directory"):
        load_or_create_seed(f)


def test_dangling_symlink_not_replaced(tmp_path):
    ks = tmp_path / "w"
    ks.mkdir()
    (ks / "node.key").symlink_to(tmp_path / "nowhere")
    with pytest.raises(KeystoreError, match="does not exist"):
        load_or_create_seed(ks)
    assert (ks / "node.key").is_symlink()
    assert not (tmp_path / "nowhere").exists()


# --------------------------------------------------------------------------- #
# atomic creation
# --------------------------------------------------------------------------- #
def _race_worker(path: str, barrier, queue) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from agent.keys import load_or_create_seed as locs

    barrier.wait()
    try:
        queue.put(("ok", locs(Path(path)).hex()))
    except Exception as exc:  # pragma: no cover - reported to the parent
        queue.put(("err", repr(exc)))


def test_concurrent_creation_single_key(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    n = 8
    for attempt in range(2):
        ks = tmp_path / f"race{attempt}" / "orchestrator"
        barrier = ctx.Barrier(n)
        queue = ctx.Queue()
        procs = [ctx.Process(target=_race_worker, args=(str(ks), barrier, queue)) for _ in range(n)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in range(n)]
        for p in procs:
            p.join(timeout=60)
            assert p.exitcode == 0
        assert all(kind == "ok" for kind, _ in results), results
        seeds = {v for _, v in results}
        assert len(seeds) == 1
        assert sorted(p.name for p in ks.iterdir()) == ["node.key"]
        assert (ks / "node.key").read_bytes().hex() in seeds
        assert _mode(ks / "node.key") == 0o600


def test_lost_race_uses_winners_key(tmp_path, monkeypatch):
    # Deterministic version: another process links node.key right before us.
    ks = tmp_path / "w"
    winner = os.urandom(32)
    real_link = os.link

    def racing_link(src, dst, *a, **kw):
        _write(Path(dst), winner)
        return real_link(src, dst, *a, **kw)

    monkeypatch.setattr(keys.os, "link", racing_link)
    seed, created = ensure_seed(ks)
    assert seed == winner and not created
    assert sorted(p.name for p in ks.iterdir()) == ["node.key"]


def test_no_hardlink_fallback(tmp_path, monkeypatch):
    def no_link(*a, **kw):
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(keys.os, "link", no_link)
    ks = tmp_path / "w"
    seed, created = ensure_seed(ks)
    assert created and (ks / "node.key").read_bytes() == seed
    assert _mode(ks / "node.key") == 0o600
    assert sorted(p.name for p in ks.iterdir()) == ["node.key"]


# --------------------------------------------------------------------------- #
# rotation
# --------------------------------------------------------------------------- #
def test_rotate_seed(tmp_path):
    ks = tmp_path / "w"
    old = load_or_create_seed(ks)
    new = rotate_seed(ks)
    assert new != old and len(new) == 32
    assert load_or_create_seed(ks) == new
    assert _mode(ks / "node.key") == 0o600
    assert sorted(p.name for p in ks.iterdir()) == ["node.key"]


def test_rotate_replaces_corrupt_key(tmp_path):
    ks = tmp_path / "w"
    _write(ks / "node.key", b"bad", 0o644)
    new = rotate_seed(ks)
    assert load_or_create_seed(ks) == new
    assert _mode(ks / "node.key") == 0o600


# --------------------------------------------------------------------------- #
# public entries + resolution
# --------------------------------------------------------------------------- #
def test_publish_entry_files_and_modes(tmp_path):
    root = tmp_path / "keys"
    pid = peer_id_from_seed(os.urandom(32))
    entry = publish_public_entry(root, "worker-a", pid, "worker")
    assert entry == root / "worker-a"
    assert (entry / "peer.id").read_text() == pid + "\n"
    assert (entry / "role").read_text() == "worker\n"
    assert _mode(entry / "peer.id") == 0o644
    assert _mode(entry / "role") == 0o644
    assert _mode(entry) == 0o755


def test_publish_into_private_dir_keeps_its_mode(tmp_path):
    root = tmp_path / "keys"
    seed = load_or_create_seed(root / "orchestrator")
    publish_public_entry(root, "orchestrator", peer_id_from_seed(seed), "orchestrator")
    assert _mode(root / "orchestrator") == 0o700
    assert (root / "orchestrator" / "node.key").read_bytes() == seed


def test_publish_skips_identical_content(tmp_path):
    root = tmp_path / "keys"
    pid = peer_id_from_seed(os.urandom(32))
    entry = publish_public_entry(root, "w", pid, "worker")
    ino = (entry / "peer.id").stat().st_ino, (entry / "role").stat().st_ino
    publish_public_entry(root, "w", pid, "worker")
    assert ((entry / "peer.id").stat().st_ino, (entry / "role").stat().st_ino) == ino
    # changed content is replaced
    pid2 = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "w", pid2, "orchestrator")
    assert (entry / "peer.id").read_text() == pid2 + "\n"
    assert (entry / "role").read_text() == "orchestrator\n"


@pytest.mark.parametrize(
    "name,pid_ok,role",
    [("../evil", True, "worker"), ("a/b", True, "worker"), ("", True, "worker"),
     ("ok", False, "worker"), ("ok", True, "admin")],
)
def test_publish_rejects_bad_input(tmp_path, name, pid_ok, role):
    pid = peer_id_from_seed(os.urandom(32)) if pid_ok else "abc"
    with pytest.raises(ValueError):
        publish_public_entry(tmp_path / "keys", name, pid, role)


def test_resolve_from_peer_id_file(tmp_path):
    root = tmp_path / "keys"
    pid = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "orchestrator", pid, "orchestrator")
    assert resolve_peer_id(root, "orchestrator") == pid


def test_resolve_peer_id_file_wins_over_node_key(tmp_path):
    root = tmp_path / "keys"
    load_or_create_seed(root / "w")
    pid = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "w", pid, "worker")
    assert resolve_peer_id(root, "w") == pid


def test_resolve_from_node_key_fallback(tmp_path):
    root = tmp_path / "keys"
    seed = load_or_create_seed(root / "worker-filesystem")
    assert not (root / "worker-filesystem" / "peer.id").exists()
    assert resolve_peer_id(root, "worker-filesystem") == peer_id_from_seed(seed)


def test_resolve_from_invalid_node_key_is_none(tmp_path):
    root = tmp_path / "keys"
    _write(root / "w" / "node.key", b"x" * 31)
    assert resolve_peer_id(root, "w") is None


def test_resolve_missing_is_none_and_never_guesses(tmp_path):
    root = tmp_path / "keys"
    load_or_create_seed(root / "orchestrator")
    publish_public_entry(root, "worker-a", peer_id_from_seed(os.urandom(32)), "worker")
    assert resolve_peer_id(root, "worker-b") is None
    assert resolve_peer_id(root, "orchestrator2") is None
    assert resolve_peer_id(root, "../keys/orchestrator") is None
    assert resolve_peer_id(tmp_path / "nope", "orchestrator") is None


@pytest.mark.parametrize("content", [b"garbage-not-base58-0OIl\n", b"abc\n", b"", b"\xff\xfe", b"1" * 5000])
def test_resolve_corrupt_peer_id_is_none(tmp_path, caplog, content):
    root = tmp_path / "keys"
    load_or_create_seed(root / "w")  # even with a valid node.key next to it
    (root / "w" / "peer.id").write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="agent.keys"):
        assert resolve_peer_id(root, "w") is None
    assert caplog.records


# --------------------------------------------------------------------------- #
# PeerRegistry
# --------------------------------------------------------------------------- #
class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_registry_lookups(tmp_path):
    root = tmp_path / "keys"
    o = peer_id_from_seed(os.urandom(32))
    w = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "orchestrator", o, "orchestrator")
    publish_public_entry(root, "worker-fs", w, "worker")
    (root / "swarm.key").write_text("x")  # files at the root are ignored
    reg = PeerRegistry(root)
    assert reg.role_of(o) == "orchestrator" and reg.name_of(o) == "orchestrator"
    assert reg.role_of(w) == "worker" and reg.name_of(w) == "worker-fs"
    assert reg.role_of(peer_id_from_seed(os.urandom(32))) is None
    assert reg.name_of("not a peer id") is None
    assert reg.resolve("worker-fs") == w
    assert reg.resolve("missing") is None


def test_registry_missing_or_bad_role(tmp_path):
    root = tmp_path / "keys"
    a = peer_id_from_seed(os.urandom(32))
    b = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "a", a, "worker")
    (root / "a" / "role").unlink()
    publish_public_entry(root, "b", b, "worker")
    (root / "b" / "role").write_text("root\n")
    reg = PeerRegistry(root)
    assert reg.name_of(a) == "a" and reg.role_of(a) is None
    assert reg.name_of(b) == "b" and reg.role_of(b) is None


def test_registry_conflicting_roles_denied(tmp_path):
    root = tmp_path / "keys"
    pid = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "a", pid, "worker")
    publish_public_entry(root, "b", pid, "orchestrator")
    assert PeerRegistry(root).role_of(pid) is None


def test_registry_rescan_throttle(tmp_path):
    root = tmp_path / "keys"
    root.mkdir()
    clock = FakeClock()
    reg = PeerRegistry(root, min_rescan_interval=1.0, clock=clock)
    unknown = peer_id_from_seed(os.urandom(32))

    assert reg.role_of(unknown) is None
    assert reg.scan_count == 1
    # many misses within the interval: no additional scans
    for _ in range(100):
        assert reg.role_of(unknown) is None
        assert reg.name_of(unknown) is None
    assert reg.scan_count == 1

    # a new entry appears; it is not seen until the interval has passed
    new = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "late", new, "worker")
    clock.t += 0.5
    assert reg.role_of(new) is None
    assert reg.scan_count == 1
    clock.t += 0.6
    assert reg.role_of(new) == "worker"
    assert reg.scan_count == 2
    # hits never rescan (within max_age)
    for _ in range(50):
        assert reg.name_of(new) == "late"
    assert reg.scan_count == 2
    # one miss after the interval -> exactly one more scan
    clock.t += 1.0
    assert reg.role_of(unknown) is None
    assert reg.role_of(unknown) is None
    assert reg.scan_count == 3


def test_registry_max_age_drops_rotated_key(tmp_path):
    root = tmp_path / "keys"
    clock = FakeClock()
    old = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "orchestrator", old, "orchestrator")
    reg = PeerRegistry(root, clock=clock, max_age=30.0)
    assert reg.role_of(old) == "orchestrator"
    new = peer_id_from_seed(os.urandom(32))
    publish_public_entry(root, "orchestrator", new, "orchestrator")
    clock.t += 5
    assert reg.role_of(old) == "orchestrator"  # cached hit
    clock.t += 30
    assert reg.role_of(old) is None
    assert reg.role_of(new) == "orchestrator"


# --------------------------------------------------------------------------- #
# swarm key
# --------------------------------------------------------------------------- #
HEX = "0123456789abcdef" * 4


def test_swarm_key_absent(tmp_path):
    assert load_swarm_key(tmp_path) is None


def test_swarm_key_bare_hex(tmp_path):
    _write(tmp_path / "swarm.key", (HEX.upper() + "\n").encode())
    assert load_swarm_key(tmp_path) == HEX


def test_swarm_key_go_ipfs_format(tmp_path):
    _write(tmp_path / "swarm.key", f"/key/swarm/psk/1.0.0/\n/base16/\n{HEX}\n".encode())
    assert load_swarm_key(tmp_path) == HEX
    _write(tmp_path / "swarm.key", f"/key/swarm/psk/1.0.0/\r\n/base16/\r\n{HEX}".encode(), 0o400)
    assert load_swarm_key(tmp_path) == HEX


@pytest.mark.parametrize(
    "content",
    [b"", b"abcd\n", (HEX + "0\n").encode(), f"/key/swarm/psk/1.0.0/\n/base64/\n{HEX}\n".encode(),
     f"/key/swarm/psk/2.0.0/\n/base16/\n{HEX}\n".encode(), b"\xff" * 64],
)
def test_swarm_key_malformed(tmp_path, content):
    _write(tmp_path / "swarm.key", content)
    with pytest.raises(KeystoreError) as ei:
        load_swarm_key(tmp_path)
    assert str(ei.value).startswith(PREFIX) and "swarm.key" in str(ei.value)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o606])
def test_swarm_key_bad_permissions(tmp_path, mode):
    data = f"/key/swarm/psk/1.0.0/\n/base16/\n{HEX}\n".encode()
    _write(tmp_path / "swarm.key", data, mode)
    with pytest.raises(KeystoreError) as ei:
        load_swarm_key(tmp_path)
    assert str(ei.value).startswith(PREFIX) and str(tmp_path / "swarm.key") in str(ei.value)
    assert (tmp_path / "swarm.key").read_bytes() == data
    assert _mode(tmp_path / "swarm.key") == mode


def test_generate_swarm_key(tmp_path):
    root = tmp_path / "keys"
    path = generate_swarm_key(root)
    assert path == root / "swarm.key"
    assert _mode(path) == 0o600
    lines = path.read_text().splitlines()
    assert lines[:2] == ["/key/swarm/psk/1.0.0/", "/base16/"]
    assert load_swarm_key(root) == lines[2]
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        generate_swarm_key(root)
    assert path.read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == ["swarm.key"]


def test_all_exports():
    for name in keys.__all__:
        assert hasattr(keys, name)

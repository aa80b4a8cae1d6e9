"""Derived identities (p2p.identity_secret_file) and gen_keys.py --deploy-dir.

A Swarm task slot or a Kubernetes StatefulSet pod has a stable name but no
volume of its own that follows it; its seed is HMAC(secret, name).
"""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from agent.config import load_config  # noqa: E402
from agent.keys import (  # noqa: E402
    KeystoreError,
    derive_seed,
    load_identity_secret,
    node_seed,
    peer_id_from_seed,
)

_spec = importlib.util.spec_from_file_location("gen_keys", REPO_ROOT / "gen_keys.py")
gen_keys = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_keys)

SECRET = b"0123456789abcdef0123456789abcdef"


def _secret_file(tmp_path: Path, data: bytes = SECRET + b"\n", mode: int = 0o400) -> Path:
    p = tmp_path / "identity.secret"
    p.write_bytes(data)
    os.chmod(p, mode)
    return p


def test_same_name_same_seed_other_name_other_seed():
    a = derive_seed(SECRET, "worker-1")
    assert a == derive_seed(SECRET, "worker-1")
    assert len(a) == 32
    others = {derive_seed(SECRET, f"worker-{i}") for i in range(2, 8)}
    assert a not in others and len(others) == 6
    assert derive_seed(SECRET[::-1], "worker-1") != a


def test_seed_is_hmac_with_context_not_the_bare_name():
    import hashlib
    import hmac

    plain = hmac.new(SECRET, b"worker-1", hashlib.sha256).digest()
    assert derive_seed(SECRET, "worker-1") != plain


@pytest.mark.parametrize("name", ["", "../x", "a/b", "swarm.key"])
def test_bad_names_rejected(name):
    with pytest.raises(ValueError):
        derive_seed(SECRET, name)


def test_short_secret_rejected(tmp_path):
    with pytest.raises(ValueError):
        derive_seed(b"short", "worker-1")
    p = _secret_file(tmp_path, b"too short\n")
    with pytest.raises(KeystoreError, match="expected at least 16"):
        load_identity_secret(p)


def test_trailing_newline_ignored(tmp_path):
    assert load_identity_secret(_secret_file(tmp_path, SECRET + b"\r\n")) == SECRET
    assert load_identity_secret(_secret_file(tmp_path, SECRET)) == SECRET


@pytest.mark.parametrize("mode", [0o400, 0o600, 0o440])
def test_owner_or_group_readable_accepted(tmp_path, mode):
    # 0440: how Kubernetes mounts a Secret for fsGroup.
    assert load_identity_secret(_secret_file(tmp_path, mode=mode)) == SECRET


@pytest.mark.parametrize("mode", [0o444, 0o604, 0o644])
def test_others_readable_rejected(tmp_path, mode):
    with pytest.raises(KeystoreError, match="accessible by others"):
        load_identity_secret(_secret_file(tmp_path, mode=mode))


def test_missing_secret_file_named(tmp_path):
    with pytest.raises(KeystoreError, match="does not exist"):
        load_identity_secret(tmp_path / "nope")


def test_node_seed_derives_without_touching_the_keystore(tmp_path):
    keystore = tmp_path / "key"
    seed = node_seed(keystore, _secret_file(tmp_path), "worker-3")
    assert seed == derive_seed(SECRET, "worker-3")
    assert not keystore.exists()  # read-only root filesystems have nowhere to write it


def test_node_seed_without_secret_uses_node_key(tmp_path):
    keystore = tmp_path / "key"
    seed = node_seed(keystore, None, "worker-3")
    assert (keystore / "node.key").read_bytes() == seed
    assert node_seed(keystore, None, "other-name") == seed


def test_config_field_from_env_override(tmp_path):
    cfg_file = REPO_ROOT / "configs" / "worker.yaml"
    cfg = load_config(cfg_file, environ={"PRAXIS__P2P__IDENTITY_SECRET_FILE": "/run/secrets/worker"})
    assert cfg.p2p.identity_secret_file == Path("/run/secrets/worker")
    cfg = load_config(cfg_file, environ={"PRAXIS__P2P__IDENTITY_SECRET_FILE": ""})
    assert cfg.p2p.identity_secret_file is None


def test_deploy_dir_files_and_idempotence(tmp_path, capsys):
    out = tmp_path / "deploy"
    assert gen_keys.main(["--deploy-dir", str(out), "--workers", "2"]) == 0
    text = capsys.readouterr().out
    for name in ("orchestrator", "worker"):
        p = out / f"{name}.secret"
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert len(load_identity_secret(p)) == 64
    orch_id = (out / "orchestrator.peer.id").read_text().strip()
    assert orch_id == peer_id_from_seed(derive_seed(load_identity_secret(out / "orchestrator.secret"), "orchestrator"))
    assert (out / "orchestrator.role").read_text() == "orchestrator\n"
    wsecret = load_identity_secret(out / "worker.secret")
    for i in (0, 1, 2):
        assert peer_id_from_seed(derive_seed(wsecret, f"worker-{i}")) in text
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert gen_keys.main(["--deploy-dir", str(out)]) == 0
    assert "existing" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_deploy_dir_force_rotates(tmp_path, capsys):
    out = tmp_path / "deploy"
    assert gen_keys.main(["--deploy-dir", str(out)]) == 0
    old = (out / "orchestrator.peer.id").read_text()
    assert gen_keys.main(["--deploy-dir", str(out), "--force"]) == 0
    assert "rotated" in capsys.readouterr().out
    assert (out / "orchestrator.peer.id").read_text() != old


def test_deploy_dir_rejects_keystore_options(tmp_path, capsys):
    assert gen_keys.main(["--deploy-dir", str(tmp_path), "orchestrator"]) == 2
    assert "takes no NAME" in capsys.readouterr().err

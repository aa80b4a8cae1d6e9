"""Tests for the top-level gen_keys.py script."""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from agent.keys import load_swarm_key, peer_id_from_seed, resolve_peer_id  # noqa: E402

_spec = importlib.util.spec_from_file_location("gen_keys", REPO_ROOT / "gen_keys.py")
gen_keys = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen_keys)


def _table(out: str) -> dict[str, tuple[str, str, str]]:
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "role", "peer_id", "status"]
    rows = {}
    for line in lines[1:]:
        parts = line.split()
        if len(parts) == 4:
            rows[parts[0]] = (parts[1], parts[2], parts[3])
    return rows


def test_defaults_table_and_files(tmp_path, capsys):
    keys_dir = tmp_path / "keys"
    assert gen_keys.main(["--keys-dir", str(keys_dir)]) == 0
    rows = _table(capsys.readouterr().out)
    assert set(rows) == {"orchestrator", "worker-filesystem", "worker-analytics"}
    assert rows["orchestrator"][0] == "orchestrator"
    assert rows["worker-filesystem"][0] == "worker"
    assert rows["worker-analytics"][0] == "worker"
    for name, (role, pid, status) in rows.items():
        assert status == "created"
        d = keys_dir / name
        seed = (d / "node.key").read_bytes()
        assert peer_id_from_seed(seed) == pid
        assert (d / "peer.id").read_text() == pid + "\n"
        assert (d / "role").read_text() == role + "\n"
        assert stat.S_IMODE((d / "node.key").stat().st_mode) == 0o600
        assert resolve_peer_id(keys_dir, name) == pid
    assert not (keys_dir / "swarm.key").exists()


def test_idempotent(tmp_path, capsys):
    keys_dir = tmp_path / "keys"
    assert gen_keys.main(["--keys-dir", str(keys_dir), "a", "b"]) == 0
    first = _table(capsys.readouterr().out)
    seeds = {n: (keys_dir / n / "node.key").read_bytes() for n in "ab"}
    assert gen_keys.main(["--keys-dir", str(keys_dir), "a", "b"]) == 0
    second = _table(capsys.readouterr().out)
    for n in "ab":
        assert second[n][1] == first[n][1]
        assert second[n][2] == "existing"
        assert (keys_dir / n / "node.key").read_bytes() == seeds[n]


def test_force_rotates(tmp_path, capsys):
    keys_dir = tmp_path / "keys"
    assert gen_keys.main(["--keys-dir", str(keys_dir), "orchestrator"]) == 0
    before = _table(capsys.readouterr().out)["orchestrator"][1]
    assert gen_keys.main(["--keys-dir", str(keys_dir), "--force", "orchestrator", "newone"]) == 0
    rows = _table(capsys.readouterr().out)
    role, after, status = rows["orchestrator"]
    assert status == "rotated" and after != before
    assert (keys_dir / "orchestrator" / "peer.id").read_text() == after + "\n"
    assert resolve_peer_id(keys_dir, "orchestrator") == after
    assert rows["newone"][2] == "created"


def test_role_override(tmp_path, capsys):
    keys_dir = tmp_path / "keys"
    assert gen_keys.main(["--keys-dir", str(keys_dir), "boss", "orchestrator-2", "--role", "boss=orchestrator"]) == 0
    rows = _table(capsys.readouterr().out)
    assert rows["boss"][0] == "orchestrator"
    assert rows["orchestrator-2"][0] == "orchestrator"
    assert (keys_dir / "boss" / "role").read_text() == "orchestrator\n"


@pytest.mark.parametrize(
    "argv",
    [["a", "--role", "a=admin"], ["a", "--role", "b=worker"], ["a", "--role", "a"], ["../x"], ["--bogus"]],
)
def test_usage_errors_exit_2(tmp_path, capsys, argv):
    assert gen_keys.main(["--keys-dir", str(tmp_path / "keys"), *argv]) == 2
    assert capsys.readouterr().err


def test_corrupt_key_exit_2_and_untouched(tmp_path, capsys):
    keys_dir = tmp_path / "keys"
    (keys_dir / "orchestrator").mkdir(parents=True, mode=0o700)
    bad = b"x" * 31
    (keys_dir / "orchestrator" / "node.key").write_bytes(bad)
    os.chmod(keys_dir / "orchestrator" / "node.key", 0o600)
    assert gen_keys.main(["--keys-dir", str(keys_dir), "orchestrator", "w1"]) == 2
    captured = capsys.readouterr()
    assert "Failed to load keypair: " in captured.err and "31 bytes" in captured.err
    assert (keys_dir / "orchestrator" / "node.key").read_bytes() == bad
    assert _table(captured.out)["w1"][2] == "created"  # the others still processed
    # --force repairs it by rotation
    assert gen_keys.main(["--keys-dir", str(keys_dir), "--force", "orchestrator"]) == 0
    assert _table(capsys.readouterr().out)["orchestrator"][2] == "rotated"
    assert len((keys_dir / "orchestrator" / "node.key").read_bytes()) == 32


def test_swarm_key_option(tmp_path, capsys):
    keys_dir = tmp_path / "keys"
    assert gen_keys.main(["--keys-dir", str(keys_dir), "a", "--swarm-key"]) == 0
    out = capsys.readouterr().out
    assert "created" in out.splitlines()[-1]
    psk = load_swarm_key(keys_dir)
    assert psk and len(psk) == 64
    assert gen_keys.main(["--keys-dir", str(keys_dir), "a", "--swarm-key"]) == 0
    assert "existing" in capsys.readouterr().out.splitlines()[-1]
    assert load_swarm_key(keys_dir) == psk


def test_subprocess_from_repo_root(tmp_path):
    keys_dir = tmp_path / "keys"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "gen_keys.py", "--keys-dir", str(keys_dir), "a", "b"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc.returncode == 0, proc.stderr
    rows = _table(proc.stdout)
    assert set(rows) == {"a", "b"}
    assert all(r[0] == "worker" and r[2] == "created" for r in rows.values())
    # and from another cwd, by path
    proc2 = subprocess.run(
        [sys.executable, str(REPO_ROOT / "gen_keys.py"), "--keys-dir", str(keys_dir), "a", "b"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env,
    )
    assert proc2.returncode == 0, proc2.stderr
    rows2 = _table(proc2.stdout)
    assert {n: r[1] for n, r in rows2.items()} == {n: r[1] for n, r in rows.items()}
    assert all(r[2] == "existing" for r in rows2.values())

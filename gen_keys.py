#!/usr/bin/env python3
"""Create (or rotate) agent node keys and publish their public entries.

    python gen_keys.py [NAME ...] [--keys-dir keys] [--force]
                       [--role NAME=ROLE ...] [--swarm-key]
    python gen_keys.py --deploy-dir DIR [--workers N]

``--deploy-dir DIR`` writes what Docker Swarm (``docker secret create`` /
``docker config create``, or the stack file's ``file:`` entries) and
Kubernetes (kustomize ``secretGenerator`` / ``configMapGenerator``) need:

* ``DIR/orchestrator.secret``  private (0600): the orchestrator's identity
  secret; only the orchestrator gets it;
* ``DIR/worker.secret``        private (0600): the workers' identity secret;
  worker ``NAME`` has seed HMAC(secret, NAME) (``p2p.identity_secret_file``);
* ``DIR/orchestrator.peer.id`` public: the PeerID workers resolve
  ``/dns4/orchestrator/tcp/9000`` with, and ``DIR/orchestrator.role``.

Existing secrets are kept (same PeerIDs on every run); ``--force`` replaces
them. ``--workers N`` also lists the PeerIDs of worker-1 .. worker-N (Swarm
task slots) and worker-0 .. worker-(N-1) (StatefulSet pods).

For each NAME: ``<keys-dir>/<NAME>/node.key`` is created if missing (never
overwritten unless ``--force``, which rotates it to a new seed / new PeerID),
and ``<keys-dir>/<NAME>/peer.id`` + ``role`` are published.  Running it twice
is harmless: the second run reports the same PeerIDs as "existing".

Role: ``--role NAME=ROLE`` if given, else "orchestrator" for names starting
with "orchestrator", else "worker".  Exit code 0 on success, 2 on any error
(details on stderr).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from agent.constants import ROLES, SWARM_KEY_FILE  # noqa: E402
from agent.keys import (  # noqa: E402
    KeystoreError,
    derive_seed,
    ensure_seed,
    load_identity_secret,
    generate_swarm_key,
    load_swarm_key,
    peer_id_from_seed,
    publish_public_entry,
    rotate_seed,
    validate_entry_name,
)

DEFAULT_NAMES = ("orchestrator", "worker-filesystem", "worker-analytics")


def default_role(name: str) -> str:
    return "orchestrator" if name.startswith("orchestrator") else "worker"


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gen_keys.py",
        description="Create agent Ed25519 node keys and publish peer.id/role entries.",
    )
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"agent names (default: {' '.join(DEFAULT_NAMES)})",
    )
    p.add_argument("--keys-dir", default="keys", type=Path, help="keystore root (default: keys)")
    p.add_argument(
        "--force",
        action="store_true",
        help="rotate: replace existing node.key with a new seed (new PeerID)",
    )
    p.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="NAME=ROLE",
        help=f"role for NAME, one of {', '.join(ROLES)} (repeatable)",
    )
    p.add_argument(
        "--swarm-key",
        action="store_true",
        help=f"also create <keys-dir>/{SWARM_KEY_FILE} (private network PSK) if missing",
    )
    p.add_argument(
        "--deploy-dir",
        type=Path,
        metavar="DIR",
        help="write orchestrator/worker identity secrets and the orchestrator's "
        "public peer.id/role for Docker Swarm and Kubernetes into DIR (instead of a keystore)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="with --deploy-dir: also list the PeerIDs of N derived worker identities",
    )
    return p


# Names written by --deploy-dir (deploy/swarm/stack.yml and deploy/k8s refer to them).
DEPLOY_FILES = {
    "orchestrator_secret": "orchestrator.secret",
    "worker_secret": "worker.secret",
    "orchestrator_peer_id": "orchestrator.peer.id",
    "orchestrator_role": "orchestrator.role",
}


def _ensure_secret(path: Path, force: bool) -> tuple[bytes, str]:
    """A 64-hex identity secret at ``path`` (0600); created unless present."""
    if os.path.lexists(path) and not force:
        return load_identity_secret(path), "existing"
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (os.urandom(32).hex() + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    status = "rotated" if os.path.lexists(path) else "created"
    os.replace(tmp, path)
    return load_identity_secret(path), status


def _write_public(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    tmp.write_text(text, encoding="ascii")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def deploy_files(out: Path, force: bool, workers: int) -> list[tuple[str, str, str, str]]:
    """Write the --deploy-dir files; rows for the table (name, role, peer_id, status)."""
    out.mkdir(parents=True, exist_ok=True)
    orch_secret, orch_status = _ensure_secret(out / DEPLOY_FILES["orchestrator_secret"], force)
    worker_secret, worker_status = _ensure_secret(out / DEPLOY_FILES["worker_secret"], force)
    orch_id = peer_id_from_seed(derive_seed(orch_secret, "orchestrator"))
    _write_public(out / DEPLOY_FILES["orchestrator_peer_id"], orch_id + "\n")
    _write_public(out / DEPLOY_FILES["orchestrator_role"], "orchestrator\n")
    rows = [("orchestrator", "orchestrator", orch_id, orch_status)]
    names = [f"worker-{i}" for i in range(0, workers + 1)] if workers else []
    for name in names:
        rows.append((name, "worker", peer_id_from_seed(derive_seed(worker_secret, name)), worker_status))
    return rows


def _parse_roles(parser: argparse.ArgumentParser, specs: list[str], names: list[str]) -> dict[str, str]:
    roles: dict[str, str] = {}
    for spec in specs:
        name, sep, role = spec.partition("=")
        name, role = name.strip(), role.strip()
        if not sep or not name or not role:
            parser.error(f"--role expects NAME=ROLE, got {spec!r}")
        if role not in ROLES:
            parser.error(f"--role {spec!r}: role must be one of {', '.join(ROLES)}")
        if name not in names:
            parser.error(f"--role {spec!r}: {name!r} is not among the names to generate ({' '.join(names)})")
        roles[name] = role
    return roles


def _format_table(rows: list[tuple[str, str, str, str]]) -> str:
    header = ("name", "role", "peer_id", "status")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    lines = []
    for r in [header, *rows]:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip())
    return "\n".join(lines)


def _process(keys_dir: Path, name: str, role: str, force: bool) -> tuple[str, str]:
    """Return (peer_id, status) for one agent; raises on error."""
    key_dir = keys_dir / name
    if force and os.path.lexists(key_dir / "node.key"):
        seed = rotate_seed(key_dir)
        status = "rotated"
    else:
        seed, created = ensure_seed(key_dir)
        status = "created" if created else "existing"
    peer_id = peer_id_from_seed(seed)
    publish_public_entry(keys_dir, name, peer_id, role)
    return peer_id, status


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        names: list[str] = list(dict.fromkeys(args.names or DEFAULT_NAMES))  # dedupe, keep order
        for name in names:
            try:
                validate_entry_name(name)
            except ValueError as exc:
                parser.error(str(exc))
        roles = _parse_roles(parser, args.role, names)
    except SystemExit as exc:  # argparse: --help (0) or usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else 2

    if args.deploy_dir is not None:
        if args.names or args.role or args.swarm_key:
            print("error: --deploy-dir takes no NAME, --role or --swarm-key", file=sys.stderr)
            return 2
        if args.workers < 0:
            print("error: --workers must be 0 or more", file=sys.stderr)
            return 2
        try:
            rows = deploy_files(args.deploy_dir, args.force, args.workers)
        except (KeystoreError, OSError, ValueError) as exc:
            print(f"error: {args.deploy_dir}: {exc}", file=sys.stderr)
            return 2
        print(_format_table(rows))
        return 0

    keys_dir: Path = args.keys_dir
    rows: list[tuple[str, str, str, str]] = []
    failed = False
    for name in names:
        role = roles.get(name, default_role(name))
        try:
            peer_id, status = _process(keys_dir, name, role, args.force)
        except (KeystoreError, OSError, ValueError) as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            rows.append((name, role, "-", "error"))
            failed = True
            continue
        rows.append((name, role, peer_id, status))

    print(_format_table(rows))

    if args.swarm_key:
        try:
            if load_swarm_key(keys_dir) is None:
                path = generate_swarm_key(keys_dir)
                print(f"swarm key: {path} created")
            else:
                print(f"swarm key: {keys_dir / SWARM_KEY_FILE} existing")
        except (KeystoreError, OSError) as exc:
            print(f"error: swarm key: {exc}", file=sys.stderr)
            failed = True

    if failed:
        print(
            "error: some keys could not be loaded or created (see above); "
            "existing key files were left untouched. Use --force to replace a corrupt node.key.",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

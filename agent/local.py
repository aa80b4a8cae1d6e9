"""``python -m agent local``: an orchestrator and N workers as processes on 127.0.0.1.

A temporary keystore root holds every agent's key and public entry; mDNS is
bound to 127.0.0.1 so nothing is multicast on the machine's real interfaces.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from .keys import load_or_create_seed, peer_id_from_seed

__all__ = ["main", "LocalCluster"]

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
# How long to wait for every agent's /health to answer 200.
READY_TIMEOUT = 30.0


class LocalCluster:
    def __init__(self, workers: int, api_port: int, p2p_port: int, root: Path, configs: Path = CONFIGS,
                 extra: list[str] | None = None) -> None:
        self.workers = workers
        self.api_port = api_port
        self.p2p_port = p2p_port
        self.root = root
        self.configs = configs
        self.extra = extra or []
        self.procs: list[tuple[str, int, subprocess.Popen]] = []

    def _spawn(self, name: str, config: str, api: int, p2p: int, sets: list[str]) -> None:
        keystore = self.root / name
        cmd = [
            sys.executable, "-m", "agent", "--config", str(self.configs / config),
            "--set", f"agent.name={name}",
            "--set", f"p2p.port={p2p}",
            "--set", "p2p.host=127.0.0.1",
            "--set", f"p2p.keystore_path={keystore}",
            "--set", f"p2p.keystore_root={self.root}",
            "--set", "p2p.mdns_interfaces=[127.0.0.1]",
            "--set", "api.host=127.0.0.1",
            "--set", f"api.port={api}",
            "--set", f"tools.filesystem.root={self.root / 'data'}",
            "--set", f"tools.analytics.root={self.root / 'data'}",
            *[a for s in sets + self.extra for a in ("--set", s)],
        ]
        env = dict(os.environ)
        env.pop("PRAXIS_API_TOKEN", None) if "PRAXIS_API_TOKEN" not in os.environ else None
        proc = subprocess.Popen(cmd, env=env)
        self.procs.append((name, api, proc))

    def start(self) -> None:
        orch_key = self.root / "orchestrator"
        orch_id = peer_id_from_seed(load_or_create_seed(orch_key))
        boot = f"[/ip4/127.0.0.1/tcp/{self.p2p_port}/p2p/{orch_id}]"
        self._spawn("orchestrator", "orchestrator.yaml", self.api_port, self.p2p_port, [])
        kinds = [("worker-filesystem", "worker_filesystem.yaml"), ("worker-analytics", "worker_analytics.yaml")]
        for i in range(self.workers):
            name, config = kinds[i] if i < len(kinds) else (f"worker-{i - 1}", "worker.yaml")
            self._spawn(name, config, self.api_port + 1 + i, self.p2p_port + 1 + i, [f"p2p.bootstrap_nodes={boot}"])

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> bool:
        deadline = time.monotonic() + timeout
        pending = {api for _, api, _ in self.procs}
        while pending and time.monotonic() < deadline:
            for name, api, proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with code {proc.returncode}")
                if api in pending and _healthy(api):
                    pending.discard(api)
            time.sleep(0.1)
        return not pending

    def stop(self) -> None:
        for _, _, proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, _, proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
            return r.status == 200
    except Exception:
        return False


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="praxis-agent local", description=__doc__)
    p.add_argument("--workers", "-n", type=int, default=3, help="number of workers (default 3)")
    p.add_argument("--api-port", type=int, default=8000, help="orchestrator API port; workers take the next ones")
    p.add_argument("--p2p-port", type=int, default=9000, help="orchestrator P2P port; workers take the next ones")
    p.add_argument("--keys-dir", type=Path, default=None, help="keystore root (default: a temporary directory)")
    args = p.parse_args(argv)
    if args.workers < 0:
        p.error("--workers must be >= 0")
    with tempfile.TemporaryDirectory(prefix="praxis-local-") as tmp:
        root = args.keys_dir or Path(tmp)
        cluster = LocalCluster(args.workers, args.api_port, args.p2p_port, root)
        cluster.start()
        try:
            ok = cluster.wait_ready()
            print("\nPraxis local cluster" + ("" if ok else " (some agents not healthy yet)") + f" — keystore {root}")
            for name, api, _ in cluster.procs:
                print(f"  {name:<20} http://127.0.0.1:{api}/health")
            print("Ctrl-C stops them all.", flush=True)
            while all(proc.poll() is None for _, _, proc in cluster.procs):
                time.sleep(0.5)
            print("an agent exited; stopping the cluster", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            cluster.stop()

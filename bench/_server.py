"""libp2p bench server on the agent's own stack: ``python -m bench._server --root DIR --name NAME``.

An :class:`agent.runtime.Agent` built from configs/worker.yaml (P2P only, no
HTTP), started as the product starts it; once it runs, one extra stream
handler is registered on its host through ``service.submit``:

``/praxis-bench/sink/1.0.0``: read until EOF, answer the byte count in ASCII,
close.  Nothing is added to ``agent/``.

Prints one JSON line ``{"peer_id": ..., "addr": ...}`` on stdout when ready;
stops on SIGTERM/SIGINT or when stdin reaches EOF (the parent went away).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from libp2p.network.stream.exceptions import StreamEOF, StreamError

from agent.config import load_config
from agent.p2p._streams import READ_CHUNK
from agent.runtime import Agent

from ._util import CONFIGS, agent_sets, free_port

SINK_PROTOCOL = "/praxis-bench/sink/1.0.0"


async def _sink(stream: Any) -> None:
    n = 0
    try:
        while True:
            data = await stream.read(READ_CHUNK)
            if not data:
                break
            n += len(data)
    except StreamEOF:
        pass
    except StreamError:
        await stream.reset()
        return
    try:
        await stream.write(str(n).encode())
        await stream.close()
    except StreamError:
        pass


async def _register(host: Any) -> None:
    host.set_stream_handler(SINK_PROTOCOL, _sink)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench._server")
    p.add_argument("--root", type=Path, required=True, help="keystore root (a temp dir)")
    p.add_argument("--name", default="bench-server")
    args = p.parse_args(argv)

    sets = agent_sets(args.name, args.root, 0, free_port())
    agent = Agent(load_config(CONFIGS / "worker.yaml", overrides=sets, environ={}))
    agent.publish_identity()
    agent.start_p2p()
    stop = threading.Event()
    try:
        agent.service.submit(_register, agent.service._host).result(10)
        print(json.dumps({"peer_id": agent.peer_id, "addr": agent.service.listen_addrs[0]}), flush=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())

        def _stdin_eof() -> None:
            sys.stdin.buffer.read()
            stop.set()

        threading.Thread(target=_stdin_eof, daemon=True).start()
        while not stop.wait(0.5):
            pass
    finally:
        agent.stop_p2p()
    return 0


if __name__ == "__main__":
    sys.exit(main())

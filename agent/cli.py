"""Command line: ``python -m agent --config FILE`` runs one agent;
``python -m agent local --workers N`` runs a cluster of processes on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

__all__ = ["main"]

EXIT_CONFIG = 2  # bad config or keystore: nothing was started


def _agent_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="praxis-agent",
        description="Run one Praxis agent (orchestrator or worker) from a YAML config. "
        "Use 'praxis-agent local --help' for a local cluster without Docker.",
    )
    p.add_argument("--config", "-c", required=True, help="YAML config, e.g. configs/orchestrator.yaml")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (dotted path, YAML value), e.g. --set p2p.port=9001; repeatable",
    )
    p.add_argument("--check", action="store_true", help="validate the config, print it (secrets masked), exit")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "local":
        from .local import main as local_main

        return local_main(argv[1:])
    args = _agent_parser().parse_args(argv)

    from .config import ConfigError, load_config

    try:
        config = load_config(args.config, overrides=args.overrides)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        print(json.dumps(config.summary(), indent=2, default=str))
        return 0

    from .logs import setup_logging

    setup_logging(config.logging.level, config.logging.format)
    from .keys import KeystoreError
    from .runtime import Agent

    try:
        agent = Agent(config)
    except KeystoreError as e:
        print(str(e), file=sys.stderr)
        return EXIT_CONFIG
    except (OSError, ValueError) as e:
        print(f"cannot start agent: {e}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return asyncio.run(agent.serve())
    except KeyboardInterrupt:
        return 0

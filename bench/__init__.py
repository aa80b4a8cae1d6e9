"""Praxis benchmarks: ``python -m bench`` (full) and ``python -m bench --quick``.

Every figure is measured next to a baseline taken in the same run on the same
machine (raw TCP on loopback, ``GET /health``, ``python3 -c pass``, the docker
command itself), because the machines this runs on are shared and noisy: the
ratio is the number to compare between runs, the absolute figure the one to
compare with the target.

Modules, one per section: :mod:`bench.p2p` (agent <-> agent over libp2p vs raw
TCP), :mod:`bench.invoke` (HTTP -> orchestrator -> P2P -> worker vs ``/health``),
:mod:`bench.startup` (cold start, idle RSS), :mod:`bench.containers` (compose
scale, kill, restart); :mod:`bench.report` writes JSON, Markdown and plots.
Child processes: :mod:`bench._server` (libp2p sink on the agent's own stack),
:mod:`bench._tcp_server` (raw TCP echo/sink).  This is a measuring tool: it
asserts nothing about timings.
"""

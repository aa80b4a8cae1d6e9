"""Chaos under load: tool calls through the orchestrator at concurrency 32 for
30 s while one worker is `docker kill`-ed and another `docker pause`-d, then
unpaused.  Every call must end — with a result or a JSON error — within the
call timeout plus a margin; the counts are printed; the cluster is whole
afterwards.

Runs before test_cluster.py (file order) and leaves the cluster as it found it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import httpx
import pytest

try:  # tests/e2e is not a package (no __init__.py): conftest is top-level
    from .conftest import Cluster, log, record_timing, wait_for
except ImportError:
    from conftest import Cluster, log, record_timing, wait_for  # type: ignore[no-redef]

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

CONCURRENCY = 32
DURATION = 30.0
# configs/*.yaml tools.call_timeout is 30 s; a call may also wait for a retry
# on another provider.  A call still open after this has hung.
HANG = 75.0
# Only workers have text_stats (the orchestrator would answer echo itself).
TOOL = "text_stats"


async def _load(api: str, token: str, stop_at: float, outcomes: Counter, worst: list[float]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=api, timeout=HANG, headers=headers) as http:

        async def one_client(i: int) -> None:
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                t0 = time.monotonic()
                try:
                    r = await http.post(f"/tools/{TOOL}/invoke", json={"arguments": {"text": f"client {i} call {n}"}})
                except httpx.TimeoutException:
                    outcomes["hung (no answer within %ds)" % HANG] += 1
                    continue
                except httpx.HTTPError as e:
                    outcomes[f"transport error {type(e).__name__}"] += 1
                    continue
                finally:
                    worst[0] = max(worst[0], time.monotonic() - t0)
                try:
                    body = r.json()
                except json.JSONDecodeError:
                    outcomes[f"{r.status_code} not JSON"] += 1
                    continue
                if r.status_code == 200 and "result" in body:
                    outcomes["ok"] += 1
                elif isinstance(body.get("error"), dict) and "code" in body["error"]:
                    outcomes[f"{r.status_code} {body['error']['code']}"] += 1
                else:
                    outcomes[f"{r.status_code} unexpected body"] += 1

        await asyncio.gather(*(one_client(i) for i in range(CONCURRENCY)))


def test_calls_end_with_a_result_or_a_json_error_while_workers_die_and_freeze(cluster: Cluster) -> None:
    workers = cluster.generic_workers()
    assert len(workers) >= 2, "needs two generic workers"
    victim, sleeper = workers[0], workers[1]
    names = cluster.running_worker_names()
    cluster.wait_peers(present=names, timeout=120)

    outcomes: Counter[str] = Counter()
    worst = [0.0]
    t_start = time.monotonic()
    stop_at = t_start + DURATION

    async def chaos() -> None:
        load = asyncio.create_task(_load(cluster.api, cluster.token, stop_at, outcomes, worst))
        await asyncio.sleep(5)
        await asyncio.to_thread(victim.kill)
        log(f"chaos: killed {victim.name} at t={time.monotonic() - t_start:.1f}s")
        await asyncio.sleep(5)
        await asyncio.to_thread(sleeper.pause)
        log(f"chaos: paused {sleeper.name} at t={time.monotonic() - t_start:.1f}s")
        await asyncio.sleep(10)
        await asyncio.to_thread(sleeper.unpause)
        log(f"chaos: unpaused {sleeper.name} at t={time.monotonic() - t_start:.1f}s")
        await load

    try:
        asyncio.run(chaos())
    finally:
        for c in (victim, sleeper):
            c.reload()
            if c.status == "paused":
                c.unpause()
    took = time.monotonic() - t_start
    total = sum(outcomes.values())
    summary = ", ".join(f"{k}: {v}" for k, v in outcomes.most_common())
    log(f"chaos: {total} calls in {took:.1f}s at concurrency {CONCURRENCY} — {summary}; longest call {worst[0]:.1f}s")
    record_timing(f"chaos load ({total} calls: {summary})", took)

    assert total > 0
    assert outcomes["ok"] > 0, summary
    bad = {k: v for k, v in outcomes.items() if k.startswith(("hung", "transport")) or k.endswith(("not JSON", "unexpected body"))}
    assert not bad, f"calls that did not end with a result or a JSON error: {bad}"
    # 500 means an unforeseen failure leaked: never expected here.
    assert not any(k.startswith("500 ") for k in outcomes), summary

    # The cluster is whole again: the killed worker restarted, the paused one back.
    victim.start()
    cluster.wait_peers(present=names, timeout=180)
    assert cluster.health()["status"] == "ok"

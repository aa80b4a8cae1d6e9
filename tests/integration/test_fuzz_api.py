"""API fuzzing against a live orchestrator with a worker behind it.

- schemathesis generates requests from the agent's own OpenAPI document (the
  real request bodies of /tools/{name}/invoke, /mcp and /a2a are declared there)
  and checks every answer: never a 500, and always inside the documented schema;
- hypothesis throws JSON-RPC-shaped and arbitrary JSON bodies at /mcp and /a2a.

Afterwards the cluster still serves an honest routed call.  Bounded: the
number of cases per operation is PRAXIS_FUZZ_EXAMPLES (default 30).
"""

from __future__ import annotations

import json
import os
from collections import Counter

import httpx
import pytest
import schemathesis
from schemathesis import GenerationMode, checks
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.errors import Unsatisfiable

from .conftest import FUZZ_REPORT, running_cluster, wait_for

EXAMPLES = int(os.environ.get("PRAXIS_FUZZ_EXAMPLES", "30"))
STATS: Counter[str] = Counter()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-api")
    try:
        with running_cluster(root, [("worker-1", "worker.yaml", [])]) as c:
            orch = c["procs"]["orchestrator"]
            wait_for(lambda: any(p["name"] == "worker-1" for p in orch.peers()), 30, what="worker in /peers")
            yield orch
    finally:
        if STATS:
            FUZZ_REPORT.append("api fuzz: " + ", ".join(f"{k}={v}" for k, v in sorted(STATS.items())))

def test_every_answer_is_documented_and_never_a_500(api):
    schema = schemathesis.openapi.from_url(api.url + "/openapi.json")
    operations = [op.ok() for op in schema.get_all_operations()]
    assert operations, "the OpenAPI document lists no operations"
    failures: list[str] = []
    # Positive cases (valid by the schema) and negative ones (invalid by it: they
    # must be refused with a 4xx, never a 500).
    for op, mode in [(op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]:

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case):
            response = case.call(timeout=30)
            STATS[f"schemathesis {mode.value} cases"] += 1
            STATS[f"status {response.status_code}"] += 1
            assert response.status_code != 500, f"{case.method} {case.formatted_path} → 500: {response.text[:300]}"
            # positive_data_acceptance does not apply: a tool's arguments are
            # checked against that tool's own schema (a 422 for schema-valid
            # JSON is the contract), and a PeerID is more than its pattern.
            excluded = [checks.positive_data_acceptance]
            if op.path in ("/mcp", "/a2a"):
                # JSON-RPC: a request that cannot be served is answered with a
                # JSON-RPC error in a 200 body (what the SDK clients expect),
                # not with a 4xx.
                excluded.append(checks.negative_data_rejection)
            case.validate_response(response, excluded_checks=excluded)

        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # an operation with no input has no invalid input
        except (Exception, BaseExceptionGroup) as e:  # noqa: BLE001 - collect every operation's failure, then fail once
            failures.append(f"{op.method.upper()} {op.path} ({mode.value}): {str(e)[:800]}")
    assert not failures, "\n\n".join(failures)


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=15,
)
METHODS = [
    "initialize", "tools/list", "tools/call", "ping", "server/discover", "notifications/initialized",
    "SendMessage", "GetTask", "ListTasks", "CancelTask", "message/send", "tasks/get", "tasks/cancel", "nope",
]
rpc_bodies = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0") | json_values, "method": st.sampled_from(METHODS) | json_values},
    optional={"id": st.integers() | st.text(max_size=8) | json_values, "params": json_values},
)


@pytest.mark.parametrize("path", ["/mcp", "/a2a"])
def test_json_rpc_bodies_get_json_answers(api, path):
    client = httpx.Client(base_url=api.url, timeout=30)

    @settings(max_examples=EXAMPLES * 3, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=rpc_bodies | json_values)
    def run(body):
        r = client.post(path, content=json.dumps(body), headers={"content-type": "application/json", "accept": "application/json, text/event-stream"})
        STATS[f"{path} bodies"] += 1
        STATS[f"{path} status {r.status_code}"] += 1
        assert r.status_code != 500, r.text[:300]
        if r.content and r.headers.get("content-type", "").startswith("application/json"):
            r.json()

    try:
        # Issue 8: 100 000 nested lists once raised RecursionError (plain-text
        # 500) and uvicorn then closed the kept-alive connection.
        deep = "[" * 100_000 + "]" * 100_000
        r = client.post(path, content=deep, headers={"content-type": "application/json"})
        assert r.status_code != 500 and r.headers.get("content-type", "").startswith("application/json"), r.text[:300]
        run()
    finally:
        client.close()
    # The cluster still routes an honest call afterwards.
    r = httpx.post(api.url + "/tools/echo/invoke", json={"arguments": {"message": "ok"}}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == {"message": "ok"}

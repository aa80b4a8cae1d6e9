"""An orchestrator and three workers as real processes on 127.0.0.1."""

from __future__ import annotations

import signal
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from agent.constants import A2A_PROTOCOL, MCP_PROTOCOL

from .conftest import on_loop, p2p_addr, wait_for

WORKERS = {"worker-filesystem", "worker-analytics", "worker-1"}


def _names(peers):
    return {p["name"] for p in peers}


def test_orchestrator_sees_every_worker_with_its_card(cluster):
    orch = cluster["procs"]["orchestrator"]
    peers = wait_for(lambda: (p := orch.peers()) and WORKERS <= _names(p) and p, what="3 workers in /peers")
    by_name = {p["name"]: p for p in peers}
    fs = by_name["worker-filesystem"]
    assert fs["role"] == "worker"
    assert fs["verified_role"] == "worker"
    assert {t["name"] for t in fs["card"]["tools"]} >= {"read_file", "write_file", "list_directory", "file_info"}
    assert fs["card"]["peer_id"] == fs["peer_id"]
    assert {t["name"] for t in by_name["worker-analytics"]["card"]["tools"]} >= {"describe", "text_stats"}
    ids = {p["peer_id"] for p in peers}
    assert len(ids) == len(peers)


def test_workers_see_the_orchestrator_with_its_verified_role(cluster):
    health = cluster["procs"]["orchestrator"].wait_healthy()
    fs = cluster["procs"]["worker-filesystem"]
    peers = wait_for(lambda: [p for p in fs.peers() if p["name"] == "orchestrator"], what="orchestrator card")
    assert peers[0]["peer_id"] == health["peer_id"]
    assert peers[0]["verified_role"] == "orchestrator"


def test_health_reports_the_running_host(cluster):
    h = cluster["procs"]["orchestrator"].wait_healthy()
    assert h["status"] == "ok" and h["role"] == "orchestrator" and h["name"] == "orchestrator"
    port = cluster["ports"]["orchestrator"][0]
    assert any(a.startswith(f"/ip4/127.0.0.1/tcp/{port}/p2p/{h['peer_id']}") for a in h["p2p"]["listening"])
    wait_for(lambda: cluster["procs"]["orchestrator"].wait_healthy()["p2p"]["connected_peers"] >= 3)


def test_write_then_read_through_the_orchestrator_lands_on_the_filesystem_worker(cluster):
    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))
    fs_id = {p["name"]: p["peer_id"] for p in orch.peers()}["worker-filesystem"]
    body = "héllo from the orchestrator\n" * 100
    r = httpx.post(orch.url + "/tools/write_file/invoke", json={"arguments": {"path": "notes/a.txt", "content": body}})
    assert r.status_code == 200, r.text
    assert r.json()["peer_id"] == fs_id
    on_disk = cluster["root"] / "data" / "worker-filesystem" / "notes" / "a.txt"
    assert on_disk.read_text() == body
    r = httpx.post(orch.url + "/tools/read_file/invoke", json={"arguments": {"path": "notes/a.txt"}})
    assert r.status_code == 200 and r.json()["result"]["content"] == body
    assert r.json()["duration_ms"] > 0


def test_multi_mib_file_round_trip(cluster):
    import base64
    import os

    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))
    blob = os.urandom(2 * 1024 * 1024)
    enc = base64.b64encode(blob).decode()
    r = httpx.post(orch.url + "/tools/write_file/invoke",
                   json={"arguments": {"path": "big.bin", "content": enc, "encoding": "base64"}}, timeout=30)
    assert r.status_code == 200, r.text
    r = httpx.post(orch.url + "/tools/read_file/invoke",
                   json={"arguments": {"path": "big.bin", "encoding": "base64"}}, timeout=30)
    assert r.status_code == 200
    assert base64.b64decode(r.json()["result"]["content"]) == blob


def test_describe_on_a_known_list(cluster):
    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))
    r = httpx.post(orch.url + "/tools/describe/invoke", json={"arguments": {"values": [2, 4, 4, 4, 5, 5, 7, 9]}})
    assert r.status_code == 200, r.text
    res = r.json()["result"]
    assert res["count"] == 8 and res["mean"] == 5.0 and res["min"] == 2 and res["max"] == 9
    assert abs(res["std"] - 2.138089935299395) < 1e-12
    assert res["quantiles"]["0.5"] == 4.5


def test_calls_spread_across_workers_that_share_a_tool(cluster):
    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))
    served = {httpx.post(orch.url + "/tools/text_stats/invoke", json={"arguments": {"text": "a b a"}}).json()["peer_id"]
              for _ in range(6)}
    by_id = {p["peer_id"]: p["name"] for p in orch.peers()}
    assert {by_id[s] for s in served} == {"worker-analytics", "worker-1"}


def test_bad_requests_get_the_right_status(cluster):
    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))
    for path in ("../../etc/passwd", "/etc/passwd", "a/../../x"):
        r = httpx.post(orch.url + "/tools/read_file/invoke", json={"arguments": {"path": path}})
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "forbidden"
    r = httpx.post(orch.url + "/tools/no_such_tool/invoke", json={"arguments": {}})
    assert r.status_code == 404
    r = httpx.post(orch.url + "/tools/describe/invoke", json={"arguments": {"values": "nope"}})
    assert r.status_code == 422 and "values" in r.json()["error"]["message"]
    # issue 8: a malformed peer_id is the caller's error (422), not a peer's (502)
    for bad in ("12D3KooWnotconnected", "", "garbage"):
        r = httpx.post(orch.url + "/tools/describe/invoke", json={"arguments": {"values": [1]}, "peer_id": bad})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_arguments", (bad, r.text)
    # a well-formed PeerID that is not connected is not found
    r = httpx.post(orch.url + "/tools/describe/invoke",
                   json={"arguments": {"values": [1]}, "peer_id": "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_mcp_and_a2a_across_agents_over_p2p(cluster, client_factory):
    root = cluster["root"]
    client = client_factory(root, "orchestrator-2")  # role orchestrator, published in the keystore
    fs = cluster["procs"]["worker-filesystem"]
    fs_id = fs.wait_healthy()["peer_id"]
    on_loop(client, client.service.dial, p2p_addr(cluster["ports"]["worker-filesystem"][0], fs_id), True)
    rpc = client.service._rpc

    init = on_loop(client, rpc, fs_id, MCP_PROTOCOL, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}, 10)
    assert init["id"] == 1 and init["result"]["serverInfo"]["name"] == "worker-filesystem"
    listed = on_loop(client, rpc, fs_id, MCP_PROTOCOL, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, 10)
    assert "write_file" in {t["name"] for t in listed["result"]["tools"]}
    call = {"jsonrpc": "2.0", "id": "c1", "method": "tools/call",
            "params": {"name": "write_file", "arguments": {"path": "mcp.txt", "content": "via mcp"}}}
    done = on_loop(client, rpc, fs_id, MCP_PROTOCOL, call, 10)
    assert done["id"] == "c1" and done["result"]["isError"] is False
    assert done["result"]["structuredContent"] == {"path": "mcp.txt", "size": 7}
    assert (root / "data" / "worker-filesystem" / "mcp.txt").read_text() == "via mcp"
    bad = on_loop(client, rpc, fs_id, MCP_PROTOCOL, {"jsonrpc": "2.0", "id": 3, "method": "nope"}, 10)
    assert bad["error"]["code"] == -32601

    msg = {"jsonrpc": "2.0", "id": 7, "method": "message/send", "params": {"message": {
        "role": "user", "messageId": "m1", "kind": "message",
        "parts": [{"kind": "data", "data": {"tool": "read_file", "arguments": {"path": "mcp.txt"}}}]}}}
    task = on_loop(client, rpc, fs_id, A2A_PROTOCOL, msg, 10)["result"]
    assert task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"][0]["data"]["content"] == "via mcp"
    got = on_loop(client, rpc, fs_id, A2A_PROTOCOL, {"jsonrpc": "2.0", "id": 8, "method": "tasks/get",
                                                    "params": {"id": task["id"]}}, 10)
    assert got["result"]["id"] == task["id"]
    cancel = on_loop(client, rpc, fs_id, A2A_PROTOCOL, {"jsonrpc": "2.0", "id": 9, "method": "tasks/cancel",
                                                       "params": {"id": task["id"]}}, 10)
    assert cancel["error"]["code"] == -32002
    missing = on_loop(client, rpc, fs_id, A2A_PROTOCOL, {"jsonrpc": "2.0", "id": 10, "method": "tasks/get",
                                                        "params": {"id": "nope"}}, 10)
    assert missing["error"]["code"] == -32001


def test_accept_tasks_from_uses_the_verified_role_not_the_card(cluster, client_factory):
    root = cluster["root"]
    # Role "worker" in the keystore, whatever its card claims.
    client = client_factory(root, "sneaky", "worker.yaml")
    fs_id = cluster["procs"]["worker-filesystem"].wait_healthy()["peer_id"]
    on_loop(client, client.service.dial, p2p_addr(cluster["ports"]["worker-filesystem"][0], fs_id), True)
    client.service.card["role"] = "orchestrator"  # lie in the card: must not matter
    from agent.p2p.service import RemoteError

    try:
        on_loop(client, client.service._call_tool, fs_id, "file_info", {"path": "."}, 10)
    except RemoteError as e:
        assert e.code == "forbidden" and "accept_tasks_from" in e.message
    else:
        raise AssertionError("a worker-role peer was allowed to send tasks")


def test_http_a2a_and_mcp_route_to_workers(cluster):
    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))
    r = httpx.post(orch.url + "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    names = {t["name"] for t in r.json()["result"]["tools"]}
    assert {"read_file", "describe", "echo"} <= names
    r = httpx.post(orch.url + "/a2a", json={"jsonrpc": "2.0", "id": 2, "method": "message/send", "params": {
        "message": {"role": "user", "messageId": "x", "parts": [
            {"kind": "data", "data": {"tool": "text_stats", "arguments": {"text": "to be or not to be"}}}]}}})
    task = r.json()["result"]
    assert task["status"]["state"] == "completed"
    assert task["artifacts"][0]["parts"][0]["data"]["words"] == 6
    r = httpx.post(orch.url + "/a2a", content=b"{not json")
    assert r.json()["error"]["code"] == -32700


def test_metrics_count_the_calls_just_made(cluster):
    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))

    def invoke_ok() -> float:
        text = httpx.get(orch.url + "/metrics").text
        for fam in text_string_to_metric_families(text):
            if fam.name == "praxis_requests":
                return sum(s.value for s in fam.samples
                           if s.name == "praxis_requests_total" and s.labels.get("protocol") == "http_invoke"
                           and s.labels.get("outcome") == "200")
        return 0.0

    before = invoke_ok()
    for i in range(3):
        assert httpx.post(orch.url + "/tools/echo/invoke", json={"arguments": {"message": i}}).status_code == 200
    assert invoke_ok() == before + 3
    fams = {f.name for f in text_string_to_metric_families(httpx.get(orch.url + "/metrics").text)}
    assert {"praxis_connected_peers", "praxis_dials", "praxis_request_duration_seconds", "praxis_bytes"} <= fams


def test_paused_worker_is_dropped_alone_and_comes_back_when_resumed(cluster):
    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))
    paused = cluster["procs"]["worker-analytics"]
    paused.proc.send_signal(signal.SIGSTOP)
    try:
        wait_for(lambda: "worker-analytics" not in _names(orch.peers()), timeout=20, what="paused worker dropped")
        # The silent peer must not take the others down with it.
        for _ in range(10):
            assert {"worker-filesystem", "worker-1"} <= _names(orch.peers())
            assert httpx.post(orch.url + "/tools/file_info/invoke", json={"arguments": {"path": "."}}).status_code == 200
            time.sleep(0.3)
    finally:
        paused.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: WORKERS <= _names(orch.peers()), timeout=30, what="resumed worker back in /peers")


def test_killed_worker_disappears_from_peers(cluster):
    orch = cluster["procs"]["orchestrator"]
    wait_for(lambda: WORKERS <= _names(orch.peers()))
    cluster["procs"]["worker-1"].kill(signal.SIGKILL)
    wait_for(lambda: "worker-1" not in _names(orch.peers()), timeout=15, what="worker-1 gone from /peers")
    # The others keep working.
    r = httpx.post(orch.url + "/tools/describe/invoke", json={"arguments": {"values": [1, 2]}})
    assert r.status_code == 200

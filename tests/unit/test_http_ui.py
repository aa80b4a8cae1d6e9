"""agent.http_ui: the cluster page's state, built without I/O."""

from __future__ import annotations

import json

from agent.http_ui import GoneTracker, page_state, peer_view, render_page, task_view
from agent.p2p.peers import PeerRecord


def _rec(pid: str, name: str, role: str = "worker", **extra) -> PeerRecord:
    rec = PeerRecord(peer_id=pid, addrs=["/ip4/10.0.0.2/tcp/9000"], card={"name": name, "role": role,
                     "tools": [{"name": "echo"}, {"name": "describe"}]}, rtt_ms=1.234)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_peer_view_of_a_fresh_record():
    v = peer_view(_rec("P1", "w1"), None)
    # the table's "alive" is the page's "connected"
    assert v["state"] == "connected" and v["joined_via"] == PeerRecord(peer_id="x").joined_via
    assert v["tools"] == ["describe", "echo"] and v["rtt_ms"] == 1.23 and v["name"] == "w1"


def test_peer_view_shows_liveness_fields_when_present_and_prefers_the_verified_role():
    v = peer_view(_rec("P1", "w1", role="orchestrator", state="suspect", joined_via="mdns", registry_role="worker"),
                  {"calls": 1})
    assert (v["state"], v["joined_via"], v["role"], v["stats"]) == ("suspect", "mdns", "worker", {"calls": 1})


def test_gone_tracker_keeps_a_peer_that_left_then_forgets_it():
    t = GoneTracker(keep_s=300)
    a, b = peer_view(_rec("A", "a"), {"calls": 3}), peer_view(_rec("B", "b"), None)
    assert t.update([a, b], now=0) == []
    gone = t.update([b], now=10)
    assert [(g["peer_id"], g["state"], g["gone_at"], g["stats"]) for g in gone] == [("A", "gone", 10, None)]
    assert [g["peer_id"] for g in t.update([b], now=200)] == ["A"]
    assert t.update([b], now=311) == []


def test_gone_tracker_drops_a_peer_that_came_back():
    t = GoneTracker()
    a = peer_view(_rec("A", "a"), None)
    t.update([a], now=0)
    assert t.update([], now=1)
    assert t.update([a], now=2) == []


def test_page_state_puts_orchestrators_first_then_names():
    peers = [peer_view(_rec(p, n, r), None) for p, n, r in
             [("1", "w-b", "worker"), ("2", "orch", "orchestrator"), ("3", "w-a", "worker")]]
    st = page_state({"peer_id": "me"}, peers, [], [], [], [], token_required=False)
    assert [p["name"] for p in st["peers"]] == ["orch", "w-a", "w-b"]
    assert st["token_required"] is False


def test_render_page_inlines_state_that_cannot_end_the_script_element():
    state = json.dumps({"me": {"name": "</script><script>alert(1)</script>"}})
    html = render_page(state)
    inline = html.split('<script id="initial-state" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(inline) == json.loads(state)


def test_task_view_names_the_tool_of_an_a2a_task():
    task = {"id": "t1", "status": {"state": "completed", "timestamp": "2026-01-01T00:00:00Z"},
            "history": [{"parts": [{"kind": "data", "data": {"tool": "echo", "arguments": {}}}]}]}
    assert task_view(task) == {"id": "t1", "tool": "echo", "state": "completed", "at": "2026-01-01T00:00:00Z"}


def test_gone_tracker_takes_the_peer_tables_gone_list_with_reasons():
    t = GoneTracker(keep_s=300)
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    seen = peer_view(_rec("A", "a"), None)
    t.update([seen], now=now - 5)
    reported = [
        {"peer_id": "A", "name": "a", "when": "2027-01-15T07:59:57Z", "reason": "ping timeout"},
        {"peer_id": "B", "name": "b", "when": "2027-01-15T07:58:00Z", "reason": "disconnected"},
        {"peer_id": "C", "name": "c", "when": "2027-01-15T07:00:00Z", "reason": "disconnected"},  # too old
        {"peer_id": "D", "name": "d", "when": "2027-01-15T07:59:00Z", "reason": "disconnected"},  # back again
    ]
    gone = {g["peer_id"]: g for g in t.update([peer_view(_rec("D", "d"), None)], now=now, reported=reported)}
    assert set(gone) == {"A", "B"}
    assert gone["A"]["reason"] == "ping timeout" and gone["A"]["tools"] == ["describe", "echo"]
    assert gone["B"] == {**gone["B"], "name": "b", "state": "gone", "reason": "disconnected", "gone_at": now - 120}

"""agent.http_ui: the cluster page's state, built without I/O."""

from __future__ import annotations

import json

import time

from agent.http_ui import _recent_tasks, gone_view, page_state, peer_view, render_page, task_view
from agent.p2p.peers import PeerRecord, PeerTable
from agent.rpc.tasks import TaskStore


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


def _left(table: PeerTable, rec: PeerRecord, reason: str = "disconnected") -> None:
    """``rec`` connects to ``table``, then is dropped for ``reason``."""
    new = table.ensure(rec.peer_id, rec.addrs)
    new.card, new.registry_role, new.joined_via = rec.card, rec.registry_role, rec.joined_via
    table.remove(rec.peer_id, reason)


def test_a_peer_that_left_stays_on_the_page_greyed_then_is_forgotten():
    t = PeerTable()
    _left(t, _rec("A", "a", joined_via="mdns"), "ping timeout")
    left = time.time()
    gone = gone_view(t.gone(), set(), now=left + 10, keep_s=300)
    assert [(g["peer_id"], g["name"], g["state"], g["stats"], g["reason"]) for g in gone] == [
        ("A", "a", "gone", None, "ping timeout")]
    # what the page showed of it is still there: role, tools, how it joined
    assert (gone[0]["role"], gone[0]["tools"], gone[0]["joined_via"]) == ("worker", ["describe", "echo"], "mdns")
    assert left - 1 <= gone[0]["gone_at"] <= left
    assert [g["peer_id"] for g in gone_view(t.gone(), set(), now=left + 200, keep_s=300)] == ["A"]
    assert gone_view(t.gone(), set(), now=left + 311, keep_s=300) == []


def test_a_peer_that_came_back_is_not_shown_gone():
    t = PeerTable()
    _left(t, _rec("A", "a"))
    assert gone_view(t.gone(), set(), now=time.time())
    assert gone_view(t.gone(), {"A"}, now=time.time()) == []


def test_a_peer_that_left_twice_shows_once_newest_first():
    t = PeerTable()
    _left(t, _rec("A", "a"), "disconnected")
    _left(t, _rec("B", "b"), "disconnected")
    _left(t, _rec("A", "a"), "ping timeout")
    gone = gone_view(t.gone(), set(), now=time.time())
    assert [(g["peer_id"], g["reason"]) for g in gone] == [("A", "ping timeout"), ("B", "disconnected")]


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
    assert task_view(task) == {"id": "t1", "tool": "echo", "state": "completed", "at": "2026-01-01T00:00:00Z",
                               "duration_ms": None}  # no creation time recorded: no duration


def test_gone_view_reads_the_peer_tables_entries_with_reasons_and_times():
    now = 1_800_000_000.0  # 2027-01-15T08:00:00Z
    reported = [
        {"peer_id": "A", "name": "a", "when": "2027-01-15T07:59:57Z", "reason": "ping timeout",
         "role": "worker", "tools": ["describe", "echo"]},
        {"peer_id": "B", "name": "b", "when": "2027-01-15T07:58:00Z", "reason": "disconnected"},
        {"peer_id": "C", "name": "c", "when": "2027-01-15T07:00:00Z", "reason": "disconnected"},  # too old
        {"peer_id": "D", "name": "d", "when": "2027-01-15T07:59:00Z", "reason": "disconnected"},  # back again
    ]
    gone = {g["peer_id"]: g for g in gone_view(reported, {"D"}, now=now, keep_s=300)}
    assert set(gone) == {"A", "B"}
    assert gone["A"]["reason"] == "ping timeout" and gone["A"]["tools"] == ["describe", "echo"]
    assert gone["B"] == {**gone["B"], "name": "b", "state": "gone", "reason": "disconnected", "gone_at": now - 120}


def test_recent_tasks_come_from_the_task_store_newest_first():
    store = TaskStore()
    for tool in ("echo", "describe", "sleep"):
        store.create({"role": "user", "messageId": tool, "parts": [{"kind": "data", "data": {"tool": tool}}]}, "ctx")
    assert [t["tool"] for t in _recent_tasks(store, n=2)] == ["sleep", "describe"]


def test_task_view_tells_how_long_a_finished_task_took():
    from agent.rpc.tasks import TaskStore

    store = TaskStore()
    task = store.create({"role": "user", "parts": [{"data": {"tool": "echo", "arguments": {}}}]}, "ctx")
    assert task_view(task)["duration_ms"] is None  # still running: no duration yet
    done = store.update(task["id"], "completed")
    v = task_view(done)
    assert v["tool"] == "echo" and v["state"] == "completed"
    assert v["duration_ms"] is not None and v["duration_ms"] >= 0
    assert v["at"] == task["metadata"]["createdAt"]

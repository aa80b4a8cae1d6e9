"""The A2A task store's bounds: number, bytes, running tasks."""

import pytest

from agent.errors import Unavailable
from agent.messages import ProtocolError
from agent.rpc import TaskStore


def msg(size=0):
    return {"messageId": "m", "role": "user", "parts": [{"text": "x" * size}]}


def finish(store, task_id, artifact=None):
    store.update(task_id, "working")
    return store.update(task_id, "completed", artifact=artifact)


def test_count_bound_evicts_the_oldest_finished():
    store = TaskStore(max_tasks=3)
    ids = []
    for _ in range(5):
        ids.append(store.create(msg(), "c")["id"])
        finish(store, ids[-1])
    assert len(store) == 3
    with pytest.raises(ProtocolError) as e:
        store.get(ids[0])
    assert e.value.code == -32001
    assert store.get(ids[-1])["status"]["state"] == "completed"


def test_running_tasks_are_not_evicted():
    store = TaskStore(max_tasks=2)
    running = store.create(msg(), "c")["id"]
    for _ in range(3):
        finish(store, store.create(msg(), "c")["id"])
    assert store.get(running)["status"]["state"] == "submitted"


def test_running_tasks_over_the_bound_are_refused():
    store = TaskStore(max_tasks=2)
    store.create(msg(), "c")
    store.create(msg(), "c")
    with pytest.raises(Unavailable):
        store.create(msg(), "c")


def test_byte_bound_and_placeholders():
    store = TaskStore(max_bytes=5_000, max_part_bytes=1_000)
    big = store.create(msg(100_000), "c")
    assert "not kept" in big["history"][0]["parts"][0]["text"]
    finish(store, big["id"], {"artifactId": "a", "parts": [{"data": {"v": "y" * 100_000}}]})
    assert "not kept" in store.get(big["id"])["artifacts"][0]["parts"][0]["text"]
    for _ in range(40):
        t = store.create(msg(500), "c")
        finish(store, t["id"], {"artifactId": "a", "parts": [{"data": {"v": "z" * 300}}]})
        assert store.bytes <= 5_000
    assert 0 < len(store) < 40


def test_a_canceled_task_stays_canceled_and_stops_its_call():
    store = TaskStore()
    task = store.create(msg(), "ctx")
    stopped = []
    store.set_cancel(task["id"], lambda: stopped.append(1))
    store.update(task["id"], "working")
    assert store.cancel(task["id"])["status"]["state"] == "canceled"
    assert stopped == [1]
    assert store.update(task["id"], "completed") is None
    assert store.get(task["id"])["status"]["state"] == "canceled"
    with pytest.raises(ProtocolError) as e:
        store.cancel(task["id"])
    assert e.value.code == -32002


def test_listeners_get_events_until_final():
    store = TaskStore()
    task = store.create(msg(), "ctx")
    events = []
    snap, unsubscribe = store.subscribe(task["id"], events.append)
    assert snap["status"]["state"] == "submitted"
    finish(store, task["id"], {"artifactId": "a", "parts": [{"data": {}}]})
    assert [(e["kind"], e.get("status", {}).get("state")) for e in events] == [
        ("status", "working"), ("artifact", None), ("status", "completed")]
    assert events[-1]["final"] is True and all(e["taskId"] == task["id"] for e in events)
    unsubscribe()  # after the end: harmless


def test_a_broken_listener_does_not_stop_the_task():
    store = TaskStore()
    task = store.create(msg(), "ctx")

    def broken(event):
        raise RuntimeError("stream gone")

    store.subscribe(task["id"], broken)
    assert finish(store, task["id"])["status"]["state"] == "completed"

"""A2A dispatcher: 1.0 and 0.3 dialects, failures, cancellation, listing, streaming."""

import asyncio

import pytest
import trio

from agent.errors import RemoteError, ToolError
from agent.rpc import A2ADispatcher, TaskStore


def run(coro):
    return asyncio.run(coro)


class Tools:
    """invoke() for the dispatcher; ``hold`` blocks until cancelled or released."""

    def __init__(self):
        self.cancelled = 0
        self.started = None
        self.release = None

    async def __call__(self, name, args):
        if name == "echo":
            return args
        if name == "remote":
            raise RemoteError("12D3KooWpeer", "tool_failed", "ValueError: on the worker")
        if name == "bad":
            raise ToolError("invalid_arguments", "arguments.x: required")
        if name == "hold":
            self.started.set()
            try:
                await self.release.wait()
            except BaseException:
                self.cancelled += 1
                raise
            return {"released": True}
        raise ToolError("unknown_tool", f"no tool {name}")


def send(tool, args=None, method="SendMessage", rid=1, config=None):
    if method == "SendMessage" or method == "SendStreamingMessage":
        message = {"role": "ROLE_USER", "messageId": "m1", "parts": [{"data": {"tool": tool, "arguments": args or {}}}]}
    else:
        message = {"kind": "message", "role": "user", "messageId": "m1",
                   "parts": [{"kind": "data", "data": {"tool": tool, "arguments": args or {}}}]}
    params = {"message": message}
    if config is not None:
        params["configuration"] = config
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


def req(method, params, rid=2):
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


def test_v1_send_get_shapes():
    d = A2ADispatcher(TaskStore(), Tools())

    async def go():
        answer = await d.handle(send("echo", {"x": 1}), a2a_version="1.0")
        task = answer["result"]["task"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        assert task["artifacts"][0]["parts"] == [{"data": {"x": 1}}]
        assert task["history"][0]["role"] == "ROLE_USER" and "kind" not in task
        got = (await d.handle(req("GetTask", {"id": task["id"], "historyLength": 0})))["result"]
        assert got["id"] == task["id"] and got["history"] == []
        assert (await d.handle(req("GetTask", {"id": "nope"})))["error"]["code"] == -32001
        assert (await d.handle(req("CancelTask", {"id": task["id"]})))["error"]["code"] == -32002

    run(go())


def test_v03_send_get_shapes():
    d = A2ADispatcher(TaskStore(), Tools())

    async def go():
        task = (await d.handle(send("echo", {"x": 1}, method="message/send")))["result"]
        assert task["kind"] == "task" and task["status"]["state"] == "completed"
        assert task["artifacts"][0]["parts"] == [{"kind": "data", "data": {"x": 1}}]
        assert task["history"][0]["kind"] == "message" and task["history"][0]["role"] == "user"
        got = (await d.handle(req("tasks/get", {"id": task["id"]})))["result"]
        assert got["kind"] == "task" and got["status"]["state"] == "completed"
        text = req("message/send", {"message": {"role": "user", "parts": [
            {"kind": "text", "text": '{"tool": "echo", "arguments": {"t": 2}}'}]}})
        assert (await d.handle(text))["result"]["artifacts"][0]["parts"][0]["data"] == {"t": 2}
        no_call = req("message/send", {"message": {"parts": [{"kind": "text", "text": "hi"}]}})
        assert (await d.handle(no_call))["error"]["code"] == -32602

    run(go())


def test_a_peer_error_fails_the_task_and_returns_its_id():
    # Regression (issue 8 item 6): the task stayed "working" and the caller got -32603.
    d = A2ADispatcher(TaskStore(), Tools())

    async def go():
        for method, failed in (("SendMessage", "TASK_STATE_FAILED"), ("message/send", "failed")):
            result = (await d.handle(send("remote", method=method)))["result"]
            task = result.get("task", result)
            assert task["status"]["state"] == failed
            assert "ValueError: on the worker" in str(task["status"]["message"]["parts"])
            again = (await d.handle(req("GetTask", {"id": task["id"]})))["result"]
            assert again["status"]["state"] == "TASK_STATE_FAILED"
        rejected = (await d.handle(send("bad")))["result"]["task"]
        assert rejected["status"]["state"] == "TASK_STATE_REJECTED"

    run(go())


def test_cancel_a_running_task_stops_its_call():
    tools = Tools()
    d = A2ADispatcher(TaskStore(), tools)

    async def go():
        tools.started, tools.release = asyncio.Event(), asyncio.Event()
        first = (await d.handle(send("hold", config={"returnImmediately": True})))["result"]["task"]
        assert first["status"]["state"] in ("TASK_STATE_SUBMITTED", "TASK_STATE_WORKING")
        await asyncio.wait_for(tools.started.wait(), 5)
        canceled = (await d.handle(req("CancelTask", {"id": first["id"]})))["result"]
        assert canceled["status"]["state"] == "TASK_STATE_CANCELED"
        for _ in range(100):
            if tools.cancelled:
                break
            await asyncio.sleep(0.01)
        assert tools.cancelled == 1  # the asyncio task running invoke was cancelled
        got = (await d.handle(req("GetTask", {"id": first["id"]})))["result"]
        assert got["status"]["state"] == "TASK_STATE_CANCELED"

    run(go())


def test_a_blocking_send_that_is_cancelled_answers_canceled():
    tools = Tools()
    store = TaskStore()
    d = A2ADispatcher(store, tools)

    async def go():
        tools.started, tools.release = asyncio.Event(), asyncio.Event()
        pending = asyncio.create_task(d.handle(send("hold", method="message/send")))
        await asyncio.wait_for(tools.started.wait(), 5)
        (task,), _, _ = store.list(page_size=1)
        assert (await d.handle(req("tasks/cancel", {"id": task["id"]})))["result"]["status"]["state"] == "canceled"
        answer = await asyncio.wait_for(pending, 5)
        assert answer["result"]["status"]["state"] == "canceled"

    run(go())


def test_cancel_over_the_trio_side():
    """The P2P side runs the call inline in a cancel scope that CancelTask cancels."""
    tools = Tools()
    store = TaskStore()
    d = A2ADispatcher(store, tools)
    answers = {}

    async def go():
        tools.started, tools.release = trio.Event(), trio.Event()
        async with trio.open_nursery() as n:
            async def blocking():
                answers["send"] = await d.handle(send("hold"))
            n.start_soon(blocking)
            await tools.started.wait()
            (task,), _, _ = store.list(page_size=1)
            answers["cancel"] = await d.handle(req("CancelTask", {"id": task["id"]}))

    trio.run(go)
    assert answers["cancel"]["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    assert answers["send"]["result"]["task"]["status"]["state"] == "TASK_STATE_CANCELED"
    assert tools.cancelled == 1


def test_streaming_methods_are_refused_over_p2p_style_handle():
    d = A2ADispatcher(TaskStore(), Tools())
    assert run(d.handle(send("echo", method="SendStreamingMessage")))["error"]["code"] == -32004
    assert run(d.handle(req("tasks/pushNotificationConfig/set", {})))["error"]["code"] == -32003
    assert run(d.handle(req("Nope", {})))["error"]["code"] == -32601
    assert run(d.handle(send("echo"), a2a_version="2.0"))["error"]["code"] == -32009
    assert "result" in run(d.handle(send("echo"), a2a_version="1.0.0"))


def test_list_tasks_pages_newest_first():
    d = A2ADispatcher(TaskStore(), Tools())

    async def go():
        ids = [(await d.handle(send("echo", {"i": i})))["result"]["task"]["id"] for i in range(7)]
        await d.handle(send("remote"))
        seen, token = [], None
        while True:
            params = {"pageSize": 3, "status": "TASK_STATE_COMPLETED"}
            if token:
                params["pageToken"] = token
            page = (await d.handle(req("ListTasks", params)))["result"]
            assert page["totalSize"] == 7 and len(page["tasks"]) <= 3
            assert all("artifacts" not in t for t in page["tasks"])  # includeArtifacts defaults to false
            seen += [t["id"] for t in page["tasks"]]
            token = page["nextPageToken"]
            if not token:
                break
        assert seen == ids[::-1]
        assert (await d.handle(req("ListTasks", {"pageSize": 500})))["error"]["code"] == -32602
        legacy = (await d.handle(req("tasks/list", {"status": "failed"})))["result"]
        assert [t["status"]["state"] for t in legacy["tasks"]] == ["failed"]

    run(go())


async def _collect(d, request, version=None):
    return [a async for a in d.stream(request, a2a_version=version) if a is not None]


def test_stream_shows_each_status_and_the_artifact():
    d = A2ADispatcher(TaskStore(), Tools())

    async def go():
        v1 = await _collect(d, send("echo", {"s": 1}, method="SendStreamingMessage"), "1.0")
        kinds = [next(iter(a["result"])) for a in v1]
        assert kinds == ["task", "statusUpdate", "artifactUpdate", "statusUpdate"]
        states = [a["result"]["task"]["status"]["state"] if "task" in a["result"] else
                  a["result"].get("statusUpdate", {}).get("status", {}).get("state") for a in v1]
        assert states == ["TASK_STATE_SUBMITTED", "TASK_STATE_WORKING", None, "TASK_STATE_COMPLETED"]
        assert v1[2]["result"]["artifactUpdate"]["artifact"]["parts"] == [{"data": {"s": 1}}]
        v03 = await _collect(d, send("echo", {"s": 1}, method="message/stream"))
        assert [a["result"]["kind"] for a in v03] == ["task", "status-update", "artifact-update", "status-update"]
        assert [a["result"].get("final") for a in v03] == [None, False, None, True]
        failed = await _collect(d, send("remote", method="SendStreamingMessage"), "1.0")
        assert failed[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_FAILED"
        bad = await _collect(d, {"jsonrpc": "2.0", "id": 9, "method": "SubscribeToTask", "params": {"id": "nope"}})
        assert bad == [{"jsonrpc": "2.0", "id": 9, "error": {"code": -32001, "message": "task nope not found"}}]

    run(go())


def test_subscribe_to_a_running_task_then_cancel():
    tools = Tools()
    d = A2ADispatcher(TaskStore(), tools)

    async def go():
        tools.started, tools.release = asyncio.Event(), asyncio.Event()
        task = (await d.handle(send("hold", config={"returnImmediately": True})))["result"]["task"]
        await asyncio.wait_for(tools.started.wait(), 5)
        sub = {"jsonrpc": "2.0", "id": 3, "method": "SubscribeToTask", "params": {"id": task["id"]}}
        collecting = asyncio.create_task(_collect(d, sub, "1.0"))
        await asyncio.sleep(0.05)
        await d.handle(req("CancelTask", {"id": task["id"]}))
        events = await asyncio.wait_for(collecting, 5)
        assert events[0]["result"]["task"]["status"]["state"] == "TASK_STATE_WORKING"
        assert events[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_CANCELED"
        # A finished task has nothing to stream.
        again = await _collect(d, sub, "1.0")
        assert again[0]["error"]["code"] == -32004

    run(go())


def test_big_results_are_answered_whole_but_not_kept():
    store = TaskStore(max_part_bytes=1000, max_bytes=10_000)
    d = A2ADispatcher(store, Tools())

    async def go():
        big = "x" * 50_000
        task = (await d.handle(send("echo", {"big": big})))["result"]["task"]
        assert task["artifacts"][0]["parts"][0]["data"] == {"big": big}  # the caller gets it all once
        kept = (await d.handle(req("GetTask", {"id": task["id"]})))["result"]
        assert "not kept" in kept["artifacts"][0]["parts"][0]["text"]
        assert "not kept" in kept["history"][0]["parts"][0]["text"]
        for _ in range(50):
            await d.handle(send("echo", {"pad": "y" * 900}))
        assert store.bytes <= 10_000 and len(store) < 51

    run(go())


@pytest.mark.parametrize("bad", [
    {"message": "no"}, {"message": {"parts": "no"}}, {"message": {"parts": [1]}},
    {"message": {"parts": [{"data": {"tool": "echo", "arguments": [1]}}]}},
    {"message": {"parts": [{"data": {"tool": "echo"}}]}, "configuration": {"historyLength": -1}},
])
def test_bad_send_params(bad):
    d = A2ADispatcher(TaskStore(), Tools())
    assert run(d.handle(req("SendMessage", bad)))["error"]["code"] == -32602

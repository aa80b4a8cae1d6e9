"""The official A2A client (a2a-sdk) against the orchestrator of a local
cluster: every tool call here is routed over P2P to the worker.  Each flow
runs through the 1.0 JSON-RPC transport and the SDK's 0.3 compatibility
transport."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from a2a.client import ClientConfig, create_client
from a2a.compat.v0_3.jsonrpc_transport import CompatJsonRpcTransport
from a2a.client.base_client import BaseClient
from a2a.helpers.proto_helpers import get_data_parts, new_data_message
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    ListTasksRequest,
    Role,
    SendMessageRequest,
    TaskState,
)

from agent.constants import A2A_PROTOCOL

from . import rpc_cluster
from .conftest import on_loop, p2p_addr, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("a2a")
    procs = rpc_cluster.start(root)
    yield {"root": root, **procs}
    rpc_cluster.stop(procs)


@pytest.fixture(scope="module")
def orch(cluster):
    return cluster["orchestrator"]


def call(tool: str, arguments: dict, **config) -> SendMessageRequest:
    req = SendMessageRequest(message=new_data_message({"tool": tool, "arguments": arguments}, role=Role.ROLE_USER))
    for k, v in config.items():
        setattr(req.configuration, k, v)
    return req


async def client_for(url: str, dialect: str, streaming: bool = True):
    """``create_client(url)`` from the card; for 0.3 the SDK's compatibility
    transport on the card's 0.3 interface."""
    client = await create_client(url, ClientConfig(streaming=streaming))
    if dialect == "1.0":
        return client
    card = client._card
    v03 = next(i for i in card.supported_interfaces if i.protocol_version == "0.3")
    await client.close()
    transport = CompatJsonRpcTransport(httpx.AsyncClient(), card, v03.url)
    return BaseClient(card, ClientConfig(streaming=streaming), transport, [])


def run(coro):
    return asyncio.run(coro)


def test_card_resolves_to_the_jsonrpc_endpoint(orch):
    async def go():
        client = await create_client(orch.url)
        card = client._card
        await client.close()
        return card

    card = run(go())
    assert card.capabilities.streaming is True
    assert {(i.protocol_binding, i.protocol_version, i.url) for i in card.supported_interfaces} == {
        ("JSONRPC", "1.0", orch.url + "/a2a"), ("JSONRPC", "0.3", orch.url + "/a2a")}
    raw = httpx.get(orch.url + "/.well-known/agent-card.json").json()
    assert raw["url"] == orch.url + "/a2a" and raw["peer_id"] and raw["role"] == "orchestrator"


@pytest.mark.parametrize("dialect", ["1.0", "0.3"])
def test_send_a_routed_tool_call_then_get_the_task(orch, dialect):
    async def go():
        client = await client_for(orch.url, dialect, streaming=False)
        try:
            events = [e async for e in client.send_message(call("describe", {"values": [1, 2, 3, 4]}))]
            assert len(events) == 1 and events[0].HasField("task")
            task = events[0].task
            assert task.status.state == TaskState.TASK_STATE_COMPLETED
            (result,) = get_data_parts(task.artifacts[0].parts)
            assert result["count"] == 4 and result["mean"] == 2.5
            got = await client.get_task(GetTaskRequest(id=task.id))
            assert got.id == task.id and got.status.state == TaskState.TASK_STATE_COMPLETED
            # Regression (issue 8 item 6): a worker's tool error fails the task,
            # and the caller gets its id (it stayed "working", with -32603).
            seconds = rpc_cluster.WORKER_TIMEOUT + 2
            events = [e async for e in client.send_message(call("sleep", {"seconds": seconds}))]
            failed = events[0].task
            assert failed.id and failed.status.state == TaskState.TASK_STATE_FAILED
            assert "timeout" in failed.status.message.parts[0].text
            assert (await client.get_task(GetTaskRequest(id=failed.id))).status.state == TaskState.TASK_STATE_FAILED
            # Arguments the worker's schema refuses: rejected before it is sent.
            events = [e async for e in client.send_message(call("describe", {"values": "no"}))]
            assert events[0].task.status.state == TaskState.TASK_STATE_REJECTED
        finally:
            await client.close()

    run(go())


@pytest.mark.parametrize("dialect", ["1.0", "0.3"])
def test_stream_a_task_and_see_each_status(orch, dialect):
    async def go():
        client = await client_for(orch.url, dialect)
        try:
            states, artifacts = [], []
            async for event in client.send_message(call("sleep", {"seconds": 0.2})):
                if event.HasField("task"):
                    states.append(event.task.status.state)
                elif event.HasField("status_update"):
                    states.append(event.status_update.status.state)
                elif event.HasField("artifact_update"):
                    artifacts += get_data_parts(event.artifact_update.artifact.parts)
            assert states == [TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING,
                              TaskState.TASK_STATE_COMPLETED]
            assert artifacts and artifacts[0]["slept"] >= 0.2
        finally:
            await client.close()

    run(go())


@pytest.mark.parametrize("dialect", ["1.0", "0.3"])
def test_cancel_a_running_task(orch, dialect):
    async def go():
        client = await client_for(orch.url, dialect)
        try:
            stream = client.send_message(call("sleep", {"seconds": 30}))
            first = await stream.__anext__()
            task_id = first.task.id
            second = await stream.__anext__()  # working: the call is at the worker
            assert second.status_update.status.state == TaskState.TASK_STATE_WORKING
            canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
            assert canceled.status.state == TaskState.TASK_STATE_CANCELED
            last = await asyncio.wait_for(stream.__anext__(), 10)
            assert last.status_update.status.state == TaskState.TASK_STATE_CANCELED
            await stream.aclose()
            got = await client.get_task(GetTaskRequest(id=task_id))
            assert got.status.state == TaskState.TASK_STATE_CANCELED
        finally:
            await client.close()

    before = _cancelled_tool_calls(orch)
    run(go())
    # The routed call was cancelled on the P2P side too (a cancel frame goes to the worker).
    wait_for(lambda: _cancelled_tool_calls(orch) > before, 10, what="a cancelled tool call in the metrics")


def _cancelled_tool_calls(orch) -> float:
    text = httpx.get(orch.url + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("praxis_requests_total{") and 'protocol="/praxis/tool/1.0.0"' in line
               and 'side="client"' in line and 'outcome="cancelled"' in line)


def test_list_tasks(orch):
    async def go():
        client = await client_for(orch.url, "1.0", streaming=False)
        try:
            ids = []
            for i in range(3):
                events = [e async for e in client.send_message(call("echo", {"i": i}))]
                ids.append(events[0].task.id)
            page = await client.list_tasks(ListTasksRequest(page_size=2, status=TaskState.TASK_STATE_COMPLETED))
            assert [t.id for t in page.tasks] == ids[::-1][:2] and page.next_page_token
            rest = await client.list_tasks(ListTasksRequest(page_size=100, page_token=page.next_page_token,
                                                            status=TaskState.TASK_STATE_COMPLETED))
            assert ids[0] in [t.id for t in rest.tasks]
        finally:
            await client.close()

    run(go())


def test_list_tasks_in_the_03_dialect(orch):
    # The SDK's 0.3 transport has no list call; 0.3 clients send tasks/list.
    body = {"jsonrpc": "2.0", "id": 1, "method": "tasks/list", "params": {"pageSize": 5}}
    r = httpx.post(orch.url + "/a2a", json=body, headers={"A2A-Version": "0.3"}, timeout=10)
    tasks = r.json()["result"]["tasks"]
    assert tasks and all(t["kind"] == "task" for t in tasks)


def test_the_same_dispatcher_over_p2p_runs_1_0_and_cancels(cluster, client_factory):
    """/praxis/a2a/1.0.0 at the worker: 1.0 names, and CancelTask sent on the
    stream cancels a SendMessage still running there."""
    client = client_factory(cluster["root"], "orchestrator-2")  # role orchestrator in the keystore
    worker = cluster["worker"]
    wid = worker.wait_healthy()["peer_id"]
    port = int(next(s for s in worker.proc.args if s.startswith("p2p.port=")).split("=")[1])
    on_loop(client, client.service.dial, p2p_addr(port, wid), True)
    rpc = client.service._rpc

    def a2a(method, params, rid=1, timeout=10):
        return client.service.submit(rpc, wid, A2A_PROTOCOL, {"jsonrpc": "2.0", "id": rid, "method": method,
                                                              "params": params}, timeout)

    message = {"role": "ROLE_USER", "messageId": "p1", "parts": [{"data": {"tool": "sleep", "arguments": {"seconds": 20}}}]}
    running = a2a("SendMessage", {"message": message}, rid="send", timeout=30)
    deadline = time.monotonic() + 10
    while True:
        listed = a2a("ListTasks", {"status": "TASK_STATE_WORKING"}).result(10)["result"]["tasks"]
        if listed or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    (task,) = listed
    canceled = a2a("CancelTask", {"id": task["id"]}).result(10)
    assert canceled["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    answer = running.result(10)
    assert answer["id"] == "send" and answer["result"]["task"]["status"]["state"] == "TASK_STATE_CANCELED"
    streaming = a2a("SendStreamingMessage", {"message": message}).result(10)
    assert streaming["error"]["code"] == -32004  # streaming is HTTP-only

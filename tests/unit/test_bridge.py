"""TrioThread: the crossing between asyncio callers and the trio loop."""

from __future__ import annotations

import asyncio
import threading

import pytest
import trio

from agent.p2p._bridge import LoopGone, TrioThread


@pytest.fixture
def loop_thread():
    t = TrioThread("test-trio")

    async def main(nursery, task_status=trio.TASK_STATUS_IGNORED):
        task_status.started()

    async def shutdown():
        pass

    crashes: list[BaseException] = []
    t.start(main, shutdown, 10, on_crash=crashes.append)
    t.crashes = crashes  # type: ignore[attr-defined]
    yield t
    t.stop(10)


def test_an_asyncio_caller_that_gives_up_cancels_the_running_trio_task(loop_thread):
    started, cancelled = threading.Event(), threading.Event()

    async def forever():
        started.set()
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.set()
            raise

    async def caller():
        call = asyncio.ensure_future(asyncio.wrap_future(loop_thread.submit(forever)))
        # Give up once the call runs (a call cancelled before it starts never runs).
        assert await asyncio.to_thread(started.wait, 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call

    asyncio.run(caller())
    assert cancelled.wait(5), "the trio task kept running after its caller gave up"


def test_a_task_that_dies_after_start_is_reported_not_swallowed(loop_thread):
    async def essential():
        raise RuntimeError("boom")

    loop_thread.run_sync_soon(lambda: loop_thread._nursery.start_soon(essential))
    loop_thread._thread.join(10)
    assert [str(e) for e in loop_thread.crashes] == ["boom"]
    with pytest.raises(LoopGone):
        loop_thread.submit(essential).result(5)

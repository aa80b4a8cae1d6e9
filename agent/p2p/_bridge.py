"""The one crossing between the trio thread (libp2p) and everything else.

py-libp2p runs on trio; the HTTP app runs on asyncio.  The trio loop lives in
its own thread; other threads reach it only through :class:`TrioThread`:

- :meth:`TrioThread.submit` schedules a coroutine on the trio loop and returns a
  ``concurrent.futures.Future`` at once (``asyncio.wrap_future`` makes it
  awaitable).  No thread is parked per call, so 64 calls in flight cost 64
  trio tasks, not 64 executor threads.
- :meth:`TrioThread.call` runs a coroutine on the trio loop and blocks the
  calling (non-trio) thread until it is done.
- Code already on the trio loop that must reach another thread's code uses
  ``trio.to_thread``; the zeroconf callbacks come back with :meth:`send_nowait`.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from ..errors import Cancelled

__all__ = ["TrioThread", "LoopGone"]


class LoopGone(RuntimeError):
    """The trio loop is not running (not started yet, or stopped)."""


class TrioThread:
    def __init__(self, name: str) -> None:
        self._name = name
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._stop_event: trio.Event | None = None

    @property
    def running(self) -> bool:
        return self._nursery is not None

    def in_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def start(
        self,
        main: Callable[[trio.Nursery, Any], Awaitable[None]],
        shutdown: Callable[[], Awaitable[None]],
        timeout: float,
        on_crash: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Start the loop and ``await nursery.start(main, nursery)``; block until it is started.

        ``main`` signals readiness with ``task_status.started()``; an exception
        it raises before that is re-raised here.  ``shutdown`` runs on stop,
        before the remaining tasks are cancelled.  If the loop ends with an
        exception after it started (an essential task died), ``on_crash`` is
        called with it in the loop's thread: never swallowed.
        """

        async def _root() -> None:
            self._token = trio.lowlevel.current_trio_token()
            self._stop_event = trio.Event()
            try:
                async with trio.open_nursery() as nursery:
                    await nursery.start(main, nursery)
                    self._nursery = nursery
                    self._ready.set()
                    await self._stop_event.wait()
                    self._nursery = None
                    try:
                        await shutdown()
                    finally:
                        nursery.cancel_scope.cancel()
            finally:
                self._nursery = None

        def _run() -> None:
            try:
                trio.run(_root)
            except BaseException as e:  # reported to start(), or to on_crash once running
                if not self._ready.is_set():
                    self._startup_error = _unwrap(e)
                elif on_crash is not None:
                    on_crash(_unwrap(e))
                else:
                    raise
            finally:
                self._ready.set()

        self._thread = threading.Thread(target=_run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"{self._name} did not start within {timeout:.0f}s")
        if self._startup_error is not None:
            raise self._startup_error
        if self._nursery is None:
            raise LoopGone(f"{self._name} stopped during start-up")

    def stop(self, timeout: float) -> bool:
        """Ask the loop to run ``shutdown`` and exit; True if the thread ended in time."""
        token, event = self._token, self._stop_event
        if token is not None and event is not None:
            try:
                token.run_sync_soon(event.set)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def submit(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> concurrent.futures.Future:
        """Schedule ``fn(*args)`` on the loop.  Cancelling the returned future
        (``asyncio.wrap_future`` does when the awaiting task is cancelled)
        cancels the trio task, even once it is running."""
        fut: concurrent.futures.Future = _CallFuture()
        token = self._token

        def _spawn() -> None:
            nursery = self._nursery
            if nursery is None:
                fut.set_exception(LoopGone("P2P service is not running"))
                return
            nursery.start_soon(self._run_into, fut, fn, args)

        if token is None or self._nursery is None:
            fut.set_exception(LoopGone("P2P service is not running"))
            return fut
        try:
            token.run_sync_soon(_spawn)
        except trio.RunFinishedError:
            fut.set_exception(LoopGone("P2P service is not running"))
        return fut

    async def _run_into(self, fut: concurrent.futures.Future, fn: Callable[..., Awaitable[Any]], args: tuple) -> None:
        # A RUNNING concurrent future cannot be cancelled: _CallFuture.cancel()
        # cancels this scope instead.  Bound before the future turns RUNNING,
        # so a cancel() in between is not lost; a call cancelled before it
        # started never runs.
        scope = trio.CancelScope()
        token = self._token
        if isinstance(fut, _CallFuture) and token is not None:
            fut.bind_cancel(token, scope)
        if not fut.set_running_or_notify_cancel():
            return
        with scope:
            try:
                result = await fn(*args)
            except BaseException as e:
                if not fut.done():
                    if isinstance(e, trio.Cancelled) and scope.cancel_called:
                        fut.set_exception(Cancelled())  # the caller gave up
                    elif isinstance(e, trio.Cancelled):
                        fut.set_exception(LoopGone("P2P service stopped"))
                    else:
                        fut.set_exception(e)
                if isinstance(e, (trio.Cancelled, KeyboardInterrupt, SystemExit)):
                    raise
                return
            if not fut.done():
                fut.set_result(result)
        if scope.cancelled_caught and not fut.done():
            fut.set_exception(LoopGone("P2P service stopped"))

    def call(self, fn: Callable[..., Awaitable[Any]], *args: Any, timeout: float | None = None) -> Any:
        """Run ``fn`` on the loop from another (non-trio) thread and wait for it."""
        if self.in_loop_thread():
            raise RuntimeError("TrioThread.call() from the trio thread would deadlock")
        return self.submit(fn, *args).result(timeout)

    def run_sync_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a plain function on the loop thread soon (e.g. a channel's ``send_nowait``)."""
        token = self._token
        if token is None:
            raise LoopGone("P2P service is not running")
        try:
            token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            raise LoopGone("P2P service is not running") from None


class _CallFuture(concurrent.futures.Future):
    """A Future whose ``cancel()`` also reaches a running trio task.

    A plain concurrent Future cannot be cancelled once running, so an asyncio
    caller that gave up (HTTP client gone, A2A CancelTask) left the trio call
    running to its timeout and the peer never heard of it.
    """

    _cancel_trio: Callable[[], None] | None = None

    def bind_cancel(self, token: trio.lowlevel.TrioToken, scope: trio.CancelScope) -> None:
        def cancel() -> None:
            try:
                token.run_sync_soon(scope.cancel)
            except trio.RunFinishedError:
                pass

        self._cancel_trio = cancel

    def cancel(self) -> bool:
        if super().cancel():
            return True
        if not self.done() and self._cancel_trio is not None:
            self._cancel_trio()
        return False


def _unwrap(e: BaseException) -> BaseException:
    # trio wraps a single failure in an ExceptionGroup; callers want the cause.
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e

"""The agent's HTTP server: uvicorn, minus what it costs when there is no work.

uvicorn's ``Server.main_loop`` wakes up every 0.1 s (``asyncio.sleep(0.1)``
then ``on_tick``) for as long as the server runs, only to refresh the Date
header once a second and to check ``should_exit``: ten event-loop wake-ups a
second in an agent that has nothing to do, times every agent on the machine.
:class:`QuietServer` sleeps until it is told to exit, and computes the Date
header when a response asks for it (at most once a second).

Other idle-time choices, set in :func:`build_server`: no WebSocket protocol
(the API has none; ``ws="auto"`` imports wsproto/websockets at start), no
lifespan, no access log.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate
from typing import Any

import uvicorn
from uvicorn.server import ServerState

__all__ = ["QuietServer", "build_server"]


class _LazyDateState(ServerState):
    """``default_headers`` with a Date computed on demand (uvicorn's protocols
    read ``server_state.default_headers`` once per response)."""

    def __init__(self, extra: list[tuple[bytes, bytes]], date_header: bool) -> None:
        super().__init__()
        self._extra = extra
        self._date_header = date_header
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = list(extra)

    @property  # type: ignore[override]
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        if self._date_header:
            now = int(time.time())
            if now != self._second:
                self._second = now
                self._headers = [(b"date", formatdate(now, usegmt=True).encode())] + self._extra
        return self._headers

    @default_headers.setter
    def default_headers(self, value: list[tuple[bytes, bytes]]) -> None:
        # ServerState.__init__ assigns []; uvicorn's on_tick (not run here) would assign a fresh list.
        pass


class QuietServer(uvicorn.Server):
    """uvicorn.Server whose main loop waits for the exit request instead of polling for it."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._exit_requested = False
        self._exit_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        super().__init__(config)
        if not config.loaded:
            config.load()
        self.server_state = _LazyDateState(list(config.encoded_headers), config.date_header)

    # uvicorn (and Agent.serve) stop the server by assigning should_exit.
    @property  # type: ignore[override]
    def should_exit(self) -> bool:
        return self._exit_requested

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._exit_requested = bool(value)
        if value and self._exit_event is not None and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._exit_event.set)  # any thread, this loop's too
            except RuntimeError:  # loop already closed
                pass

    async def main_loop(self) -> None:
        if self.config.limit_max_requests is not None or self.config.callback_notify is not None:
            # Those need uvicorn's periodic check; the agent uses neither.
            await super().main_loop()
            return
        self._loop = asyncio.get_running_loop()
        self._exit_event = asyncio.Event()
        if not self._exit_requested:
            await self._exit_event.wait()


def build_server(app: Any, host: str, port: int, **options: Any) -> QuietServer:
    """The agent's API server on ``host:port`` (``options`` override uvicorn.Config keywords)."""
    settings: dict[str, Any] = dict(
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        ws="none",
        timeout_graceful_shutdown=3,
    )
    settings.update(options)
    return QuietServer(uvicorn.Config(app, **settings))

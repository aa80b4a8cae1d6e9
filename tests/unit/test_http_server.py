"""agent.http_server: uvicorn without its 0.1 s idle tick."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import threading

import httpx
import pytest
import uvicorn.server

from agent.http_server import QuietServer, build_server


async def app(scope, receive, send):  # minimal ASGI app
    assert scope["type"] == "http"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _started(server: QuietServer, task: asyncio.Task) -> None:
    while not server.started:
        assert not task.done(), "server failed to start"
        await asyncio.sleep(0.01)


def test_idle_server_does_not_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's main loop called asyncio.sleep(0.1) ten times a second while idle."""
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def counting_sleep(delay, *a, **k):  # type: ignore[no-untyped-def]
        sleeps.append(delay)
        return await real_sleep(delay, *a, **k)

    monkeypatch.setattr(uvicorn.server.asyncio, "sleep", counting_sleep)
    port = free_port()

    async def main() -> int:
        server = build_server(app, "127.0.0.1", port)
        task = asyncio.create_task(server.serve())
        await _started(server, task)
        before = len(sleeps)
        await real_sleep(0.6)  # idle: no request at all
        idle_sleeps = len(sleeps) - before
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        return idle_sleeps

    assert asyncio.run(main()) == 0


def test_serves_with_a_current_date_header_and_stops_from_another_thread() -> None:
    port = free_port()
    server = build_server(app, "127.0.0.1", port)
    result: dict = {}

    def client() -> None:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
            result["status"] = r.status_code
            result["date"] = r.headers.get("date")
        finally:
            server.should_exit = True  # from a thread that is not the server's loop

    async def main() -> None:
        task = asyncio.create_task(server.serve())
        await _started(server, task)
        t = threading.Thread(target=client)
        t.start()
        await asyncio.wait_for(task, 10)
        t.join(5)

    asyncio.run(main())
    assert result["status"] == 200
    sent = email.utils.parsedate_to_datetime(result["date"])
    import datetime

    assert abs((datetime.datetime.now(datetime.timezone.utc) - sent).total_seconds()) < 120


def test_no_websocket_protocol_is_loaded() -> None:
    server = build_server(app, "127.0.0.1", free_port())
    assert server.config.ws_protocol_class is None

"""Pure ASGI middlewares around the HTTP API: body bound and error containment.

Pure ASGI (not Starlette's ``BaseHTTPMiddleware``) so they see the raw
``receive``/``send`` channel: :class:`LimitBody` can refuse a body before the
app reads a byte of it, and :class:`ContainErrors` knows whether a response
has started.  Both answer in the one error shape of :mod:`agent.errors`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from .errors import TOO_LARGE, PraxisError, error_body, http_status, internal

__all__ = ["LimitBody", "ContainErrors", "send_error"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def send_error(send: Send, err: PraxisError, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Send ``err`` as a complete JSON response (status from :func:`errors.http_status`)."""
    body = json.dumps(error_body(err), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": http_status(err),
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value
    return None


class LimitBody:
    """Refuse request bodies over ``max_bytes`` with 413 ``too_large``.

    A declared ``Content-Length`` over the bound is refused before the body is
    read (the server then discards it; the connection stays usable).  A body
    without one (chunked) is read here up to the bound and handed to the app
    in one piece, or refused as soon as it passes the bound, so the app never
    buffers more than ``max_bytes``.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self, size: int | None = None) -> PraxisError:
        what = f"request body of {size} bytes" if size is not None else "request body"
        return PraxisError(TOO_LARGE, f"{what} over the limit of {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            # The server frames the body by this header, so the app cannot
            # receive more than it says; uvicorn refuses malformed values.
            if declared.strip().isdigit() and int(declared) > self.max_bytes:
                await send_error(send, self._too_large(int(declared)))
                return
            await self.app(scope, receive, send)
            return
        if _header(scope, b"transfer-encoding") is None:
            await self.app(scope, receive, send)  # no body at all
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await send_error(send, self._too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # waits for the disconnect, as the server's would

        await self.app(scope, replay, send)


class ContainErrors:
    """Any exception escaping the app becomes a 500 JSON ``internal`` answer.

    The exception is logged with its traceback under an incident id
    (:func:`errors.internal`); the answer names only the id.  Nothing is
    re-raised, so the server neither writes its plain-text 500 nor closes a
    kept-alive connection.  If the response had already started, an error
    answer is impossible: then the exception is re-raised so that the server
    closes the connection rather than let a truncated body pass as complete.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:  # noqa: BLE001 - containment is the point
            err = internal(exc, f"HTTP {scope.get('method', '?')} {scope.get('path', '?')}")
            if started:
                raise
            await send_error(send, err)

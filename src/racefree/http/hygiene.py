"""HTTP hygiene for every response, as one pure ASGI middleware.

* ``HEAD`` for every ``GET``: served by the GET route, the body dropped (headers,
  ``Content-Length`` included, kept), so no route has to declare it. The answer
  ends with its headers: a response that would go on (the event stream) is
  stopped there, never streamed into the void;
* ``WWW-Authenticate: Bearer`` on every 401 (RFC 6750), whoever answered it;
* ``X-Content-Type-Options: nosniff`` everywhere.
"""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WWW_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="racefree"')
NOSNIFF = (b"x-content-type-options", b"nosniff")


class _HeadAnswered(Exception):
    """A HEAD request's answer is complete once its headers are sent: stop the GET."""


class HygieneMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = scope["method"] == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}

        async def send_clean(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != NOSNIFF[0]]
                headers.append(NOSNIFF)
                if message["status"] == 401:
                    headers.append(WWW_AUTHENTICATE)
                await send({**message, "headers": headers})
                if head:
                    await send({"type": "http.response.body", "body": b""})
                    raise _HeadAnswered
                return
            await send(message)

        with contextlib.suppress(_HeadAnswered):
            await self.app(scope, receive, send_clean)

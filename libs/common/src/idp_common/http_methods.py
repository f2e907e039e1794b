"""The methods a path answers: HEAD wherever GET (RFC 9110 §9.3.2: a server that answers GET
answers HEAD), OPTIONS everywhere (§9.3.7), and, in a 405 or an OPTIONS answer, an ``Allow``
header naming every method of the path, not only those of the first route that matched it
(Starlette's)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from idp_common.asgi import HttpMiddleware

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(routes: list[BaseRoute], scope: Scope) -> list[str]:
    """The methods one of ``routes`` answers on the path of ``scope``."""
    allowed = [
        method
        for method in METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    if "GET" in allowed and "HEAD" not in allowed:
        allowed.insert(allowed.index("GET") + 1, "HEAD")
    return [*allowed, "OPTIONS"] if allowed else []


class HeadAsGetMiddleware(HttpMiddleware):
    """Answers HEAD as the GET of the same path would, without the body: its status and
    headers (``Content-Length`` included). The answer ends with its headers, and the app
    is told the client has gone: a streamed answer (a log stream) stops there, instead of
    holding the connection, and the stream's place, until its first event."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        answered = False

        async def headers_only(message: Message) -> None:
            nonlocal answered
            if answered:
                return
            await send(message)
            if message["type"] == "http.response.start":
                answered = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        async def gone_once_answered() -> Message:
            if answered:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app({**scope, "method": "GET"}, gone_once_answered, headers_only)


class OptionsMiddleware(HttpMiddleware):
    """Answers OPTIONS on a path with the methods it answers (204 and ``Allow``), before any
    route or credential: what may be done there, nothing of what is there. A path that does
    not exist is the app's 404. No CORS headers: the console is served from the services'
    own origin, so a page of another origin is refused at its preflight."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed = (
            allowed_methods(scope["app"].routes, scope) if scope["method"] == "OPTIONS" else []
        )
        if not allowed:
            await self.app(scope, receive, send)
            return
        await Response(status_code=204, headers={"Allow": ", ".join(allowed)})(scope, receive, send)

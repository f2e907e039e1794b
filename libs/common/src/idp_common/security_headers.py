"""Headers every answer of a service carries unless its route set its own: an API answer
holds a tenant's data, so no cache keeps it (``no-store``), no browser guesses its type
(``nosniff``) and no page frames it (OWASP's REST Security Cheat Sheet)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp_common.asgi import HttpMiddleware

SECURITY_HEADERS = {
    b"cache-control": b"no-store",
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
}


# The console's own files (its scripts, its config, its errors): cached as the browser sees
# fit, but never sniffed nor framed.
STATIC_SECURITY_HEADERS = {
    name: value for name, value in SECURITY_HEADERS.items() if name != b"cache-control"
}


class SecurityHeadersMiddleware(HttpMiddleware):
    def __init__(self, app: ASGIApp, headers: dict[bytes, bytes] = SECURITY_HEADERS) -> None:
        super().__init__(app)
        self.headers = headers

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [item for item in self.headers.items() if item[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

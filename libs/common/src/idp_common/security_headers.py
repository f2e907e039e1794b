"""Headers every answer of a service carries unless its route set its own: an API answer
holds a tenant's data, so no cache keeps it (``no-store``), no browser guesses its type
(``nosniff``) and no page frames it (OWASP's REST Security Cheat Sheet)."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from idp_common.asgi import HttpMiddleware

SECURITY_HEADERS = {
    b"cache-control": b"no-store",
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
}


class SecurityHeadersMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [item for item in SECURITY_HEADERS.items() if item[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

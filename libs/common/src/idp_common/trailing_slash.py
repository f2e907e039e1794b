"""A path with a trailing slash is served as the path without it, never redirected.

Starlette answered ``/api/v1/templates/`` with a 307 to an absolute URL built from the
request's ``Host`` header: whatever host a client named became the ``Location`` (an open
redirect, and a poisoned one in any cache in front), and behind the console the browser was
sent to the service's own address, which it cannot reach."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from idp_common.asgi import HttpMiddleware


class TrailingSlashMiddleware(HttpMiddleware):
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)

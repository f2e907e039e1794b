"""Per-request context: the X-Request-ID (pure ASGI middleware), and the request id and tenant
of what is being handled, for logs and spans."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from opentelemetry import trace
from starlette.types import Message, Receive, Scope, Send

from idp_common.asgi import HttpMiddleware

REQUEST_ID_HEADER = "x-request-id"
# The trace a response belongs to, so that a person can look it up in Jaeger.
TRACE_ID_HEADER = "x-trace-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
tenant_var: ContextVar[str | None] = ContextVar("tenant", default=None)
# The tenant whose credential admitted the event being handled (``inbound.InboundGate``): the
# tenant a producer's event belongs to, where its body only says so.
admitted_tenant_var: ContextVar[str | None] = ContextVar("admitted_tenant", default=None)


def trace_id_of(span: trace.Span) -> str | None:
    """The span's trace id as Jaeger shows it (32 hex digits), or None outside a trace."""
    context = span.get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def current_trace_id() -> str | None:
    return trace_id_of(trace.get_current_span())


def request_header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def identifying_headers() -> dict[str, str]:
    """The request's id and its trace's, as its answer carries them."""
    headers = {}
    if (request_id := request_id_var.get()) is not None:
        headers[REQUEST_ID_HEADER] = request_id
    if (trace_id := current_trace_id()) is not None:
        headers[TRACE_ID_HEADER] = trace_id
    return headers


class RequestIdMiddleware(HttpMiddleware):
    """Takes a well-formed X-Request-ID from the client or makes one; echoes it on the
    response, with the request's trace id (X-Trace-Id).

    An unexpected error leaves the request's id set: Starlette answers it with a 500
    outside every middleware, and that answer and its log line name the request too
    (``errors``). Each request runs in a task of its own, whose context goes with it."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        given = request_header(scope, REQUEST_ID_HEADER.encode())
        request_id = given if given and _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        trace.get_current_span().set_attribute("http.request_id", request_id)
        identifiers = [
            (name.encode(), value.encode()) for name, value in identifying_headers().items()
        ]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *identifiers]
            await send(message)

        await self.app(scope, receive, send_with_id)
        request_id_var.reset(token)
        tenant_var.set(None)

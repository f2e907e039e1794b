"""Guards that refuse a request before any route runs (pure ASGI middleware): a body over
the cap, that stops arriving, that is not JSON (or is encoded) or whose JSON names a key
twice, a NUL byte in the URL. They answer with the same problem+json as every route."""

from __future__ import annotations

import asyncio

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from idp_common.asgi import HttpMiddleware
from idp_common.duplicate_keys import duplicate_key_path
from idp_common.errors import ValidationFailed, field_error, problem_response
from idp_common.request_context import request_header

# A body that stops arriving for this long (a Content-Length larger than what is sent, a
# client gone quiet) is answered 408 rather than holding the request open for ever.
BODY_READ_TIMEOUT_SECONDS = 30.0


# Methods whose body no route reads: only its size is bounded (the console passes any body
# on, read whole first, so an unbounded GET body was held in its memory).
BODILESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyGuardMiddleware(HttpMiddleware):
    """Refuses bodies over ``max_bytes`` with 413, by Content-Length or while streaming,
    bodies that stop arriving (``BODY_READ_TIMEOUT_SECONDS``) with 408, whatever the method,
    and, where a route reads the body, bodies that are not JSON or are encoded with 415 and
    JSON naming a key twice in one object with 422."""

    def __init__(self, app: ASGIApp, max_bytes: int, setting: str) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes
        self.setting = setting  # the variable that sets max_bytes, named in the refusal

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = request_header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        # Read the body up front (it is bounded) so an oversized chunked body is refused
        # before the application sees any of it.
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout(BODY_READ_TIMEOUT_SECONDS):
                    message = await receive()
            except TimeoutError:
                await self._timed_out(scope, receive, send, size)
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        refusal = None if scope["method"] in BODILESS_METHODS else _refused_body(scope, body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"Request body exceeds {self.max_bytes} bytes ({self.setting})."
        refusal = problem_response(413, "Payload Too Large", detail, slug="payload-too-large")
        await refusal(scope, receive, send)

    @staticmethod
    async def _timed_out(scope: Scope, receive: Receive, send: Send, received: int) -> None:
        declared = request_header(scope, b"content-length") or "none"
        detail = (
            f"The request body stopped arriving: nothing more in {BODY_READ_TIMEOUT_SECONDS:.0f} s"
            f" after {received} bytes (Content-Length: {declared})."
        )
        refusal = problem_response(
            408, "Request Timeout", detail, slug="request-timeout", headers={"Connection": "close"}
        )
        await refusal(scope, receive, send)


def _refused_body(scope: Scope, body: bytes) -> Response | None:
    if body and (unsupported := _unsupported_body(scope)) is not None:
        return unsupported
    # Whatever its Content-Type says: a binary CloudEvent's data is read as JSON without
    # one, and a body that is not JSON costs a parse that fails at once.
    if (path := duplicate_key_path(body)) is not None:
        return _duplicate_key(path)
    return None


def _is_json(content_type: str) -> bool:
    """``application/json`` or ``application/…+json``, whatever its parameters: what the
    routes parse (FastAPI takes any other body as bytes, and then names no field)."""
    kind, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _unsupported_body(scope: Scope) -> Response | None:
    """A 415 naming the header, for a body no route reads: encoded, or not JSON."""
    encoding = (request_header(scope, b"content-encoding") or "identity").strip().lower()
    content_type = request_header(scope, b"content-type")
    if encoding != "identity":
        return _unsupported(
            "Content-Encoding", f"bodies are read as sent: send it without {encoding!r}"
        )
    if content_type is None and request_header(scope, b"ce-specversion") is not None:
        return None  # a binary CloudEvent: its data is JSON when no type is said
    if not _is_json(content_type or ""):
        given = f"not {content_type!r}" if content_type else "which the request does not say"
        return _unsupported(
            "Content-Type",
            f"bodies are JSON: application/json (or an application/…+json type), {given}",
        )
    return None


def _unsupported(header: str, message: str) -> Response:
    return problem_response(
        415,
        "Unsupported Media Type",
        f"The request body's {header} is not taken: {message}.",
        slug="unsupported-media-type",
        errors=[field_error(header, message, "unsupported_media_type")],
    )


def _invalid(field: str, message: str, code: str) -> Response:
    """The 422 a route answers for one refused field."""
    return problem_response(
        422,
        ValidationFailed.title,
        f"Invalid input: {field}",
        slug=ValidationFailed.slug,
        errors=[field_error(field, message, code)],
    )


def _duplicate_key(path: list[str | int]) -> Response:
    message = f"{path[-1]} is named twice in one object: say it once, with the value meant"
    return _invalid(".".join(str(part) for part in path), message, "duplicate_key")


class NulInUrlMiddleware(HttpMiddleware):
    """Refuses a NUL byte in the path or the query string (422): no identifier, slug or
    filter holds one, and databases cannot compare text with it."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string", b"").lower()
        part = "path" if "\x00" in scope["path"] else "query" if b"%00" in query else None
        if part is not None:
            await _invalid(part, "must not contain NUL bytes", "nul_byte")(scope, receive, send)
            return
        await self.app(scope, receive, send)

"""uvicorn's HTTP/1.1 protocol (httptools), with the limits a server in front would set and
the same problem+json as every route for what it refuses: a request it cannot parse (a
control byte in a header, an unknown HTTP version, two lengths), a request line or header
fields too large to be a request of this API, an HTTP/1.1 request without ``Host``, a request
head that stops arriving. uvicorn refuses the first in plain text and takes the others as
they come (a connection that never completes a request head is held for ever); none of them
reaches the application, so no middleware can answer them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from idp_common.errors import PROBLEM_JSON, problem_response

# Far above what a client of these APIs sends (a JWT of a few KiB, ids, short filters).
MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 64 * 1024
# A request head (request line and headers) must arrive within this; a connection that sends
# nothing is closed after the keep-alive timeout, as an idle one between requests is.
REQUEST_HEAD_SECONDS = 30.0
# After a refusal the rest of the request is read and dropped this long before the socket
# closes: closed with unread bytes, it would be reset, and the client could lose the answer.
LINGER_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class _Refusal:
    status: int
    title: str
    detail: str


NOT_HTTP = _Refusal(
    400,
    "Bad Request",
    "The request is not valid HTTP/1.1 (its request line, a header's name or value, or its "
    "framing); nothing was done.",
)


class _Refused(Exception):
    """Raised from a parser callback: the parser stops, and the refusal is answered."""


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    _refusal = NOT_HTTP
    _url_bytes = 0
    _header_bytes = 0
    _lingering = False
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait_for_head(self.timeout_keep_alive, self.transport.close)

    def connection_lost(self, exc: Exception | None) -> None:
        self._wait_for_head(None)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._lingering:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._refusal, self._url_bytes, self._header_bytes = NOT_HTTP, 0, 0
        self._wait_for_head(REQUEST_HEAD_SECONDS, self._head_timed_out)

    def on_url(self, url: bytes) -> None:
        self._url_bytes += len(url)
        if self._url_bytes > MAX_URL_BYTES:
            self._refuse(414, "URI Too Long", f"The request's URL exceeds {MAX_URL_BYTES} bytes.")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        if self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(
                431,
                "Request Header Fields Too Large",
                f"The request's header fields exceed {MAX_HEADER_BYTES} bytes.",
            )
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._wait_for_head(None)
        hosts = sum(1 for name, _ in self.headers if name == b"host")
        if self.parser.get_http_version() == "1.1" and hosts != 1:
            self._refuse(400, "Bad Request", "An HTTP/1.1 request names its Host once (RFC 9112).")
        super().on_headers_complete()

    def _wait_for_head(
        self, seconds: float | None, then: Callable[[], object] = lambda: None
    ) -> None:
        """Call ``then`` unless a request head has arrived within ``seconds`` (None: stop)."""
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = None if seconds is None else self.loop.call_later(seconds, then)

    def _head_timed_out(self) -> None:
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined request's head, behind an answer still being sent: never cut into
            # that answer; look again later.
            self._wait_for_head(REQUEST_HEAD_SECONDS, self._head_timed_out)
            return
        detail = f"The request's line and headers did not arrive in {REQUEST_HEAD_SECONDS:.0f} s."
        self._answer(_Refusal(408, "Request Timeout", detail))

    def _refuse(self, status: int, title: str, detail: str) -> None:
        self._refusal = _Refusal(status, title, detail)
        raise _Refused(detail)

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer when the parser stopped (on its error, or on ``_refuse``)."""
        self._answer(self._refusal)

    def _answer(self, refusal: _Refusal) -> None:
        body = bytes(problem_response(refusal.status, refusal.title, refusal.detail).body)
        content = [STATUS_LINE[refusal.status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            f"content-type: {PROBLEM_JSON}\r\n".encode(),
            f"content-length: {len(body)}\r\n".encode(),
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(content))
        self._lingering = True
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)

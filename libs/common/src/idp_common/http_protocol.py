"""uvicorn's HTTP/1.1 protocol (httptools), with the limits a server in front would set and
the same problem+json as every route for what it refuses: a request it cannot parse (a
control byte in a header, an unknown HTTP version, two lengths), a request line or header
fields too large to be a request of this API, an HTTP/1.1 request without ``Host``. uvicorn
refuses the first in plain text and takes the others as they come; none of them reaches the
application, so no middleware can answer them."""

from __future__ import annotations

import json
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from idp_common.errors import PROBLEM_JSON

# Far above what a client of these APIs sends (a JWT of a few KiB, ids, short filters).
MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 64 * 1024
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
    """Raised from a parser callback: the parser stops, and the protocol answers 400."""


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    _refusal = NOT_HTTP
    _url_bytes = 0
    _header_bytes = 0
    _lingering = False

    def data_received(self, data: bytes) -> None:
        if not self._lingering:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._refusal, self._url_bytes, self._header_bytes = NOT_HTTP, 0, 0

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
        if self.parser.get_http_version() == "1.1" and all(n != b"host" for n, _ in self.headers):
            self._refuse(400, "Bad Request", "An HTTP/1.1 request names its Host (RFC 9112).")
        super().on_headers_complete()

    def _refuse(self, status: int, title: str, detail: str) -> None:
        self._refusal = _Refusal(status, title, detail)
        raise _Refused(detail)

    def send_400_response(self, msg: str) -> None:
        refusal = self._refusal
        body = json.dumps(
            {
                "type": "about:blank",
                "title": refusal.title,
                "status": refusal.status,
                "detail": refusal.detail,
            }
        ).encode()
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

"""uvicorn's HTTP/1.1 protocol (httptools), answering a request it cannot parse (a control
byte in a header, an unknown HTTP version, a malformed request line) with the same
problem+json as every route, where uvicorn answers in plain text. Such a request never
reaches the application, so no middleware can."""

from __future__ import annotations

import json

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from idp_common.errors import PROBLEM_JSON


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Bad Request",
                "status": 400,
                "detail": f"{msg} The request is not valid HTTP/1.1 (its request line, a "
                "header's name or value, or its framing); nothing was done.",
            }
        ).encode()
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            f"content-type: {PROBLEM_JSON}\r\n".encode(),
            f"content-length: {len(body)}\r\n".encode(),
            b"connection: close\r\n\r\n",
            body,
        ]
        self.transport.write(b"".join(content))
        self.transport.close()

"""The reverse proxy: ``/api/v1/...`` to the owning service. Answers are streamed (a log
stream's events reach the browser as the service sends them, never buffered); request
bodies are small JSON documents, each service caps them, and are passed on whole."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from console.routes import route
from idp_common.errors import NotFound, ProblemError
from idp_common.request_context import REQUEST_ID_HEADER, request_id_var

# Hop-by-hop headers (RFC 9110 §7.6.1), those httpx sets itself, and the request id, which
# the console's own middleware sets on both sides.
NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        REQUEST_ID_HEADER,
    }
)
# The console's own server writes these on every answer: passed on, each would be sent twice.
NOT_ANSWERED = NOT_FORWARDED | {"date", "server"}


class BadGateway(ProblemError):
    status_code, title, slug = 502, "Bad Gateway", "bad-gateway"


class GatewayTimeout(ProblemError):
    status_code, title, slug = 504, "Gateway Timeout", "gateway-timeout"


# A log stream stays open for the whole run; any other answer starts within this, or the
# service is stuck (stopped, deadlocked) and the browser is told so rather than left waiting.
LOG_STREAM = "/logs/stream"
ANSWER_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=30.0, pool=10.0)


def _answer_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name.lower() not in NOT_ANSWERED]


async def proxy(request: Request) -> Response:
    """Sends the request on to the service that owns its path and streams the answer back."""
    target = route(request.path_params["path"])
    if target is None:
        raise NotFound(f"No service behind the console serves {request.url.path}.")
    # As received, in bytes: a value may hold bytes outside ASCII, which httpx would refuse
    # to encode from text. The whitespace around a value is no part of it (RFC 9110 5.5),
    # and h11 refuses to send it.
    headers = [
        (name, value.strip())
        for name, value in request.headers.raw
        if name.decode("latin-1").lower() not in NOT_FORWARDED
    ]
    headers.append((REQUEST_ID_HEADER.encode(), (request_id_var.get() or "").encode()))
    if request.client:
        headers.append((b"x-forwarded-for", request.client.host.encode()))
    client: httpx.AsyncClient = request.app.state.http
    upstream = client.build_request(
        request.method,
        # The path arrives decoded: escaped again, a character such as "?", "#" or a control
        # character stays a character of the path instead of ending it or breaking the URL.
        request.app.state.upstreams[target.service] + urllib.parse.quote(target.path),
        params=httpx.QueryParams(request.url.query),
        headers=headers,
        content=await request.body(),
        timeout=httpx.USE_CLIENT_DEFAULT if target.path.endswith(LOG_STREAM) else ANSWER_TIMEOUT,
    )
    try:
        answer = await client.send(upstream, stream=True)
    except httpx.TimeoutException as error:
        raise GatewayTimeout(f"{target.service}-svc did not answer in time: {error!r}") from error
    except httpx.TransportError as error:
        raise BadGateway(f"{target.service}-svc did not answer: {error!r}") from error
    return StreamingResponse(
        answer.aiter_raw(),
        status_code=answer.status_code,
        headers=dict(_answer_headers(answer.headers.multi_items())),
        background=BackgroundTask(answer.aclose),
    )

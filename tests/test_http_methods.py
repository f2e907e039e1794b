"""HTTP's own rules on every service: HEAD answered wherever GET is, OPTIONS everywhere, a
405 whose ``Allow`` names every method of the path, a body that stops arriving answered
408 instead of holding the request open, and a trailing slash served, never redirected."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from idp_common import http_protocol, request_guards
from tests.factories import ADMIN, new_execution, panel_for, template
from tests.harness import LocalSQSServer, Platform, ServedApp, running_platform


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as running:
        hello = await template(running, "hello", "echo hello", [])
        await panel_for(running, hello)
        yield running


def services(platform: Platform) -> dict[str, httpx.AsyncClient]:
    assert platform.datasource is not None
    return {
        "operation": platform.operation,
        "panel": platform.panel,
        "datasource": platform.datasource,
    }


GETS = {
    "operation": ["/healthz", "/readyz", "/openapi.json", "/api/v1/templates/hello"],
    "panel": ["/healthz", "/api/v1/panels/hello", "/api/v1/auth/whoami", "/api/v1/panels"],
    "datasource": ["/healthz", "/docs", "/api/v1/datasources"],
}


async def test_head_answers_as_get_does_without_the_body(platform: Platform) -> None:
    for service, client in services(platform).items():
        for path in GETS[service]:
            got = await client.get(path, headers=ADMIN)
            head = await client.head(path, headers=ADMIN)
            assert (head.status_code, got.status_code) == (200, 200), (service, path)
            assert head.content == b"", (service, path)
            for header in ("content-type", "content-length"):
                assert head.headers.get(header) == got.headers.get(header), (service, path, header)
        anonymous = await client.head(GETS[service][-1])  # an API's: credentials needed
        assert anonymous.status_code == 401, service
        assert anonymous.content == b""


async def test_head_of_a_log_stream_answers_with_its_headers_and_ends(platform: Platform) -> None:
    """Ends on the server too: the next request on the same connection is answered (it
    waited for the stream's first event, a ping 15 s later)."""
    path = await new_execution(platform, "hello")  # pending: no worker, its stream stays open
    for _ in range(3):  # one keep-alive connection
        head = await asyncio.wait_for(
            platform.operation.head(f"{path}/logs/stream", headers=ADMIN), 5
        )
        assert head.status_code == 200
        assert head.headers["content-type"].startswith("text/event-stream")
        assert head.content == b""


async def test_a_trailing_slash_is_served_as_the_path_without_it_whatever_the_host(
    platform: Platform,
) -> None:
    """Starlette redirected it to an absolute URL built from the Host header: a client's
    ``Host: evil.example`` made ``Location: http://evil.example/api/v1/panels``."""
    for service, client in services(platform).items():
        for path in GETS[service]:
            plain = await client.get(path, headers=ADMIN)
            for slashed in (f"{path}/", f"{path}//"):
                response = await client.get(slashed, headers={**ADMIN, "Host": "evil.example"})
                assert response.status_code == 200, (service, slashed, response.text)
                assert "location" not in response.headers, (service, slashed)
                if path != "/healthz" and path != "/readyz":
                    assert response.content == plain.content, (service, slashed)
    created = await platform.operation.post(
        "/api/v1/executions/", json={"template": "hello"}, headers=ADMIN
    )
    assert created.status_code == 202, created.text
    assert "location" not in created.headers
    anonymous = await platform.operation.get("/api/v1/templates/", headers={"Host": "evil.example"})
    assert anonymous.status_code == 401
    assert (await platform.operation.get("/", headers=ADMIN)).status_code == 404


@pytest.mark.parametrize(
    ("service", "method", "path", "allowed"),
    [
        ("operation", "PUT", "/api/v1/executions", "GET, HEAD, POST, OPTIONS"),
        ("operation", "delete", "/api/v1/executions", "GET, HEAD, POST, OPTIONS"),
        ("operation", "POST", "/api/v1/templates/hello", "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("operation", "HEAD", "/api/v1/events", "POST, OPTIONS"),
        ("operation", "GET", "/api/v1/executions/x/cancel", "POST, OPTIONS"),
        ("operation", "POST", "/healthz", "GET, HEAD, OPTIONS"),
        ("panel", "PUT", "/api/v1/panels", "GET, HEAD, POST, OPTIONS"),
        ("panel", "GET", "/api/v1/panels/hello/submissions", "POST, OPTIONS"),
        ("panel", "DELETE", "/api/v1/submissions", "GET, HEAD, OPTIONS"),
        ("datasource", "PATCH", "/api/v1/datasources", "GET, HEAD, POST, OPTIONS"),
    ],
)
async def test_a_405_names_every_method_of_the_path(
    platform: Platform, service: str, method: str, path: str, allowed: str
) -> None:
    response = await services(platform)[service].request(method, path, headers=ADMIN)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    if method != "HEAD":
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("service", "path", "allowed"),
    [
        ("operation", "/api/v1/executions", "GET, HEAD, POST, OPTIONS"),
        ("operation", "/api/v1/templates/hello", "GET, HEAD, PATCH, DELETE, OPTIONS"),
        ("operation", "/api/v1/executions/x/cancel", "POST, OPTIONS"),
        ("panel", "/api/v1/panels/hello/submissions", "POST, OPTIONS"),
        ("datasource", "/healthz", "GET, HEAD, OPTIONS"),
    ],
)
async def test_options_names_the_methods_of_the_path_and_grants_no_other_origin(
    platform: Platform, service: str, path: str, allowed: str
) -> None:
    """Without credentials (it says what may be done there, nothing of what is there), and,
    asked as a browser's CORS preflight from another origin, with nothing that allows it."""
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    for headers in ({}, preflight):
        answer = await services(platform)[service].options(path, headers=headers)
        assert answer.status_code == 204, answer.text
        assert answer.headers["allow"] == allowed
        assert answer.content == b""
        assert not [name for name in answer.headers if name.startswith("access-control-")]


async def test_options_on_a_path_that_does_not_exist_is_a_404(platform: Platform) -> None:
    answer = await platform.operation.options("/api/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


async def test_a_body_that_stops_arriving_is_a_408_and_the_connection_closes(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Content-Length larger than the body sent: once held until the client gave up."""
    monkeypatch.setattr(request_guards, "BODY_READ_TIMEOUT_SECONDS", 0.5)
    for service, client in services(platform).items():
        host, port = str(client.base_url).removeprefix("http://").rstrip("/").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /api/v1/panels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"slug": "'
        )
        answer = await asyncio.wait_for(reader.read(), 10)  # read() returns once it closes
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), (service, answer[:200])
        assert b"application/problem+json" in answer
        assert b"after 10 bytes (Content-Length: 100)" in answer, service


NOT_HTTP = (400, "not valid HTTP/1.1")


@pytest.mark.parametrize(
    ("request_bytes", "refusal"),
    [
        (b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n", NOT_HTTP),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\x01b\r\n\r\n", NOT_HTTP),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX Note: a\r\n\r\n", NOT_HTTP),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", NOT_HTTP),  # TLS sent to plain HTTP
        (
            b"POST /api/v1/panels HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            b"Content-Length: 3\r\n\r\n",
            NOT_HTTP,
        ),
        (
            b"POST /api/v1/panels HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            NOT_HTTP,
        ),
        (b"GET /healthz HTTP/1.1\r\n\r\n", (400, "names its Host")),
        (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: evil.example\r\n\r\n", (400, "Host once")),
        (b"GET /" + b"a" * 17_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (414, "URL exceeds")),
        (b"GET /healthz?" + b"a=1&" * 5_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", (414, "URL")),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n",
            (431, "header fields exceed"),
        ),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: a\r\n" % i for i in range(20_000))
            + b"\r\n",
            (431, "header fields exceed"),
        ),
    ],
    ids=[
        "http-1.2",
        "control-byte",
        "space-in-name",
        "tls",
        "two-lengths",
        "length-and-chunked",
        "no-host",
        "two-hosts",  # which one a proxy in front routed by, and which one the app reads
        "long-path",
        "long-query",
        "large-header",
        "many-headers",
    ],
)
async def test_a_request_that_is_not_a_request_of_this_api_is_refused_with_a_problem(
    platform: Platform, request_bytes: bytes, refusal: tuple[int, str]
) -> None:
    """Refused by the server before any application code runs: once in plain text, or (too
    large, no Host) taken as it came."""
    status, says = refusal
    for service, client in services(platform).items():
        head, body = await _raw_exchange(client, request_bytes)
        assert head.startswith(b"HTTP/1.1 %d " % status), (service, head)
        assert b"content-type: application/problem+json" in head.lower()
        problem = json.loads(body)
        assert problem["status"] == status
        assert says in problem["detail"]


async def test_a_websocket_upgrade_is_answered_as_plain_http(platform: Platform) -> None:
    """No service speaks WebSocket: the request is answered as the GET it also is."""
    head, body = await _raw_exchange(
        platform.operation,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert json.loads(body) == {"status": "ok"}


async def _raw_exchange(client: httpx.AsyncClient, request_bytes: bytes) -> tuple[bytes, bytes]:
    """The bytes sent as they are; the answer's head and body (the server closes)."""
    host, port = str(client.base_url).removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request_bytes)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


async def test_a_request_head_that_stops_arriving_is_a_408_and_a_silent_connection_closes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once held open for ever (slowloris): a trickled head, or a connection that never
    sends anything."""
    monkeypatch.setattr(http_protocol, "REQUEST_HEAD_SECONDS", 0.5)
    async with ServedApp(Starlette()) as served:
        served.server.config.timeout_keep_alive = 1
        host, port = "127.0.0.1", served.port
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == 408
        reader, writer = await asyncio.open_connection(host, port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing said
        writer.close()


async def test_every_answer_is_kept_from_caches_sniffing_and_frames(platform: Platform) -> None:
    for service, client in services(platform).items():
        api = GETS[service][-1]
        answers = [
            await client.get(api, headers=ADMIN),
            await client.get(api),  # 401
            await client.get("/api/v1/nothing-here", headers=ADMIN),  # 404
            await client.put(api, headers=ADMIN),  # 405
            await client.head("/healthz"),
        ]
        for answer in answers:
            assert answer.headers.get_list("cache-control") == ["no-store"], (service, answer)
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert answer.headers["x-frame-options"] == "DENY"


async def test_a_pipelined_head_that_stops_arriving_never_cuts_into_the_answer_before_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_protocol, "REQUEST_HEAD_SECONDS", 0.3)

    async def slow(_request: Request) -> Response:
        await asyncio.sleep(1)
        return PlainTextResponse("slow answer")

    async with ServedApp(Starlette(routes=[Route("/slow", slow)])) as served:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n")
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    first, _, rest = answer.partition(b"slow answer")
    assert first.startswith(b"HTTP/1.1 200 "), answer
    assert rest.startswith(b"HTTP/1.1 408 "), answer


async def test_pipelined_requests_each_have_a_trace_of_their_own(platform: Platform) -> None:
    """uvicorn started a pipelined request's task from the one before it, which it then
    inherited: /healthz, never traced, answered with the 404's trace id, and a traced
    request's span would have had the one before it as its parent."""
    port = platform.operation.base_url.port
    assert port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    requests = [b"/api/v1/nope", b"/healthz", b"/api/v1/also-nope"]
    writer.write(b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path for path in requests))
    await writer.drain()
    answers = []
    for _ in requests:
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).decode()
        fields = dict(
            line.lower().split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line
        )
        await reader.readexactly(int(fields["content-length"]))
        answers.append(fields)
    writer.close()
    assert "x-trace-id" not in answers[1]
    assert answers[0]["x-trace-id"] != answers[2]["x-trace-id"]

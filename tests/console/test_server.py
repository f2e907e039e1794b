"""The console server: where each /api/v1 path goes, what the proxy passes on (streams
unbuffered, headers, bodies, the request id), its errors, and the development sign-in that
exists only in development."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from console import proxy
from console.app import create_app
from console.config import ConsoleSettings
from console.routes import Target, route
from idp_common.settings import AuthSettings
from tests.harness import AUTH, ServedApp, free_port, local_client


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("panels/p1/schema", Target("panel", "/api/v1/panels/p1/schema")),
        ("submissions", Target("panel", "/api/v1/submissions")),
        ("auth/whoami", Target("panel", "/api/v1/auth/whoami")),
        ("executions/e1/logs/stream", Target("operation", "/api/v1/executions/e1/logs/stream")),
        ("api-keys", Target("operation", "/api/v1/api-keys")),
        ("audit", Target("operation", "/api/v1/audit")),
        ("panel-audit", Target("panel", "/api/v1/audit")),
        ("datasource-audit/x", Target("datasource", "/api/v1/audit/x")),
        ("datasources/d1/test", Target("datasource", "/api/v1/datasources/d1/test")),
        ("events", None),
        ("workers/claim", None),
        # Dot segments would be resolved in the upstream URL, out of every prefix.
        ("panels/../../../metrics", None),
        ("panels/../events", None),
        ("queues/./x", None),
        ("panel-audit/..", None),
    ],
)
def test_each_path_goes_to_the_service_that_owns_it(path: str, target: Target | None) -> None:
    assert route(path) == target


class FakeService:
    """Answers like a service: an echo of what it got, and a stream held between events."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.app = Starlette(
            routes=[
                Route("/api/v1/executions/{rest:path}", self.stream),
                Route("/api/v1/panels/{rest:path}", self.echo, methods=["GET", "POST"]),
                Route("/api/v1/templates/{rest:path}", self.stuck),
            ]
        )

    async def stuck(self, _request: Request) -> Response:
        """A service that takes the request and never answers (stopped, deadlocked)."""
        await self.release.wait()
        return PlainTextResponse("too late")

    async def echo(self, request: Request) -> Response:
        return JSONResponse(
            {
                "path": request.scope["path"],  # decoded, as the service reads it
                "query": request.url.query,
                "headers": dict(request.headers),
                "body": (await request.body()).decode(),
            },
            status_code=201 if request.method == "POST" else 200,
            headers={"x-upstream": "panel"},
        )

    async def stream(self, _request: Request) -> Response:
        async def events() -> AsyncIterator[bytes]:
            yield b"id: 0\nevent: log\ndata: first\n\n"
            await self.release.wait()
            yield b"id: 1\nevent: log\ndata: second\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


def settings(upstream: str, **extra: object) -> ConsoleSettings:
    return ConsoleSettings(
        panel_api_url=upstream,
        operation_api_url=upstream,
        datasource_api_url=f"http://127.0.0.1:{free_port()}",  # nothing listens
        auth=AUTH,
        dev_platform=True,
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[httpx.AsyncClient, FakeService]]:
    fake = FakeService()
    async with (
        ServedApp(fake.app) as upstream,
        ServedApp(create_app(settings(upstream.url))) as console,
        local_client(console.url) as client,
    ):
        yield client, fake


async def test_requests_pass_on_with_their_headers_body_query_and_request_id(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    client, _ = proxied
    response = await client.post(
        "/api/v1/panels/p1/submissions?x=1&x=2",
        content=b'{"data": {}}',
        headers={
            "Authorization": "Bearer t",
            "Idempotency-Key": "k1",
            "Content-Type": "application/json",
            "X-Request-ID": "req-1",
        },
    )
    assert response.status_code == 201
    echoed = response.json()
    assert echoed["path"] == "/api/v1/panels/p1/submissions"
    assert echoed["query"] == "x=1&x=2"
    assert echoed["body"] == '{"data": {}}'
    assert echoed["headers"]["authorization"] == "Bearer t"
    assert echoed["headers"]["idempotency-key"] == "k1"
    assert echoed["headers"]["x-request-id"] == "req-1"
    assert response.headers["x-upstream"] == "panel"
    assert response.headers.get_list("x-request-id") == ["req-1"]
    # The console's server writes its own: the service's are not sent a second time.
    assert len(response.headers.get_list("date")) == 1
    assert response.headers.get_list("server") == ["uvicorn"]


async def test_header_values_pass_on_byte_for_byte_without_surrounding_whitespace(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    """Once a 500 (a byte outside ASCII: httpx could not encode the value again) or a 502
    blaming the service (trailing whitespace, which h11 refuses to send)."""
    client, _ = proxied
    response = await client.get(
        "/api/v1/panels/p1",
        headers=[
            (b"Authorization", b"Bearer \xff\xfe"),
            (b"Accept", "text/\u00e9".encode()),
            (b"X-Note", b"\x80"),
        ],
    )
    assert response.status_code == 200, response.text
    echoed = response.json()["headers"]
    assert echoed["authorization"] == "Bearer \xff\xfe"  # as Starlette reads bytes: latin-1
    assert echoed["accept"] == "text/\u00c3\u00a9"
    assert echoed["x-note"] == "\x80"

    host, port = str(client.base_url).removeprefix("http://").rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /api/v1/panels/p1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer t \t\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert b'"authorization":"Bearer t"' in answer


async def test_a_log_stream_is_passed_on_event_by_event(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    client, fake = proxied
    async with client.stream("GET", "/api/v1/executions/e1/logs/stream") as response:
        chunks = response.aiter_text()
        # The first event arrives while the service still holds the second: no buffering.
        first = await asyncio.wait_for(anext(chunks), 5)
        assert "data: first" in first
        fake.release.set()
        rest = "".join([chunk async for chunk in chunks])
    assert "data: second" in rest


async def test_many_open_log_streams_hold_no_other_request_back() -> None:
    """More people watching runs than httpx's default pool of 100 connections: every other
    request through the console waited for one and was a 502 after 10 s."""
    fake = FakeService()
    watchers, unlimited = 150, httpx.Limits(max_connections=None)
    async with (
        ServedApp(fake.app) as upstream,
        ServedApp(create_app(settings(upstream.url))) as console,
        httpx.AsyncClient(base_url=console.url, limits=unlimited) as client,
        contextlib.AsyncExitStack() as streams,
    ):
        for _ in range(watchers):
            stream = client.stream("GET", "/api/v1/executions/e1/logs/stream")
            assert (await streams.enter_async_context(stream)).status_code == 200
        response = await client.get("/api/v1/panels/p1")
        assert response.status_code == 200, response.text
        fake.release.set()


async def test_head_passes_on_as_get_and_ends_after_the_headers(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    """HEAD reaches the service as GET (the services answer it as one too) and comes back
    without the body; a stream held open by the service ends at its headers."""
    client, _ = proxied
    got = await client.get("/api/v1/panels/p1")
    head = await client.head("/api/v1/panels/p1")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers.get("content-length") == got.headers.get("content-length")
    assert head.headers["x-upstream"] == "panel"
    stream = await asyncio.wait_for(client.head("/api/v1/executions/e1/logs/stream"), 5)
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.content == b""
    for method, path, allowed in (
        ("TRACE", "/api/v1/panels/p1", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
        ("POST", "/healthz", "GET, HEAD, OPTIONS"),
    ):
        refused = await client.request(method, path)
        assert refused.status_code == 405, path
        assert refused.headers["allow"] == allowed


async def test_an_unreachable_service_is_a_502_problem_and_an_unknown_path_a_404(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    client, _ = proxied
    down = await client.get("/api/v1/datasources")
    assert down.status_code == 502
    assert down.headers["content-type"] == "application/problem+json"
    assert "datasource-svc did not answer" in down.json()["detail"]
    assert down.json()["request_id"] == down.headers["x-request-id"]
    events = await client.post("/api/v1/events", json={})
    assert events.status_code == 404
    assert events.json()["request_id"]


async def test_dot_segments_in_any_spelling_reach_no_service(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    client, _ = proxied
    for path in ("panels/%2e%2e/%2e%2e/%2E%2E/metrics", "panels/..%2f..%2f..%2fmetrics"):
        escaped = await client.get(f"/api/v1/{path}")
        assert escaped.status_code == 404, path


async def test_characters_that_mean_something_in_a_url_reach_the_service_as_the_path(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    """Once passed on decoded: "?" and "#" cut the path short (a 307 from the service's
    slash redirect, or a query the client never sent) and a control character was a 500."""
    client, _ = proxied
    for escaped, character in [
        ("%3F", "?"),
        ("%3f", "?"),
        ("%23", "#"),
        ("%00", "\x00"),
        ("%09", "\t"),
        ("%7F", "\x7f"),
        ("%20", " "),
        ("%25", "%"),
        ("%2525", "%25"),
        ("%C3%A9", "\u00e9"),
    ]:
        response = await client.get(f"/api/v1/panels/a{escaped}b?x=1")
        assert response.status_code == 200, (escaped, response.text)
        assert response.json()["path"] == f"/api/v1/panels/a{character}b", escaped
        assert response.json()["query"] == "x=1", escaped
    # No route's path parameter takes a line break: the console's own 404.
    for escaped in ("%0A", "%0d%0a"):
        response = await client.get(f"/api/v1/panels/a{escaped}b")
        assert response.status_code == 404, escaped
        assert response.headers["content-type"] == "application/problem+json"


async def test_a_service_that_never_answers_is_a_504_and_a_log_stream_is_not_cut(
    proxied: tuple[httpx.AsyncClient, FakeService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console waited for ever (no read timeout, for the log streams' sake): a stopped
    service held every browser request to it."""
    client, fake = proxied
    monkeypatch.setattr(proxy, "ANSWER_TIMEOUT", httpx.Timeout(5.0, read=0.3))
    stuck = await client.get("/api/v1/templates/t1")
    assert stuck.status_code == 504
    assert "operation-svc did not answer in time" in stuck.json()["detail"]
    async with client.stream("GET", "/api/v1/executions/e1/logs/stream") as streamed:
        lines = streamed.aiter_lines()
        assert await anext(lines) == "id: 0"
        await asyncio.sleep(0.6)  # longer than an answer may take to start: a stream may
        fake.release.set()
        assert "second" in "".join([line async for line in lines])


async def test_a_body_over_the_cap_is_refused_before_it_is_read(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    client, _ = proxied
    response = await client.post("/api/v1/panels/p1/submissions", content=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert "CONSOLE_MAX_BODY_BYTES" in response.json()["detail"]


async def test_a_body_over_the_cap_is_refused_whatever_the_method(
    proxied: tuple[httpx.AsyncClient, FakeService],
) -> None:
    """A GET or DELETE body was read whole into the console's memory, however large (300 MB
    of one request, before any credential was looked at), and passed on."""
    client, _ = proxied
    for method in ("GET", "DELETE"):
        response = await client.request(
            method, "/api/v1/panels/p1", content=b"x" * (1024 * 1024 + 1)
        )
        assert response.status_code == 413, method
        assert "CONSOLE_MAX_BODY_BYTES" in response.json()["detail"]
    small = await client.request("GET", "/api/v1/panels/p1", content=b"not json")
    assert small.status_code == 200  # a GET's body is no route's: only its size is bounded


async def test_the_development_sign_in_mints_a_token_for_the_development_user() -> None:
    app = create_app(settings("http://127.0.0.1:9", dev_tenant="acme"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        config = (await client.get("/console-config.json")).json()
        signed_in = await client.post("/console/dev-sign-in", json={"role": "viewer"})
    assert config["auth"] == {"mode": "development"}
    assert signed_in.status_code == 200
    assert signed_in.headers["cache-control"] == "no-store"  # a credential
    claims = jwt.decode(
        signed_in.json()["access_token"],
        AUTH.signing_secret(),
        algorithms=["HS256"],
        audience=AUTH.jwt_audience,
    )
    assert (claims["sub"], claims["tenant"], claims["roles"]) == ("dev-admin", "acme", ["viewer"])


async def test_outside_development_there_is_no_development_sign_in_and_oidc_is_required(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValidationError, match="CONSOLE_OIDC_AUTHORITY"):
        settings("http://127.0.0.1:9", environment="production")
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    production = settings(
        "http://127.0.0.1:9",
        environment="production",
        oidc_authority="https://login.example.com/realms/ops",
        oidc_client_id="console",
        static_dir=tmp_path,
    )
    transport = httpx.ASGITransport(app=create_app(production))
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        config = (await client.get("/console-config.json")).json()
        signed_in = await client.post("/console/dev-sign-in", json={"role": "admin"})
        page = await client.get("/panels/p1")
    assert config["auth"]["mode"] == "oidc"
    assert config["auth"]["authority"] == "https://login.example.com/realms/ops"
    assert signed_in.status_code == 405  # only the app's pages answer there: GET
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "<title>console</title>" in page.text


def test_a_development_console_given_a_secret_of_its_own_refuses_to_start() -> None:
    """Left at its default environment (development) but given the platform's real
    AUTH_JWT_SECRET, the console handed an admin token to whoever asked, which every service
    trusting that secret accepted. Only the published development secret signs such tokens,
    unless the setting says the platform is a development one."""
    with pytest.raises(ValidationError, match="CONSOLE_DEV_PLATFORM"):
        ConsoleSettings(auth=AUTH)
    assert ConsoleSettings(auth=AuthSettings(jwt_secret=None)).development  # make run's case
    assert ConsoleSettings(auth=AUTH, dev_platform=True).development


async def test_an_unbuilt_console_says_so(tmp_path: Path) -> None:
    app = create_app(settings("http://127.0.0.1:9", static_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        page = await client.get("/")
        ready = await client.get("/readyz")
    assert page.status_code == ready.status_code == 503
    assert "make install" in json.loads(page.text)["detail"]


async def test_the_page_may_not_be_framed_nor_load_from_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    production = settings(
        "http://127.0.0.1:9",
        static_dir=tmp_path,
        environment="production",
        oidc_authority="https://id.example.com/realms/ops",
        oidc_client_id="console",
    )
    transport = httpx.ASGITransport(app=create_app(production))
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        page = await client.get("/submissions/42")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "connect-src 'self' https://id.example.com;" in policy
    assert "script-src 'self' 'unsafe-eval';" in policy  # ajv compiles the forms' schemas
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_every_answer_of_the_console_itself_is_never_sniffed_nor_framed(
    tmp_path: Path,
) -> None:
    (tmp_path / "index.html").write_text("<!doctype html><title>console</title>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.js").write_text("console.log(1)")
    app = create_app(settings("http://127.0.0.1:9", static_dir=tmp_path))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        answers = [
            await client.get("/assets/app.js"),
            await client.get("/assets/missing.js"),
            await client.get("/console-config.json"),
            await client.post("/console/dev-sign-in", json={"role": "nobody"}),
        ]
    for answer in answers:
        assert answer.headers["x-content-type-options"] == "nosniff", answer.url
        assert answer.headers["x-frame-options"] == "DENY", answer.url
    assert "no-store" not in answers[0].headers.get("cache-control", "")  # scripts cached

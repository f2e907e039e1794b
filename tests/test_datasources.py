"""datasource-svc: dynamic options from a real local HTTP upstream, cached (in-process and
real Redis), coalesced, served stale when the upstream fails, and never pointed inside."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import socket
import sqlite3
import time
import uuid
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from datasource_svc.app import create_app
from datasource_svc.config import DatasourceSettings
from datasource_svc.models import DataSource
from datasource_svc.sources.fetch import UpstreamFailed, map_options
from tests.harness import (
    AUTH,
    REDIS_URL,
    ServedApp,
    auth_headers,
    free_port,
    local_client,
    migrated_copy,
    wait_until,
)

ADMIN = auth_headers(roles=("admin",))
VIEWER = auth_headers(roles=("viewer",))
CLUSTERS = {"eu": ["eu-1", "eu-2"], "us": ["us-1"]}
# Answers no option can be made of, and why.
ANSWERS = {
    "nested-deep": ("[" * 100_000 + "]" * 100_000, "the upstream's JSON is nested too deeply"),
    "nan": ('{"items": [{"id": NaN}]}', "the upstream did not answer JSON: NaN is not JSON"),
    "infinity": (
        '{"items": [{"id": "a", "name": -Infinity}]}',
        "the upstream did not answer JSON: -Infinity is not JSON",
    ),
    "huge-number": ('{"items": [{"id": 1e400}]}', "option 0 is a number too large to be read"),
    # Python's own error told the tester to call sys.set_int_max_str_digits().
    "long-integer": (
        '{"items": [{"id": ' + "9" * 4301 + "}]}",
        "the upstream's answer holds an integer of more than 4300 digits",
    ),
    "object": (
        '{"items": [{"id": {"a": [1]}}]}',
        "the value of option 0 is an object, not a string, a number or a boolean",
    ),
    "list-label": (
        '{"items": [{"id": "a", "name": "A"}, {"id": "b", "name": [1]}]}',
        "the label of option 1 is a list, not a string, a number or a boolean",
    ),
    "scalars": (
        '{"items": [{"id": true, "name": false}, {"id": 1.5, "name": 10}, {"id": true}]}',
        "",
    ),
    "lists": (json.dumps({"items": [list(range(100))] * 40}), ""),
}
TENFOLD = "[@,@,@,@,@,@,@,@,@,@][]|"  # each stage makes a list ten times longer


HOOK_REFUSAL = "no hook here \u202etxt.exe \x1b[2J"


class Upstream:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.down = False
        self.delay = 0.0
        self.waiting = 0  # requests held by ``delay`` now
        self.authorization: list[str | None] = []
        self.queries: list[dict[str, str]] = []
        self.query_strings: list[str] = []
        self.app = Starlette(
            routes=[
                Route("/regions", self.regions),
                Route("/clusters", self.clusters),
                Route("/redirect", self.redirect),
                Route("/redirect-nowhere", self.redirect_nowhere),
                Route("/odd", self.odd),
                Route("/encoded/{coding}", self.encoded),
                Route("/trickle", self.trickle),
                Route("/answer/{kind}", self.answer),
                Route("/hook", self.hook, methods=["POST"]),
                Route("/refuse-credential", self.refuse_credential),
            ]
        )

    async def regions(self, request: Request) -> Response:
        self.calls["regions"] += 1
        # Every one sent: a header sent twice shows as "a, b".
        self.authorization.append(", ".join(request.headers.getlist("authorization")) or None)
        self.queries.append(dict(request.query_params))
        self.query_strings.append(request.url.query)
        self.waiting += 1
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.waiting -= 1
        if self.down:
            return Response("boom", status_code=500)
        return JSONResponse(
            {"items": [{"id": "eu", "name": "Europe"}, {"id": "us", "name": "United States"}]}
        )

    async def refuse_credential(self, request: Request) -> Response:
        """An API refusing a credential, quoting it as many do."""
        sent = request.headers.get("authorization", "")
        return JSONResponse({"error": f"invalid credential {sent!r}"}, status_code=401)

    async def hook(self, _request: Request) -> Response:
        """A webhook receiver refusing, with what a terminal would obey in its answer."""
        return PlainTextResponse(HOOK_REFUSAL, status_code=404)

    async def clusters(self, request: Request) -> Response:
        region = request.query_params.get("region", "")
        self.calls[f"clusters:{region}"] += 1
        if self.down:
            return Response("boom", status_code=503)
        return JSONResponse({"clusters": [{"name": name} for name in CLUSTERS.get(region, [])]})

    async def odd(self, request: Request) -> Response:
        """Options whose text no form could use, as JSON's escapes spell it."""
        text = {"surrogate": "a\\ud800", "nul": "a\\u0000b"}[request.query_params["text"]]
        items = '[{"id": "fine", "name": "Fine"}, {"id": "x", "name": "' + text + '"}]'
        return Response('{"items": ' + items + "}", media_type="application/json")

    async def encoded(self, request: Request) -> Response:
        """The regions gzipped; or gzip that inflates past any cap (a bomb), or that is not gzip."""
        compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        body = {
            "gzip": gzip.compress(json.dumps({"items": [{"id": "eu", "name": "Europe"}]}).encode()),
            "bomb": b"".join(compressor.compress(b" " * (1 << 20)) for _ in range(64))
            + compressor.flush(),
            "broken": b"not gzip at all",
        }[request.path_params["coding"]]
        return Response(body, headers={"content-encoding": "gzip"})

    async def answer(self, request: Request) -> Response:
        return Response(ANSWERS[request.path_params["kind"]][0], media_type="application/json")

    async def trickle(self, _request: Request) -> Response:
        """The regions, a byte every 50 ms: each read is quick, the answer takes 4 s."""

        async def bytes_apart() -> AsyncIterator[bytes]:
            for byte in json.dumps({"items": [{"id": "eu", "name": "Europe"}] * 2}).encode():
                await asyncio.sleep(0.05)
                yield bytes([byte])

        return StreamingResponse(bytes_apart(), media_type="application/json")

    async def redirect(self, _request: Request) -> Response:
        return RedirectResponse("http://169.254.169.254/latest/meta-data/", status_code=302)

    async def redirect_nowhere(self, _request: Request) -> Response:
        return RedirectResponse("http://xn--/x", status_code=302)  # a host no client can call


@asynccontextmanager
async def datasource_api(
    tmp_path: Path,
    *,
    cache: str = "memory",
    allowed_hosts: tuple[str, ...] = ("127.0.0.1",),
    redis_url: str = REDIS_URL,
) -> AsyncIterator[httpx.AsyncClient]:
    prefix = f"idp-test:{uuid.uuid4().hex}:"
    async with migrated_copy(
        "sqlite", tmp_path, "datasource", f"datasource-{uuid.uuid4().hex[:6]}"
    ) as url:
        settings = DatasourceSettings(
            environment="test",
            database_url=url,
            auth=AUTH,
            redis_url=redis_url if cache == "redis" else None,
            redis_key_prefix=prefix,
            outbound_allowed_hosts=list(allowed_hosts),
        )
        try:
            async with (
                ServedApp(create_app(settings)) as served,
                local_client(served.url, timeout=30) as client,
            ):
                yield client
        finally:
            if cache == "redis":
                redis = Redis.from_url(REDIS_URL)
                keys = [key async for key in redis.scan_iter(f"{prefix}*")]
                if keys:
                    await redis.delete(*keys)
                await redis.aclose()


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    fake = Upstream()
    async with ServedApp(fake.app) as served:
        yield fake, served.url


@pytest.fixture(scope="module", params=["memory", "redis"])
async def api(
    request: pytest.FixtureRequest, module_tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """One datasource-svc per cache, shared by the module's tests: each makes its own sources
    (their options are cached by source) and its own upstream."""
    async with datasource_api(module_tmp_path, cache=request.param) as client:
        yield client


@pytest.fixture(params=["memory", "redis"])
async def own_api(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A datasource-svc of the test's own, whose database in ``tmp_path`` it reads."""
    async with datasource_api(tmp_path, cache=request.param) as client:
        yield client


async def source(api: httpx.AsyncClient, **fields: Any) -> str:
    body = {"slug": f"s-{uuid.uuid4().hex[:8]}", "name": "source", "source_type": "http"} | fields
    response = await api.post("/api/v1/datasources", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def resolve(api: httpx.AsyncClient, source_id: str, **values: Any) -> httpx.Response:
    return await api.post(
        f"/api/v1/datasources/{source_id}/resolve", json={"values": values}, headers=VIEWER
    )


async def resolved_from(api: httpx.AsyncClient, url: str, **fields: Any) -> httpx.Response:
    """The options of a new source with the regions' mapping whose upstream is ``url``."""
    return await resolve(api, await source(api, **regions(url, endpoint_url=url, **fields)))


def clusters(url: str, placeholder: str = "region") -> dict[str, Any]:
    """A source of the clusters of the region its ``placeholder`` names."""
    return {
        "endpoint_url": f"{url}/clusters",
        "query": {"region": f"{{{{{placeholder}}}}}"},
        "items_path": "clusters",
        "value_expr": "name",
    }


def regions(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "endpoint_url": f"{url}/regions",
        "items_path": "items",
        "value_expr": "id",
        "label_expr": "name",
    } | fields


async def test_options_are_mapped_cached_and_depend_on_other_fields(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    fake, url = upstream
    region_source = await source(api, **regions(url))
    first = (await resolve(api, region_source)).json()
    assert first["options"] == [
        {"value": "eu", "label": "Europe"},
        {"value": "us", "label": "United States"},
    ]
    assert (first["cached"], first["stale"]) == (False, False)
    second = (await resolve(api, region_source)).json()
    assert second["cached"] is True
    assert fake.calls["regions"] == 1

    cluster_source = await source(api, **clusters(url))
    eu = (await resolve(api, cluster_source, region="eu", unrelated="x")).json()
    us = (await resolve(api, cluster_source, region="us")).json()
    again = (await resolve(api, cluster_source, region="eu", unrelated="y")).json()
    assert [o["value"] for o in eu["options"]] == ["eu-1", "eu-2"]
    assert [o["value"] for o in us["options"]] == ["us-1"]
    assert again["cached"] is True  # only the values the source uses key the cache
    assert (fake.calls["clusters:eu"], fake.calls["clusters:us"]) == (1, 1)


async def test_twenty_concurrent_cold_requests_make_one_upstream_call(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    fake, url = upstream
    fake.delay = 0.3
    source_id = await source(api, **regions(url))
    responses = await asyncio.gather(*(resolve(api, source_id) for _ in range(20)))
    assert {response.status_code for response in responses} == {200}
    assert fake.calls["regions"] == 1
    assert sum(not r.json()["cached"] for r in responses) == 1


async def test_a_failing_upstream_serves_the_last_good_options_marked_stale(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    fake, url = upstream
    source_id = await source(api, **regions(url, ttl_seconds=0))
    good = (await resolve(api, source_id)).json()
    fake.down = True
    stale = (await resolve(api, source_id)).json()
    assert stale["stale"] is True
    assert stale["options"] == good["options"]
    assert fake.calls["regions"] == 2

    never_good = await source(api, **clusters(url))
    failed = await resolve(api, never_good, region="eu")
    assert failed.status_code == 502
    assert failed.headers["content-type"] == "application/problem+json"
    assert "HTTP 503" in failed.json()["detail"]


@pytest.mark.parametrize(("text", "says"), [("surrogate", "lone surrogate"), ("nul", "NUL")])
async def test_options_with_text_no_form_can_use_are_a_502_naming_the_option(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], text: str, says: str
) -> None:
    """Once a 500: a lone surrogate has no UTF-8, so the answer could not even be written."""
    _, url = upstream
    odd = await source(api, **regions(url, endpoint_url=f"{url}/odd", query={"text": text}))
    response = await resolve(api, odd)
    assert response.status_code == 502, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "the label of option 1 " in detail
    assert says in detail


async def test_an_encoded_answer_is_decoded_and_a_bomb_inflates_no_further_than_the_cap(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    gzipped = await resolved_from(api, f"{url}/encoded/gzip")
    assert gzipped.status_code == 200, gzipped.text
    assert gzipped.json()["options"] == [{"value": "eu", "label": "Europe"}]
    bomb = await resolved_from(api, f"{url}/encoded/bomb")
    assert bomb.status_code == 502, bomb.text
    assert bomb.json()["detail"].endswith(
        f"the response exceeds {2 * 1024 * 1024} bytes (DATASOURCE_RESPONSE_CAP_BYTES)"
    )
    broken = await resolved_from(api, f"{url}/encoded/broken")
    assert broken.status_code == 502, broken.text
    assert (
        "the upstream's answer could not be read: the body does not decode"
        in (broken.json()["detail"])
    )


@pytest.mark.parametrize("kind", [kind for kind, (_, why) in ANSWERS.items() if why])
async def test_an_answer_no_option_can_be_made_of_is_a_502_saying_why(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], kind: str
) -> None:
    """Once a 500 (nesting), or options Python spelled: ``{'a': [1]}``, ``inf``, ``nan``."""
    _, url = upstream
    response = await resolved_from(api, f"{url}/answer/{kind}")
    assert response.status_code == 502, response.text
    assert ANSWERS[kind][1] in response.json()["detail"]


async def test_numbers_and_booleans_are_options_as_json_writes_them_each_value_once(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    response = await resolved_from(api, f"{url}/answer/scalars")
    assert response.json()["options"] == [
        {"value": "true", "label": "false"},
        {"value": "1.5", "label": "10"},
    ]


async def test_a_slow_upstream_is_a_504(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    fake, url = upstream
    fake.delay = 1.5
    response = await resolve(api, await source(api, **regions(url, timeout_seconds=0.3)))
    assert response.status_code == 504
    assert "0.3s" in response.json()["detail"]


async def test_an_answer_trickled_past_the_timeout_is_a_504(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    response = await resolved_from(api, f"{url}/trickle", timeout_seconds=0.5)
    assert response.status_code == 504, response.text
    assert "0.5s" in response.json()["detail"]


async def test_an_unreachable_redis_is_a_503_naming_it(
    tmp_path: Path, upstream: tuple[Upstream, str]
) -> None:
    """Each lookup of an http source was a bare 500, though its upstream was up."""
    fake, url = upstream
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    async with datasource_api(tmp_path, cache="redis", redis_url=nowhere) as api:
        source_id = await source(api, **regions(url))
        response = await resolve(api, source_id)
        listed = await source(api, source_type="static", options=[{"value": "a", "label": "A"}])
        static = await resolve(api, listed)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert "DATASOURCE_REDIS_URL" in response.json()["detail"]
    assert fake.calls["regions"] == 0
    assert static.json()["options"] == [{"value": "a", "label": "A"}]


async def test_refresh_invalidates_the_cache(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    fake, url = upstream
    source_id = await source(api, **regions(url))
    await resolve(api, source_id)
    await resolve(api, source_id)
    refreshed = await api.post(f"/api/v1/datasources/{source_id}/refresh", headers=ADMIN)
    assert refreshed.status_code == 204
    assert (await resolve(api, source_id)).json()["cached"] is False
    assert fake.calls["regions"] == 2


@pytest.mark.parametrize("ttl_seconds", [0, 300])
async def test_options_from_before_a_refresh_are_not_served_when_the_upstream_fails(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], ttl_seconds: int
) -> None:
    """The last-good copy outlived the refresh: an option withdrawn by refreshing came back,
    marked stale, whenever the upstream failed (and submissions took it for 7 days)."""
    fake, url = upstream
    source_id = await source(api, **regions(url, ttl_seconds=ttl_seconds))
    assert (await resolve(api, source_id)).status_code == 200
    fake.down = True
    assert (await resolve(api, source_id)).json()["stale"] is (ttl_seconds == 0)
    await api.post(f"/api/v1/datasources/{source_id}/refresh", headers=ADMIN)
    for _ in range(2):
        after = await resolve(api, source_id)
        assert after.status_code == 502, after.text
    fake.down = False
    assert (await resolve(api, source_id)).json()["stale"] is False
    fake.down = True
    assert (await resolve(api, source_id)).status_code == 200  # last good since the refresh


async def test_the_test_endpoint_shows_the_raw_excerpt_and_mapped_options(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    good = await api.post(
        f"/api/v1/datasources/{await source(api, **regions(url))}/test", json={}, headers=ADMIN
    )
    assert good.json()["status_code"] == 200
    assert '"Europe"' in good.json()["response_excerpt"]
    assert len(good.json()["options"]) == 2
    wrong_path = await source(api, **regions(url, items_path="nothing_here"))
    broken = (
        await api.post(f"/api/v1/datasources/{wrong_path}/test", json={}, headers=ADMIN)
    ).json()
    assert broken["error"] == "items_path 'nothing_here' did not select a list"
    assert '"Europe"' in broken["response_excerpt"]


@pytest.mark.parametrize("expression", ["abs(name)", "join(',', id)", "length(`1`)"])
async def test_an_expression_that_does_not_fit_the_answer_is_a_502_and_a_tests_error(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], expression: str
) -> None:
    """A JMESPath function given the wrong type (``abs`` of a text) was a 500."""
    _, url = upstream
    misfit = await source(api, **regions(url, value_expr=expression))
    resolved = await resolve(api, misfit)
    assert resolved.status_code == 502, resolved.text
    assert "the mapping does not fit the upstream's answer" in resolved.json()["detail"]
    tried = await api.post(f"/api/v1/datasources/{misfit}/test", json={}, headers=ADMIN)
    assert tried.status_code == 200, tried.text
    assert tried.json()["error"].startswith("the mapping does not fit")
    assert '"Europe"' in tried.json()["response_excerpt"]


async def multiplying_source(api: httpx.AsyncClient, url: str, stages: int, **more: Any) -> str:
    """A source whose value expression makes each item's list ten times longer ``stages``
    times over."""
    return await source(
        api,
        endpoint_url=f"{url}/answer/lists",
        items_path="items",
        value_expr=TENFOLD * stages + "length(@)",
        **more,
    )


async def test_a_mapping_that_multiplies_its_input_is_stopped_and_never_holds_others(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    """Five tenfold stages per item (the finding's 105 characters and one more) held the
    service for minutes, every tenant's lookups waiting, and took GBs."""
    _, url = upstream
    heavy = await multiplying_source(api, url, stages=5, ttl_seconds=0)
    light = await source(api, **regions(url, ttl_seconds=0))
    held = asyncio.ensure_future(resolve(api, heavy))
    await asyncio.sleep(0.2)  # the heavy mapping runs
    other = await resolve(api, light)
    assert not held.done()  # answered while it ran, not after
    assert other.status_code == 200
    stopped = await held
    assert stopped.status_code == 502, stopped.text
    assert "the mapping builds more than" in stopped.json()["detail"]


async def test_a_mapping_past_the_sources_timeout_is_a_504_naming_it(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    slow = await multiplying_source(api, url, stages=3, timeout_seconds=0.1)
    response = await resolve(api, slow)
    assert response.status_code == 504, response.text  # the fetch's or the mapping's
    assert "timeout_seconds (0.1s)" in response.json()["detail"]


def test_a_mapping_stops_at_its_deadline() -> None:
    """Whatever the fetch took, the mapping stops once the source's time is up."""
    source = DataSource(items_path="items", value_expr="@", timeout_seconds=0.1, max_options=10)
    with pytest.raises(UpstreamFailed) as stopped:
        map_options(source, {"items": ["a", "b"]}, deadline=time.monotonic())
    assert stopped.value.timed_out
    assert "mapping the upstream's answer took longer than" in str(stopped.value)


@pytest.mark.parametrize("attribute", ["items_path", "value_expr", "label_expr"])
@pytest.mark.parametrize("expression", ["!" * 480 + "@", "!" * 33 + "@", "a|" * 40 + "b"])
async def test_a_deeply_nested_expression_is_a_422_naming_it(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], attribute: str, expression: str
) -> None:
    """``"!"`` 480 times was a 500 at save; 470 times saved, then a 500 at every lookup."""
    _, url = upstream
    body = {"slug": "deep", "name": "deep", "source_type": "http"} | regions(url)
    response = await api.post(
        "/api/v1/datasources", json=body | {attribute: expression}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == attribute
    assert "nested more than 32 levels deep" in error["message"]


@pytest.mark.parametrize(("value", "sent"), [(0, "0"), (False, "false"), (0.0, "0.0")])
async def test_the_test_endpoint_sends_the_values_resolve_sends(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], value: object, sent: str
) -> None:
    """``test`` sent 0 and false as nothing: it tried another call than the form makes."""
    fake, url = upstream
    by_region = await source(api, **clusters(url))
    before = fake.calls[f"clusters:{sent}"]
    await api.post(
        f"/api/v1/datasources/{by_region}/test", json={"values": {"region": value}}, headers=ADMIN
    )
    assert fake.calls[f"clusters:{sent}"] == before + 1
    assert (await resolve(api, by_region, region=value)).status_code == 200
    assert fake.calls[f"clusters:{sent}"] == before + 2


async def test_auth_uses_a_secret_reference_and_never_returns_a_value(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = upstream
    monkeypatch.setenv("IDP_SECRET_ACME__UPSTREAM_TOKEN", "s3cr3t-token-value")
    source_id = await source(
        api,
        **regions(url),
        auth_config={
            "type": "bearer",
            "secret": {"provider": "env", "key": "IDP_SECRET_ACME__UPSTREAM_TOKEN"},
        },
    )
    await resolve(api, source_id)
    assert fake.authorization == ["Bearer s3cr3t-token-value"]
    shown = await api.get(f"/api/v1/datasources/{source_id}", headers=ADMIN)
    assert "s3cr3t" not in shown.text


async def test_a_secret_a_header_cannot_carry_is_refused_without_quoting_it(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A non-ASCII secret failed as the header was encoded, and the error said which of its
    characters and where ('\\xe4' in position 8) to whoever looked the options up. Basic
    auth, which base64-encodes it, still sends it."""
    fake, url = upstream
    monkeypatch.setenv("IDP_SECRET_ACME__UPSTREAM_TOKEN", "p\u00e4ssw\u00f6rd-value")
    secret = {"provider": "env", "key": "IDP_SECRET_ACME__UPSTREAM_TOKEN"}
    bearer = await source(api, **regions(url), auth_config={"type": "bearer", "secret": secret})
    looked_up = await resolve(api, bearer)
    tested = await api.post(f"/api/v1/datasources/{bearer}/test", json={}, headers=ADMIN)
    for answer in (looked_up, tested):
        assert "not printable ASCII" in answer.text, answer.text
        assert "position" not in answer.text
        assert "xe4" not in answer.text

    basic = {"type": "basic", "username": "svc", "secret": secret}
    assert (await resolve(api, await source(api, **regions(url), auth_config=basic))).is_success
    assert (fake.authorization[-1] or "").startswith("Basic ")


async def test_a_secret_the_upstream_quotes_is_masked_in_the_excerpt(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upstream refusing the credential it was sent, quoting it, had the test show the
    secret's value in its excerpt, which no admin may otherwise read."""
    _, url = upstream
    monkeypatch.setenv("IDP_SECRET_ACME__UPSTREAM_TOKEN", "s3cr3t-token-value")
    secret = {"provider": "env", "key": "IDP_SECRET_ACME__UPSTREAM_TOKEN"}
    for auth in ({"type": "bearer"}, {"type": "basic", "username": "svc"}):
        source_id = await source(
            api,
            **regions(url) | {"endpoint_url": f"{url}/refuse-credential"},
            auth_config=auth | {"secret": secret},
        )
        tested = await api.post(f"/api/v1/datasources/{source_id}/test", json={}, headers=ADMIN)
        assert "invalid credential" in tested.json()["response_excerpt"], tested.text
        assert "s3cr3t" not in tested.text
        assert base64.b64encode(b"svc:s3cr3t-token-value").decode() not in tested.text


async def test_credentials_written_into_a_source_are_sent_never_shown(
    own_api: httpx.AsyncClient, upstream: tuple[Upstream, str], tmp_path: Path
) -> None:
    """Literal credentials in a source's headers and URL were shown to every viewer and
    kept in the audit log. Shown masked now; a change sending the masks back keeps them."""
    fake, url = upstream
    written = {
        "endpoint_url": f"{url}/regions?access_token=lit-url-token&Api%5FKey=lit-encoded",
        "headers": {"Authorization": "Bearer lit-header", "x-api-key": "lit-key"},
        "query": {"token": "lit-query", "region": "eu"},
    }
    source_id = await source(own_api, **regions(url) | written)
    path = f"/api/v1/datasources/{source_id}"
    shown = (await own_api.get(path, headers=VIEWER)).json()
    assert {name: shown[name] for name in written} == {
        "endpoint_url": f"{url}/regions?access_token=***&Api%5FKey=***",
        "headers": {"Authorization": "***", "x-api-key": "***"},
        "query": {"token": "***", "region": "eu"},
    }
    sent_back = {name: shown[name] for name in written} | {"label_expr": "id"}
    patched = await own_api.patch(path, json=sent_back, headers=ADMIN)
    assert patched.status_code == 200, patched.text
    await resolve(own_api, source_id)
    assert fake.authorization == ["Bearer lit-header"]
    in_url = {"access_token": "lit-url-token", "Api_Key": "lit-encoded"}
    assert fake.queries == [in_url | {"token": "lit-query", "region": "eu"}]
    (database,) = await asyncio.to_thread(lambda: list(tmp_path.glob("datasource-*.db")))
    with sqlite3.connect(database) as connection:
        audited = connection.execute("SELECT changes FROM audit_log").fetchall()
        (kept,) = connection.execute("SELECT endpoint_url FROM data_sources").fetchone()
    assert kept == written["endpoint_url"]
    seen = json.dumps([shown, patched.json(), audited])
    assert "lit-" not in seen


@pytest.mark.parametrize("kept", ["headers", "query", "endpoint_url", "left out"])
async def test_credentials_shown_masked_are_kept_for_their_host_only(
    own_api: httpx.AsyncClient, upstream: tuple[Upstream, str], kept: str
) -> None:
    """A change of the source's host (or port) that sent the masks back kept the credentials,
    which the source then sent to a host of the editor's choosing; so did one that left the
    headers and query out."""
    fake, url = upstream
    written = {
        "endpoint_url": f"{url}/regions?access_token=lit-url-token",
        "headers": {"Authorization": "Bearer lit-header"},
        "query": {"token": "lit-query"},
    }
    path = f"/api/v1/datasources/{await source(own_api, **regions(url) | written)}"
    host, port = url.rsplit(":", 1)
    elsewhere = f"{host}:{int(port) + 1}"
    masks: dict[str, dict[str, Any]] = {
        "headers": {"headers": {"Authorization": "***"}},
        "query": {"query": {"token": "***"}},
        "endpoint_url": {"endpoint_url": f"{elsewhere}/regions?access_token=***"},
        "left out": {},
    }
    moved = {"endpoint_url": f"{elsewhere}/regions"} | masks[kept]
    refused = await own_api.patch(path, json=moved, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert [error["field"] for error in refused.json()["errors"]] == ["endpoint_url"]
    given_anew = await own_api.patch(path, json={"endpoint_url": f"{url}/regions"}, headers=ADMIN)
    assert given_anew.status_code == 200, given_anew.text
    await resolve(own_api, path.rsplit("/", 1)[1])
    assert fake.authorization == ["Bearer lit-header"]


async def test_the_query_written_in_the_url_is_sent_before_the_sources_query(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    """httpx's ``params=`` replaced the URL's query: ``?env=prod`` was saved and shown, and
    the upstream was asked for every environment's options."""
    fake, url = upstream
    written = "env=prod&tag=a&tag=b&q=a+b%26c&Api%5FKey=k"
    await resolve(api, await source(api, **regions(url, endpoint_url=f"{url}/regions?{written}")))
    by_region = regions(url, endpoint_url=f"{url}/regions?env=prod", query={"r": "{{region}}"})
    await resolve(api, await source(api, **by_region), region="eu&env=dev")
    assert fake.query_strings == [written, "env=prod&r=eu%26env%3Ddev"]


async def test_values_too_long_for_a_url_are_a_502_saying_so(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    """A query past the 64 KiB the HTTP client takes in a URL was a 500 (and a panel's
    submission of two long dependent values a 502 saying only that)."""
    fake, url = upstream
    answer = await resolve(api, await source(api, **clusters(url)), region="\u65e5" * 8000)
    assert answer.status_code == 502, answer.text
    assert "more than a URL can carry" in answer.json()["detail"]
    assert fake.calls.total() == 0


@pytest.mark.parametrize(
    ("endpoint", "query"),
    [
        ("/regions?env=prod", {"env": "dev"}),
        ("/regions?a=1&env", {"env": "{{env}}"}),
        ("/regions?%65nv=prod", {"env": "dev"}),  # the name as the upstream reads it
        ("/regions?r%5Fid=1", {"r_id": "2"}),
    ],
)
async def test_a_name_in_the_urls_query_and_in_query_is_a_422_naming_it(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], endpoint: str, query: dict[str, str]
) -> None:
    _, url = upstream
    (name,) = query
    body = {"slug": "twice", "name": "twice", "source_type": "http"}
    created = await api.post(
        "/api/v1/datasources",
        json=body | regions(url, endpoint_url=url + endpoint, query=query),
        headers=ADMIN,
    )
    source_id = await source(api, **regions(url, query=query))
    patched = await api.patch(
        f"/api/v1/datasources/{source_id}", json={"endpoint_url": url + endpoint}, headers=ADMIN
    )
    for refused in (created, patched):
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == [f"query.{name}"]


@pytest.mark.parametrize(
    ("headers", "auth_header"),
    [
        ({"authorization": "Bearer written"}, None),
        ({"X-Key": "a"}, "x-key"),
        ({"X-Trace": "a", "x-trace": "b"}, None),
    ],
)
async def test_a_header_is_sent_once_or_the_source_is_a_422_naming_it(
    own_api: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, str],
    auth_header: str | None,
) -> None:
    """A header in ``headers`` that ``auth_config`` sets too, or named twice in two cases,
    went out twice: a 401 from a server that refuses that (this platform's services)."""
    fake, url = upstream
    monkeypatch.setenv("IDP_SECRET_ACME__UPSTREAM_TOKEN", "s3cr3t-token-value")
    secret = {"provider": "env", "key": "IDP_SECRET_ACME__UPSTREAM_TOKEN"}
    auth = (
        {"type": "bearer", "secret": secret}
        if auth_header is None
        else {"type": "header", "header_name": auth_header.upper(), "secret": secret}
    )
    body = {"slug": "twice", "name": "t", "source_type": "http"} | regions(url)
    created = await own_api.post(
        "/api/v1/datasources", json=body | {"headers": headers, "auth_config": auth}, headers=ADMIN
    )
    source_id = await source(own_api, **regions(url), auth_config=auth)
    patched = await own_api.patch(
        f"/api/v1/datasources/{source_id}", json={"headers": headers}, headers=ADMIN
    )
    for refused in (created, patched):
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == [
            f"headers.{list(headers)[-1]}"
        ]
    # A source saved before this was checked sends each once, the secret's value winning.
    (database,) = await asyncio.to_thread(lambda: list(tmp_path.glob("datasource-*.db")))
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE data_sources SET headers = ?, auth_config = NULL WHERE id = ?",
            (
                json.dumps({"Authorization": "Bearer a", "authorization": "Bearer b"}),
                source_id.replace("-", ""),
            ),
        )
    assert (await resolve(own_api, source_id)).status_code == 200
    assert fake.authorization == ["Bearer b"]


@pytest.mark.parametrize(
    "header_name",
    ["Host", "host", "HOST", "Content-Length", "transfer-encoding", "Connection", "Cookie"],
)
async def test_a_header_the_client_sets_cannot_carry_the_auth_secret(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str], header_name: str
) -> None:
    """``Host`` sent the call to another virtual host behind the checked address, with the
    secret as its name; the others broke every call or were replaced by the client's."""
    _, url = upstream
    auth = {
        "type": "header",
        "header_name": header_name,
        "secret": {"provider": "env", "key": "IDP_SECRET_ACME__UPSTREAM_TOKEN"},
    }
    body = {"slug": "auth-header", "name": "a", "source_type": "http"} | regions(url)
    created = await api.post(
        "/api/v1/datasources", json=body | {"auth_config": auth}, headers=ADMIN
    )
    source_id = await source(api, **regions(url))
    patched = await api.patch(
        f"/api/v1/datasources/{source_id}", json={"auth_config": auth}, headers=ADMIN
    )
    for refused in (created, patched):
        assert refused.status_code == 422, refused.text
        assert [error["field"] for error in refused.json()["errors"]] == ["auth_config.header_name"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"endpoint_url": "ftp://example.com/x"}, "endpoint_url"),
        # URLs no call could use: each answered 500 when the source was tried or resolved.
        ({"endpoint_url": "http://xn--/x"}, "endpoint_url"),
        ({"endpoint_url": "http://example.com:80a/x"}, "endpoint_url"),
        ({"endpoint_url": "http://example.com:99999/x"}, "endpoint_url"),
        # Called as another URL than the one saved: a relative one, a host with %20 in it.
        ({"endpoint_url": " https://example.com/x"}, "endpoint_url"),
        ({"endpoint_url": "https://example.com /x"}, "endpoint_url"),
        ({"endpoint_url": "https://example.com/x\n"}, "endpoint_url"),
        # {{x}} is filled in query values and body values only; elsewhere it was sent as written.
        ({"endpoint_url": "https://{{x}}.example.com/"}, "endpoint_url"),
        ({"endpoint_url": "https://example.com/{{x}}"}, "endpoint_url"),
        ({"endpoint_url": "https://example.com/a?r={{ x }}"}, "endpoint_url"),
        ({"endpoint_url": "https://example.com/a#{{x}}"}, "endpoint_url"),
        ({"endpoint_url": "https://example.com/", "query": {"{{x}}": "1"}}, "query"),
        ({"endpoint_url": "https://example.com/", "body": {"{{x}}": "v"}}, "body.{{x}}"),
        (
            {"endpoint_url": "https://example.com/", "body": {"a": [1, {"k{{x}}": 1}]}},
            "body.a.1.k{{x}}",
        ),
        ({"endpoint_url": "https://example.com/", "headers": {"Host": "admin"}}, "headers"),
        ({"endpoint_url": "https://example.com/", "headers": {"X A": "v"}}, "headers"),
        ({"endpoint_url": "https://example.com/", "headers": {"X-A": "caf\u00e9"}}, "headers"),
        ({"endpoint_url": "https://example.com/", "headers": {"X-A": "a\r\nB: c"}}, "headers"),
        ({"endpoint_url": "https://example.com/", "items_path": "items[?"}, "items_path"),
        # A boolean is no number (true was a TTL of 1 s), nor is a number's text.
        ({"endpoint_url": "https://example.com/", "ttl_seconds": True}, "ttl_seconds"),
        ({"endpoint_url": "https://example.com/", "ttl_seconds": False}, "ttl_seconds"),
        ({"endpoint_url": "https://example.com/", "ttl_seconds": "300"}, "ttl_seconds"),
        ({"endpoint_url": "https://example.com/", "ttl_seconds": 1.5}, "ttl_seconds"),
        ({"endpoint_url": "https://example.com/", "timeout_seconds": True}, "timeout_seconds"),
        ({"endpoint_url": "https://example.com/", "timeout_seconds": "5"}, "timeout_seconds"),
        ({"endpoint_url": "https://example.com/", "max_options": True}, "max_options"),
        ({}, "body"),  # http without an endpoint
        ({"source_type": "static"}, "body"),  # static without options
        (
            {"source_type": "static", "options": [{"value": "a", "label": "A"}] * 2},
            "options.1.value",
        ),
    ],
)
async def test_bad_definitions_are_422(
    api: httpx.AsyncClient, fields: dict[str, Any], field: str
) -> None:
    body = {"slug": "bad", "name": "bad", "source_type": "http"} | fields
    response = await api.post("/api/v1/datasources", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert field in {error["field"] for error in response.json()["errors"]}


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:9/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:9/x",
        "http://[::1]:9/",
        "http://localhost:9/",
        "http://127.1:9/",
        "http://0x7f.0.0.1:9/",
        "http://2130706433:9/",
        "http://LOCALHOST./x",
        "http://a.localhost/x",
    ],
)
async def test_internal_addresses_are_refused_at_definition(tmp_path: Path, endpoint: str) -> None:
    async with datasource_api(tmp_path, allowed_hosts=()) as api:
        response = await api.post(
            "/api/v1/datasources",
            json={"slug": "internal", "name": "x", "source_type": "http", "endpoint_url": endpoint},
            headers=ADMIN,
        )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "internal_address"
    assert "DATASOURCE_OUTBOUND_ALLOWED_HOSTS" in response.json()["errors"][0]["message"]


async def test_names_resolving_inside_and_redirects_inside_are_refused_when_called(
    tmp_path: Path, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    port = url.rsplit(":", 1)[1]
    async with datasource_api(tmp_path, allowed_hosts=("127.0.0.1",)) as api:
        # A name of this machine (localhost itself is refused when the source is saved).
        by_name = await source(api, endpoint_url=f"http://{socket.gethostname()}:{port}/regions")
        redirected = await source(api, endpoint_url=f"{url}/redirect")
        for source_id in (by_name, redirected):
            response = await resolve(api, source_id)
            assert response.status_code == 502
            assert "outbound call refused" in response.json()["detail"]


async def test_a_redirect_to_a_host_no_client_can_call_is_a_502(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    source_id = await source(api, endpoint_url=f"{url}/redirect-nowhere")
    response = await resolve(api, source_id)
    assert response.status_code == 502, response.text
    assert "the request could not be made" in response.json()["detail"]
    tried = await api.post(f"/api/v1/datasources/{source_id}/test", json={}, headers=ADMIN)
    assert tried.status_code == 200
    assert "the request could not be made" in tried.json()["error"]


async def test_a_patch_changes_the_mapping_and_the_next_resolve_follows_it(
    own_api: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = upstream
    monkeypatch.setenv("IDP_SECRET_ACME__UPSTREAM_TOKEN", "s3cr3t-token-value")
    source_id = await source(own_api, **regions(url))
    await resolve(own_api, source_id)
    assert (await resolve(own_api, source_id)).json()["cached"] is True
    auth = {
        "type": "bearer",
        "secret": {"provider": "env", "key": "IDP_SECRET_ACME__UPSTREAM_TOKEN"},
    }
    patched = await own_api.patch(
        f"/api/v1/datasources/{source_id}",
        json={"value_expr": "name", "label_expr": "id", "auth_config": auth},
        headers=ADMIN,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["value_expr"] == "name"
    assert patched.json()["endpoint_url"] == f"{url}/regions"  # omitted: kept

    after = (await resolve(own_api, source_id)).json()
    assert after["cached"] is False
    assert after["options"] == [
        {"value": "Europe", "label": "eu"},
        {"value": "United States", "label": "us"},
    ]
    assert fake.calls["regions"] == 2
    assert fake.authorization[-1] == "Bearer s3cr3t-token-value"

    (database,) = await asyncio.to_thread(lambda: list(tmp_path.glob("datasource-*.db")))
    with sqlite3.connect(database) as connection:
        (changes,) = connection.execute(
            "SELECT changes FROM audit_log WHERE action = 'datasource.update'"
        ).fetchone()
    assert json.loads(changes) == {
        "value_expr": "name",
        "label_expr": "id",
        "auth_config": {"type": "bearer", "secret": "***"},
    }


async def test_a_patch_of_the_name_keeps_the_cached_options(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    fake, url = upstream
    source_id = await source(api, **regions(url))
    await resolve(api, source_id)
    renamed = await api.patch(
        f"/api/v1/datasources/{source_id}", json={"name": "Regions"}, headers=ADMIN
    )
    assert renamed.json()["name"] == "Regions"
    assert (await resolve(api, source_id)).json()["cached"] is True
    assert fake.calls["regions"] == 1


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"items_path": "items[?"}, "items_path", "value_error"),
        ({"endpoint_url": "ftp://example.com/x"}, "endpoint_url", "value_error"),
        ({"endpoint_url": "http://169.254.169.254/latest/"}, "endpoint_url", "internal_address"),
        ({"name": None}, "name", "not_nullable"),
        ({"slug": "Not A Slug"}, "slug", "string_pattern_mismatch"),
        ({"source_type": "static"}, "body", "value_error"),  # static without options
        ({"colour": "blue"}, "colour", "extra_forbidden"),
        ({"endpoint_url": "http://127.0.0.1:9/{{x}}"}, "endpoint_url", "value_error"),
        ({"body": {"{{x}}": "v"}}, "body.{{x}}", "placeholder_in_key"),
        ({"ttl_seconds": True}, "ttl_seconds", "int_type"),
        ({"max_options": "10"}, "max_options", "int_type"),
        ({"timeout_seconds": False}, "timeout_seconds", "float_type"),
    ],
)
async def test_a_bad_patch_is_a_422_naming_the_field_and_changes_nothing(
    api: httpx.AsyncClient,
    upstream: tuple[Upstream, str],
    change: dict[str, Any],
    field: str,
    code: str,
) -> None:
    _, url = upstream
    source_id = await source(api, **regions(url))
    before = (await api.get(f"/api/v1/datasources/{source_id}", headers=ADMIN)).json()
    response = await api.patch(f"/api/v1/datasources/{source_id}", json=change, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (field, code) in {(e["field"], e["code"]) for e in response.json()["errors"]}
    after = (await api.get(f"/api/v1/datasources/{source_id}", headers=ADMIN)).json()
    assert after == before


async def test_a_patch_to_a_taken_slug_is_a_409(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    taken = await api.get(f"/api/v1/datasources/{await source(api, **regions(url))}", headers=ADMIN)
    other = await source(api, **regions(url))
    response = await api.patch(
        f"/api/v1/datasources/{other}", json={"slug": taken.json()["slug"]}, headers=ADMIN
    )
    assert response.status_code == 409


async def test_only_admins_of_the_tenant_patch_a_source(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    _, url = upstream
    path = f"/api/v1/datasources/{await source(api, **regions(url))}"
    other_tenant = auth_headers(tenant="globex", roles=("admin",))
    assert (await api.patch(path, json={"name": "x"}, headers=other_tenant)).status_code == 404
    assert (await api.patch(path, json={"name": "x"}, headers=VIEWER)).status_code == 403
    assert (await api.get(path, headers=VIEWER)).json()["name"] == "source"


async def test_a_slow_upstream_holds_up_no_other_source(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    """Resolving only reads the database: no write transaction (SQLite's single write turn)
    stays open while the upstream answers, so another source resolves meanwhile."""
    fake, url = upstream
    slow = await source(api, **regions(url))
    quick = await source(
        api, endpoint_url=f"{url}/clusters", items_path="clusters", value_expr="name"
    )
    fake.delay = 2.0
    waiting = asyncio.create_task(resolve(api, slow))
    await wait_until(lambda: fake.waiting)  # waiting on the upstream now
    started = time.monotonic()
    assert (await resolve(api, quick)).status_code == 200
    assert time.monotonic() - started < 1.0
    assert (await waiting).status_code == 200


async def test_a_static_sources_test_shows_its_options_and_calls_nothing(
    api: httpx.AsyncClient, upstream: tuple[Upstream, str]
) -> None:
    """It ran the upstream call anyway and answered ``outbound call refused: only http and
    https are allowed, not ``, which the console showed as a failed test."""
    fake, url = upstream
    options = [{"value": "eu", "label": "Europe"}, {"value": "us", "label": "US"}]
    static = await source(api, source_type="static", options=options)
    for values in ({}, {"region": "eu"}, {"endpoint_url": url}):
        tried = await api.post(
            f"/api/v1/datasources/{static}/test", json={"values": values}, headers=ADMIN
        )
        assert tried.status_code == 200, tried.text
        assert tried.json() == {
            "status_code": None,
            "response_excerpt": None,
            "options": options,
            "error": None,
        }
        assert (await resolve(api, static, **values)).json()["options"] == options
    # A source made static keeps no upstream call, whatever it had been.
    was_http = await source(api, **regions(url))
    changed = await api.patch(
        f"/api/v1/datasources/{was_http}",
        json={"source_type": "static", "options": options[:1]},
        headers=ADMIN,
    )
    assert changed.status_code == 200, changed.text
    calls = dict(fake.calls)
    tried = await api.post(f"/api/v1/datasources/{was_http}/test", json={}, headers=ADMIN)
    assert (tried.json()["options"], tried.json()["error"]) == (options[:1], None)
    assert fake.calls == calls

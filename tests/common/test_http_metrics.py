"""HTTP metrics on /metrics: each request counted under its route template, method and
status (an unrouted one under "none", one that raised as a 500), probes and scrapes left out."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI, HTTPException

from idp_common.telemetry import instrument_app


def app_with_metrics() -> FastAPI:
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: int) -> dict[str, int]:
        if thing_id == 0:
            raise HTTPException(404, "no thing 0")
        return {"id": thing_id}

    @app.post("/explode")
    async def explode() -> None:
        raise RuntimeError("boom")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    instrument_app(app)
    return app


async def test_requests_are_counted_by_route_template_method_and_status() -> None:
    transport = httpx.ASGITransport(app=app_with_metrics(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for path in ("/things/1", "/things/2", "/things/0", "/nowhere", "/healthz"):
            await client.get(path)
        assert (await client.post("/explode")).status_code == 500
        for method in ("FOO", "BAR", "PROPFIND"):  # each was a series of every route
            await client.request(method, "/things/1")
        await client.get("/metrics")
        metrics = (await client.get("/metrics")).text

    def count(handler: str, method: str, status: str) -> float:
        line = f'http_requests_total{{handler="{handler}",method="{method}",status="{status}"}}'
        found = [row for row in metrics.splitlines() if row.startswith(line + " ")]
        return float(found[0].split()[-1]) if found else 0.0

    assert count("/things/{thing_id}", "GET", "200") == 2
    assert count("/things/{thing_id}", "GET", "404") == 1
    assert count("none", "GET", "404") == 1
    assert count("/explode", "POST", "500") == 1
    assert count("/things/{thing_id}", "other", "405") == 3
    assert not {"FOO", "BAR", "PROPFIND"} & set(re.findall(r'method="([^"]+)"', metrics))
    assert 'handler="/healthz"' not in metrics
    assert 'handler="/metrics"' not in metrics
    assert (
        'http_request_duration_seconds_count{handler="/things/{thing_id}",method="GET"} 3.0'
        in metrics
    )

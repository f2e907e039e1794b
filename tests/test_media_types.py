"""A body the routes cannot read as JSON, by its Content-Type or its Content-Encoding, is a
415 naming the header, on every service, and changes nothing. FastAPI took such a body as
bytes: a 422 saying "Input should be a valid dictionary", or "not UTF-8 JSON" for gzip."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.factories import new_execution, template
from tests.harness import LocalSQSServer, Platform, auth_headers, running_platform

ADMIN = auth_headers(roles=("admin",))
BODIES = {
    "panel": ("/api/v1/panels", {"slug": "p", "name": "P", "template": "t", "fields": []}),
    "operation": ("/api/v1/templates", {"slug": "t", "name": "T", "command_template": "echo"}),
    "datasource": (
        "/api/v1/datasources",
        {"slug": "d", "name": "D", "source_type": "static", "options": []},
    ),
}


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as running:
        yield running


def client(platform: Platform, service: str) -> httpx.AsyncClient:
    services = {"panel": platform.panel, "operation": platform.operation}
    found = (services | {"datasource": platform.datasource})[service]
    assert found is not None
    return found


@pytest.mark.parametrize("service", list(BODIES))
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/json",
        "application/jsonx",
        "application/json+x",
        "json",
        "application/octet-stream",
        "",
    ],
)
async def test_a_body_that_is_not_json_by_its_content_type_is_a_415(
    platform: Platform, service: str, content_type: str
) -> None:
    path, body = BODIES[service]
    api = client(platform, service)
    headers = ADMIN | ({"Content-Type": content_type} if content_type else {})
    response = await api.post(path, content=json.dumps(body), headers=headers)
    assert response.status_code == 415, response.text
    given = f"not {content_type!r}" if content_type else "which the request does not say"
    assert response.json()["errors"] == [
        {
            "field": "Content-Type",
            "message": "bodies are JSON: application/json (or an application/…+json type), "
            + given,
            "code": "unsupported_media_type",
        }
    ]
    assert (await api.get(path, headers=ADMIN)).json()["items"] == []


@pytest.mark.parametrize("service", list(BODIES))
@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "deflate", "br", "gzip, identity"])
async def test_an_encoded_body_is_a_415_naming_content_encoding(
    platform: Platform, service: str, encoding: str
) -> None:
    path, body = BODIES[service]
    api = client(platform, service)
    response = await api.post(
        path,
        content=gzip.compress(json.dumps(body).encode()),
        headers=ADMIN | {"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    assert response.status_code == 415, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("Content-Encoding", "unsupported_media_type")
    assert (await api.get(path, headers=ADMIN)).json()["items"] == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "Application/JSON; charset=UTF-8"},
        {"Content-Type": "application/merge-patch+json"},
        {"Content-Type": "application/json", "Content-Encoding": "identity"},
    ],
)
async def test_json_by_any_spelling_and_unencoded_is_taken(
    platform: Platform, headers: dict[str, str]
) -> None:
    slug = f"t{len(headers)}-{abs(hash(json.dumps(headers))) % 10**6}"
    body = {"slug": slug, "name": "T", "command_template": "echo"}
    response = await platform.operation.post(
        "/api/v1/templates", content=json.dumps(body), headers=ADMIN | headers
    )
    assert response.status_code == 201, response.text
    deleted = await platform.operation.delete(f"/api/v1/templates/{slug}", headers=ADMIN)
    assert deleted.status_code == 204


async def test_a_request_without_a_body_needs_no_content_type(platform: Platform) -> None:
    """``curl -X POST -d ''`` sends a form type with nothing in it."""
    await template(platform, "quiet", "sleep 30", [])
    execution = await new_execution(platform, "quiet")
    cancelled = await platform.operation.post(
        f"{execution}/cancel",
        headers=ADMIN | {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert cancelled.status_code == 202, cancelled.text

"""NUL bytes and lone surrogates in any text a client sends, to any service, are refused (422
naming where), never stored (NUL bytes made runs end ``lost`` and PostgreSQL cannot store
them; a lone surrogate has no UTF-8, and answered 500)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import (
    LocalSQSServer,
    Platform,
    assert_field_refused,
    auth_headers,
    eventually,
    running_platform,
)

ADMIN = auth_headers(roles=("admin",))
TEMPLATE = {"slug": "say", "name": "Say", "command_template": "echo {{m}}"}


@pytest.fixture
async def platform(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[Platform]:
    async with running_platform(
        backend, tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as running:
        yield running


def assert_refused(response: httpx.Response, field: str) -> None:
    assert_field_refused(response, field, "nul_byte")


def with_parameter(**changes: Any) -> dict[str, Any]:
    return TEMPLATE | {"parameters": [{"name": "m"} | changes]}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (with_parameter() | {"name": "Sa\x00y"}, "name"),
        (with_parameter() | {"command_template": "echo {{m}} \x00"}, "command_template"),
        (with_parameter() | {"description": "\x00"}, "description"),
        (with_parameter(enum=["a", "b\x00"]), "parameters.0.enum.1"),
        (with_parameter(pattern="a\x00"), "parameters.0.pattern"),
        (
            {
                "slug": "call",
                "name": "Call",
                "operation_type": "http",
                "http": {"url": "https://example.com/", "headers": {"X-A\x00": "1"}},
            },
            "http.headers.X-A\x00",
        ),
    ],
)
async def test_operation_svc_refuses_nul_in_templates(
    platform: Platform, body: dict[str, Any], field: str
) -> None:
    response = await platform.operation.post("/api/v1/templates", json=body, headers=ADMIN)
    assert_refused(response, field)
    listed = await platform.operation.get("/api/v1/templates", headers=ADMIN)
    assert listed.json()["items"] == []


async def test_nul_in_values_secrets_and_urls_is_refused_everywhere(platform: Platform) -> None:
    created = await platform.operation.post(
        "/api/v1/templates", json=with_parameter(), headers=ADMIN
    )
    assert created.status_code == 201, created.text
    started = await platform.operation.post(
        "/api/v1/executions", json={"template": "say", "parameters": {"m": "a\x00b"}}, headers=ADMIN
    )
    assert_refused(started, "parameters.m")
    secret = await platform.operation.post(
        "/api/v1/secrets",
        json={"slug": "s", "provider": "env", "key": "IDP_\x00X"},
        headers=ADMIN,
    )
    assert_refused(secret, "key")
    for path in ("/api/v1/executions?template=a%00b", "/api/v1/executions?status=%00"):
        assert_refused(await platform.operation.get(path, headers=ADMIN), "query")
    assert_refused(await platform.operation.get("/api/v1/templates/sa%00y", headers=ADMIN), "path")


async def test_panel_svc_and_datasource_svc_refuse_nul(platform: Platform) -> None:
    await platform.operation.post("/api/v1/templates", json=with_parameter(), headers=ADMIN)
    panel = {
        "slug": "say",
        "title": "Say",
        "operation_template": "say",
        "fields": [{"name": "m", "label": "Message"}],
    }
    response = await platform.panel.post(
        "/api/v1/panels", json=panel | {"title": "S\x00y"}, headers=ADMIN
    )
    assert_refused(response, "title")
    nested = panel | {"fields": [{"name": "m", "label": "Mes\x00sage"}]}
    response = await platform.panel.post("/api/v1/panels", json=nested, headers=ADMIN)
    assert_refused(response, "fields.0.label")
    saved = await platform.panel.post("/api/v1/panels", json=panel, headers=ADMIN)
    assert saved.status_code == 201, saved.text
    submitted = await platform.panel.post(
        f"/api/v1/panels/{saved.json()['id']}/submissions",
        json={"data": {"m": "hi\x00"}},
        headers=ADMIN,
    )
    assert_refused(submitted, "data.m")
    assert platform.datasource is not None
    source = {"slug": "regions", "name": "Re\x00gions", "source_type": "static"}
    response = await platform.datasource.post(
        "/api/v1/datasources",
        json=source | {"options": [{"value": "eu", "label": "EU"}]},
        headers=ADMIN,
    )
    assert_refused(response, "name")


async def test_a_command_printing_nul_ends_with_its_output_stored(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """PostgreSQL text cannot hold NUL: it is stored as U+FFFD, in the log lines and the
    output excerpt, and the run is recorded (its finish was refused before)."""
    async with running_platform(backend, tmp_path, sqs_server) as platform:
        created = await platform.operation.post(
            "/api/v1/templates",
            json={"slug": "nul", "name": "nul", "command_template": "printf 'a\\000b\\n'"},
            headers=ADMIN,
        )
        assert created.status_code == 201, created.text
        started = await platform.operation.post(
            "/api/v1/executions", json={"template": "nul", "parameters": {}}, headers=ADMIN
        )
        url = f"/api/v1/executions/{started.json()['id']}"

        async def ended() -> dict[str, Any] | None:
            body: dict[str, Any] = (await platform.operation.get(url, headers=ADMIN)).json()
            return body if body["status"] not in ("pending", "running") else None

        execution = await eventually(ended, timeout=20)
        logs = (await platform.operation.get(f"{url}/logs", headers=ADMIN)).json()["items"]
    assert (execution["status"], execution["output"]) == ("succeeded", "a\ufffdb\n")
    assert [line["message"] for line in logs] == ["a\ufffdb"]


async def test_lone_surrogates_in_any_value_or_key_are_refused(platform: Platform) -> None:
    """JSON's \\ud800 escapes spell text with no UTF-8: typed fields refused it, but free-form
    values (parameters, form data) reached the database and answered 500."""
    await platform.operation.post("/api/v1/templates", json=with_parameter(), headers=ADMIN)
    message = {"name": "m", "label": "Message"}
    panel = {"slug": "say", "title": "Say", "operation_template": "say", "fields": [message]}
    saved = await platform.panel.post("/api/v1/panels", json=panel, headers=ADMIN)
    assert saved.status_code == 201, saved.text
    json_headers = ADMIN | {"Content-Type": "application/json"}
    for client, path, body, field in [
        (
            platform.operation,
            "/api/v1/executions",
            '{"template": "say", "parameters": {"m": "a\\ud800b"}}',
            "parameters.m",
        ),
        (
            platform.operation,
            "/api/v1/executions",
            '{"template": "say", "parameters": {"\\udfff": "x"}}',
            "parameters.\udfff",
        ),
        (
            platform.operation,
            "/api/v1/schedules",
            '{"template": "say", "cron": "0 3 * * *", "parameters": {"m": "\\udc80"}}',
            "parameters.m",
        ),
        (
            platform.panel,
            f"/api/v1/panels/{saved.json()['id']}/submissions",
            '{"data": {"m": ["ok", "\\ud83d"]}}',
            "data.m.1",
        ),
    ]:
        response = await client.post(path, content=body, headers=json_headers)
        assert response.status_code == 422, (path, response.text)
        errors = response.json()["errors"]
        assert [(error["field"], error["code"]) for error in errors] == [(field, "lone_surrogate")]
    listed = await platform.operation.get("/api/v1/executions", headers=ADMIN)
    assert listed.json()["items"] == []
    paired = '{"template": "say", "parameters": {"m": "\\ud83d\\ude00"}}'  # a pair: one character
    started = await platform.operation.post(
        "/api/v1/executions", content=paired, headers=json_headers
    )
    assert started.status_code == 202, started.text
    assert started.json()["parameters"] == {"m": "\U0001f600"}


def with_number(document: str, number: str) -> str:
    """A JSON body with ``number`` written where ``document`` says ``N``."""
    return document.replace("N", number)


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E+999"]


@pytest.mark.parametrize("number", NON_FINITE)
async def test_nan_and_infinity_in_any_value_are_refused_naming_where(
    platform: Platform, number: str
) -> None:
    """JSON has no NaN or Infinity, but Python's parser reads them (and ``1e400``, a valid
    JSON number past the largest float, as infinity). Typed numbers refused them; free-form
    values (an HTTP body, form data, parameters) were stored as null on SQLite, so the 2xx
    misreported what was saved, and were a 500 on PostgreSQL."""
    await platform.operation.post("/api/v1/templates", json=with_parameter(), headers=ADMIN)
    panel = {
        "slug": "say",
        "title": "Say",
        "operation_template": "say",
        "fields": [{"name": "m", "label": "Message"}],
    }
    saved = await platform.panel.post("/api/v1/panels", json=panel, headers=ADMIN)
    assert saved.status_code == 201, saved.text
    schedule = await platform.operation.post(
        "/api/v1/schedules",
        json={"template": "say", "parameters": {"m": "hi"}, "cron": "0 3 * * *"},
        headers=ADMIN,
    )
    assert schedule.status_code == 201, schedule.text
    source = await platform.datasource.post(  # type: ignore[union-attr]
        "/api/v1/datasources",
        json={"slug": "api", "name": "Api", "source_type": "http", "endpoint_url": "https://a.b/"},
        headers=ADMIN,
    )
    assert source.status_code == 201, source.text
    http_template = (
        '{"slug": "call", "name": "Call", "operation_type": "http", '
        '"http": {"url": "https://example.com/", "method": "POST", "body": BODY}}'
    )
    operation, panels, datasource = platform.operation, platform.panel, platform.datasource
    assert datasource is not None
    for client, method, path, document, field in [
        (
            operation,
            "POST",
            "/api/v1/templates",
            http_template.replace("BODY", '{"a": N}'),
            "http.body.a",
        ),
        (operation, "POST", "/api/v1/templates", http_template.replace("BODY", "N"), "http.body"),
        (
            operation,
            "PATCH",
            "/api/v1/templates/say",
            '{"parameters": [{"name": "m", "type": "number", "default": N}]}',
            "parameters.0.default",
        ),
        (
            operation,
            "POST",
            "/api/v1/executions",
            '{"template": "say", "parameters": {"m": N}}',
            "parameters.m",
        ),
        (
            operation,
            "POST",
            "/api/v1/templates/say/preview",
            '{"parameters": {"m": [1, N]}}',
            "parameters.m.1",
        ),
        (
            operation,
            "POST",
            "/api/v1/schedules",
            '{"template": "say", "cron": "0 3 * * *", "parameters": {"m": {"x": N}}}',
            "parameters.m.x",
        ),
        (
            operation,
            "POST",
            "/api/v1/schedules",
            '{"panel": "say", "cron": "0 3 * * *", "data": {"m": N}}',
            "data.m",
        ),
        (
            operation,
            "PATCH",
            f"/api/v1/schedules/{schedule.json()['id']}",
            '{"data": {"m": N}}',
            "data.m",
        ),
        (
            panels,
            "POST",
            "/api/v1/panels",
            '{"slug": "p", "title": "P", "operation_template": "say", '
            '"fields": [{"name": "m", "label": "M", "default": N}]}',
            "fields.0.default",
        ),
        (
            panels,
            "PATCH",
            "/api/v1/panels/say",
            '{"fields": [{"name": "m", "label": "M", "default": [N]}]}',
            "fields.0.default.0",
        ),
        (panels, "POST", "/api/v1/panels/say/submissions", '{"data": {"m": N}}', "data.m"),
        (
            datasource,
            "POST",
            "/api/v1/datasources",
            '{"slug": "b", "name": "B", "source_type": "http", "endpoint_url": "https://a.b/", '
            '"method": "POST", "body": {"q": [1, N]}}',
            "body.q.1",
        ),
        (datasource, "PATCH", "/api/v1/datasources/api", '{"body": [N, 2]}', "body.0"),
        (datasource, "POST", "/api/v1/datasources/api/resolve", '{"values": {"m": N}}', "values.m"),
    ]:
        response = await client.request(
            method,
            path,
            content=with_number(document, number),
            headers=ADMIN | {"Content-Type": "application/json"},
        )
        assert response.status_code == 422, (path, response.text)
        errors = response.json()["errors"]
        assert [(error["field"], error["code"]) for error in errors] == [(field, "finite_number")]
    event = await operation.post(  # another service's request, in binary mode: the data
        "/api/v1/events",
        content=with_number('{"template": "say", "parameters": {"m": N}}', number),
        headers=ADMIN
        | {
            "Content-Type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": "urn:test",
            "ce-type": "operation.execution.requested.external",
            "ce-tenant": "acme",
        },
    )
    assert event.status_code == 422, event.text
    assert "parameters.m: must be a finite number" in event.json()["errors"][0]["message"]
    templates = await operation.get("/api/v1/templates", headers=ADMIN)
    assert [template["slug"] for template in templates.json()["items"]] == ["say"]
    assert (await operation.get("/api/v1/templates/say", headers=ADMIN)).json()["version"] == 1
    assert (await operation.get("/api/v1/executions", headers=ADMIN)).json()["items"] == []
    assert len((await operation.get("/api/v1/schedules", headers=ADMIN)).json()["items"]) == 1
    assert len((await panels.get("/api/v1/panels", headers=ADMIN)).json()["items"]) == 1
    sources = await datasource.get("/api/v1/datasources", headers=ADMIN)
    assert [(source["slug"], source["body"]) for source in sources.json()["items"]] == [
        ("api", None)
    ]


async def test_finite_numbers_however_large_are_kept(platform: Platform) -> None:
    response = await platform.operation.post(
        "/api/v1/templates",
        content=b'{"slug": "call", "name": "Call", "operation_type": "http", "http": '
        b'{"url": "https://example.com/", "method": "POST", "body": [1e300, -1.5e-300, 0.0]}}',
        headers=ADMIN | {"Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["http_spec"]["body"] == [1e300, -1.5e-300, 0.0]

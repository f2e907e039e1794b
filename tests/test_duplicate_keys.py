"""JSON naming a key twice in one object is refused by every service, however the key is
spelled and wherever it sits (422 naming it, nothing done): parsers disagree on which value
wins, so a gateway or a reviewer could read one request and the platform run another."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.factories import ADMIN, panel_for, template
from tests.harness import LocalSQSServer, Platform, assert_field_refused, running_platform


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as running:
        await panel_for(running, await template(running, "say", "echo {{m}}", [{"name": "m"}]))
        yield running


def assert_refused(response: httpx.Response, field: str) -> None:
    assert_field_refused(response, field, "duplicate_key")


async def posted(
    client: httpx.AsyncClient, path: str, body: str, content_type: str = "application/json"
) -> httpx.Response:
    return await client.post(path, content=body, headers=ADMIN | {"Content-Type": content_type})


async def executions(platform: Platform) -> list[object]:
    listed = await platform.operation.get("/api/v1/executions", headers=ADMIN)
    return list(listed.json()["items"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"template": "say", "template": "other"}', "template"),
        ('{"template": "say", "parameters": {"m": "safe", "m": "; rm -rf /"}}', "parameters.m"),
        ('{"template": "say", "parameters": {"m": "a", "\\u006d": "b"}}', "parameters.m"),
        ('{"templ\\u0061te": "say", "template": "other"}', "template"),
        ('{"template": "say", "parameters": {"m": {"x": 1, "x": 2}}}', "parameters.m.x"),
        (
            '{"template": "say", "parameters": {"m": [{"k": 1}, {"k": 1, "k": 1}]}}',
            "parameters.m.1.k",
        ),
    ],
)
@pytest.mark.parametrize(
    "content_type", ["application/json", "Application/JSON; charset=utf-8", "application/x+json"]
)
async def test_an_execution_naming_a_key_twice_is_refused_and_not_created(
    platform: Platform, body: str, field: str, content_type: str
) -> None:
    before = await executions(platform)
    response = await posted(platform.operation, "/api/v1/executions", body, content_type)
    assert_refused(response, field)
    assert await executions(platform) == before


async def test_every_service_refuses_a_key_named_twice(platform: Platform) -> None:
    assert platform.datasource is not None
    refused = [
        (
            platform.operation,
            "/api/v1/templates",
            '{"slug": "a", "slug": "b", "name": "n", "command_template": "true"}',
            "slug",
        ),
        (
            platform.operation,
            "/api/v1/templates/say/preview",
            '{"parameters": {"m": 1, "m": 2}}',
            "parameters.m",
        ),
        (
            platform.operation,
            "/api/v1/schedules",
            '{"template": "say", "cron": "0 3 * * *", "cron": "* * * * *"}',
            "cron",
        ),
        (
            platform.operation,
            "/api/v1/events",
            '{"specversion": "1.0", "id": "1", "id": "2"}',
            "id",
        ),
        (
            platform.panel,
            "/api/v1/panels/say/submissions",
            '{"data": {"m": "a", "m": "b"}}',
            "data.m",
        ),
        (
            platform.panel,
            "/api/v1/panels",
            '{"slug": "p", "fields": [{"name": "a", "name": "b"}]}',
            "fields.0.name",
        ),
        (platform.datasource, "/api/v1/datasources", '{"slug": "s", "slug": "t"}', "slug"),
    ]
    for client, path, body, field in refused:
        for content_type in ("application/json", "application/cloudevents+json"):
            assert_refused(await posted(client, path, body, content_type), field)
    patched = await platform.operation.patch(
        "/api/v1/templates/say",
        content='{"command_template": "echo {{m}}", "command_template": "id"}',
        headers=ADMIN | {"Content-Type": "application/json"},
    )
    assert_refused(patched, "command_template")
    saved = await platform.operation.get("/api/v1/templates/say", headers=ADMIN)
    assert saved.json()["command_template"] == "echo {{m}}"


async def test_a_binary_mode_event_without_a_content_type_is_checked_too(
    platform: Platform,
) -> None:
    """Its data is read as JSON whatever the headers say, so the body is checked whatever
    they say."""
    before = await executions(platform)
    binary = {
        "ce-specversion": "1.0",
        "ce-id": "twice-1",
        "ce-source": "orders-svc",
        "ce-type": "operation.execution.requested.external",
        "ce-tenant": "acme",
    }
    answer = await platform.operation.post(
        "/api/v1/events",
        content='{"template": "say", "template": "other"}',
        headers=ADMIN | binary,
    )
    assert_refused(answer, "template")
    message = "template is named twice in one object: say it once, with the value meant"
    assert answer.json()["errors"][0]["message"] == message
    assert await executions(platform) == before


async def test_the_same_key_in_different_objects_is_not_a_duplicate(platform: Platform) -> None:
    body = '{"data": {"m": "x"}, "options": {"data": {"m": "y"}}}'
    submitted = await posted(platform.panel, "/api/v1/panels/say/submissions", body)
    assert submitted.status_code == 422  # "options" is no field of a submission, but no duplicate
    assert submitted.json()["errors"][0]["code"] != "duplicate_key"
    submitted = await posted(
        platform.panel, "/api/v1/panels/say/submissions", '{"data": {"m": "x"}}'
    )
    assert submitted.status_code == 202, submitted.text
    text = '{"template": "say", "parameters": {"m": "{\\"m\\": 1, \\"m\\": 2}"}}'  # a string
    started = await posted(platform.operation, "/api/v1/executions", text)
    assert started.status_code == 202, started.text
    assert started.json()["parameters"] == {"m": '{"m": 1, "m": 2}'}

"""The inputs schema-driven fuzzing found answered with a 500 (or a dropped connection):
each is now a 4xx or 502 problem that says what is wrong."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from idp_common.schemas import MAX_JSON_DEPTH
from tests.factories import panel_for, template
from tests.harness import (
    LocalSQSServer,
    Platform,
    assert_field_refused,
    auth_headers,
    running_platform,
    service_headers,
)

ADMIN = auth_headers(roles=("admin",))


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    """Shared by the module's tests: each is refused, or changes what no other one reads."""
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as running:
        say = await template(running, "say", "echo {{m}}", [{"name": "m"}], max_concurrency=2)
        await panel_for(running, say)
        yield running


def refused(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    if field is not None:
        assert [error["field"] for error in problem["errors"]] == [field]
    return problem


@pytest.mark.parametrize("attribute", ["title", "description", "is_active", "order", "tags"])
async def test_null_for_a_panel_attribute_that_cannot_be_null_is_a_422(
    platform: Platform, attribute: str
) -> None:
    response = await platform.panel.patch(
        "/api/v1/panels/say", json={attribute: None}, headers=ADMIN
    )
    refused(response, 422, attribute)


async def test_null_clears_only_what_can_be_cleared_on_a_template(platform: Platform) -> None:
    for attribute in ("name", "description", "command_template", "timeout_seconds", "retry_safe"):
        response = await platform.operation.patch(
            "/api/v1/templates/say", json={attribute: None}, headers=ADMIN
        )
        refused(response, 422, attribute)
    lifted = await platform.operation.patch(
        "/api/v1/templates/say", json={"max_concurrency": None}, headers=ADMIN
    )
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["max_concurrency"] is None


@pytest.mark.parametrize(
    ("service", "path", "body", "field", "code"),
    [
        (
            "operation",
            "/api/v1/templates/say",
            {"timeout_seconds": True},
            "timeout_seconds",
            "float",
        ),
        ("operation", "/api/v1/templates/say", {"retry_safe": "false"}, "retry_safe", "bool"),
        (
            "operation",
            "/api/v1/templates/say",
            {"approval": {"approver_roles": ["admin"], "expires_after_seconds": True}},
            "approval.expires_after_seconds",
            "int",
        ),
        (
            "operation",
            "/api/v1/templates/say",
            {"parameters": [{"name": "m", "max_length": "5"}]},
            "parameters.0.max_length",
            "int",
        ),
        ("panel", "/api/v1/panels/say", {"is_active": 0}, "is_active", "bool"),
        ("panel", "/api/v1/panels/say", {"order": True}, "order", "int"),
        ("panel", "/api/v1/panels/say", {"order": 2.0}, "order", "int"),
    ],
)
async def test_a_boolean_or_number_of_another_json_type_is_refused_and_changes_nothing(
    platform: Platform, service: str, path: str, body: dict[str, Any], field: str, code: str
) -> None:
    """Read laxly, ``true`` was a timeout of one second and ``0`` an inactive panel."""
    client: httpx.AsyncClient = getattr(platform, service)
    before = (await client.get(path, headers=ADMIN)).json()
    assert_field_refused(await client.patch(path, json=body, headers=ADMIN), field, f"{code}_type")
    assert (await client.get(path, headers=ADMIN)).json() == before


async def test_a_workers_report_of_numbers_or_times_no_column_holds_is_a_422(
    platform: Platform,
) -> None:
    """Each was a 500 (SQLite past 64 bits, PostgreSQL past 32, a naive time or one beyond
    UTC's range), at every attempt of the report; what was refused stores nothing."""
    started = await platform.operation.post(
        "/api/v1/executions", json={"template": "say", "parameters": {"m": "hi"}}, headers=ADMIN
    )
    execution_id = started.json()["id"]
    claim = {"worker_id": "w1", "execution_ids": [execution_id]}
    claimed = await platform.operation.post(
        "/api/v1/workers/claims", json=claim, headers=service_headers()
    )
    assert claimed.json()["claimed"] == [execution_id]
    line = {"seq": 0, "stream": "stdout", "message": "hi", "timestamp": "2026-01-01T00:00:00Z"}
    for change, field in (
        ({"seq": 2**31}, "lines.0.seq"),
        ({"seq": 2**63}, "lines.0.seq"),
        ({"timestamp": "2026-01-01T00:00:00"}, "lines.0.timestamp"),
        ({"timestamp": "9999-12-31T23:59:59-14:00"}, "lines.0.timestamp"),
    ):
        report = {"execution_id": execution_id, "worker_id": "w1", "lines": [line | change]}
        response = await platform.operation.post(
            "/api/v1/workers/logs", json=report, headers=service_headers()
        )
        refused(response, 422, field)
    finish = {
        "execution_id": execution_id,
        "worker_id": "w1",
        "status": "failed",
        "duration_seconds": 1,
        "output_excerpt": "",
    }
    for change, field in (
        ({"exit_code": 2**31}, "exit_code"),
        ({"exit_code": 2**63}, "exit_code"),
        ({"exit_code": 1, "output_bytes": 2**31}, "output_bytes"),
    ):
        response = await platform.operation.post(
            "/api/v1/workers/finishes", json=finish | change, headers=service_headers()
        )
        refused(response, 422, field)
    execution = await platform.operation.get(f"/api/v1/executions/{execution_id}", headers=ADMIN)
    assert execution.json()["status"] == "running"
    logs = await platform.operation.get(f"/api/v1/executions/{execution_id}/logs", headers=ADMIN)
    assert logs.json()["items"] == []


@pytest.mark.parametrize("timeout", [5e-324, 0, -1, 0.5])
async def test_a_timeout_below_a_second_is_refused(platform: Platform, timeout: float) -> None:
    response = await platform.operation.patch(
        "/api/v1/templates/say", json={"timeout_seconds": timeout}, headers=ADMIN
    )
    refused(response, 422, "timeout_seconds")


async def test_log_positions_out_of_range_are_a_422(platform: Platform) -> None:
    started = await platform.operation.post(
        "/api/v1/executions", json={"template": "say", "parameters": {"m": "hi"}}, headers=ADMIN
    )
    logs = f"/api/v1/executions/{started.json()['id']}/logs"
    for after in ("9223372036854775808", "2147483648", "-2", "x"):
        refused(await platform.operation.get(logs, params={"after_seq": after}, headers=ADMIN), 422)
        refused(
            await platform.operation.get(
                f"{logs}/stream", params={"after_seq": after}, headers=ADMIN
            ),
            422,
        )
        refused(
            await platform.operation.get(
                f"{logs}/stream", headers=ADMIN | {"Last-Event-ID": after}
            ),
            422,
        )


async def test_a_data_source_whose_host_does_not_resolve_is_a_502(platform: Platform) -> None:
    assert platform.datasource is not None
    created = await platform.datasource.post(
        "/api/v1/datasources",
        json={
            "slug": "nowhere",
            "name": "Nowhere",
            "source_type": "http",
            "endpoint_url": "http://no-such-host.invalid/regions",
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    source = f"/api/v1/datasources/{created.json()['id']}"
    resolved = await platform.datasource.post(f"{source}/resolve", json={}, headers=ADMIN)
    assert "does not resolve" in refused(resolved, 502)["detail"]
    tested = await platform.datasource.post(f"{source}/test", json={}, headers=ADMIN)
    assert tested.status_code == 200, tested.text
    assert "does not resolve" in tested.json()["error"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8002/api/v1/api-keys",
        "http://localhost/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://0x7f.1/x",
        "http://10.0.0.1/x",
    ],
)
async def test_an_http_template_naming_an_internal_address_is_refused(
    platform: Platform, url: str
) -> None:
    response = await platform.operation.post(
        "/api/v1/templates",
        json={"slug": "call", "name": "Call", "operation_type": "http", "http": {"url": url}},
        headers=ADMIN,
    )
    problem = refused(response, 422, "http.url")
    assert "OPERATION_OUTBOUND_ALLOWED_HOSTS" in problem["errors"][0]["message"]


async def test_a_timeout_above_the_platforms_limit_names_the_setting(platform: Platform) -> None:
    response = await platform.operation.patch(
        "/api/v1/templates/say", json={"timeout_seconds": 10**6}, headers=ADMIN
    )
    problem = refused(response, 422, "timeout_seconds")
    assert "OPERATION_MAX_TIMEOUT_SECONDS" in problem["errors"][0]["message"]


async def test_times_without_offset_or_beyond_utc_and_nan_are_a_422(platform: Platform) -> None:
    for since in ("2026-01-01T00:00:00", "9999-12-31T23:59:59-14:00"):
        for path in ("/api/v1/executions", "/api/v1/audit"):
            response = await platform.operation.get(path, params={"since": since}, headers=ADMIN)
            refused(response, 422, "since")
    key = await platform.operation.post(
        "/api/v1/api-keys",
        json={"name": "ci", "roles": ["viewer"], "expires_at": "9999-12-31T23:59:59-14:00"},
        headers=ADMIN,
    )
    refused(key, 422, "expires_at")
    nan = await platform.operation.post(
        "/api/v1/templates",
        content=b'{"slug": "n", "name": "n", "command_template": "echo {{x}}", '
        b'"parameters": [{"name": "x", "type": "number", "minimum": NaN}]}',
        headers=ADMIN | {"content-type": "application/json"},
    )
    refused(nan, 422, "parameters.0.minimum")


async def test_two_parameters_of_one_name_are_refused_when_created_and_when_changed(
    platform: Platform,
) -> None:
    """A change accepted them (which of the two would check a value was left to chance)."""
    twice = [{"name": "m"}, {"name": "m", "type": "integer"}]
    created = await platform.operation.post(
        "/api/v1/templates",
        json={"slug": "twice", "name": "t", "command_template": "echo {{m}}", "parameters": twice},
        headers=ADMIN,
    )
    refused(created, 422, "parameters.1.name")
    changed = await platform.operation.patch(
        "/api/v1/templates/say", json={"parameters": twice}, headers=ADMIN
    )
    problem = refused(changed, 422, "parameters.1.name")
    assert problem["errors"][0]["message"] == "m is the name of an earlier parameter too"
    kept = await platform.operation.get("/api/v1/templates/say", headers=ADMIN)
    assert [parameter["name"] for parameter in kept.json()["parameters"]] == ["m"]


@pytest.mark.parametrize("name", ["__proto__", "constructor", "prototype"])
async def test_a_parameter_may_not_take_a_name_javascript_objects_keep(
    platform: Platform, name: str
) -> None:
    """No form in the console could fill it (its form library drops the key)."""
    created = await platform.operation.post(
        "/api/v1/templates",
        json={
            "slug": "proto",
            "name": "p",
            "command_template": f"echo {{{{{name}}}}}",
            "parameters": [{"name": name}],
        },
        headers=ADMIN,
    )
    problem = refused(created, 422, "parameters.0.name")
    assert "keep for themselves" in problem["errors"][0]["message"]


@pytest.mark.parametrize("kind", ["templates", "panels"])
@pytest.mark.parametrize("length", [8, 88, 91, 95, 100])
async def test_a_slug_of_any_length_is_freed_by_every_deletion(
    platform: Platform, kind: str, length: int
) -> None:
    """A deleted object kept its slug with its id's first 8 digits after it, cut to 100
    characters: from 91 on no digit was left, deleting the second object of one slug was a
    500 and the slug stayed taken; at 100 the first deletion kept the slug as it was."""
    slug = f"{kind[0]}{length:03}".ljust(length, "x")
    client = platform.operation
    body: dict[str, Any] = {"slug": slug, "name": "n", "command_template": "echo hi"}
    if kind == "panels":
        client = platform.panel
        body = {"slug": slug, "title": "t", "operation_template": "say"}
        body["fields"] = [{"name": "m", "label": "M"}]
    deleted = []
    for _ in range(3):
        created = await client.post(f"/api/v1/{kind}", json=body, headers=ADMIN)
        assert created.status_code == 201, created.text
        gone = await client.delete(f"/api/v1/{kind}/{slug}", headers=ADMIN)
        assert gone.status_code == 204, gone.text
        deleted.append(created.json()["id"])
    for reference in (slug, *deleted):
        refused(await client.get(f"/api/v1/{kind}/{reference}", headers=ADMIN), 404)


async def test_a_template_keeps_its_kind(platform: Platform) -> None:
    response = await platform.operation.patch(
        "/api/v1/templates/say", json={"http": {"url": "https://example.com/"}}, headers=ADMIN
    )
    refused(response, 422, "http")


def nested(levels: int, spelling: str) -> str:
    """A JSON value ``levels`` deep, as text (deeper than Python's json writes)."""
    if spelling == "objects":
        return '{"a": ' * levels + "1" + "}" * levels
    return "[" * levels + "]" * levels


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH, 300, 900])
@pytest.mark.parametrize("spelling", ["objects", "arrays"])
async def test_json_nested_deeper_than_the_limit_is_a_422_naming_the_field(
    platform: Platform, levels: int, spelling: str
) -> None:
    """Once a 500 with a dropped connection: a value 256 levels deep could not be written
    back (or fingerprinted), one near 1,000 overflowed the recursive walks over it. The
    body is the first level, so a field's value may be ``MAX_JSON_DEPTH - 1`` deep."""
    value = nested(levels, spelling)
    json_headers = ADMIN | {"content-type": "application/json"}
    calls = [
        (
            platform.datasource,
            "/api/v1/datasources",
            '{"slug": "deep", "name": "deep", "source_type": "http", "method": "POST", '
            f'"endpoint_url": "http://127.0.0.1:9/x", "body": {value}}}',
            "body",
        ),
        (
            platform.operation,
            "/api/v1/executions",
            f'{{"template": "say", "parameters": {{"m": {value}}}}}',
            "parameters",
        ),
        (
            platform.operation,
            "/api/v1/templates/say/preview",
            f'{{"parameters": {{"m": {value}}}}}',
            "parameters",
        ),
        (
            platform.panel,
            "/api/v1/panels/say/submissions",
            f'{{"data": {{"m": {value}}}}}',
            "data",
        ),
    ]
    for client, path, body, field in calls:
        assert client is not None
        response = await client.post(path, content=body, headers=json_headers)
        problem = refused(response, 422, field)
        assert problem["errors"][0]["code"] == "too_deep"
    accepted = await platform.datasource.post(  # type: ignore[union-attr]
        "/api/v1/datasources",
        content='{"slug": "deep-enough", "name": "deep", "source_type": "http", "method": "POST", '
        f'"endpoint_url": "http://127.0.0.1:9/x", "body": {nested(MAX_JSON_DEPTH - 1, spelling)}}}',
        headers=json_headers,
    )
    assert accepted.status_code == 201, accepted.text
    deleted = await platform.datasource.delete(  # type: ignore[union-attr]
        "/api/v1/datasources/deep-enough", headers=ADMIN
    )
    assert deleted.status_code == 204, deleted.text


def cursor(*parts: object) -> str:
    """A cursor as the API spells them (url-safe base64 of a JSON array, unpadded)."""
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


NO_PAGES_CURSORS = [
    # Times in no database's range once in UTC (once a 500 on PostgreSQL).
    cursor("0001-01-01T00:00:00+14:00", str(uuid.uuid4())),
    cursor("9999-12-31T23:59:59-14:00", str(uuid.uuid4())),
    # Ids that are no text (once a 500: uuid.UUID(1)).
    cursor("2026-01-01T00:00:00+00:00", 1),
    cursor("2026-01-01T00:00:00+00:00", -(2**70)),
    cursor("2026-01-01T00:00:00+00:00", None),
    cursor("not a time", str(uuid.uuid4())),
    # No offset: every cursor a page produced names one (once a 500 on the dead letters).
    cursor("2020-01-01T00:00:00", str(uuid.uuid4())),
    cursor("2020-01-01", "x"),
    cursor("2020-01-01T00:00:00.000001", str(uuid.uuid4())),
    cursor(1, 2, 3),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "garbage",
]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_cursor_no_page_produced_is_a_422_on_every_list(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(
        backend, tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as platform:
        lists: list[tuple[httpx.AsyncClient | None, str]] = [
            (platform.panel, path)
            for path in ("/api/v1/panels", "/api/v1/submissions", "/api/v1/audit")
        ]
        operation_lists = ("templates", "executions", "schedules", "secrets", "api-keys")
        lists += [
            (platform.operation, f"/api/v1/{path}")
            for path in (*operation_lists, "webhooks", "audit")
        ]
        lists += [(platform.datasource, path) for path in ("/api/v1/datasources", "/api/v1/audit")]
        await template(platform, "tick", "echo tick", [], ADMIN)
        schedule = await platform.operation.post(
            "/api/v1/schedules", json={"template": "tick", "cron": "0 3 * * *"}, headers=ADMIN
        )
        hook = await platform.operation.post(
            "/api/v1/webhooks",
            json={
                "url": "http://93.184.215.14/hook",
                "event_types": ["operation.execution.finished"],
            },
            headers=ADMIN,
        )
        assert (schedule.status_code, hook.status_code) == (201, 201), (schedule.text, hook.text)
        lists += [
            (platform.operation, f"/api/v1/schedules/{schedule.json()['id']}/runs"),
            (platform.operation, f"/api/v1/webhooks/{hook.json()['id']}/deliveries"),
        ]
        for client, path in lists:
            assert client is not None
            for bad in [*NO_PAGES_CURSORS, cursor("2026-01-01T00:00:00+00:00", "not-a-uuid")]:
                response = await client.get(path, params={"cursor": bad}, headers=ADMIN)
                assert response.status_code == 422, (path, bad, response.text)
                refused(response, 422, "cursor")
        # A queue's message ids are text of its own making, whatever it is.
        dead_letters = "/api/v1/queues/operation-inbound-events/dead-letters"
        for bad in NO_PAGES_CURSORS:
            response = await platform.operation.get(
                dead_letters, params={"cursor": bad}, headers=ADMIN
            )
            refused(response, 422, "cursor")

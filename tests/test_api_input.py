"""Bad input gets a clear problem+json 4xx naming the field, and nothing is stored or sent."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from panel_svc.models import Submission, messaging
from tests.harness import LocalSQSServer, auth_headers, running_platform

ADMIN = auth_headers(roles=("admin",))
OPERATOR = auth_headers(roles=("operator",))
MAX_BODY = 64 * 1024


class PanelApi:
    def __init__(self, client: httpx.AsyncClient, database_url: str) -> None:
        self.client = client
        self.database_url = database_url

    async def stored(self) -> tuple[int, int]:
        """(submissions, outbox events) in the database."""
        engine = create_async_engine(self.database_url)
        async with engine.connect() as connection:
            submissions = await connection.scalar(select(func.count()).select_from(Submission))
            events = await connection.scalar(select(func.count()).select_from(messaging.outbox))
        await engine.dispose()
        return int(submissions or 0), int(events or 0)


TEMPLATES = {
    "restart-service": ("echo {{service}} {{reason}}", ["service", "reason?"]),
    "deploy": (
        "echo {{service}} {{replicas}} {{region}} {{notify}} {{when}}",
        ["service", "replicas", "region", "notify?", "when?"],
    ),
    "use-token": ("printenv IDP_PARAM_TOKEN", ["token:secret"]),
}


@pytest.fixture
async def api(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[PanelApi]:
    """panel-svc (with a small body cap) and the operation-svc its panels point at."""
    async with running_platform(
        "sqlite", tmp_path, sqs_server, with_worker=False, panel={"max_body_bytes": MAX_BODY}
    ) as platform:
        for slug, (command, parameters) in TEMPLATES.items():
            created = await platform.operation.post(
                "/api/v1/templates",
                json={
                    "slug": slug,
                    "name": slug,
                    "command_template": command,
                    "parameters": [
                        {
                            "name": name.rstrip("?").split(":")[0],
                            "required": not name.endswith("?"),
                            "type": name.split(":")[1] if ":" in name else "string",
                        }
                        for name in parameters
                    ],
                },
                headers=ADMIN,
            )
            assert created.status_code == 201, created.text
        yield PanelApi(platform.panel, platform.database_urls["panel"])


async def create_panel(api: PanelApi, **overrides: Any) -> str:
    body = {
        "slug": "restart",
        "title": "Restart a service",
        "operation_template": "restart-service",
        "fields": [
            {"name": "service", "label": "Service", "max_length": 20},
            {"name": "reason", "label": "Reason", "is_required": False},
        ],
    } | overrides
    response = await api.client.post("/api/v1/panels", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_problem(response: httpx.Response, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert problem["request_id"] == response.headers["x-request-id"]
    assert sorted(error["field"] for error in problem.get("errors", [])) == sorted(fields)
    return problem


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"data": {"service": "api", "bogus": "x"}}, ["data.bogus"]),
        ({"data": {"service": 42}}, ["data.service"]),
        ({"data": {}}, ["data.service"]),
        ({"data": {"service": "a" * 21}}, ["data.service"]),
        ({"data": {"service": "api\x00rm"}}, ["data.service"]),
        (
            {"data": {"service": 1, "reason": ["x"], "extra": True}},
            ["data.extra", "data.reason", "data.service"],
        ),
        ({"data": {"service": "api"}, "unexpected": 1}, ["unexpected"]),
        ({"data": "not an object"}, ["data"]),
        ({}, ["data"]),
    ],
)
async def test_bad_submissions_name_every_bad_field_and_store_nothing(
    api: PanelApi, body: dict[str, Any], fields: list[str]
) -> None:
    panel_id = await create_panel(api)
    response = await api.client.post(
        f"/api/v1/panels/{panel_id}/submissions", json=body, headers=OPERATOR
    )
    assert_problem(response, 422, *fields)
    assert await api.stored() == (0, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (
            {"field_type": "select", "allowed_values": ["us"], "pattern": "u."}
            | {"options": [{"value": v, "label": v} for v in ("us", "eu")]},
            "eu",
        ),
        ({"field_type": "integer", "allowed_values": ["1", "2"]}, 7),
        ({"field_type": "date", "pattern": "2025-.*"}, "1999-12-31"),
    ],
)
async def test_a_value_outside_the_published_constraints_is_refused_on_any_field_type(
    api: PanelApi, field: dict[str, Any], value: Any
) -> None:
    panel_id = await create_panel(api, fields=[{"name": "service", "label": "S"} | field])
    schema = await api.client.get(f"/api/v1/panels/{panel_id}/schema", headers=OPERATOR)
    assert schema.json()["schema"]["properties"]["service"][
        "enum" if "allowed_values" in field else "pattern"
    ]
    response = await api.client.post(
        f"/api/v1/panels/{panel_id}/submissions",
        json={"data": {"service": value}},
        headers=OPERATOR,
    )
    assert_problem(response, 422, "data.service")
    assert await api.stored() == (0, 0)


async def test_malformed_json_is_a_422_naming_the_body(api: PanelApi) -> None:
    panel_id = await create_panel(api)
    response = await api.client.post(
        f"/api/v1/panels/{panel_id}/submissions",
        content=b'{"data": {"service": ',
        headers=OPERATOR | {"content-type": "application/json"},
    )
    assert_problem(response, 422, "body")
    assert await api.stored() == (0, 0)


async def test_oversized_bodies_are_refused_with_413_declared_or_streamed(api: PanelApi) -> None:
    panel_id = await create_panel(api)
    url = f"/api/v1/panels/{panel_id}/submissions"
    huge = b'{"data": {"service": "' + b"a" * MAX_BODY + b'"}}'
    declared = await api.client.post(
        url, content=huge, headers=OPERATOR | {"content-type": "application/json"}
    )
    assert "PANEL_MAX_BODY_BYTES" in assert_problem(declared, 413)["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 8192):
            yield huge[start : start + 8192]

    streamed = await api.client.post(
        url, content=chunks(), headers=OPERATOR | {"content-type": "application/json"}
    )
    assert_problem(streamed, 413)
    assert await api.stored() == (0, 0)


async def test_a_good_submission_is_stored_with_its_event_in_one_transaction(
    api: PanelApi,
) -> None:
    panel_id = await create_panel(api)
    response = await api.client.post(
        f"/api/v1/panels/{panel_id}/submissions",
        json={"data": {"service": "api"}},
        headers=OPERATOR,
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    submissions, _ = await api.stored()
    assert submissions == 1  # the event itself is relayed and removed within milliseconds


async def test_panel_conflicts_and_unknown_or_inactive_panels(api: PanelApi) -> None:
    await create_panel(api)
    duplicate = await api.client.post(
        "/api/v1/panels",
        json={
            "slug": "restart",
            "title": "Again",
            "operation_template": "restart-service",
            "fields": [{"name": "service", "label": "Service"}],
        },
        headers=ADMIN,
    )
    assert_problem(duplicate, 409, "slug")
    bad_slug = await api.client.post(
        "/api/v1/panels",
        json={"slug": "Not A Slug", "title": "", "operation_template": "x"},
        headers=ADMIN,
    )
    assert_problem(bad_slug, 422, "slug", "title")
    inactive = await create_panel(api, slug="frozen", is_active=False)
    refused = await api.client.post(
        f"/api/v1/panels/{inactive}/submissions",
        json={"data": {"service": "api"}},
        headers=OPERATOR,
    )
    assert_problem(refused, 409)
    missing = await api.client.post(
        "/api/v1/panels/00000000-0000-0000-0000-000000000000/submissions",
        json={"data": {}},
        headers=OPERATOR,
    )
    assert_problem(missing, 404)
    # A panel is named by its id or its slug: an unknown one is not found.
    no_such_slug = await api.client.get("/api/v1/panels/not-a-panel", headers=ADMIN)
    assert_problem(no_such_slug, 404)
    too_long = await api.client.get(f"/api/v1/panels/{'x' * 101}", headers=ADMIN)
    assert_problem(too_long, 422, "panel_id")
    assert await api.stored() == (0, 0)


async def test_every_endpoint_authenticates_authorizes_and_scopes_to_the_tenant(
    api: PanelApi,
) -> None:
    panel_id = await create_panel(api)
    assert_problem(await api.client.get("/api/v1/panels"), 401)
    assert_problem(
        await api.client.get("/api/v1/panels", headers={"Authorization": "Bearer nonsense"}), 401
    )
    viewer = auth_headers(roles=("viewer",))
    assert (await api.client.get(f"/api/v1/panels/{panel_id}", headers=viewer)).status_code == 200
    assert_problem(
        await api.client.post(
            f"/api/v1/panels/{panel_id}/submissions",
            json={"data": {"service": "a"}},
            headers=viewer,
        ),
        403,
    )
    assert_problem(
        await api.client.post(
            "/api/v1/panels",
            json={"slug": "x", "title": "x", "operation_template": "x"},
            headers=OPERATOR,
        ),
        403,
    )
    other_tenant = auth_headers(tenant="globex", roles=("admin",))
    assert_problem(await api.client.get(f"/api/v1/panels/{panel_id}", headers=other_tenant), 404)
    listed = await api.client.get("/api/v1/panels", headers=other_tenant)
    assert listed.json() == {"items": [], "next_cursor": None}


async def test_lists_are_paginated_with_opaque_cursors(api: PanelApi) -> None:
    created = [await create_panel(api, slug=f"panel-{n}") for n in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params = {"limit": "2"} | ({"cursor": cursor} if cursor else {})
        page = (await api.client.get("/api/v1/panels", params=params, headers=ADMIN)).json()
        seen += [panel["id"] for panel in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))
    bad = await api.client.get("/api/v1/panels", params={"cursor": "garbage"}, headers=ADMIN)
    assert_problem(bad, 422, "cursor")
    too_big = await api.client.get("/api/v1/panels", params={"limit": "201"}, headers=ADMIN)
    assert_problem(too_big, 422, "limit")


async def test_request_ids_are_echoed_or_generated(api: PanelApi) -> None:
    given = await api.client.get("/healthz", headers={"X-Request-ID": "req-123"})
    assert given.headers["x-request-id"] == "req-123"
    forged = await api.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert forged.headers["x-request-id"] != "bad id\twith spaces"
    assert len(forged.headers["x-request-id"]) == 32


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ([{"name": "a", "label": "A", "pattern": "(unclosed"}], "pattern"),
        ([{"name": "a", "label": "A", "field_type": "select"}], "needs options or a data_source"),
        (
            [
                {
                    "name": "a",
                    "label": "A",
                    "field_type": "select",
                    "data_source": str(uuid.uuid4()),
                    "depends_on": ["missing"],
                }
            ],
            "missing field",
        ),
        (
            [
                {
                    "name": "a",
                    "label": "A",
                    "field_type": "select",
                    "data_source": str(uuid.uuid4()),
                    "depends_on": ["b"],
                },
                {
                    "name": "b",
                    "label": "B",
                    "field_type": "select",
                    "data_source": str(uuid.uuid4()),
                    "depends_on": ["a"],
                },
            ],
            "cycle",
        ),
        (
            [{"name": "a", "label": "A", "field_type": "number", "min_value": 5, "max_value": 1}],
            "maximum is below its minimum (min_value 5)",
        ),
        ([{"name": "a", "label": "A", "field_type": "integer", "default": "seven"}], "default"),
        (  # two choices told apart by their labels alone: either would submit "eu"
            [
                {
                    "name": "a",
                    "label": "A",
                    "field_type": "select",
                    "options": [{"value": "eu", "label": "Europe"}, {"value": "eu", "label": "US"}],
                }
            ],
            "eu is the value of an earlier option too",
        ),
        (
            [{"name": "a", "label": "A"}, {"name": "a", "label": "Again"}],
            "a is the name of an earlier field too",
        ),
        # The console's form could never fill them (and its 422 broke the page).
        ([{"name": "__proto__", "label": "A"}], "keep for themselves"),
        ([{"name": "constructor", "label": "A"}], "keep for themselves"),
        ([{"name": "a", "label": "A", "depends_on": ["prototype"]}], "keep for themselves"),
    ],
)
async def test_field_definitions_that_cannot_work_are_refused(
    api: PanelApi, fields: list[dict[str, Any]], message: str
) -> None:
    response = await api.client.post(
        "/api/v1/panels",
        json={"slug": "broken", "title": "Broken", "operation_template": "x", "fields": fields},
        headers=ADMIN,
    )
    problem = assert_problem(response, 422, *[e["field"] for e in response.json()["errors"]])
    assert message in json.dumps(problem)


async def test_a_default_is_kept_as_its_fields_type_and_one_of_another_is_named(
    api: PanelApi,
) -> None:
    fields: list[dict[str, Any]] = [
        {"name": "service", "label": "S", "default": "api"},
        {
            "name": "replicas",
            "label": "N",
            "field_type": "integer",
            "default": "5",
            "max_value": 10,
        },
        {"name": "region", "label": "R"},
        {"name": "notify", "label": "B", "field_type": "boolean", "default": "true"},
        {"name": "when", "label": "D", "field_type": "datetime", "default": "2024-01-01T00:00:00Z"},
    ]
    panel_id = await create_panel(api, fields=fields, operation_template="deploy")
    stored = await api.client.get(f"/api/v1/panels/{panel_id}", headers=ADMIN)
    assert [field["default"] for field in stored.json()["fields"]] == [
        "api",
        5,
        None,
        True,
        "2024-01-01T00:00:00+00:00",
    ]
    schema = await api.client.get(f"/api/v1/panels/{panel_id}/schema", headers=OPERATOR)
    assert schema.json()["schema"]["properties"]["replicas"]["default"] == 5
    assert schema.json()["schema"]["properties"]["notify"]["default"] is True
    fields[1]["default"] = "11"
    response = await api.client.patch(
        f"/api/v1/panels/{panel_id}", json={"fields": fields}, headers=ADMIN
    )
    assert_problem(response, 422, "fields.1.default")


async def test_every_bad_field_is_reported_at_once_and_the_schema_describes_the_form(
    api: PanelApi,
) -> None:
    panel_id = await create_panel(
        api,
        slug="full",
        operation_template="deploy",
        fields=[
            {"name": "service", "label": "Service", "pattern": "[a-z-]+", "help_text": "lowercase"},
            {
                "name": "replicas",
                "label": "Replicas",
                "field_type": "integer",
                "min_value": 1,
                "max_value": 10,
                "default": 2,
            },
            {
                "name": "region",
                "label": "Region",
                "field_type": "select",
                "options": [{"value": "eu", "label": "Europe"}, {"value": "us", "label": "US"}],
            },
            {"name": "notify", "label": "Notify", "field_type": "email", "is_required": False},
            {"name": "when", "label": "When", "field_type": "datetime", "is_required": False},
        ],
    )
    response = await api.client.post(
        f"/api/v1/panels/{panel_id}/submissions",
        json={
            "data": {
                "service": "API!",
                "replicas": 11,
                "region": "ap",
                "notify": "nope",
                "when": "tomorrow",
            }
        },
        headers=OPERATOR,
    )
    assert_problem(
        response, 422, "data.notify", "data.region", "data.replicas", "data.service", "data.when"
    )
    good = await api.client.post(
        f"/api/v1/panels/{panel_id}/submissions",
        json={"data": {"service": "api", "region": "eu"}},
        headers=OPERATOR,
    )
    assert good.status_code == 202
    assert good.json()["data"] == {"service": "api", "replicas": 2, "region": "eu"}

    schema = (await api.client.get(f"/api/v1/panels/{panel_id}/schema", headers=ADMIN)).json()
    assert schema["schema"]["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["schema"]["required"] == ["service", "replicas", "region"]
    assert schema["schema"]["properties"]["replicas"] == {
        "title": "Replicas",
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "default": 2,
    }
    assert schema["schema"]["properties"]["region"]["enum"] == ["eu", "us"]
    # Anchored, as the submission is checked: the whole value matches ("API!" does not).
    assert schema["schema"]["properties"]["service"]["pattern"] == "^(?:[a-z-]+)$"
    assert schema["ui"]["order"] == ["service", "replicas", "region", "notify", "when"]
    assert schema["ui"]["fields"]["notify"]["widget"] == "email"


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": {"service": "\xff\xfe"}}',
        b'{"data": {"service": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}",
    ],
    ids=["invalid-utf8", "deeply-nested"],
)
async def test_undecodable_bodies_are_422_naming_the_body(api: PanelApi, body: bytes) -> None:
    panel_id = await create_panel(api)
    response = await api.client.post(
        f"/api/v1/panels/{panel_id}/submissions",
        content=body,
        headers=OPERATOR | {"content-type": "application/json"},
    )
    assert_problem(response, 422, "body")
    assert await api.stored() == (0, 0)


async def test_panels_are_updated_filtered_and_soft_deleted_keeping_submissions(
    api: PanelApi,
) -> None:
    ops = await create_panel(
        api, slug="restart-api", title="Restart the API", category="ops", tags=["k8s"]
    )
    await create_panel(api, slug="rotate-key", title="Rotate a key", category="security")
    await create_panel(api, slug="old", title="Old restart", category="ops", is_active=False)

    async def slugs(**params: str) -> list[str]:
        page = await api.client.get("/api/v1/panels", params=params, headers=ADMIN)
        return sorted(panel["slug"] for panel in page.json()["items"])

    assert await slugs(category="ops") == ["old", "restart-api"]
    assert await slugs(active="true", category="ops") == ["restart-api"]
    assert await slugs(search="RESTART") == ["old", "restart-api"]
    assert await slugs(search="%") == []
    await create_panel(api, slug="umlaut", title="Änderung über Öl")
    # SQLite's lower() folded ASCII only: "änd" found nothing, "ÖL" did.
    assert await slugs(search="änd") == await slugs(search="ÜBER") == ["umlaut"]

    updated = await api.client.patch(
        f"/api/v1/panels/{ops}",
        json={"title": "Restart API pods", "tags": ["k8s", "api"]},
        headers=ADMIN,
    )
    assert (updated.json()["title"], updated.json()["tags"]) == ("Restart API pods", ["k8s", "api"])
    assert updated.json()["fields"][0]["name"] == "service"

    submitted = await api.client.post(
        f"/api/v1/panels/{ops}/submissions", json={"data": {"service": "api"}}, headers=OPERATOR
    )
    assert (await api.client.delete(f"/api/v1/panels/{ops}", headers=ADMIN)).status_code == 204
    assert_problem(await api.client.get(f"/api/v1/panels/{ops}", headers=ADMIN), 404)
    assert_problem(
        await api.client.post(
            f"/api/v1/panels/{ops}/submissions", json={"data": {"service": "api"}}, headers=OPERATOR
        ),
        404,
    )
    kept = await api.client.get(f"/api/v1/submissions/{submitted.json()['id']}", headers=ADMIN)
    assert kept.status_code == 200
    mine = await api.client.get(
        "/api/v1/submissions", params={"submitted_by": "alice", "panel_id": ops}, headers=ADMIN
    )
    assert [s["id"] for s in mine.json()["items"]] == [submitted.json()["id"]]
    assert await create_panel(api, slug="restart-api")  # the slug is free again


@pytest.mark.parametrize("option", [{"default": "hunter22"}, {"allowed_values": ["hunter22"]}])
async def test_a_secret_field_keeps_no_value_in_its_definition(
    api: PanelApi, option: dict[str, Any]
) -> None:
    field = {"name": "token", "label": "Token", "field_type": "secret"} | option
    response = await api.client.post(
        "/api/v1/panels",
        json={"slug": "s", "title": "S", "operation_template": "x", "fields": [field]},
        headers=ADMIN,
    )
    (error,) = assert_problem(response, 422, "fields.0")["errors"]
    assert "a secret field takes no default" in error["message"]


async def test_a_secret_is_shown_masked_and_left_out_of_the_idempotency_fingerprint(
    api: PanelApi,
) -> None:
    fields = [{"name": "token", "label": "Token", "field_type": "secret"}]
    panel_id = await create_panel(api, operation_template="use-token", fields=fields)
    schema = (await api.client.get(f"/api/v1/panels/{panel_id}/schema", headers=ADMIN)).json()
    assert schema["schema"]["properties"]["token"]["writeOnly"] is True
    submissions = []
    for token in ("correct-horse", "another-horse"):
        submissions.append(
            await api.client.post(
                f"/api/v1/panels/{panel_id}/submissions",
                json={"data": {"token": token}},
                headers=OPERATOR | {"Idempotency-Key": "once"},
            )
        )
    first, again = submissions
    assert (first.status_code, first.json()["data"]) == (202, {"token": "***"})
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    submissions_kept, _ = await api.stored()
    assert submissions_kept == 1


async def test_one_idempotency_key_sent_many_times_at_once_stores_one_submission(
    api: PanelApi,
) -> None:
    """Submissions sent together are committed together: the copies of one request that
    race past the replay check meet the key's unique constraint and get the original."""
    panel_id = await create_panel(api)
    copies = await asyncio.gather(
        *(
            api.client.post(
                f"/api/v1/panels/{panel_id}/submissions",
                json={"data": {"service": "web"}},
                headers=OPERATOR | {"Idempotency-Key": "once"},
            )
            for _ in range(10)
        )
    )
    assert [copy.status_code for copy in copies] == [202] * 10
    assert len({copy.json()["id"] for copy in copies}) == 1
    assert sum(copy.headers.get("Idempotent-Replayed") != "true" for copy in copies) == 1
    submissions, _ = await api.stored()
    assert submissions == 1

"""A panel is checked against what it points at when it is saved: a panel that could never
run is a 422 naming the field, not a 201 followed by ``rejected`` submissions or 502s."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import LocalSQSServer, Platform, auth_headers, free_port, running_platform

ADMIN = auth_headers(roles=("admin",))
OTHER_TENANT = auth_headers(tenant="globex", roles=("admin",))


@pytest.fixture
async def platform(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as running:
        for headers in (ADMIN, OTHER_TENANT):
            created = await running.operation.post(
                "/api/v1/templates",
                json={
                    "slug": "scale",
                    "name": "Scale",
                    "command_template": "echo {{service}} {{replicas}} {{note}}",
                    "parameters": [
                        {"name": "service"},
                        {"name": "replicas", "type": "integer", "default": 1},
                        {"name": "note", "required": False},
                    ],
                },
                headers=headers,
            )
            assert created.status_code == 201, created.text
        yield running


async def data_source(platform: Platform, headers: dict[str, str]) -> str:
    assert platform.datasource is not None
    created = await platform.datasource.post(
        "/api/v1/datasources",
        json={
            "slug": f"regions-{uuid.uuid4().hex[:6]}",
            "name": "Regions",
            "source_type": "static",
            "options": [{"value": "eu", "label": "EU"}],
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def panel(template: str = "scale", *fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "slug": "scale",
        "title": "Scale",
        "operation_template": template,
        "fields": list(fields) or [{"name": "service", "label": "Service"}],
    }


def refused(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(error["field"], error["code"]) for error in response.json()["errors"]]


async def test_a_panel_must_point_at_a_template_of_its_tenant_that_takes_its_fields(
    platform: Platform,
) -> None:
    post = platform.panel.post
    unknown = await post("/api/v1/panels", json=panel("no-such"), headers=ADMIN)
    assert refused(unknown) == [("operation_template", "unknown_template")]
    missing = await post(
        "/api/v1/panels", json=panel("scale", {"name": "note", "label": "N"}), headers=ADMIN
    )
    assert refused(missing) == [("fields", "missing_parameter")]
    extra = panel("scale", {"name": "service", "label": "S"}, {"name": "region", "label": "R"})
    assert refused(await post("/api/v1/panels", json=extra, headers=ADMIN)) == [
        ("fields.1.name", "unknown_parameter")
    ]
    secret = panel("scale", {"name": "service", "label": "S", "field_type": "secret"})
    assert refused(await post("/api/v1/panels", json=secret, headers=ADMIN)) == [
        ("fields.0.field_type", "type_mismatch")
    ]
    good = await post("/api/v1/panels", json=panel(), headers=ADMIN)
    assert good.status_code == 201, good.text
    listed = await platform.panel.get("/api/v1/panels", headers=ADMIN)
    assert [item["slug"] for item in listed.json()["items"]] == ["scale"]


@pytest.mark.parametrize(
    ("field_type", "accepted"),
    [
        ("integer", True),
        ("select", True),
        ("text", False),  # "abc" accepted by the form, rejected by the template
        ("number", False),  # 1.5
        ("boolean", False),
        ("multiselect", False),  # a list: no parameter takes one
        ("date", False),
    ],
)
async def test_a_field_of_a_type_its_parameter_never_takes_is_refused(
    platform: Platform, field_type: str, accepted: bool
) -> None:
    """It was saved, and every submission through it accepted, then rejected."""
    replicas: dict[str, Any] = {"name": "replicas", "label": "R", "field_type": field_type}
    if field_type in ("select", "multiselect"):
        replicas["options"] = [{"value": "1", "label": "one"}]
    body = panel("scale", {"name": "service", "label": "S"}, replicas)
    response = await platform.panel.post("/api/v1/panels", json=body, headers=ADMIN)
    if accepted:
        assert response.status_code == 201, response.text
    else:
        assert refused(response) == [("fields.1.field_type", "type_mismatch")]
        assert "parameter 'replicas' is integer" in response.text


async def test_data_sources_must_exist_in_the_tenant(platform: Platform) -> None:
    mine = await data_source(platform, ADMIN)
    theirs = await data_source(platform, OTHER_TENANT)

    def select(source: str) -> dict[str, Any]:
        field = {"name": "service", "label": "S", "field_type": "select", "data_source": source}
        return panel("scale", field)

    for source in (theirs, str(uuid.uuid4())):
        response = await platform.panel.post("/api/v1/panels", json=select(source), headers=ADMIN)
        assert refused(response) == [("fields.0.data_source", "unknown_data_source")]
    saved = await platform.panel.post("/api/v1/panels", json=select(mine), headers=ADMIN)
    assert saved.status_code == 201, saved.text


async def test_a_change_is_checked_like_a_new_panel(platform: Platform) -> None:
    saved = await platform.panel.post("/api/v1/panels", json=panel(), headers=ADMIN)
    url = f"/api/v1/panels/{saved.json()['id']}"
    moved = await platform.panel.patch(url, json={"operation_template": "gone"}, headers=ADMIN)
    assert refused(moved) == [("operation_template", "unknown_template")]
    fields = [{"name": "service", "label": "S"}, {"name": "bogus", "label": "B"}]
    changed = await platform.panel.patch(url, json={"fields": fields}, headers=ADMIN)
    assert refused(changed) == [("fields.1.name", "unknown_parameter")]
    retitled = await platform.panel.patch(url, json={"title": "Scale out"}, headers=ADMIN)
    assert retitled.status_code == 200, retitled.text


async def test_an_unreachable_operation_svc_is_named_with_its_setting(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with running_platform(
        "sqlite", tmp_path, sqs_server, with_worker=False, panel={"operation_api_url": nowhere}
    ) as platform:
        response = await platform.panel.post("/api/v1/panels", json=panel(), headers=ADMIN)
        assert response.status_code == 502, response.text
        assert "PANEL_OPERATION_API_URL" in response.json()["detail"]


async def test_resources_are_named_by_id_or_slug_everywhere(platform: Platform) -> None:
    """Templates, panels, data sources and secrets answer to their slug as to their id,
    and another tenant's slug is not found."""
    assert platform.datasource is not None
    source_id = await data_source(platform, ADMIN)
    source_slug = (
        await platform.datasource.get(f"/api/v1/datasources/{source_id}", headers=ADMIN)
    ).json()["slug"]
    saved = await platform.panel.post("/api/v1/panels", json=panel(), headers=ADMIN)
    secret = await platform.operation.post(
        "/api/v1/secrets",
        json={"slug": "db", "provider": "env", "key": "IDP_SECRET_ACME__DB"},
        headers=ADMIN,
    )
    template_id = (await platform.operation.get("/api/v1/templates/scale", headers=ADMIN)).json()[
        "id"
    ]
    for client, by_id, by_slug in (
        (platform.operation, f"/api/v1/templates/{template_id}", "/api/v1/templates/scale"),
        (platform.panel, f"/api/v1/panels/{saved.json()['id']}", "/api/v1/panels/scale"),
        (
            platform.datasource,
            f"/api/v1/datasources/{source_id}",
            f"/api/v1/datasources/{source_slug}",
        ),
        (platform.operation, f"/api/v1/secrets/{secret.json()['id']}", "/api/v1/secrets/db"),
    ):
        one = await client.get(by_id, headers=ADMIN)
        other = await client.get(by_slug, headers=ADMIN)
        assert one.status_code == other.status_code == 200, (by_slug, other.text)
        assert one.json()["id"] == other.json()["id"]
        assert (await client.get(by_id, headers=OTHER_TENANT)).status_code == 404
        theirs = await client.get(by_slug, headers=OTHER_TENANT)  # their own, or none
        assert theirs.status_code == 404 or theirs.json()["id"] != one.json()["id"]
    preview = await platform.operation.post(
        "/api/v1/templates/scale/preview",
        json={"parameters": {"service": "api"}},
        headers=ADMIN,
    )
    assert preview.json()["argv"] == ["echo", "api", "1", ""]
    schema = await platform.panel.get("/api/v1/panels/scale/schema", headers=ADMIN)
    assert schema.status_code == 200

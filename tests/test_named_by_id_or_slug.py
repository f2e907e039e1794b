"""Wherever a person names a template, panel, data source or secret (a path, a field of a
body, a filter), its id and its slug both work, within the caller's tenant only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import template
from tests.harness import LocalSQSServer, Platform, auth_headers, eventually, running_platform

ADMIN = auth_headers(roles=("admin",))
OTHER_TENANT = auth_headers(tenant="globex", roles=("admin",))
SAY = [{"name": "m"}]


@pytest.fixture
async def platform(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as running:
        yield running


async def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


def refusals(response: httpx.Response) -> list[tuple[str, str]]:
    assert response.status_code == 422, response.text
    return [(error["field"], error["code"]) for error in response.json()["errors"]]


async def test_a_panel_naming_its_template_by_id_runs_it_and_lists_by_id_or_slug(
    platform: Platform,
) -> None:
    say = await template(platform, "say", "echo {{m}}", SAY)
    panel = await created(
        await platform.panel.post(
            "/api/v1/panels",
            json={
                "slug": "say",
                "title": "Say",
                "operation_template": say["id"],
                "fields": [{"name": "m", "label": "M"}],
            },
            headers=ADMIN,
        )
    )
    submitted = await platform.panel.post(
        "/api/v1/panels/say/submissions", json={"data": {"m": "hi"}}, headers=ADMIN
    )
    assert submitted.status_code == 202, submitted.text

    async def told() -> dict[str, Any] | None:
        url = f"/api/v1/submissions/{submitted.json()['id']}"
        body: dict[str, Any] = (await platform.panel.get(url, headers=ADMIN)).json()
        return body if body["execution_id"] else None

    submission = await eventually(told)
    assert (submission["status"], submission["error"]) == ("pending", None)
    execution = await platform.operation.get(
        f"/api/v1/executions/{submission['execution_id']}", headers=ADMIN
    )
    assert execution.json()["template_id"] == say["id"]
    for headers, reference, expected in (
        (ADMIN, "say", [submitted.json()["id"]]),
        (ADMIN, panel["id"], [submitted.json()["id"]]),
        (OTHER_TENANT, "say", []),
        (OTHER_TENANT, panel["id"], []),
    ):
        listed = await platform.panel.get(
            "/api/v1/submissions", params={"panel_id": reference}, headers=headers
        )
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()["items"]] == expected


async def test_executions_are_filtered_by_their_templates_id_or_slug(platform: Platform) -> None:
    say = await template(platform, "say", "echo {{m}}", SAY)
    await template(platform, "other", "echo {{m}}", SAY)
    for slug in ("say", "other"):
        started = await platform.operation.post(
            "/api/v1/executions",
            json={"template": slug, "parameters": {"m": "hi"}},
            headers=ADMIN,
        )
        assert started.status_code == 202, started.text

    async def listed(reference: str, headers: dict[str, str] = ADMIN) -> list[str]:
        response = await platform.operation.get(
            "/api/v1/executions", params={"template": reference}, headers=headers
        )
        assert response.status_code == 200, response.text
        return [item["template_slug"] for item in response.json()["items"]]

    assert await listed("say") == await listed(say["id"]) == await listed(say["id"].upper())
    assert await listed("say") == ["say"]
    assert await listed(say["id"], OTHER_TENANT) == []


async def test_a_secret_is_mapped_by_id_or_slug_of_the_tenant(platform: Platform) -> None:
    say = await template(platform, "say", "echo {{m}}", SAY)
    await template(platform, "say", "echo {{m}}", SAY, headers=OTHER_TENANT)
    mine = await created(
        await platform.operation.post(
            "/api/v1/secrets",
            json={"slug": "db", "provider": "env", "key": "IDP_SECRET_ACME__DB"},
            headers=ADMIN,
        )
    )
    theirs = await created(
        await platform.operation.post(
            "/api/v1/secrets",
            json={"slug": "theirs", "provider": "env", "key": "IDP_SECRET_GLOBEX__DB"},
            headers=OTHER_TENANT,
        )
    )
    url = "/api/v1/templates/say/secrets"
    for env_var, reference in (("BY_SLUG", "db"), ("BY_ID", mine["id"])):
        mapped = await created(
            await platform.operation.post(
                url, json={"secret_id": reference, "env_var": env_var}, headers=ADMIN
            )
        )
        assert (mapped["secret_id"], mapped["template_id"]) == (mine["id"], say["id"])
    for reference in ("theirs", theirs["id"], "nothing"):
        refused = await platform.operation.post(
            url, json={"secret_id": reference, "env_var": "NOPE"}, headers=ADMIN
        )
        assert refusals(refused) == [("secret_id", "unknown_secret")]
    listed = await platform.operation.get(url, headers=ADMIN)
    assert sorted(item["env_var"] for item in listed.json()) == ["BY_ID", "BY_SLUG"]


async def test_a_mapping_is_unmapped_from_its_own_template_and_goes_with_its_secret(
    platform: Platform,
) -> None:
    """Both tenants have a template "say" given a secret "db" as DB."""
    ops = platform.operation
    url = "/api/v1/templates/say/secrets"
    db = {"secret_id": "db", "env_var": "DB"}
    mapped_db = {}
    for headers, key in ((ADMIN, "IDP_SECRET_ACME__DB"), (OTHER_TENANT, "IDP_SECRET_GLOBEX__DB")):
        await template(platform, "say", "echo {{m}}", SAY, headers=headers)
        secret = {"slug": "db", "provider": "env", "key": key}
        await created(await ops.post("/api/v1/secrets", json=secret, headers=headers))
        mapped_db[key] = await created(await ops.post(url, json=db, headers=headers))
    await template(platform, "other", "echo {{m}}", SAY)

    taken = await ops.post(url, json=db, headers=ADMIN)
    assert taken.status_code == 409, taken.text
    assert taken.json()["detail"] == "DB is already mapped for this template."
    again = await created(
        await ops.post(url, json={"secret_id": "db", "env_var": "DB_AGAIN"}, headers=ADMIN)
    )
    for elsewhere in (
        f"/api/v1/templates/other/secrets/{again['id']}",
        f"{url}/{mapped_db['IDP_SECRET_GLOBEX__DB']['id']}",
    ):
        assert (await ops.delete(elsewhere, headers=ADMIN)).status_code == 404
    assert (await ops.delete(f"{url}/{again['id']}", headers=ADMIN)).status_code == 204

    async def env_vars(headers: dict[str, str]) -> list[str]:
        return [item["env_var"] for item in (await ops.get(url, headers=headers)).json()]

    assert await env_vars(ADMIN) == ["DB"]
    assert (await ops.delete("/api/v1/secrets/db", headers=ADMIN)).status_code == 204
    assert await env_vars(ADMIN) == []
    assert await env_vars(OTHER_TENANT) == ["DB"]


async def test_a_field_names_its_data_source_by_id_or_slug_and_keeps_its_id(
    platform: Platform,
) -> None:
    assert platform.datasource is not None
    await template(platform, "pick", "echo {{region}}", [{"name": "region"}])
    sources = {}
    hex_slug = "0123456789abcdef0123456789abcdef"  # a slug, though uuid.UUID() reads it
    for headers, slug in ((ADMIN, "regions"), (OTHER_TENANT, "their-regions"), (ADMIN, hex_slug)):
        sources[slug] = await created(
            await platform.datasource.post(
                "/api/v1/datasources",
                json={
                    "slug": slug,
                    "name": slug,
                    "source_type": "static",
                    "options": [{"value": "eu", "label": "EU"}],
                },
                headers=headers,
            )
        )

    def panel(source: str) -> dict[str, Any]:
        field = {"name": "region", "label": "R", "field_type": "select", "data_source": source}
        return {"slug": "pick", "title": "Pick", "operation_template": "pick", "fields": [field]}

    for source in ("their-regions", sources["their-regions"]["id"], "no-such-source"):
        refused = await platform.panel.post("/api/v1/panels", json=panel(source), headers=ADMIN)
        assert refusals(refused) == [("fields.0.data_source", "unknown_data_source")]
    by_hex_slug = await created(
        await platform.panel.post("/api/v1/panels", json=panel(hex_slug), headers=ADMIN)
    )
    assert by_hex_slug["fields"][0]["data_source"] == sources[hex_slug]["id"]
    await platform.panel.delete("/api/v1/panels/pick", headers=ADMIN)
    saved = await created(
        await platform.panel.post("/api/v1/panels", json=panel("regions"), headers=ADMIN)
    )
    assert saved["fields"][0]["data_source"] == sources["regions"]["id"]
    # A slug may change; the panel keeps following the same source.
    renamed = await platform.datasource.patch(
        "/api/v1/datasources/regions", json={"slug": "zones"}, headers=ADMIN
    )
    assert renamed.status_code == 200, renamed.text
    options = await platform.panel.get("/api/v1/panels/pick/fields/region/options", headers=ADMIN)
    assert options.status_code == 200, options.text
    assert [option["value"] for option in options.json()["options"]] == ["eu"]
    changed = await platform.panel.patch(
        "/api/v1/panels/pick", json={"fields": panel("zones")["fields"]}, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["fields"][0]["data_source"] == sources["regions"]["id"]


async def test_the_api_docs_say_id_or_slug(platform: Platform) -> None:
    assert platform.datasource is not None
    named = {"template_id", "panel_id", "source_id", "secret_id"}
    seen = set()  # panel_id is also the filter of GET /submissions
    for client in (platform.operation, platform.panel, platform.datasource):
        document = (await client.get("/openapi.json")).json()
        for path, operations in document["paths"].items():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    if parameter["name"] in named or (
                        path == "/api/v1/executions" and parameter["name"] == "template"
                    ):
                        seen.add(parameter["name"])
                        assert "id or its slug" in parameter.get("description", ""), (
                            path,
                            parameter,
                        )
    assert seen == named | {"template"}

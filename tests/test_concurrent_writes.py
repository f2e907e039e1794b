"""Writes sent at once (two admins, a double click) get the answers they would get one after
the other, on PostgreSQL as on SQLite (whose single write turn runs them in turn): a value
that must be unique is stored once and the others are a 409 naming the field, never a 500."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from idp_common.db import Database
from operation_svc.config import WebhookSettings
from operation_svc.models import TemplateVersion
from tests.factories import template
from tests.harness import LocalSQSServer, Platform, auth_headers, running_platform

ADMIN = auth_headers(roles=("admin",))
OTHER_TENANT = auth_headers(tenant="globex", roles=("admin",))
SECRET_KEYS = {"acme": "IDP_SECRET_ACME__DB", "globex": "IDP_SECRET_GLOBEX__DB"}
# Enough for every race seen; the services' pools keep a connection for each request that
# was in flight, and the tests share one PostgreSQL server (100 connections by default).
AT_ONCE = 10
APPROVAL_REQUESTED = "operation.approval.requested"
Send = Callable[[int, dict[str, str]], Awaitable[httpx.Response]]


@pytest.fixture(scope="module")
async def platform(
    backend: str, module_tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[Platform]:
    """Shared by the module's tests, each writing objects of its own slugs. Both tenants
    have a template "base" and a secret "db"."""
    async with running_platform(
        backend,
        module_tmp_path,
        sqs_server,
        with_worker=False,
        with_datasource=True,
        operation={"webhook": WebhookSettings(allowed_hosts=["127.0.0.1"])},
    ) as running:
        for headers, key in ((ADMIN, SECRET_KEYS["acme"]), (OTHER_TENANT, SECRET_KEYS["globex"])):
            await template(running, "base", "echo hi", [], headers=headers)
            secret = {"slug": "db", "provider": "env", "key": key}
            created = await running.operation.post("/api/v1/secrets", json=secret, headers=headers)
            assert created.status_code == 201, created.text
        yield running


def assert_taken(response: httpx.Response, field: str) -> None:
    """A 409 problem naming ``field``, and no other, as a value another object holds."""
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert [(error["field"], error["code"]) for error in problem["errors"]] == [(field, "unique")]


def assert_one_made_and_the_others_taken(
    responses: list[httpx.Response], made: int, field: str
) -> None:
    statuses = [response.status_code for response in responses]
    assert statuses.count(made) == 1, statuses
    for response in responses:
        if response.status_code != made:
            assert_taken(response, field)


async def at_once(send: Send, headers: dict[str, str]) -> list[httpx.Response]:
    return list(await asyncio.gather(*(send(n, headers) for n in range(AT_ONCE))))


def tenant_of(headers: dict[str, str]) -> str:
    return "globex" if headers is OTHER_TENANT else "acme"


def creates(platform: Platform, slug: str) -> dict[str, Send]:
    """Each create of an object named ``slug``, by its kind. The n-th request differs from
    the others in what is not unique (a name, a title), so none repeats another."""
    ops, panels, sources = platform.operation, platform.panel, platform.datasource
    assert sources is not None

    async def template_(n: int, headers: dict[str, str]) -> httpx.Response:
        body = {"slug": slug, "name": f"n{n}", "command_template": "echo hi"}
        return await ops.post("/api/v1/templates", json=body, headers=headers)

    async def secret(n: int, headers: dict[str, str]) -> httpx.Response:
        key = f"{SECRET_KEYS[tenant_of(headers)]}{n}"
        body = {"slug": slug, "provider": "env", "key": key}
        return await ops.post("/api/v1/secrets", json=body, headers=headers)

    async def panel(n: int, headers: dict[str, str]) -> httpx.Response:
        body = {"slug": slug, "title": f"t{n}", "operation_template": "base", "fields": []}
        return await panels.post("/api/v1/panels", json=body, headers=headers)

    async def data_source(n: int, headers: dict[str, str]) -> httpx.Response:
        options = [{"value": "a", "label": f"a{n}"}]
        body = {"slug": slug, "name": f"n{n}", "source_type": "static", "options": options}
        return await sources.post("/api/v1/datasources", json=body, headers=headers)

    return {"templates": template_, "secrets": secret, "panels": panel, "datasources": data_source}


@pytest.mark.parametrize("kind", ["templates", "secrets", "panels", "datasources"])
async def test_creates_of_one_slug_sent_at_once_make_one_and_the_others_are_409(
    platform: Platform, kind: str
) -> None:
    """In two tenants, the same slug: a slug is unique in its tenant only."""
    send = creates(platform, f"race-{kind}")[kind]
    for headers in (ADMIN, OTHER_TENANT):
        assert_one_made_and_the_others_taken(await at_once(send, headers), 201, "slug")
    assert_taken(await send(AT_ONCE, ADMIN), "slug")  # and one after the other


async def test_renames_of_data_sources_to_one_slug_sent_at_once_rename_one(
    platform: Platform,
) -> None:
    """Renames to a slug, and a create of it, at once: one of them takes it."""
    sources = platform.datasource
    assert sources is not None
    create = creates(platform, "renamed-to")["datasources"]
    for n in range(AT_ONCE):
        assert (await creates(platform, f"renamed-{n}")["datasources"](n, ADMIN)).status_code == 201

    async def rename(n: int, headers: dict[str, str]) -> httpx.Response:
        if n == 0:
            return await create(n, headers)
        path = f"/api/v1/datasources/renamed-{n}"
        return await sources.patch(path, json={"slug": "renamed-to"}, headers=headers)

    answers = await at_once(rename, ADMIN)
    winner = next(answer for answer in answers if answer.status_code < 300)
    assert_one_made_and_the_others_taken(answers, winner.status_code, "slug")


async def test_mappings_of_one_variable_sent_at_once_map_it_once(platform: Platform) -> None:
    """The template and the secret named by slug or by id, in either tenant: one mapping of
    DB per template."""
    ops = platform.operation
    ids = {}
    for headers in (ADMIN, OTHER_TENANT):
        template_id = (await ops.get("/api/v1/templates/base", headers=headers)).json()["id"]
        secret_id = (await ops.get("/api/v1/secrets/db", headers=headers)).json()["id"]
        ids[tenant_of(headers)] = (template_id, secret_id)

    async def map_db(n: int, headers: dict[str, str]) -> httpx.Response:
        template_id, secret_id = ids[tenant_of(headers)]
        path = f"/api/v1/templates/{'base' if n % 2 else template_id}/secrets"
        body = {"secret_id": "db" if n % 3 else secret_id, "env_var": "DB"}
        return await ops.post(path, json=body, headers=headers)

    for headers in (ADMIN, OTHER_TENANT):
        assert_one_made_and_the_others_taken(await at_once(map_db, headers), 201, "env_var")
    mapped = await ops.get("/api/v1/templates/base/secrets", headers=ADMIN)
    assert [mapping["env_var"] for mapping in mapped.json()] == ["DB"]


async def versions_kept(platform: Platform, template_id: str) -> dict[int, str]:
    """Each kept version of the template and the command it runs."""
    db = Database(platform.database_urls["operation"])
    try:
        async with db.snapshot() as session:
            rows = await session.execute(
                select(TemplateVersion.version, TemplateVersion.definition).where(
                    TemplateVersion.template_id == uuid.UUID(template_id)
                )
            )
            return {version: definition["command_template"] for version, definition in rows}
    finally:
        await db.dispose()


async def test_changes_of_a_template_sent_at_once_are_each_a_version_of_their_own(
    platform: Platform,
) -> None:
    """Named by slug or by id: each change is applied in turn on the one before, as its
    own version, numbered without gaps."""
    ops = platform.operation
    created = await template(platform, "edited", "echo v0", [])

    async def change(n: int, headers: dict[str, str]) -> httpx.Response:
        path = f"/api/v1/templates/{'edited' if n % 2 else created['id']}"
        return await ops.patch(path, json={"command_template": f"echo v{n}"}, headers=headers)

    answers = await at_once(change, ADMIN)
    assert [answer.status_code for answer in answers] == [200] * AT_ONCE, [
        answer.text for answer in answers if answer.status_code != 200
    ]
    versions = {answer.json()["version"]: answer.json()["command_template"] for answer in answers}
    assert sorted(versions) == list(range(2, AT_ONCE + 2))
    assert await versions_kept(platform, created["id"]) == {1: "echo v0"} | versions
    now = (await ops.get("/api/v1/templates/edited", headers=ADMIN)).json()
    assert (now["version"], now["command_template"]) == (AT_ONCE + 1, versions[AT_ONCE + 1])


async def test_a_template_deleted_among_changes_sent_at_once_takes_no_change_after(
    platform: Platform,
) -> None:
    ops = platform.operation
    created = await template(platform, "going", "echo v0", [])

    async def change_or_delete(n: int, headers: dict[str, str]) -> httpx.Response:
        if n == AT_ONCE // 2:
            return await ops.delete("/api/v1/templates/going", headers=headers)
        return await ops.patch(
            f"/api/v1/templates/{created['id']}",
            json={"command_template": f"echo v{n}"},
            headers=headers,
        )

    answers = await at_once(change_or_delete, ADMIN)
    changed = [answer.json()["version"] for answer in answers if answer.status_code == 200]
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * len(changed) + [204] + [404] * (AT_ONCE - 1 - len(changed))
    assert sorted(changed) == list(range(2, len(changed) + 2))
    assert sorted(await versions_kept(platform, created["id"])) == list(range(1, len(changed) + 2))


async def test_changes_of_a_panels_fields_sent_at_once_each_replace_the_fields_in_turn(
    platform: Platform,
) -> None:
    """The same field names each time (the ones a change replaces), by slug or by id: the
    panel ends with one change's fields, whole."""
    panels = platform.panel
    await template(platform, "pair", "echo {{a}} {{b}}", [{"name": "a"}, {"name": "b"}])

    def fields(n: int) -> list[dict[str, str]]:
        return [{"name": name, "label": f"{name} {n}"} for name in ("a", "b")]

    body = {"slug": "fields-race", "title": "t", "operation_template": "pair", "fields": fields(0)}
    created = await panels.post("/api/v1/panels", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text

    async def change(n: int, headers: dict[str, str]) -> httpx.Response:
        path = f"/api/v1/panels/{'fields-race' if n % 2 else created.json()['id']}"
        return await panels.patch(path, json={"fields": fields(n)}, headers=headers)

    answers = await at_once(change, ADMIN)
    assert [answer.status_code for answer in answers] == [200] * AT_ONCE, [
        answer.text for answer in answers if answer.status_code != 200
    ]
    now = (await panels.get("/api/v1/panels/fields-race", headers=ADMIN)).json()
    labels = [field["label"] for field in now["fields"]]
    assert labels in [[field["label"] for field in fields(n)] for n in range(AT_ONCE)], labels


async def test_changes_of_a_webhook_sent_at_once_leave_it_one_delivery_per_event(
    platform: Platform,
) -> None:
    """Each change rewrites what the subscription receives, even one that changes nothing
    (a form saved again as it is): an event it wants afterwards is delivered once, and the
    request that caused it succeeds."""
    ops = platform.operation
    approval = {"required": 1, "approver_roles": ["admin"]}
    await template(platform, "approved", "echo hi", [], approval=approval)
    body = {"url": "http://127.0.0.1:9/hook", "event_types": [APPROVAL_REQUESTED]}
    hook = (await ops.post("/api/v1/webhooks", json=body, headers=ADMIN)).json()

    async def change(n: int, headers: dict[str, str]) -> httpx.Response:
        body = {"event_types": [APPROVAL_REQUESTED]}
        return await ops.patch(f"/api/v1/webhooks/{hook['id']}", json=body, headers=headers)

    answers = await at_once(change, ADMIN)
    assert [answer.status_code for answer in answers] == [200] * AT_ONCE
    started = await ops.post("/api/v1/executions", json={"template": "approved"}, headers=ADMIN)
    assert started.status_code == 202, started.text
    deliveries = await ops.get(f"/api/v1/webhooks/{hook['id']}/deliveries", headers=ADMIN)
    assert [delivery["event_type"] for delivery in deliveries.json()["items"]] == [
        APPROVAL_REQUESTED
    ]

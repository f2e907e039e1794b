"""Identity across the services: roles, tenancy, API keys, per-object restrictions, audit.

Every test runs panel-svc, operation-svc and datasource-svc on real ports and real databases;
panel-svc and datasource-svc verify API keys by asking operation-svc."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import create_async_engine

from idp_common.settings import RateLimitSettings
from operation_svc.models import ApiKey
from tests.harness import (
    REDIS_URL,
    LocalSQSServer,
    Platform,
    assert_field_refused,
    auth_headers,
    eventually,
    running_platform,
)

ADMIN = auth_headers("acme", ("admin",), "ada")
OPERATOR = auth_headers("acme", ("operator",), "otto")
VIEWER = auth_headers("acme", ("viewer",), "vera")
OTHER_ADMIN = auth_headers("globex", ("admin",), "mallory")


@pytest.fixture
async def platform(tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as running:
        yield running


def datasources(platform: Platform) -> httpx.AsyncClient:
    assert platform.datasource is not None
    return platform.datasource


async def created(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def seed(platform: Platform, headers: dict[str, str] = ADMIN) -> dict[str, str]:
    """One of each tenant-owned object, created by the tenant's admin."""
    template = await created(
        await platform.operation.post(
            "/api/v1/templates",
            json={
                "slug": "echo-message",
                "name": "Echo",
                "command_template": "echo {{message}}",
                "parameters": [{"name": "message", "max_length": 200}],
            },
            headers=headers,
        )
    )
    panel = await created(
        await platform.panel.post(
            "/api/v1/panels",
            json={
                "slug": "echo",
                "title": "Echo",
                "operation_template": "echo-message",
                "fields": [{"name": "message", "label": "Message"}],
            },
            headers=headers,
        )
    )
    submission = await created(
        await platform.panel.post(
            f"/api/v1/panels/{panel['id']}/submissions",
            json={"data": {"message": "hi"}},
            headers=headers,
        ),
        202,
    )
    execution = await created(
        await platform.operation.post(
            "/api/v1/executions",
            json={"template": "echo-message", "parameters": {"message": "hi"}},
            headers=headers,
        ),
        202,
    )
    source = await created(
        await datasources(platform).post(
            "/api/v1/datasources",
            json={
                "slug": "colours",
                "name": "Colours",
                "source_type": "static",
                "options": [{"value": "red", "label": "Red"}],
            },
            headers=headers,
        )
    )
    secret = await created(
        await platform.operation.post(
            "/api/v1/secrets",
            json={"slug": "db-password", "provider": "env", "key": "IDP_SECRET_ACME__DB_PASSWORD"},
            headers=headers,
        )
    )
    return {
        "template": template["id"],
        "panel": panel["id"],
        "submission": submission["id"],
        "execution": execution["id"],
        "source": source["id"],
        "secret": secret["id"],
    }


async def test_roles_gate_what_each_principal_may_do(platform: Platform) -> None:
    ids = await seed(platform)
    ops, panels, sources = platform.operation, platform.panel, datasources(platform)
    template = {"slug": "t2", "name": "T", "command_template": "echo hi"}
    panel = {"slug": "p2", "title": "P", "operation_template": "echo-message"}
    source = {
        "slug": "s2",
        "name": "S",
        "source_type": "static",
        "options": [{"value": "a", "label": "A"}],
    }
    secret = {"slug": "s2", "provider": "env", "key": "IDP_SECRET_ACME__X"}
    api_key = {"name": "ci", "roles": ["viewer"]}
    manage = [
        (ops, "POST", "/api/v1/templates", template),
        (ops, "PATCH", f"/api/v1/templates/{ids['template']}", {"name": "renamed"}),
        (ops, "DELETE", f"/api/v1/templates/{ids['template']}", None),
        (ops, "POST", "/api/v1/secrets", secret),
        (ops, "DELETE", f"/api/v1/secrets/{ids['secret']}", None),
        (ops, "POST", "/api/v1/api-keys", api_key),
        (ops, "GET", "/api/v1/audit", None),
        (panels, "POST", "/api/v1/panels", panel),
        (panels, "PATCH", f"/api/v1/panels/{ids['panel']}", {"title": "renamed"}),
        (panels, "DELETE", f"/api/v1/panels/{ids['panel']}", None),
        (sources, "POST", "/api/v1/datasources", source),
        (sources, "DELETE", f"/api/v1/datasources/{ids['source']}", None),
    ]
    run = [
        (panels, "POST", f"/api/v1/panels/{ids['panel']}/submissions", {"data": {"message": "x"}}),
        (
            ops,
            "POST",
            "/api/v1/executions",
            {"template": "echo-message", "parameters": {"message": "x"}},
        ),
        (ops, "POST", f"/api/v1/executions/{ids['execution']}/cancel", None),
        (ops, "POST", f"/api/v1/executions/{ids['execution']}/retry", None),
    ]
    for client, method, url, body in manage + run:
        response = await client.request(method, url, json=body, headers=VIEWER)
        assert response.status_code == 403, (method, url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    for client, method, url, body in manage:
        response = await client.request(method, url, json=body, headers=OPERATOR)
        assert response.status_code == 403, (method, url, response.text)

    # Reading is a viewer's right; running an operator's.
    for client, url in [
        (panels, f"/api/v1/panels/{ids['panel']}"),
        (panels, f"/api/v1/submissions/{ids['submission']}"),
        (ops, f"/api/v1/templates/{ids['template']}"),
        (ops, f"/api/v1/executions/{ids['execution']}"),
        (ops, f"/api/v1/executions/{ids['execution']}/logs"),
        (sources, f"/api/v1/datasources/{ids['source']}"),
    ]:
        assert (await client.get(url, headers=VIEWER)).status_code == 200, url
    statuses = [
        (await client.request(method, url, json=body, headers=OPERATOR)).status_code
        for client, method, url, body in run
    ]
    assert statuses == [202, 202, 202, 202]


async def test_another_tenants_objects_do_not_exist_for_you(platform: Platform) -> None:
    ids = await seed(platform)
    ops, panels, sources = platform.operation, platform.panel, datasources(platform)
    by_id: list[tuple[httpx.AsyncClient, str, str, dict[str, Any] | None]] = [
        (panels, "GET", f"/api/v1/panels/{ids['panel']}", None),
        (panels, "GET", f"/api/v1/panels/{ids['panel']}/schema", None),
        (panels, "PATCH", f"/api/v1/panels/{ids['panel']}", {"title": "x"}),
        (panels, "POST", f"/api/v1/panels/{ids['panel']}/submissions", {"data": {"message": "x"}}),
        (panels, "GET", f"/api/v1/submissions/{ids['submission']}", None),
        (ops, "GET", f"/api/v1/templates/{ids['template']}", None),
        (ops, "PATCH", f"/api/v1/templates/{ids['template']}", {"name": "x"}),
        (ops, "GET", f"/api/v1/executions/{ids['execution']}", None),
        (ops, "GET", f"/api/v1/executions/{ids['execution']}/logs", None),
        (ops, "GET", f"/api/v1/executions/{ids['execution']}/logs/stream", None),
        (ops, "POST", f"/api/v1/executions/{ids['execution']}/cancel", None),
        (ops, "GET", f"/api/v1/secrets/{ids['secret']}", None),
        (ops, "DELETE", f"/api/v1/secrets/{ids['secret']}", None),
        (sources, "GET", f"/api/v1/datasources/{ids['source']}", None),
        (sources, "POST", f"/api/v1/datasources/{ids['source']}/resolve", {"values": {}}),
        (sources, "DELETE", f"/api/v1/datasources/{ids['source']}", None),
    ]
    for client, method, url, body in by_id:
        response = await client.request(method, url, json=body, headers=OTHER_ADMIN)
        assert response.status_code == 404, (method, url, response.text)

    lists = [
        (panels, "/api/v1/panels"),
        (panels, "/api/v1/submissions"),
        (ops, "/api/v1/templates"),
        (ops, "/api/v1/executions"),
        (ops, "/api/v1/secrets"),
        (ops, "/api/v1/audit"),
        (panels, "/api/v1/audit"),
        (sources, "/api/v1/datasources"),
        (sources, "/api/v1/audit"),
    ]
    for client, url in lists:
        mine = await client.get(url, headers=ADMIN)
        theirs = await client.get(url, headers=OTHER_ADMIN)
        assert mine.status_code == theirs.status_code == 200, url
        assert mine.json()["items"], url
        assert theirs.json()["items"] == [], url
    # Nothing was changed by the refused attempts.
    still = await ops.get(f"/api/v1/secrets/{ids['secret']}", headers=ADMIN)
    assert still.status_code == 200


@pytest.mark.parametrize(
    "header",
    [
        ("Authorization", b"ApiKey idp_\xff"),
        ("Authorization", "ApiKey idp_\u00e9".encode()),
        ("authorization", b"apikey idp_\x80abc"),
        ("X-API-Key", b"idp_\xff"),
        ("X-API-Key", "idp_k\u00e9y".encode()),
        ("X-API-Key", b"idp_a b"),
        ("X-API-Key", b"idp_" + b"a" * 5000),
    ],
    ids=["latin-1", "utf-8", "lower-case-scheme", "x-api-key", "x-api-key-utf-8", "space", "long"],
)
async def test_a_key_no_service_could_have_issued_is_a_401_everywhere(
    platform: Platform, header: tuple[str, bytes]
) -> None:
    """Once a 500 at the services that ask operation-svc: a non-ASCII key cannot be put in
    the header they ask with."""
    name, value = header
    for client in (platform.panel, platform.operation, datasources(platform)):
        response = await client.get("/api/v1/auth/whoami", headers={name.encode(): value})
        assert response.status_code == 401, (client.base_url, response.text)
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("name", ["Authorization", "X-API-Key"])
async def test_a_credential_sent_twice_is_a_401_everywhere(platform: Platform, name: str) -> None:
    """Once the first was taken: a gateway in front that authenticated the last would have
    admitted globex's admin where every service acted as acme's."""
    created_key = await created(
        await platform.operation.post(
            "/api/v1/api-keys", json={"name": "ci", "roles": ["admin"]}, headers=ADMIN
        )
    )
    values = {
        "Authorization": [ADMIN["Authorization"], OTHER_ADMIN["Authorization"]],
        "X-API-Key": [created_key["key"], created_key["key"]],
    }[name]
    for client in (platform.panel, platform.operation, datasources(platform)):
        response = await client.get(
            "/api/v1/auth/whoami", headers=[(name, value) for value in values]
        )
        assert response.status_code == 401, (client.base_url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert f"sends {name} 2 times" in response.json()["detail"]


async def test_api_keys_are_stored_hashed_and_revocation_is_immediate(
    platform: Platform,
) -> None:
    ids = await seed(platform)
    issued = await created(
        await platform.operation.post(
            "/api/v1/api-keys", json={"name": "deploy-bot", "roles": ["operator"]}, headers=ADMIN
        )
    )
    key = issued["key"]
    assert key.startswith("idp_")
    assert len(key) >= 4 + 43
    assert issued["prefix"] == key[:12]
    listed = (await platform.operation.get("/api/v1/api-keys", headers=ADMIN)).json()["items"]
    assert [item["prefix"] for item in listed] == [issued["prefix"]]
    assert "key" not in listed[0]

    engine = create_async_engine(platform.database_urls["operation"])
    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT * FROM api_keys"))).mappings().all()
        audit = (await connection.execute(text("SELECT * FROM audit_log"))).mappings().all()
    await engine.dispose()
    assert [row["key_hash"] for row in rows] == [hashlib.sha256(key.encode()).hexdigest()]
    assert key not in json.dumps([dict(row) for row in [*rows, *audit]], default=str)

    with_key = {"X-API-Key": key}
    usable = [
        (platform.panel, f"/api/v1/panels/{ids['panel']}"),
        (platform.operation, f"/api/v1/executions/{ids['execution']}"),
        (datasources(platform), f"/api/v1/datasources/{ids['source']}"),
    ]
    for client, url in usable:
        assert (await client.get(url, headers=with_key)).status_code == 200, url
    submitted = await created(
        await platform.panel.post(
            f"/api/v1/panels/{ids['panel']}/submissions",
            json={"data": {"message": "from a bot"}},
            headers=with_key,
        ),
        202,
    )
    assert submitted["submitted_by"] == f"api-key:{issued['id']}"
    whoami = (await platform.panel.get("/api/v1/auth/whoami", headers=with_key)).json()
    assert whoami == {
        "sub": f"api-key:{issued['id']}",
        "tenant": "acme",
        "roles": ["operator"],
        "groups": [],
    }
    # The key's roles bound it: an operator key cannot manage templates.
    refused = await platform.operation.post(
        "/api/v1/templates",
        json={"slug": "x", "name": "x", "command_template": "echo"},
        headers=with_key,
    )
    assert refused.status_code == 403

    revoked = await platform.operation.delete(f"/api/v1/api-keys/{issued['id']}", headers=ADMIN)
    assert revoked.status_code == 204
    for client, url in usable:
        response = await client.get(url, headers=with_key)
        assert response.status_code == 401, url
        assert response.headers["content-type"] == "application/problem+json"

    for bad in ({"X-API-Key": "idp_" + "A" * 43}, {"X-API-Key": "not-a-key"}, with_key | ADMIN):
        assert (await platform.panel.get("/api/v1/panels", headers=bad)).status_code == 401


async def test_a_key_made_with_a_key_never_outlives_it(platform: Platform) -> None:
    """A key made with a short-lived (or leaked, then revoked) key was independent of it: a
    never-expiring child kept its admin access. A child's expiry is now at most its
    creator key's, and a key is refused once any key it was made with is withdrawn."""
    within_an_hour = datetime.now(UTC) + timedelta(hours=1)
    parent = await created(
        await platform.operation.post(
            "/api/v1/api-keys",
            json={"name": "short", "roles": ["admin"], "expires_at": within_an_hour.isoformat()},
            headers=ADMIN,
        )
    )

    async def make(creator: dict[str, Any], **expiry: Any) -> httpx.Response:
        return await platform.operation.post(
            "/api/v1/api-keys",
            json={"name": "child", "roles": ["admin"]} | expiry,
            headers={"X-API-Key": creator["key"]},
        )

    never: dict[str, str] = {}
    a_second_later = {"expires_at": (within_an_hour + timedelta(seconds=1)).isoformat()}
    offset_spelling = {"expires_at": "2999-01-01T00:00:00+14:00"}
    for later in (never, a_second_later, offset_spelling):
        assert_field_refused(await make(parent, **later), "expires_at", "beyond_creator_expiry")
    child = await created(await make(parent, expires_at=parent["expires_at"]))
    grandchild = await created(
        await make(child, expires_at=(within_an_hour - timedelta(minutes=1)).isoformat())
    )

    async def status_everywhere(key: dict[str, Any]) -> set[int]:
        clients = (platform.panel, platform.operation, datasources(platform))
        return {
            (await client.get("/api/v1/auth/whoami", headers={"X-API-Key": key["key"]})).status_code
            for client in clients
        }

    async def expire(key: dict[str, Any], at: datetime) -> None:
        engine = create_async_engine(platform.database_urls["operation"])
        async with engine.begin() as connection:
            await connection.execute(
                update(ApiKey).where(ApiKey.id == uuid.UUID(key["id"])).values(expires_at=at)
            )
        await engine.dispose()

    assert [await status_everywhere(key) for key in (parent, child, grandchild)] == [{200}] * 3
    await expire(parent, datetime.now(UTC) - timedelta(seconds=1))
    assert [await status_everywhere(key) for key in (parent, child, grandchild)] == [{401}] * 3
    await expire(parent, within_an_hour)
    revoked = await platform.operation.delete(f"/api/v1/api-keys/{child['id']}", headers=ADMIN)
    assert revoked.status_code == 204
    assert [await status_everywhere(key) for key in (parent, child, grandchild)] == [
        {200},
        {401},
        {401},
    ]
    # A key made by a person expires when it is told to.
    forever = await created(
        await platform.operation.post(
            "/api/v1/api-keys", json={"name": "forever", "roles": ["viewer"]}, headers=ADMIN
        )
    )
    assert forever["expires_at"] is None


async def test_allowed_groups_restrict_who_may_run_a_panel_or_template(
    platform: Platform,
) -> None:
    await seed(platform)
    restricted = await created(
        await platform.operation.post(
            "/api/v1/templates",
            json={
                "slug": "drop-replica",
                "name": "Drop a replica",
                "command_template": "echo dropping",
                "allowed_groups": ["db-admins"],
            },
            headers=ADMIN,
        )
    )
    assert restricted["allowed_groups"] == ["db-admins"]
    dba = auth_headers("acme", ("operator",), "dora", groups=("db-admins",))
    run = {"template": "drop-replica", "parameters": {}}
    refused = await platform.operation.post("/api/v1/executions", json=run, headers=OPERATOR)
    assert refused.status_code == 403
    assert "db-admins" in refused.json()["detail"]
    assert (
        await platform.operation.post("/api/v1/executions", json=run, headers=ADMIN)
    ).status_code == 403
    allowed = await platform.operation.post("/api/v1/executions", json=run, headers=dba)
    assert allowed.status_code == 202, allowed.text
    # Nor can an admin outside the group hand it to a key of theirs, and run through it.
    key = {"name": "dba-bot", "roles": ["operator"], "groups": ["db-admins"]}
    beyond = await platform.operation.post("/api/v1/api-keys", json=key, headers=ADMIN)
    assert_field_refused(beyond, "groups", "not_a_member")
    assert "db-admins" in beyond.json()["errors"][0]["message"]
    dba_admin = auth_headers("acme", ("admin",), "dana", groups=("db-admins",))
    made = await platform.operation.post("/api/v1/api-keys", json=key, headers=dba_admin)
    assert made.status_code == 201, made.text
    trail = await platform.operation.get(
        "/api/v1/audit", params={"object_id": made.json()["id"]}, headers=ADMIN
    )
    assert trail.json()["items"][0]["changes"]["groups"] == ["db-admins"]

    # A panel open to every operator, in front of the restricted template: the submission is
    # accepted by panel-svc and rejected by operation-svc, which knows the template's rule.
    open_panel = await created(
        await platform.panel.post(
            "/api/v1/panels",
            json={"slug": "drop", "title": "Drop", "operation_template": "drop-replica"},
            headers=ADMIN,
        )
    )
    submission = await created(
        await platform.panel.post(
            f"/api/v1/panels/{open_panel['id']}/submissions", json={"data": {}}, headers=OPERATOR
        ),
        202,
    )

    async def rejected() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await platform.panel.get(f"/api/v1/submissions/{submission['id']}", headers=OPERATOR)
        ).json()
        return body if body["status"] == "rejected" else None

    assert "may not run" in (await eventually(rejected))["error"]

    # A panel restricted itself refuses at once.
    closed_panel = await created(
        await platform.panel.post(
            "/api/v1/panels",
            json={
                "slug": "drop-closed",
                "title": "Drop",
                "operation_template": "drop-replica",
                "allowed_groups": ["db-admins"],
            },
            headers=ADMIN,
        )
    )
    url = f"/api/v1/panels/{closed_panel['id']}/submissions"
    assert (await platform.panel.post(url, json={"data": {}}, headers=OPERATOR)).status_code == 403
    assert (await platform.panel.post(url, json={"data": {}}, headers=dba)).status_code == 202


async def test_every_mutation_leaves_an_audit_row_without_secrets(platform: Platform) -> None:
    ids = await seed(platform)
    ops, panels, sources = platform.operation, platform.panel, datasources(platform)
    literal = "sup3r-s3cret-header-value"
    await created(
        await sources.post(
            "/api/v1/datasources",
            json={
                "slug": "with-header",
                "name": "H",
                "source_type": "http",
                "endpoint_url": "http://127.0.0.1:9/x",
                "headers": {"X-Api-Token": literal},
            },
            headers=ADMIN,
        )
    )
    issued = await created(
        await ops.post("/api/v1/api-keys", json={"name": "bot", "roles": ["viewer"]}, headers=ADMIN)
    )
    mutations = [
        (ops, "PATCH", f"/api/v1/templates/{ids['template']}", {"name": "Echo 2"}),
        (ops, "POST", f"/api/v1/executions/{ids['execution']}/cancel", None),
        (ops, "POST", f"/api/v1/executions/{ids['execution']}/retry", None),
        (ops, "DELETE", f"/api/v1/api-keys/{issued['id']}", None),
        (ops, "DELETE", f"/api/v1/secrets/{ids['secret']}", None),
        (panels, "PATCH", f"/api/v1/panels/{ids['panel']}", {"title": "Echo 2"}),
        (sources, "PATCH", f"/api/v1/datasources/{ids['source']}", {"name": "Colours 2"}),
        (sources, "POST", f"/api/v1/datasources/{ids['source']}/refresh", None),
        (sources, "DELETE", f"/api/v1/datasources/{ids['source']}", None),
        (panels, "DELETE", f"/api/v1/panels/{ids['panel']}", None),
        (ops, "DELETE", f"/api/v1/templates/{ids['template']}", None),
    ]
    for client, method, url, body in mutations:
        response = await client.request(method, url, json=body, headers=ADMIN)
        assert response.is_success, (method, url, response.text)

    async def actions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
        response = await client.get("/api/v1/audit", params={"limit": 100}, headers=ADMIN)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    expected = {
        ops: {
            "template.create",
            "template.update",
            "template.delete",
            "execution.create",
            "execution.submit",
            "execution.cancel",
            "execution.retry",
            "secret.create",
            "secret.delete",
            "api_key.create",
            "api_key.revoke",
        },
        panels: {"panel.create", "panel.update", "panel.delete", "submission.create"},
        sources: {
            "datasource.create",
            "datasource.update",
            "datasource.refresh",
            "datasource.delete",
        },
    }
    for client, wanted in expected.items():
        rows = await actions(client)
        assert wanted <= {row["action"] for row in rows}, {row["action"] for row in rows}
        assert {row["actor"] for row in rows} == {"ada"}
        dumped = json.dumps(rows)
        assert literal not in dumped
        assert issued["key"] not in dumped
    header_rows = [row for row in await actions(sources) if row["action"] == "datasource.create"]
    assert any(row["changes"].get("headers", {}).get("X-Api-Token") == "***" for row in header_rows)
    filtered = await ops.get("/api/v1/audit", params={"object_type": "api_key"}, headers=ADMIN)
    assert {row["action"] for row in filtered.json()["items"]} == {
        "api_key.create",
        "api_key.revoke",
    }
    assert all(row["request_id"] for row in await actions(panels))


@pytest.mark.parametrize("storage", ["memory", "redis"])
async def test_a_burst_above_the_limit_is_refused_and_other_principals_are_not(
    storage: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    limits = RateLimitSettings(
        redis_url=REDIS_URL if storage == "redis" else None,
        submissions="3/minute",
        executions="2/minute",
        resolve="4/minute",
    )
    run = uuid.uuid4().hex[:8]  # Redis counters outlive the test: fresh principals each run
    alice = auth_headers("acme", ("operator",), f"alice-{run}")
    bob = auth_headers("acme", ("operator",), f"bob-{run}")
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        with_worker=False,
        with_datasource=True,
        rate_limit=limits,
    ) as platform:
        ids = await seed(platform, auth_headers("acme", ("admin",), f"ada-{run}"))
        cases = [
            (
                platform.panel,
                f"/api/v1/panels/{ids['panel']}/submissions",
                {"data": {"message": "x"}},
                3,
            ),
            (
                platform.operation,
                "/api/v1/executions",
                {"template": "echo-message", "parameters": {"message": "x"}},
                2,
            ),
            (
                datasources(platform),
                f"/api/v1/datasources/{ids['source']}/resolve",
                {"values": {}},
                4,
            ),
        ]
        for client, url, body, limit in cases:
            answers = [await client.post(url, json=body, headers=alice) for _ in range(limit + 1)]
            assert [a.is_success for a in answers] == [True] * limit + [False], url
            assert [a.headers["RateLimit-Remaining"] for a in answers[:limit]] == [
                str(limit - n) for n in range(1, limit + 1)
            ]
            refused = answers[-1]
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert 0 < int(refused.headers["Retry-After"]) <= 60
            assert "RATELIMIT_" in refused.json()["detail"]
            assert refused.headers["RateLimit-Limit"] == str(limit)
            assert (await client.post(url, json=body, headers=bob)).is_success, url
        # The refused submission was not stored: alice has exactly her three.
        mine = await platform.panel.get(
            "/api/v1/submissions", params={"submitted_by": f"alice-{run}"}, headers=alice
        )
        assert len(mine.json()["items"]) == 3
        # One bucket per tenant and subject, whatever they hold: "acme" and "eve/…" shared
        # the bucket of "acme/eve" and "…".
        run_it = {"template": "echo-message", "parameters": {"message": "x"}}
        eve = auth_headers("acme", ("operator",), f"eve/{run}")
        for _ in range(3):
            await platform.operation.post("/api/v1/executions", json=run_it, headers=eve)
        other = auth_headers("acme/eve", ("operator",), run)
        elsewhere = await platform.operation.post("/api/v1/executions", json=run_it, headers=other)
        assert elsewhere.status_code != 429


async def test_a_tenant_subject_or_group_longer_than_the_platform_stores_is_a_401(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """On PostgreSQL a 65-character tenant or a 201-character subject was a 500 wherever the
    request wrote it (a template, a panel, an API key): the columns hold 64 and 200."""
    async with running_platform(
        "postgres", tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as platform:
        assert platform.datasource is not None
        writes: list[tuple[httpx.AsyncClient, str, dict[str, Any]]] = [
            (platform.operation, "/api/v1/api-keys", {"name": "k", "roles": ["viewer"]}),
            (platform.panel, "/api/v1/panels", {"slug": "p", "title": "p", "fields": []}),
            (platform.datasource, "/api/v1/datasources", {"slug": "d", "name": "d"}),
        ]
        longest = auth_headers("t" * 64, ("admin",), "s" * 200, ("g" * 200,))
        for client, path, body in writes:
            response = await client.post(path, json=body, headers=longest)
            assert response.status_code < 500, (path, response.text)
        for headers, claim in [
            (auth_headers("t" * 65, ("admin",), "ada"), "tenant claim is longer than 64"),
            (auth_headers("acme", ("admin",), "s" * 201), "sub claim is longer than 200"),
            (auth_headers("acme", ("admin",), "ada", ("g" * 201,)), "groups must be"),
        ]:
            for client, path, body in writes:
                response = await client.post(path, json=body, headers=headers)
                assert response.status_code == 401, (path, response.text)
                assert claim in response.json()["detail"]


def longest_slug(kind: str) -> str:
    """A slug of 100 characters, the most a slug may have (an audit's object_id holds 64)."""
    return f"{kind}-".ljust(100, "x")


async def test_changes_made_by_slug_are_audited_under_the_objects_id(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """A path names an object by its id or its slug. A secret's delete, and a data source's
    refresh and delete, audited the path's reference: on PostgreSQL a slug past 64
    characters made the delete a 500, and the audit filtered by the object's id never
    showed the change."""
    async with running_platform(
        backend, tmp_path, sqs_server, with_worker=False, with_datasource=True
    ) as platform:
        ops, panels, sources = platform.operation, platform.panel, datasources(platform)
        slug = {kind: longest_slug(kind) for kind in ("template", "panel", "source", "secret")}
        template = await created(
            await ops.post(
                "/api/v1/templates",
                json={"slug": slug["template"], "name": "T", "command_template": "echo hi"},
                headers=ADMIN,
            )
        )
        secret = await created(
            await ops.post(
                "/api/v1/secrets",
                json={"slug": slug["secret"], "provider": "env", "key": "IDP_SECRET_ACME__DB"},
                headers=ADMIN,
            )
        )
        source = await created(
            await sources.post(
                "/api/v1/datasources",
                json={
                    "slug": slug["source"],
                    "name": "S",
                    "source_type": "static",
                    "options": [{"value": "red", "label": "Red"}],
                },
                headers=ADMIN,
            )
        )
        panel = await created(
            await panels.post(
                "/api/v1/panels",
                json={"slug": slug["panel"], "title": "P", "operation_template": slug["template"]},
                headers=ADMIN,
            )
        )
        secrets_of_template = f"/api/v1/templates/{slug['template']}/secrets"
        mapping = await created(
            await ops.post(
                secrets_of_template,
                json={"secret_id": slug["secret"], "env_var": "DB_PASSWORD"},
                headers=ADMIN,
            )
        )
        for client, method, url, body in [
            (ops, "PATCH", f"/api/v1/templates/{slug['template']}", {"name": "T2"}),
            (ops, "DELETE", f"{secrets_of_template}/{mapping['id']}", None),
            (panels, "PATCH", f"/api/v1/panels/{slug['panel']}", {"title": "P2"}),
            (sources, "PATCH", f"/api/v1/datasources/{slug['source']}", {"name": "S2"}),
            (sources, "POST", f"/api/v1/datasources/{slug['source']}/refresh", None),
            (ops, "DELETE", f"/api/v1/secrets/{slug['secret']}", None),
            (sources, "DELETE", f"/api/v1/datasources/{slug['source']}", None),
            (panels, "DELETE", f"/api/v1/panels/{slug['panel']}", None),
            (ops, "DELETE", f"/api/v1/templates/{slug['template']}", None),
        ]:
            response = await client.request(method, url, json=body, headers=ADMIN)
            assert response.is_success, (method, url, response.text)

        for client, made, actions in [
            (
                ops,
                template,
                [
                    "template.create",
                    "secret.map",
                    "template.update",
                    "secret.unmap",
                    "template.delete",
                ],
            ),
            (ops, secret, ["secret.create", "secret.delete"]),
            (panels, panel, ["panel.create", "panel.update", "panel.delete"]),
            (
                sources,
                source,
                [
                    "datasource.create",
                    "datasource.update",
                    "datasource.refresh",
                    "datasource.delete",
                ],
            ),
        ]:
            audit = await client.get(
                "/api/v1/audit", params={"object_id": made["id"], "limit": 100}, headers=ADMIN
            )
            assert audit.status_code == 200, audit.text
            assert sorted(row["action"] for row in audit.json()["items"]) == sorted(actions)

"""Dependent dynamic dropdowns: panel-svc asks datasource-svc (as the waiting user), the
second field's options follow the first's value, and a submitted value must be offered now."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import LocalSQSServer, ServedApp, auth_headers, running_platform, wait_until
from tests.test_datasources import Upstream, clusters, source

ADMIN = auth_headers(roles=("admin",))
OPERATOR = auth_headers(roles=("operator",))


TEMPLATES: dict[str, tuple[str, list[dict[str, str]]]] = {
    "scale": ("echo {{region}} {{cluster}}", [{"name": "region"}, {"name": "cluster"}]),
    "note": ("echo {{message}}", [{"name": "message"}]),
    "tokened": (
        "echo {{cluster}} IDP_PARAM_TOKEN",
        [{"name": "token", "type": "secret"}, {"name": "cluster"}],
    ),
}
SECRET = "super-secret-token-value"


@pytest.fixture
async def panel_api(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Upstream, str]]:
    fake = Upstream()
    async with (
        ServedApp(fake.app) as upstream,
        running_platform(
            "sqlite", tmp_path, sqs_server, with_worker=False, with_datasource=True
        ) as platform,
    ):
        for slug, (command, parameters) in TEMPLATES.items():
            created = await platform.operation.post(
                "/api/v1/templates",
                json={
                    "slug": slug,
                    "name": slug,
                    "command_template": command,
                    "parameters": parameters,
                },
                headers=ADMIN,
            )
            assert created.status_code == 201, created.text
        assert platform.datasource is not None
        yield platform.panel, platform.datasource, fake, upstream.url


async def cloud_panel(client: httpx.AsyncClient, datasources: httpx.AsyncClient, url: str) -> str:
    regions = await source(
        datasources,
        endpoint_url=f"{url}/regions",
        items_path="items",
        value_expr="id",
        label_expr="name",
    )
    by_region = await source(datasources, **clusters(url))
    created = await client.post(
        "/api/v1/panels",
        json={
            "slug": f"scale-{uuid.uuid4().hex[:6]}",
            "title": "Scale a cluster",
            "operation_template": "scale",
            "fields": [
                {
                    "name": "region",
                    "label": "Region",
                    "field_type": "select",
                    "data_source": regions,
                },
                {
                    "name": "cluster",
                    "label": "Cluster",
                    "field_type": "select",
                    "data_source": by_region,
                    "depends_on": ["region"],
                },
            ],
        },
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def test_dependent_options_follow_the_first_field_and_are_cached(
    panel_api: tuple[httpx.AsyncClient, httpx.AsyncClient, Upstream, str],
) -> None:
    client, datasources, fake, url = panel_api
    panel_id = await cloud_panel(client, datasources, url)
    options_url = f"/api/v1/panels/{panel_id}/fields"
    regions = (await client.get(f"{options_url}/region/options", headers=OPERATOR)).json()
    assert [o["value"] for o in regions["options"]] == ["eu", "us"]
    eu = (
        await client.get(
            f"{options_url}/cluster/options", params={"region": "eu"}, headers=OPERATOR
        )
    ).json()
    us = (
        await client.get(
            f"{options_url}/cluster/options", params={"region": "us"}, headers=OPERATOR
        )
    ).json()
    again = (
        await client.get(
            f"{options_url}/cluster/options",
            params={"region": "eu", "other": "ignored"},
            headers=OPERATOR,
        )
    ).json()
    assert [o["value"] for o in eu["options"]] == ["eu-1", "eu-2"]
    assert [o["value"] for o in us["options"]] == ["us-1"]
    assert again["cached"] is True
    assert fake.calls["clusters:eu"] == 1
    schema = (await client.get(f"/api/v1/panels/{panel_id}/schema", headers=OPERATOR)).json()
    assert schema["ui"]["fields"]["cluster"]["depends_on"] == ["region"]
    assert schema["ui"]["fields"]["cluster"]["options_url"].endswith("/fields/cluster/options")


async def test_a_secret_field_is_never_sent_to_a_data_source(
    panel_api: tuple[httpx.AsyncClient, httpx.AsyncClient, Upstream, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A select depending on a secret field sent its value, in the clear, to the source's
    upstream, and the console put it in the options URL. Refused when the panel is saved;
    a panel saved before sends nothing of it."""
    client, datasources, fake, url = panel_api
    by_token = await source(datasources, **clusters(url, "token"))
    fields = [
        {"name": "token", "label": "Token", "field_type": "secret"},
        {
            "name": "cluster",
            "label": "Cluster",
            "field_type": "select",
            "data_source": by_token,
            "depends_on": ["token"],
        },
    ]
    panel = {"slug": "by-token", "title": "t", "operation_template": "tokened", "fields": fields}
    refused = await client.post("/api/v1/panels", json=panel, headers=ADMIN)
    assert refused.status_code == 422, refused.text
    assert "depends on secret field(s) ['token']" in refused.text
    with monkeypatch.context() as before_the_rule:
        before_the_rule.setattr("panel_svc.panels.schemas.check_fields", lambda _fields: None)
        saved = await client.post("/api/v1/panels", json=panel, headers=ADMIN)
    assert saved.status_code == 201, saved.text
    options = f"/api/v1/panels/{saved.json()['id']}/fields/cluster/options"
    await client.get(options, params={"token": SECRET}, headers=OPERATOR)
    await client.post(
        f"/api/v1/panels/{saved.json()['id']}/submissions",
        json={"data": {"token": SECRET, "cluster": "eu-1"}},
        headers=OPERATOR,
    )
    assert fake.calls[f"clusters:{SECRET}"] == 0
    assert fake.calls["clusters:"] >= 1
    # Nor does the form ask for it: the console would put it in the options' URL.
    schema = await client.get(f"/api/v1/panels/{saved.json()['id']}/schema", headers=OPERATOR)
    assert schema.json()["ui"]["fields"]["cluster"]["depends_on"] == []


async def test_a_submitted_value_must_be_offered_now_and_keys_are_idempotent(
    panel_api: tuple[httpx.AsyncClient, httpx.AsyncClient, Upstream, str],
) -> None:
    client, datasources, _, url = panel_api
    panel_id = await cloud_panel(client, datasources, url)
    submissions = f"/api/v1/panels/{panel_id}/submissions"
    wrong = await client.post(
        submissions, json={"data": {"region": "eu", "cluster": "us-1"}}, headers=OPERATOR
    )
    assert wrong.status_code == 422
    assert [(e["field"], e["code"]) for e in wrong.json()["errors"]] == [
        ("data.cluster", "not_an_option")
    ]
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    body: dict[str, Any] = {"data": {"region": "eu", "cluster": "eu-2"}}
    first = await client.post(submissions, json=body, headers=OPERATOR | key)
    again = await client.post(submissions, json=body, headers=OPERATOR | key)
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = await client.post(
        submissions, json={"data": {"region": "us", "cluster": "us-1"}}, headers=OPERATOR | key
    )
    assert other.status_code == 409


async def test_a_slow_data_source_holds_up_no_other_submission(
    panel_api: tuple[httpx.AsyncClient, httpx.AsyncClient, Upstream, str],
) -> None:
    """Dynamic values are checked with no database session open: while one submission
    waits on a slow source, another panel's submissions are stored at once."""
    client, datasources, fake, url = panel_api
    dynamic = await cloud_panel(client, datasources, url)
    static = await client.post(
        "/api/v1/panels",
        json={
            "slug": "note",
            "title": "Leave a note",
            "operation_template": "note",
            "fields": [{"name": "message", "label": "Message"}],
        },
        headers=ADMIN,
    )
    assert static.status_code == 201, static.text
    fake.delay = 2.0
    slow = asyncio.create_task(
        client.post(
            f"/api/v1/panels/{dynamic}/submissions",
            json={"data": {"region": "eu", "cluster": "eu-1"}},
            headers=OPERATOR,
        )
    )
    await wait_until(lambda: fake.waiting)  # waiting on the source now
    started = time.monotonic()
    quick = await client.post(
        f"/api/v1/panels/{static.json()['id']}/submissions",
        json={"data": {"message": "hi"}},
        headers=OPERATOR,
    )
    assert quick.status_code == 202, quick.text
    assert time.monotonic() - started < 1.0
    assert (await slow).status_code == 202


@pytest.mark.parametrize(
    ("change", "resent"),
    [
        ({"approval": {"required": 1, "approver_roles": ["admin"]}}, 202),
        ({"allowed_roles": ["admin"]}, 403),
        ({"is_active": False}, 409),
        ({"title": "Renamed"}, 202),
        (None, 404),  # deleted
    ],
)
async def test_a_panel_changed_while_a_submission_waits_on_its_source_refuses_it(
    panel_api: tuple[httpx.AsyncClient, httpx.AsyncClient, Upstream, str],
    change: dict[str, Any] | None,
    resent: int,
) -> None:
    """The values are checked against the panel on a snapshot, then the data source is asked:
    a change the admin made meanwhile holds for the submission (a 409, nothing stored), and
    sent again it gets what a fresh submission gets."""
    client, datasources, fake, url = panel_api
    panel = await cloud_panel(client, datasources, url)
    body = {"data": {"region": "eu", "cluster": "eu-1"}}
    fake.delay = 1.0
    waiting = asyncio.create_task(
        client.post(f"/api/v1/panels/{panel}/submissions", json=body, headers=OPERATOR)
    )
    await wait_until(lambda: fake.waiting)
    if change is None:
        changed = await client.delete(f"/api/v1/panels/{panel}", headers=ADMIN)
    else:
        changed = await client.patch(f"/api/v1/panels/{panel}", json=change, headers=ADMIN)
    assert changed.status_code in (200, 204), changed.text
    refused = await waiting
    assert refused.status_code == 409, refused.text
    assert "changed while this submission was checked" in refused.json()["detail"]
    stored = await client.get("/api/v1/submissions", headers=ADMIN)
    assert stored.json()["items"] == []
    fake.delay = 0.0
    again = await client.post(f"/api/v1/panels/{panel}/submissions", json=body, headers=OPERATOR)
    assert again.status_code == resent, again.text

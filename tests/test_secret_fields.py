"""Secret values end to end: sealed to the worker the moment they arrive (a panel's secret
field, or a secret parameter given to the executions API), opened only into the command's
environment, masked in everything the worker reports. The plaintext is in no database table
(outboxes and audit logs included), no queue message and no response."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import create_async_engine

from idp_common.sealing import SEALED_PREFIX, load_private_key, unseal
from tests.harness import (
    SEALING_PRIVATE_KEY,
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    running_platform,
)

ADMIN = auth_headers(roles=("admin",))
OPERATOR = auth_headers(roles=("operator",))
TERMINAL = {"succeeded", "failed", "timed_out", "cancelled", "lost", "rejected"}
# Prints the secret and its base64 form: both must reach the logs masked.
SHOW_TOKEN = 'sh -c \'echo "token=$IDP_PARAM_TOKEN"; printf %s "$IDP_PARAM_TOKEN" | base64\''


async def database_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, by table."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            metadata = MetaData()
            await connection.run_sync(metadata.reflect)
            return {
                table.name: [
                    dict(row._mapping) for row in (await connection.execute(select(table))).all()
                ]
                for table in metadata.sorted_tables
            }
    finally:
        await engine.dispose()


async def finished(platform: Platform, execution_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await platform.operation.get(f"/api/v1/executions/{execution_id}", headers=ADMIN)
        body: dict[str, Any] = response.json()
        return body if body["status"] in TERMINAL else None

    return await eventually(probe, timeout=20)


async def logs(platform: Platform, execution_id: str) -> httpx.Response:
    return await platform.operation.get(f"/api/v1/executions/{execution_id}/logs", headers=ADMIN)


async def create_token_panel(platform: Platform) -> tuple[str, str]:
    """(template id, panel id): a panel whose secret field feeds a template's secret."""
    template = await platform.operation.post(
        "/api/v1/templates",
        json={
            "slug": "show-token",
            "name": "Show a token",
            "command_template": SHOW_TOKEN,
            "parameters": [{"name": "token", "type": "secret"}],
        },
        headers=ADMIN,
    )
    assert template.status_code == 201, template.text
    panel = await platform.panel.post(
        "/api/v1/panels",
        json={
            "slug": "token",
            "title": "Use a token",
            "operation_template": "show-token",
            "fields": [{"name": "token", "label": "Token", "field_type": "secret"}],
        },
        headers=ADMIN,
    )
    assert panel.status_code == 201, panel.text
    return str(template.json()["id"]), str(panel.json()["id"])


async def test_a_secret_reaches_only_the_command_and_is_stored_nowhere(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    from_panel, from_api = (f"tok{uuid.uuid4().hex}" for _ in range(2))
    async with running_platform(
        backend, tmp_path, sqs_server, allowed_executables=["sh"]
    ) as platform:
        template_id, panel_id = await create_token_panel(platform)
        submitted = await platform.panel.post(
            f"/api/v1/panels/{panel_id}/submissions",
            json={"data": {"token": from_panel}},
            headers=OPERATOR,
        )
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["data"] == {"token": "***"}

        async def submission_done() -> dict[str, Any] | None:
            response = await platform.panel.get(
                f"/api/v1/submissions/{submitted.json()['id']}", headers=ADMIN
            )
            body: dict[str, Any] = response.json()
            return body if body["status"] in TERMINAL else None

        submission = await eventually(submission_done, timeout=20)
        assert submission["status"] == "succeeded", submission
        execution = await finished(platform, submission["execution_id"])
        assert execution["parameters"] == {"token": "***"}
        panel_logs = await logs(platform, execution["id"])
        assert [line["message"] for line in panel_logs.json()["items"]] == ["token=***", "***"]

        # A retry sends the stored sealed value again.
        retried = await platform.operation.post(
            f"/api/v1/executions/{execution['id']}/retry", headers=OPERATOR
        )
        assert retried.status_code == 202, retried.text
        assert (await finished(platform, retried.json()["id"]))["status"] == "succeeded"
        retry_logs = await logs(platform, retried.json()["id"])
        assert retry_logs.json()["items"][0]["message"] == "token=***"

        # Given directly to the API, a secret is sealed by operation-svc before it is kept.
        created = await platform.operation.post(
            "/api/v1/executions",
            json={"template": "show-token", "parameters": {"token": from_api}},
            headers=OPERATOR,
        )
        assert created.status_code == 202, created.text
        assert created.json()["parameters"] == {"token": "***"}
        direct = await finished(platform, created.json()["id"])
        assert direct["status"] == "succeeded", direct
        direct_logs = await logs(platform, direct["id"])
        preview = await platform.operation.post(
            f"/api/v1/templates/{template_id}/preview",
            json={"parameters": {"token": from_api}},
            headers=ADMIN,
        )
        assert preview.json()["env"]["IDP_PARAM_TOKEN"] == "***"

        responses = [
            submitted,
            panel_logs,
            retry_logs,
            created,
            direct_logs,
            preview,
            await platform.panel.get("/api/v1/submissions", headers=ADMIN),
            await platform.operation.get("/api/v1/executions", headers=ADMIN),
        ]
        for response in responses:
            assert from_panel not in response.text
            assert from_api not in response.text
        stored = {
            service: await database_rows(url) for service, url in platform.database_urls.items()
        }

    for service, tables in stored.items():
        everything = json.dumps(tables, default=str)
        assert from_panel not in everything, service
        assert from_api not in everything, service
    assert [row["data"] for row in stored["panel"]["submissions"]] == [{"token": "***"}]
    # operation-svc keeps what panel-svc's event carried: the value sealed to the workers' key.
    kept = {
        str(uuid.UUID(str(row["id"]))): row["parameters"]["token"]
        for row in stored["operation"]["executions"]
    }
    assert kept[execution["id"]].startswith(SEALED_PREFIX)
    assert unseal(load_private_key(SEALING_PRIVATE_KEY), kept[execution["id"]]) == from_panel
    assert unseal(load_private_key(SEALING_PRIVATE_KEY), kept[direct["id"]]) == from_api


async def test_a_short_secret_is_a_422_on_its_field_and_nothing_is_kept(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(
        "sqlite", tmp_path, sqs_server, allowed_executables=["sh"], with_worker=False
    ) as platform:
        _, panel_id = await create_token_panel(platform)
        refused = await platform.panel.post(
            f"/api/v1/panels/{panel_id}/submissions",
            json={"data": {"token": "abc"}},
            headers=OPERATOR,
        )
        direct = await platform.operation.post(
            "/api/v1/executions",
            json={"template": "show-token", "parameters": {"token": "abc"}},
            headers=OPERATOR,
        )
        listed = await platform.panel.get("/api/v1/submissions", headers=ADMIN)
        executions = await platform.operation.get("/api/v1/executions", headers=ADMIN)
    assert refused.status_code == direct.status_code == 422
    assert refused.json()["errors"] == [
        {
            "field": "data.token",
            "message": "a secret needs at least 4 characters to be masked in output",
            "code": "secret_too_short",
        }
    ]
    assert direct.json()["errors"][0]["field"] == "parameters.token"
    assert direct.json()["errors"][0]["code"] == "secret_too_short"
    assert listed.json()["items"] == executions.json()["items"] == []


async def test_a_plaintext_value_for_a_secret_parameter_is_rejected_and_not_kept(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    """A panel that collects a template's secret in a plain text field is refused when it
    is saved; when the template turns a parameter secret under an existing panel,
    operation-svc refuses the unsealed value and keeps only the mask."""
    plaintext = f"tok{uuid.uuid4().hex}"
    async with running_platform(
        "sqlite", tmp_path, sqs_server, allowed_executables=["sh"], with_worker=False
    ) as platform:
        await create_token_panel(platform)
        plain_field = {
            "slug": "plain-token",
            "title": "Misconfigured",
            "operation_template": "show-token",
            "fields": [{"name": "token", "label": "Token"}],
        }
        misconfigured = await platform.panel.post("/api/v1/panels", json=plain_field, headers=ADMIN)
        assert misconfigured.status_code == 422, misconfigured.text
        assert misconfigured.json()["errors"][0]["code"] == "type_mismatch"
        template = await platform.operation.post(
            "/api/v1/templates",
            json={
                "slug": "turns-secret",
                "name": "Turns secret",
                "command_template": SHOW_TOKEN,
                "parameters": [{"name": "token"}],
            },
            headers=ADMIN,
        )
        panel = await platform.panel.post(
            "/api/v1/panels",
            json=plain_field | {"operation_template": "turns-secret"},
            headers=ADMIN,
        )
        assert panel.status_code == 201, panel.text
        turned = await platform.operation.patch(
            f"/api/v1/templates/{template.json()['id']}",
            json={"parameters": [{"name": "token", "type": "secret"}]},
            headers=ADMIN,
        )
        assert turned.status_code == 200, turned.text
        submitted = await platform.panel.post(
            f"/api/v1/panels/{panel.json()['id']}/submissions",
            json={"data": {"token": plaintext}},
            headers=OPERATOR,
        )

        async def rejected() -> dict[str, Any] | None:
            response = await platform.panel.get(
                f"/api/v1/submissions/{submitted.json()['id']}", headers=ADMIN
            )
            body: dict[str, Any] = response.json()
            return body if body["status"] == "rejected" else None

        submission = await eventually(rejected, timeout=20)
        operation_tables = await database_rows(platform.database_urls["operation"])
    assert "not_sealed" in submission["error"]
    assert [row["parameters"] for row in operation_tables["executions"]] == [{"token": "***"}]
    assert plaintext not in json.dumps(operation_tables, default=str)

"""A submission follows its latest execution: after a cancel and a retry it shows the
retry's outcome and execution, with every attempt listed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.factories import panel_for, template
from tests.harness import LocalSQSServer, Platform, auth_headers, eventually, running_platform

ADMIN = auth_headers(roles=("admin",))


async def submission_when(platform: Platform, submission_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await platform.panel.get(f"/api/v1/submissions/{submission_id}", headers=ADMIN)
        ).json()
        return body if body["status"] == status else None

    return await eventually(probe, timeout=20)


async def test_a_retried_submission_follows_its_latest_attempt(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform("sqlite", tmp_path, sqs_server) as platform:
        nap = await template(
            platform, "nap", "sleep {{seconds}}", [{"name": "seconds", "type": "integer"}]
        )
        await panel_for(platform, nap, seconds="integer")
        submitted = await platform.panel.post(
            "/api/v1/panels/nap/submissions", json={"data": {"seconds": 2}}, headers=ADMIN
        )
        first = (await submission_when(platform, submitted.json()["id"], "running"))["execution_id"]
        cancel = await platform.operation.post(f"/api/v1/executions/{first}/cancel", headers=ADMIN)
        assert cancel.status_code == 202, cancel.text
        await submission_when(platform, submitted.json()["id"], "cancelled")
        retry = await platform.operation.post(f"/api/v1/executions/{first}/retry", headers=ADMIN)
        assert retry.status_code == 202, retry.text
        second = retry.json()["id"]
        assert retry.json()["attempt"] == 2
        done = await submission_when(platform, submitted.json()["id"], "succeeded")
    assert (done["execution_id"], done["attempt"], done["exit_code"]) == (second, 2, 0)
    assert [(a["attempt"], a["execution_id"], a["status"]) for a in done["attempts"]] == [
        (1, first, "cancelled"),
        (2, second, "succeeded"),
    ]

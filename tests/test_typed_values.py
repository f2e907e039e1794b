"""One coercion rule on every intake: numbers and booleans are accepted as JSON values or as
their plain text, and stored as the declared type; a command receives their text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.factories import panel_for, template
from tests.harness import LocalSQSServer, Platform, auth_headers, eventually, running_platform

ADMIN = auth_headers(roles=("admin",))
PARAMETERS = [
    {"name": "replicas", "type": "integer"},
    {"name": "ratio", "type": "number"},
    {"name": "dry", "type": "boolean"},
]


async def execution_of(platform: Platform, submission_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body = (
            await platform.panel.get(f"/api/v1/submissions/{submission_id}", headers=ADMIN)
        ).json()
        return body if body["execution_id"] else None

    submission = await eventually(probe)
    response = await platform.operation.get(
        f"/api/v1/executions/{submission['execution_id']}", headers=ADMIN
    )
    return dict(response.json())


async def test_both_intakes_take_numbers_and_booleans_as_values_or_text(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform("sqlite", tmp_path, sqs_server, with_worker=False) as platform:
        scale = await template(platform, "scale", "echo {{replicas}} {{ratio}} {{dry}}", PARAMETERS)
        await panel_for(platform, scale, replicas="integer", ratio="number", dry="boolean")
        typed = {"replicas": 3, "ratio": 2.5, "dry": True}
        for values in (typed, {"replicas": "3", "ratio": "2.5", "dry": "true"}):
            direct = await platform.operation.post(
                "/api/v1/executions",
                json={"template": "scale", "parameters": values},
                headers=ADMIN,
            )
            assert direct.status_code == 202, direct.text
            submitted = await platform.panel.post(
                "/api/v1/panels/scale/submissions", json={"data": values}, headers=ADMIN
            )
            assert submitted.status_code == 202, submitted.text
            assert submitted.json()["data"] == typed
            for execution in (direct.json(), await execution_of(platform, submitted.json()["id"])):
                assert execution["parameters"] == typed
                assert execution["argv"] == ["echo", "3", "2.5", "true"]
            preview = await platform.operation.post(
                "/api/v1/templates/scale/preview", json={"parameters": values}, headers=ADMIN
            )
            assert preview.json()["argv"] == ["echo", "3", "2.5", "true"], preview.text
        for bad in ({"replicas": "3 "}, {"replicas": "0x3"}, {"dry": "yes"}, {"ratio": "nan"}):
            refused = await platform.operation.post(
                "/api/v1/executions",
                json={"template": "scale", "parameters": typed | bad},
                headers=ADMIN,
            )
            assert refused.status_code == 422, bad
            form = await platform.panel.post(
                "/api/v1/panels/scale/submissions", json={"data": typed | bad}, headers=ADMIN
            )
            assert form.status_code == 422, bad
            preview = await platform.operation.post(
                "/api/v1/templates/scale/preview",
                json={"parameters": typed | bad},
                headers=ADMIN,
            )
            assert [r["parameter"] for r in preview.json()["refusals"]] == list(bad), bad

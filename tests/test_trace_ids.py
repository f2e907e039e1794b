"""People find the trace of what they did: every response names it (X-Trace-Id), and a
submission and the execution it caused carry the same one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import ADMIN, panel_for, template
from tests.harness import Platform, eventually


@pytest.fixture
def platform(echo_platform: Platform) -> Platform:
    return echo_platform


async def test_a_submission_and_its_execution_share_the_trace_the_response_named(
    platform: Platform,
) -> None:
    hello = await template(platform, "hello", "echo hello", [])
    panel = await panel_for(platform, hello)
    response = await platform.panel.post(
        f"/api/v1/panels/{panel['id']}/submissions", json={"data": {}}, headers=ADMIN
    )
    trace_id = response.headers["x-trace-id"]
    assert len(trace_id) == 32
    assert response.json()["trace_id"] == trace_id

    async def executed() -> dict[str, Any] | None:
        found = await platform.panel.get(
            f"/api/v1/submissions/{response.json()['id']}", headers=ADMIN
        )
        submission: dict[str, Any] = found.json()
        return submission if submission["status"] == "succeeded" else None

    submission = await eventually(executed)
    execution = await platform.operation.get(
        f"/api/v1/executions/{submission['execution_id']}", headers=ADMIN
    )
    assert execution.json()["trace_id"] == trace_id


async def test_every_response_names_its_own_trace(platform: Platform) -> None:
    seen = set()
    for path in ("/api/v1/templates", "/api/v1/executions", "/api/v1/nope", "/openapi.json"):
        response = await platform.operation.get(path, headers=ADMIN)
        seen.add(response.headers["x-trace-id"])
    refused = await platform.operation.post("/api/v1/executions", json={}, headers=ADMIN)
    assert refused.status_code == 422
    seen.add(refused.headers["x-trace-id"])
    assert len(seen) == 5

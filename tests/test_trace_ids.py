"""People find the trace of what they did: every response names it (X-Trace-Id), and a
submission and the execution it caused carry the same one."""

from __future__ import annotations

import os
import subprocess
import sys
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


UNEXPORTED = """
from opentelemetry import propagate, trace
from idp_common.telemetry import configure_tracing


def root_id(span):
    return format(span.get_span_context().trace_id, "032x")


configure_tracing("probe")
tracer = trace.get_tracer("probe")
with tracer.start_as_current_span("root") as root:
    carrier = {}
    propagate.inject(carrier)
    print(root.is_recording(), carrier["traceparent"].split("-")[1] == root_id(root))
upstream = propagate.extract({"traceparent": f"00-{'a' * 32}-{'b' * 16}-01"})
with tracer.start_as_current_span("child", context=upstream) as child:
    print(child.is_recording(), root_id(child) == "a" * 32)
"""


def test_with_no_exporter_a_trace_keeps_its_ids_and_a_sampled_one_stays_sampled() -> None:
    """No exporter: a trace this process starts records nothing but has ids, which travel
    on; a caller's sampled trace is still recorded, for the services after it that export."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("OTEL_EXPORTER")
    }
    shown = subprocess.run(
        [sys.executable, "-c", UNEXPORTED],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    assert shown.stdout.split("\n")[:2] == ["False True", "True True"]


async def test_an_unexpected_error_names_its_request_and_its_trace(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette answers an unexpected error outside every middleware: the 500 said
    ``"request_id": null`` and carried neither header, so nobody could find its log line
    or its trace."""

    def broken(**_fields: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("idp_common.whoami.WhoAmI", broken)
    for client in (platform.operation, platform.panel):
        response = await client.get(
            "/api/v1/auth/whoami", headers={**ADMIN, "X-Request-ID": "req-500"}
        )
        assert response.status_code == 500
        assert response.json()["request_id"] == "req-500"
        assert response.headers["x-request-id"] == "req-500"
        assert len(response.headers["x-trace-id"]) == 32

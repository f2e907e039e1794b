"""The thin vertical slice: a submission travels the whole bus and comes back succeeded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.harness import LocalSQSServer, Platform, auth_headers, eventually, running_platform

ADMIN = auth_headers(roles=("admin",))
OPERATOR = auth_headers(roles=("operator",))


async def create_echo_panel(platform: Platform) -> str:
    template = await platform.operation.post(
        "/api/v1/templates",
        json={
            "slug": "echo-message",
            "name": "Echo",
            "command_template": "echo {{message}}",
            "parameters": [{"name": "message", "max_length": 200}],
        },
        headers=ADMIN,
    )
    assert template.status_code == 201, template.text
    panel = await platform.panel.post(
        "/api/v1/panels",
        json={
            "slug": "echo",
            "title": "Echo a message",
            "operation_template": "echo-message",
            "fields": [{"name": "message", "label": "Message", "max_length": 200}],
        },
        headers=ADMIN,
    )
    assert panel.status_code == 201, panel.text
    return str(panel.json()["id"])


async def wait_for_status(platform: Platform, submission_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await platform.panel.get(f"/api/v1/submissions/{submission_id}", headers=ADMIN)
        body: dict[str, Any] = response.json()
        return body if body["status"] == status else None

    return await eventually(probe, timeout=20)


async def test_submission_runs_end_to_end_and_reports_back(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer, spans: InMemorySpanExporter
) -> None:
    async with running_platform(backend, tmp_path, sqs_server) as platform:
        panel_id = await create_echo_panel(platform)
        # Shell syntax and a placeholder in the value must reach echo literally.
        message = "hello; $(id) `whoami` | cat {{message}}"
        created = await platform.panel.post(
            f"/api/v1/panels/{panel_id}/submissions",
            json={"data": {"message": message}},
            headers=OPERATOR,
        )
        assert created.status_code == 202, created.text
        assert created.json()["status"] == "pending"

        done = await wait_for_status(platform, created.json()["id"], "succeeded")
        assert done["output"] == message + "\n"
        assert done["exit_code"] == 0

        execution = (
            await platform.operation.get(
                f"/api/v1/executions/{done['execution_id']}", headers=ADMIN
            )
        ).json()
        assert execution["status"] == "succeeded"
        assert execution["argv"] == ["echo", message]
        assert execution["submission_id"] == created.json()["id"]
        assert execution["worker_id"]
        logs = (
            await platform.operation.get(
                f"/api/v1/executions/{done['execution_id']}/logs", headers=ADMIN
            )
        ).json()
        assert [(line["seq"], line["stream"], line["message"]) for line in logs["items"]] == [
            (0, "stdout", message)
        ]
        trail = (
            await platform.operation.get(
                "/api/v1/audit", params={"object_id": done["execution_id"]}, headers=ADMIN
            )
        ).json()["items"]
        assert [(row["action"], row["actor"]) for row in reversed(trail)] == [
            ("execution.submit", "alice"),
            ("execution.start", execution["worker_id"]),
            ("execution.finish", execution["worker_id"]),
        ]

    request_span = next(
        span
        for span in spans.get_finished_spans()
        if span.kind == SpanKind.SERVER
        and span.name == "POST /api/v1/panels/{panel_id}/submissions"
    )
    trace_id = request_span.context.trace_id
    in_trace = {s.name for s in spans.get_finished_spans() if s.context.trace_id == trace_id}
    assert {
        "panel-submissions process",
        "claim",
        "operation-jobs process",
        "run",
        "execution-events process",
        "submission-updates process",
    } <= in_trace

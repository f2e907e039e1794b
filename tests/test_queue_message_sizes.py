"""A run that no queue message could carry (SQS: 256 KiB, JSON with non-ASCII escaped, so
an emoji takes 12 bytes) is refused where it is asked for: a 422 naming the value to
shorten, at every intake, or the template when it is saved. One whose values fit but whose
template renders them past what its job holds ends rejected with the reason. Before, the
executions API and panel-svc answered 500, and a submission operation-svc could not queue
was delivered again and again, dead-lettered and sent again by the reconciler, pending
forever."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from idp_common.values import MAX_TEXT_LENGTH
from tests.factories import panel_for, template
from tests.harness import (
    LocalSQSServer,
    Platform,
    assert_field_refused,
    auth_headers,
    eventually,
    running_platform,
)

ADMIN = auth_headers(roles=("admin",))
OPERATOR = auth_headers(roles=("operator",))
EMOJI = "😀" * MAX_TEXT_LENGTH  # a text value at its longest: 48 KiB in a message
SIX = [f"v{n}" for n in range(6)]
FORTY = [f"p{n}" for n in range(40)]


@pytest.fixture(scope="module")
async def platform(module_tmp_path: Path, sqs_server: LocalSQSServer) -> AsyncIterator[Platform]:
    async with running_platform(
        "sqlite", module_tmp_path, sqs_server, with_worker=False
    ) as running:
        for slug, names in (("three", ["a", "b", "c"]), ("six", SIX), ("forty", FORTY)):
            command = "echo " + " ".join(f"{{{{{name}}}}}" for name in names)
            made = await template(running, slug, command, [{"name": name} for name in names])
            await panel_for(running, made)
        yield running


async def stored(platform: Platform) -> tuple[int, int]:
    """(submissions, executions) of the tenant."""
    submissions = await platform.panel.get("/api/v1/submissions?limit=200", headers=ADMIN)
    executions = await platform.operation.get("/api/v1/executions?limit=200", headers=ADMIN)
    return len(submissions.json()["items"]), len(executions.json()["items"])


@pytest.mark.parametrize(
    ("slug", "values"),
    [
        ("three", {"a": EMOJI, "b": EMOJI, "c": EMOJI}),  # the executions API's 500
        ("six", dict.fromkeys(SIX, EMOJI)),  # panel-svc's own 500
        ("six", dict.fromkeys(SIX, "\x01" * MAX_TEXT_LENGTH)),  # 6 bytes each: \u0001
        ("forty", dict.fromkeys(FORTY, "x" * MAX_TEXT_LENGTH)),  # many plain values
    ],
)
async def test_values_no_job_could_carry_are_a_422_at_every_intake_and_nothing_is_stored(
    platform: Platform, slug: str, values: dict[str, str]
) -> None:
    before = await stored(platform)
    first = next(iter(values))
    run = await platform.operation.post(
        "/api/v1/executions", json={"template": slug, "parameters": values}, headers=OPERATOR
    )
    assert_field_refused(run, f"parameters.{first}", "too_large")
    assert "more than 131072" in run.json()["errors"][0]["message"]
    preview = await platform.operation.post(
        f"/api/v1/templates/{slug}/preview", json={"parameters": values}, headers=OPERATOR
    )
    assert preview.json()["allowed"] is False
    assert [(r["rule"], r["parameter"]) for r in preview.json()["refusals"]] == [
        ("too_large", first)
    ]
    form = await platform.panel.post(
        f"/api/v1/panels/{slug}/submissions", json={"data": values}, headers=OPERATOR
    )
    assert_field_refused(form, f"data.{first}", "too_large")
    # Another service's request, its emoji sent as UTF-8 (4 bytes each): escaped, they
    # would not fit in the message it becomes.
    by_event = await platform.panel.post(
        "/api/v1/events",
        content=json.dumps({"panel": slug, "data": values}, ensure_ascii=False).encode(),
        headers={
            "ce-specversion": "1.0",
            "ce-id": str(uuid.uuid4()),
            "ce-source": "urn:test:producer",
            "ce-type": "panel.submission.requested",
            "ce-tenant": "acme",
        }
        | OPERATOR,
    )
    assert_field_refused(by_event, f"data.{first}", "too_large")
    assert await stored(platform) == before


async def test_values_that_fit_are_taken(platform: Platform) -> None:
    """Two values at their longest fit; so do forty short ones."""
    two = {"a": EMOJI[:3000], "b": EMOJI[:3000], "c": "x"}
    run = await platform.operation.post(
        "/api/v1/executions", json={"template": "three", "parameters": two}, headers=OPERATOR
    )
    assert run.status_code == 202, run.text
    form = await platform.panel.post(
        "/api/v1/panels/forty/submissions",
        json={"data": dict.fromkeys(FORTY, "x" * 1000)},
        headers=OPERATOR,
    )
    assert form.status_code == 202, form.text


async def submission_of(platform: Platform, submission_id: str, status: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await platform.panel.get(f"/api/v1/submissions/{submission_id}", headers=ADMIN)
        body: dict[str, Any] = response.json()
        return body if body["status"] == status else None

    return await eventually(probe)


async def test_values_rendered_past_what_a_job_holds_reject_the_submission_with_the_reason(
    platform: Platform,
) -> None:
    """Each value fits, and so do all of them: the command repeats one. panel-svc cannot
    know the command; operation-svc rejects the run and says why, once."""
    echo = await template(platform, "echo-thrice", "echo {{a}} {{a}} {{a}}", [{"name": "a"}])
    await panel_for(platform, echo)
    form = await platform.panel.post(
        "/api/v1/panels/echo-thrice/submissions", json={"data": {"a": EMOJI}}, headers=ADMIN
    )
    assert form.status_code == 202, form.text
    rejected = await submission_of(platform, form.json()["id"], "rejected")
    assert "too_large: the rendered command takes" in rejected["error"]
    run = await platform.operation.post(
        "/api/v1/executions",
        json={"template": "echo-thrice", "parameters": {"a": EMOJI}},
        headers=ADMIN,
    )
    assert_field_refused(run, "parameters", "too_large")


def http_template(slug: str, body: Any, parameters: Sequence[str] = ()) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": slug,
        "operation_type": "http",
        "http": {"url": "https://api.example.com/hook", "method": "POST", "body": body},
        "parameters": [{"name": name} for name in parameters],
    }


@pytest.mark.parametrize(
    "body",
    [
        {"blob": "x" * 300_000},  # between the queue's 256 KiB and the body cap of 1 MiB
        {"blob": "x" * 99_000},  # just past the 96 KiB a job keeps for its request
        {"blob": "😀" * 8300},  # 33 KB of UTF-8, 99 KB escaped
        {"rows": [{"cells": ["é" * 100] * 20}] * 9},  # nested, 6 bytes a character
    ],
)
async def test_an_http_template_no_job_could_carry_is_refused_when_saved(
    platform: Platform, body: Any
) -> None:
    created = await platform.operation.post(
        "/api/v1/templates", json=http_template(f"hook-{uuid.uuid4().hex[:8]}", body), headers=ADMIN
    )
    assert_field_refused(created, "http", "too_large")
    small = await platform.operation.post(
        "/api/v1/templates", json=http_template(f"hook-{uuid.uuid4().hex[:8]}", {}), headers=ADMIN
    )
    assert small.status_code == 201, small.text
    grown = await platform.operation.patch(
        f"/api/v1/templates/{small.json()['id']}",
        json={"http": http_template("", body)["http"]},
        headers=ADMIN,
    )
    assert_field_refused(grown, "http", "too_large")


async def test_an_http_body_its_values_render_past_what_a_job_holds_is_refused(
    platform: Platform,
) -> None:
    nested = {"items": [{"name": "{{name}}", "tags": ["{{name}}"]}] * 2}
    created = await platform.operation.post(
        "/api/v1/templates", json=http_template("hook-nested", nested, ["name"]), headers=ADMIN
    )
    assert created.status_code == 201, created.text
    plain = await platform.operation.post(
        "/api/v1/templates/hook-nested/preview",
        json={"parameters": {"name": "x" * MAX_TEXT_LENGTH}},
        headers=ADMIN,
    )
    assert plain.json()["allowed"] is True, plain.text
    run = await platform.operation.post(
        "/api/v1/executions",
        json={"template": "hook-nested", "parameters": {"name": EMOJI}},
        headers=ADMIN,
    )
    assert_field_refused(run, "parameters", "too_large")
    assert "the rendered request takes" in run.json()["errors"][0]["message"]

"""A submission follows its latest execution: after a cancel and a retry it shows the
retry's outcome and execution, with every attempt listed. An execution is retried once (its
retry is the one to retry next), so every attempt has its own number, retries sent at once
and the lost sweeper's own retries included."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.factories import panel_for, template
from tests.harness import (
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    running_platform,
    service_headers,
)

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


async def submission_where(
    platform: Platform, submission_id: str, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = (
            await platform.panel.get(f"/api/v1/submissions/{submission_id}", headers=ADMIN)
        ).json()
        return body if wanted(body) else None

    return await eventually(probe, timeout=20)


def attempts(submission: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(a["attempt"], a["execution_id"], a["status"]) for a in submission["attempts"]]


async def test_an_execution_is_retried_once_so_each_attempt_has_its_own_number(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(backend, tmp_path, sqs_server, with_worker=False) as platform:
        say = await template(platform, "say", "echo {{m}}", [{"name": "m"}])
        await panel_for(platform, say)
        submitted = await platform.panel.post(
            "/api/v1/panels/say/submissions", json={"data": {"m": "hi"}}, headers=ADMIN
        )
        submission_id = submitted.json()["id"]
        first = (
            await submission_where(platform, submission_id, lambda s: s["execution_id"] is not None)
        )["execution_id"]

        async def cancel(execution_id: str) -> None:
            url = f"/api/v1/executions/{execution_id}/cancel"
            cancelled = await platform.operation.post(url, headers=ADMIN)
            assert cancelled.json()["status"] == "cancelled", cancelled.text

        async def retry(execution_id: str) -> Any:
            url = f"/api/v1/executions/{execution_id}/retry"
            return await platform.operation.post(url, headers=ADMIN)

        await cancel(first)
        at_once = await asyncio.gather(*(retry(first) for _ in range(4)))
        assert sorted(answer.status_code for answer in at_once) == [202, 409, 409, 409]
        second = next(answer.json() for answer in at_once if answer.status_code == 202)
        assert (second["retry_of"], second["attempt"]) == (first, 2)
        again = await retry(first)
        for refused in [*(a for a in at_once if a.status_code == 409), again]:
            assert second["id"] in refused.json()["detail"], refused.text

        await cancel(second["id"])
        third = await retry(second["id"])
        assert third.status_code == 202, third.text
        assert third.json()["attempt"] == 3
        shown = await submission_where(platform, submission_id, lambda s: s["attempt"] == 3)
    assert (shown["status"], shown["execution_id"]) == ("pending", third.json()["id"])
    assert attempts(shown) == [
        (1, first, "cancelled"),
        (2, second["id"], "cancelled"),
        (3, third.json()["id"], "pending"),
    ]


async def test_the_lost_sweepers_retry_is_the_submissions_next_attempt(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        with_worker=False,
        operation={"lost_after_seconds": 1.0, "sweep_interval_seconds": 0.2},
    ) as platform:
        nap = await template(platform, "nap", "sleep 30", [], retry_safe=True)
        await panel_for(platform, nap)
        submitted = await platform.panel.post(
            "/api/v1/panels/nap/submissions", json={"data": {}}, headers=ADMIN
        )
        submission_id = submitted.json()["id"]
        first = (
            await submission_where(platform, submission_id, lambda s: s["execution_id"] is not None)
        )["execution_id"]
        # A worker claims it and then vanishes (kill -9): it never heartbeats again.
        claim = await platform.operation.post(
            "/api/v1/workers/claims",
            json={"worker_id": "vanished", "execution_ids": [first]},
            headers=service_headers(),
        )
        assert claim.json() == {"claimed": [first]}
        # The two attempts' updates are two messages: either may be handled first.
        shown = await submission_where(
            platform, submission_id, lambda s: [a[2] for a in attempts(s)] == ["lost", "pending"]
        )
        assert (shown["attempt"], shown["status"]) == (2, "pending")
        assert attempts(shown) == [(1, first, "lost"), (2, shown["execution_id"], "pending")]
        # The sweeper retried it already: a person's retry of it would run it twice.
        twice = await platform.operation.post(f"/api/v1/executions/{first}/retry", headers=ADMIN)
        assert twice.status_code == 409, twice.text
        assert shown["execution_id"] in twice.json()["detail"]

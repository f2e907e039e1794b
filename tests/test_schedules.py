"""/api/v1/schedules on the running platform (real queue and worker, SQLite and PostgreSQL):
schedules fire on time and their runs say what became of each slot; pause stops them and
resume restarts them; bad timings are 422 naming the field; viewers read, admins manage;
another tenant's schedule is not found."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from idp_common.values import MAX_TEXT_LENGTH
from tests.factories import ADMIN, template
from tests.harness import LocalSQSServer, Platform, auth_headers, eventually, running_platform

VIEWER = auth_headers(roles=("viewer",))
OTHER_TENANT = auth_headers(tenant="globex")


@pytest.fixture(scope="module")
async def platform(
    backend: str, module_tmp_path: Path, sqs_server: LocalSQSServer
) -> AsyncIterator[Platform]:
    folder = module_tmp_path / backend
    folder.mkdir()
    async with running_platform(
        backend,
        folder,
        sqs_server,
        allowed_executables=["echo"],
        operation={"schedule_min_interval_seconds": 2, "scheduler_poll_seconds": 0.1},
    ) as running:
        await template(running, "hello", "echo hello", [])
        yield running


async def create(platform: Platform, **body: Any) -> dict[str, Any]:
    response = await platform.operation.post(
        "/api/v1/schedules", json={"template": "hello"} | body, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def runs_of(platform: Platform, schedule_id: str) -> list[dict[str, Any]]:
    response = await platform.operation.get(
        f"/api/v1/schedules/{schedule_id}/runs", params={"limit": 200}, headers=VIEWER
    )
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda run: str(run["slot_at"]))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_an_interval_schedule_fires_on_time_and_its_runs_show_the_executions(
    platform: Platform,
) -> None:
    schedule = await create(platform, interval_seconds=2, overlap_policy="allow")

    async def three_succeeded() -> list[dict[str, Any]] | None:
        runs = await runs_of(platform, schedule["id"])
        succeeded = [run for run in runs if run["execution_status"] == "succeeded"]
        return runs if len(succeeded) >= 3 else None

    runs = await eventually(three_succeeded, timeout=20)
    await platform.operation.post(f"/api/v1/schedules/{schedule['id']}/pause", headers=ADMIN)
    slots = [at(run["slot_at"]) for run in runs]
    assert all(run["outcome"] == "fired" for run in runs)
    assert all(b - a == timedelta(seconds=2) for a, b in pairwise(slots))
    execution = await platform.operation.get(
        f"/api/v1/executions/{runs[0]['execution_id']}", headers=VIEWER
    )
    assert execution.json()["submitted_by"] == "alice"
    # Never before its slot; how soon after is the scheduler's tests' (a manual clock): a
    # bound on this machine's wall clock failed whenever the machine was loaded.
    assert at(execution.json()["created_at"]) >= slots[0]


async def test_pause_stops_fires_and_resume_restarts_them(platform: Platform) -> None:
    schedule = await create(platform, interval_seconds=2, overlap_policy="allow")
    path = f"/api/v1/schedules/{schedule['id']}"
    await eventually(lambda: runs_of(platform, schedule["id"]), timeout=10)
    paused = await platform.operation.post(f"{path}/pause", headers=ADMIN)
    assert paused.json()["is_paused"] is True
    assert paused.json()["paused_reason"] == "paused by alice"
    count = len(await runs_of(platform, schedule["id"]))
    await asyncio.sleep(4.5)  # two slots pass while paused
    assert len(await runs_of(platform, schedule["id"])) == count
    resumed = await platform.operation.post(f"{path}/resume", headers=ADMIN)
    assert resumed.json()["is_paused"] is False

    async def fired_again() -> bool:
        return len(await runs_of(platform, schedule["id"])) > count

    await eventually(fired_again, timeout=10)
    await platform.operation.post(f"{path}/pause", headers=ADMIN)


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"cron": "every minute"}, "cron", "five fields"),
        ({"cron": "* * * * * *"}, "cron", "five fields"),
        ({"cron": "R 3 * * *"}, "cron", "random"),  # a time drawn anew by every replica
        ({"cron": "*/5 * * * *", "timezone": "Mars/Olympus"}, "timezone", "unknown IANA"),
        ({"interval_seconds": 1}, "interval_seconds", "OPERATION_SCHEDULE_MIN_INTERVAL_SECONDS"),
        (
            {
                "interval_seconds": 60,
                "starts_at": "2027-01-02T00:00:00Z",
                "ends_at": "2027-01-01T00:00:00Z",
            },
            "ends_at",
            "after starts_at",
        ),
        ({}, "cron", "either cron or interval_seconds"),
        ({"cron": "* * * * *", "interval_seconds": 60}, "cron", "either"),
        ({"cron": "* * * * *", "overlap_policy": "sometimes"}, "overlap_policy", ""),
        ({"cron": "* * * * *", "panel": "deploy"}, "panel", ""),
        ({"cron": "0 0 31 2 *"}, "cron", "exists"),  # never: it would have no next slot
        ({"interval_seconds": 60, "starts_at": "9999-12-31T23:59:59Z"}, "starts_at", "before"),
        ({"cron": "@daily", "ends_at": "9999-12-31T00:00:00+14:00"}, "ends_at", "before"),
        # Before any slot could be computed (the start one tick early answered 500).
        ({"interval_seconds": 60, "starts_at": "0001-01-01T00:00:00Z"}, "starts_at", "from 1970"),
        ({"cron": "@daily", "starts_at": "0001-01-01T00:00:00+00:00"}, "starts_at", "from 1970"),
        ({"cron": "@daily", "ends_at": "0001-01-01T00:00:00Z"}, "ends_at", "from 1970"),
    ],
)
async def test_bad_schedules_are_422_naming_the_field(
    platform: Platform, body: dict[str, Any], field: str, says: str
) -> None:
    response = await platform.operation.post(
        "/api/v1/schedules", json={"template": "hello"} | body, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert field in errors
    assert says in errors[field]


# The database's other paths: its folders (a 500, IsADirectoryError), spellings of a path
# that are no zone's name, files that are no zone, and names too long for a file.
@pytest.mark.parametrize(
    "name",
    [
        "America",
        "Europe",
        "Asia",
        "America/Argentina",
        "America/",
        "/Europe/Berlin",
        "Europe//Berlin",
        "Europe/Berlin/",
        "Europe/Berlin/x",
        "../etc/passwd",
        "Europe/../../../etc/passwd",
        "/etc/passwd",
        ".",
        "posix/",
        "posix",
        "right",
        "right/UTC",
        "posix/Europe/Paris",
        "posixrules",
        "localtime",
        "Factory",
        "zone.tab",
        "tzdata.zi",
        "__init__.py",
        "",
        "x" * 64,
        "x" * 65,
    ],
)
async def test_a_timezone_naming_no_zone_is_422_naming_it(platform: Platform, name: str) -> None:
    schedule = await create(platform, cron="0 3 * * *")
    for response in (
        await platform.operation.post(
            "/api/v1/schedules",
            json={"template": "hello", "cron": "0 3 * * *", "timezone": name},
            headers=ADMIN,
        ),
        await platform.operation.patch(
            f"/api/v1/schedules/{schedule['id']}", json={"timezone": name}, headers=ADMIN
        ),
    ):
        assert response.status_code == 422, response.text
        assert [error["field"] for error in response.json()["errors"]] == ["timezone"]


@pytest.mark.parametrize(
    "name", ["UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires", "US/Pacific"]
)
async def test_a_timezone_naming_a_zone_is_taken(platform: Platform, name: str) -> None:
    schedule = await create(platform, cron="0 3 * * *", timezone=name)
    assert schedule["timezone"] == name
    preview = await platform.operation.get(
        f"/api/v1/schedules/{schedule['id']}/preview", params={"count": 1}, headers=VIEWER
    )
    assert preview.status_code == 200, preview.text


@pytest.mark.parametrize(
    "field",
    [
        "template",
        "parameters",
        "name",
        "timezone",
        "overlap_policy",
        "misfire_policy",
        "jitter_seconds",
    ],
)
async def test_a_change_cannot_null_what_a_schedule_needs(platform: Platform, field: str) -> None:
    schedule = await create(platform, cron="0 3 * * *", timezone="Europe/Berlin")
    response = await platform.operation.patch(
        f"/api/v1/schedules/{schedule['id']}", json={field: None}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_viewers_read_and_only_admins_manage(platform: Platform) -> None:
    refused = await platform.operation.post(
        "/api/v1/schedules", json={"template": "hello", "cron": "0 3 * * *"}, headers=VIEWER
    )
    assert refused.status_code == 403
    schedule = await create(platform, cron="0 3 * * *", is_paused=True)
    path = f"/api/v1/schedules/{schedule['id']}"
    for suffix in ("", "/runs", "/preview"):
        assert (await platform.operation.get(path + suffix, headers=VIEWER)).status_code == 200
    listed = await platform.operation.get("/api/v1/schedules", headers=VIEWER)
    assert schedule["id"] in {item["id"] for item in listed.json()["items"]}
    for method, suffix in (("PATCH", ""), ("DELETE", ""), ("POST", "/pause"), ("POST", "/resume")):
        response = await platform.operation.request(
            method, path + suffix, headers=VIEWER, json={} if method == "PATCH" else None
        )
        assert response.status_code == 403, (method, suffix)


async def test_another_tenants_schedule_is_not_found(platform: Platform) -> None:
    schedule = await create(platform, cron="0 3 * * *", is_paused=True)
    path = f"/api/v1/schedules/{schedule['id']}"
    for method, suffix in (
        ("GET", ""),
        ("GET", "/runs"),
        ("GET", "/preview"),
        ("PATCH", ""),
        ("POST", "/pause"),
        ("POST", "/resume"),
        ("DELETE", ""),
    ):
        response = await platform.operation.request(
            method, path + suffix, headers=OTHER_TENANT, json={} if method == "PATCH" else None
        )
        assert response.status_code == 404, (method, suffix, response.text)
    listed = await platform.operation.get("/api/v1/schedules", headers=OTHER_TENANT)
    assert listed.json()["items"] == []


async def test_preview_shows_the_next_fires_in_the_schedules_timezone_and_utc(
    platform: Platform,
) -> None:
    schedule = await create(
        platform,
        cron="30 2 * * *",
        timezone="Europe/Berlin",
        starts_at="2026-03-28T00:00:00Z",
        is_paused=True,
    )
    response = await platform.operation.get(
        f"/api/v1/schedules/{schedule['id']}/preview", params={"count": 3}, headers=VIEWER
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["timezone"] == "Europe/Berlin"
    assert len(preview["fires"]) == 3
    for fire in preview["fires"]:
        local, utc = at(fire["local"]), at(fire["at"])
        assert local == utc
        assert local.strftime("%H:%M") in {"02:30", "03:00"}  # 03:00 on a spring-forward day
        assert utc > datetime.now(UTC)


async def test_changes_are_audited_and_a_new_timing_counts_from_now(platform: Platform) -> None:
    schedule = await create(platform, cron="0 3 * * *", is_paused=True)
    path = f"/api/v1/schedules/{schedule['id']}"
    changed = await platform.operation.patch(path, json={"interval_seconds": 3600}, headers=ADMIN)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["cron"], changed.json()["interval_seconds"]) == (None, 3600)
    assert (await platform.operation.delete(path, headers=ADMIN)).status_code == 204
    assert (await platform.operation.get(path, headers=ADMIN)).status_code == 404
    audit = await platform.operation.get(
        "/api/v1/audit", params={"object_id": schedule["id"]}, headers=ADMIN
    )
    assert audit.status_code == 200, audit.text
    actions = {entry["action"] for entry in audit.json()["items"]}
    assert actions == {"schedule.create", "schedule.update", "schedule.delete"}


async def test_a_turn_no_job_could_carry_pauses_the_schedule_with_the_reason(
    platform: Platform,
) -> None:
    """A run its job could not carry (a queue message holds 256 KiB) is refused when the
    schedule is saved; one whose template has grown past it since pauses the schedule at
    its next turn, where the turn failed every few seconds, recording nothing."""
    words = {"words": "😀" * MAX_TEXT_LENGTH}  # 48 KiB in a message, each emoji 12 bytes
    shout = await template(platform, "shout", "echo {{words}}", [{"name": "words"}])
    schedule = await create(platform, template="shout", parameters=words, interval_seconds=2)
    grown = await platform.operation.patch(
        f"/api/v1/templates/{shout['id']}",
        json={"command_template": "echo {{words}} {{words}} {{words}}"},
        headers=ADMIN,
    )
    assert grown.status_code == 200, grown.text

    async def paused() -> dict[str, Any] | None:
        found = await platform.operation.get(f"/api/v1/schedules/{schedule['id']}", headers=VIEWER)
        return dict(found.json()) if found.json()["is_paused"] else None

    reason = (await eventually(paused, timeout=15))["paused_reason"]
    assert "parameters: the rendered command takes" in reason
    last = (await runs_of(platform, schedule["id"]))[-1]
    assert (last["outcome"], last["execution_id"]) == ("skipped", None)
    assert last["reason"].startswith("refused:")
    again = await platform.operation.post(
        "/api/v1/schedules",
        json={"template": "shout", "parameters": words, "interval_seconds": 2},
        headers=ADMIN,
    )
    assert again.status_code == 422, again.text
    assert [(e["field"], e["code"]) for e in again.json()["errors"]] == [
        ("parameters", "too_large")
    ]

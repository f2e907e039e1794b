"""Panel schedules on the running platform (real panel-svc, queue and worker; SQLite and
PostgreSQL): each slot is one submission through panel-svc's own intake, as the schedule's
owner; two schedulers racing for a slot still make one submission (its Idempotency-Key);
an owner who may no longer submit the panel gets the schedule paused with panel-svc's
reason; a slot panel-svc could not take is fired once it is back; bad targets are 422
naming the field; overlap ``skip`` follows the submission's run.

The tests that move time drive schedulers of their own (own engines, a ManualClock) on
schedules whose slots lie years ahead, which the platform's own scheduler never reaches."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select

from idp_common.db import Database
from operation_svc.models import ScheduleRun
from operation_svc.schedules.panels import PanelAnswer, PanelClient, PanelFire
from operation_svc.schedules.scheduler import Scheduler
from tests.clock import ManualClock
from tests.factories import ADMIN, panel_for, template
from tests.harness import (
    AUTH,
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    free_port,
    local_client,
    running_platform,
)

VIEWER = auth_headers(roles=("viewer",))
OTHER_TENANT = auth_headers(tenant="globex")


class CountingPanels(PanelClient):
    """panel-svc's client, counting the submissions asked for per slot. ``hold``: the next
    ask sets the first event, then waits for the second before it is sent."""

    asked: dict[datetime, int]
    hold: tuple[asyncio.Event, asyncio.Event] | None = None

    async def submit(self, fire: PanelFire) -> PanelAnswer:
        self.asked[fire.slot] = self.asked.get(fire.slot, 0) + 1
        if self.hold is not None:
            asking, go_on = self.hold
            self.hold = None
            asking.set()
            await go_on.wait()
        return await super().submit(fire)


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
        allowed_executables=["echo", "sleep", "printenv"],
        operation={"schedule_min_interval_seconds": 2, "scheduler_poll_seconds": 0.1},
    ) as running:
        greet = await template(running, "greet", "echo {{message}}", [{"name": "message"}])
        await panel_for(running, greet)
        slow = await template(running, "slow", "sleep 3", [])
        await panel_for(running, slow)
        secretive = await template(
            running, "secretive", "printenv IDP_PARAM_TOKEN", [{"name": "token", "type": "secret"}]
        )
        await panel_for(running, secretive, token="secret")
        yield running


async def create(platform: Platform, **body: Any) -> dict[str, Any]:
    response = await platform.operation.post("/api/v1/schedules", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def runs_of(platform: Platform, schedule_id: str) -> list[dict[str, Any]]:
    response = await platform.operation.get(
        f"/api/v1/schedules/{schedule_id}/runs", params={"limit": 200}, headers=VIEWER
    )
    assert response.status_code == 200, response.text
    return sorted(response.json()["items"], key=lambda run: str(run["slot_at"]))


async def schedule_of(platform: Platform, schedule_id: str) -> dict[str, Any]:
    response = await platform.operation.get(f"/api/v1/schedules/{schedule_id}", headers=VIEWER)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def submissions_of(platform: Platform, panel: str) -> list[dict[str, Any]]:
    response = await platform.panel.get(
        "/api/v1/submissions", params={"panel_id": panel, "limit": 200}, headers=VIEWER
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@asynccontextmanager
async def schedulers(
    platform: Platform,
    clock: ManualClock,
    *panel_urls: str,
    asked: dict[datetime, int] | None = None,
) -> AsyncIterator[list[Scheduler]]:
    """A scheduler per URL (panel-svc, or where it is not), each on an engine of its own
    on the platform's operation database, reading ``clock``; ``asked`` counts their
    submissions per slot."""
    async with contextlib.AsyncExitStack() as stack:
        made = []
        for url in panel_urls:
            db = Database(platform.database_urls["operation"])
            stack.push_async_callback(db.dispose)
            http = await stack.enter_async_context(local_client(url))
            panels = CountingPanels(http, AUTH)
            panels.asked = asked if asked is not None else {}
            made.append(
                Scheduler(db, poll_seconds=1, misfire_grace_seconds=30, clock=clock, panels=panels)
            )
        yield made


def panel_url(platform: Platform) -> str:
    return str(platform.panel.base_url).rstrip("/")


async def test_a_panel_interval_schedule_submits_each_slot_as_its_owner(
    platform: Platform,
) -> None:
    schedule = await create(
        platform, panel="greet", data={"message": "hi"}, interval_seconds=2, overlap_policy="allow"
    )
    assert (schedule["panel_slug"], schedule["data"]) == ("greet", {"message": "hi"})
    assert (schedule["template_id"], schedule["parameters"]) == (None, {})

    async def two_succeeded() -> list[dict[str, Any]] | None:
        runs = await runs_of(platform, schedule["id"])
        succeeded = [run for run in runs if run["execution_status"] == "succeeded"]
        return runs if len(succeeded) >= 2 else None

    runs = await eventually(two_succeeded, timeout=30)
    await platform.operation.post(f"/api/v1/schedules/{schedule['id']}/pause", headers=ADMIN)
    fired = [run for run in runs if run["execution_status"] == "succeeded"]
    assert all(run["outcome"] == "fired" for run in runs)
    assert len({run["submission_id"] for run in fired}) == len(fired)
    for run in fired:
        response = await platform.panel.get(
            f"/api/v1/submissions/{run['submission_id']}", headers=VIEWER
        )
        submission = response.json()
        assert (submission["submitted_by"], submission["status"]) == ("alice", "succeeded")
        assert submission["data"] == {"message": "hi"}
        assert submission["execution_id"] == run["execution_id"]
        execution = await platform.operation.get(
            f"/api/v1/executions/{run['execution_id']}", headers=VIEWER
        )
        assert execution.json()["submission_id"] == run["submission_id"]
        assert execution.json()["submitted_by"] == "alice"
        assert execution.json()["output"].strip() == "hi"


async def test_two_schedulers_racing_for_each_slot_make_one_submission_per_slot(
    platform: Platform,
) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    schedule = await create(
        platform,
        panel="greet",
        data={"message": "raced"},
        interval_seconds=60,
        starts_at=start.isoformat(),
        overlap_policy="allow",
    )
    clock = ManualClock(start.timestamp() - 1)
    url = panel_url(platform)
    before = {s["id"] for s in await submissions_of(platform, "greet")}
    asked: dict[datetime, int] = {}
    async with schedulers(platform, clock, url, url, asked=asked) as (first, second):
        for _ in range(4):
            clock.advance(1)
            # The second takes its turn while the first asks panel-svc for the slot (having
            # let the schedule's row go): both ask for the same slot, the second fires it.
            asking, second_done = asyncio.Event(), asyncio.Event()
            cast(CountingPanels, first.panels).hold = (asking, second_done)

            async def second_turn(asking: asyncio.Event, done: asyncio.Event) -> None:
                await asyncio.wait_for(asking.wait(), 15)
                await second.run_once()
                done.set()

            await asyncio.gather(first.run_once(), second_turn(asking, second_done))
            clock.advance(59)
    runs = await runs_of(platform, schedule["id"])
    assert [(at(run["slot_at"]), run["outcome"]) for run in runs] == [
        (start + timedelta(minutes=minute), "fired") for minute in range(4)
    ]
    made = [s for s in await submissions_of(platform, "greet") if s["id"] not in before]
    made = [s for s in made if s["data"] == {"message": "raced"}]
    assert sorted(s["id"] for s in made) == sorted(run["submission_id"] for run in runs)
    # Both asked panel-svc for each slot: its Idempotency-Key gave them one submission.
    assert set(asked.values()) == {2}, asked


@pytest.mark.parametrize("action", ["pause", "delete"])
async def test_a_slot_submitted_while_the_schedule_is_paused_or_deleted_is_recorded(
    platform: Platform, action: str
) -> None:
    """A pause (or delete) between the turn that asked panel-svc and the one recording its
    answer left the submission, which runs, on no run of the schedule."""
    start = datetime(2033, 1, 1, tzinfo=UTC) + timedelta(days=["pause", "delete"].index(action))
    schedule = await create(
        platform,
        panel="greet",
        data={"message": f"{action}d meanwhile"},
        interval_seconds=60,
        starts_at=start.isoformat(),
    )
    path = f"/api/v1/schedules/{schedule['id']}"
    clock = ManualClock(start.timestamp())
    async with schedulers(platform, clock, panel_url(platform)) as [scheduler]:
        asking, go_on = asyncio.Event(), asyncio.Event()
        cast(CountingPanels, scheduler.panels).hold = (asking, go_on)

        async def stop_while_asking() -> None:
            await asyncio.wait_for(asking.wait(), 15)
            if action == "pause":
                stopped = await platform.operation.post(f"{path}/pause", headers=ADMIN)
            else:
                stopped = await platform.operation.delete(path, headers=ADMIN)
            assert stopped.status_code in (200, 204), stopped.text
            go_on.set()

        await asyncio.gather(scheduler.run_once(), stop_while_asking())
    made = [s for s in await submissions_of(platform, "greet") if s["data"] == schedule["data"]]
    assert len(made) == 1
    db = Database(platform.database_urls["operation"])  # a deleted schedule's runs: 404
    try:
        async with db.snapshot() as session:
            runs = (
                await session.scalars(
                    select(ScheduleRun).where(ScheduleRun.schedule_id == uuid.UUID(schedule["id"]))
                )
            ).all()
    finally:
        await db.dispose()
    assert [(run.slot_at, run.outcome, run.submission_id) for run in runs] == [
        (start, "fired", uuid.UUID(made[0]["id"]))
    ]


async def test_an_owner_who_may_no_longer_submit_the_panel_gets_the_schedule_paused(
    platform: Platform,
) -> None:
    guarded = await template(platform, "guarded", "echo guarded", [])
    await panel_for(platform, guarded)
    schedule = await create(platform, panel="guarded", interval_seconds=2, overlap_policy="allow")
    path = f"/api/v1/schedules/{schedule['id']}"
    await eventually(lambda: runs_of(platform, schedule["id"]), timeout=10)
    # alice is an admin in no group: a panel for the dba group only is not hers to submit.
    changed = await platform.panel.patch(
        "/api/v1/panels/guarded", json={"allowed_groups": ["dba"]}, headers=ADMIN
    )
    assert changed.status_code == 200, changed.text

    async def paused() -> dict[str, Any] | None:
        found = await schedule_of(platform, schedule["id"])
        return found if found["is_paused"] else None

    found = await eventually(paused, timeout=10)
    reason = found["paused_reason"]
    assert reason.startswith("alice may no longer run it: panel-svc refused the submission (403)")
    assert "Panel 'guarded' may only be run by" in reason
    runs = await runs_of(platform, schedule["id"])
    assert runs[-1]["outcome"] == "skipped"
    assert runs[-1]["reason"].startswith("refused: alice may no longer run it")
    assert {run["outcome"] for run in runs[:-1]} == {"fired"}
    audit = await platform.operation.get(
        "/api/v1/audit", params={"object_id": schedule["id"]}, headers=ADMIN
    )
    pauses = [entry for entry in audit.json()["items"] if entry["action"] == "schedule.pause"]
    assert [(entry["actor"], entry["changes"]["reason"]) for entry in pauses] == [
        ("system:scheduler", reason)
    ]
    resumed = await platform.operation.post(f"{path}/resume", headers=ADMIN)
    assert resumed.status_code == 409, resumed.text
    assert "may not be submitted by them" in resumed.json()["detail"]


async def test_a_slot_panel_svc_could_not_take_fires_once_it_is_back(platform: Platform) -> None:
    start = datetime(2031, 1, 1, tzinfo=UTC)
    schedule = await create(
        platform,
        panel="greet",
        data={"message": "later"},
        interval_seconds=60,
        starts_at=start.isoformat(),
    )
    clock = ManualClock(start.timestamp() - 1)
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with schedulers(platform, clock, nowhere, panel_url(platform)) as (down, back):
        clock.advance(1)
        await down.run_once()  # panel-svc cannot be reached: the slot is kept
        await down.run_once()
        assert await runs_of(platform, schedule["id"]) == []
        kept = await schedule_of(platform, schedule["id"])
        assert (kept["is_paused"], at(kept["next_slot_at"])) == (False, start)
        clock.advance(20)  # back within the misfire grace (30 s)
        await back.run_once()
    runs = await runs_of(platform, schedule["id"])
    assert [(at(run["slot_at"]), run["outcome"]) for run in runs] == [(start, "fired")]
    response = await platform.panel.get(
        f"/api/v1/submissions/{runs[0]['submission_id']}", headers=VIEWER
    )
    assert response.json()["data"] == {"message": "later"}


async def test_a_slot_panel_svc_missed_past_the_grace_is_left_to_the_misfire_policy(
    platform: Platform,
) -> None:
    start = datetime(2032, 1, 1, tzinfo=UTC)
    schedule = await create(
        platform,
        panel="greet",
        data={"message": "too late"},
        interval_seconds=60,
        starts_at=start.isoformat(),
        misfire_policy="skip",
    )
    clock = ManualClock(start.timestamp() - 1)
    nowhere = f"http://127.0.0.1:{free_port()}"
    async with schedulers(platform, clock, nowhere, panel_url(platform)) as (down, back):
        clock.advance(1)
        await down.run_once()
        clock.advance(45)  # back, but past the misfire grace (30 s)
        await back.run_once()
    runs = await runs_of(platform, schedule["id"])
    assert [(at(run["slot_at"]), run["outcome"]) for run in runs] == [(start, "skipped")]
    assert runs[0]["reason"].startswith("missed:")
    assert runs[0]["submission_id"] is None


@pytest.mark.parametrize(
    ("body", "headers", "field", "says"),
    [
        ({"panel": "no-such-panel"}, ADMIN, "panel", "no panel 'no-such-panel'"),
        ({"panel": "greet"}, OTHER_TENANT, "panel", "no panel 'greet'"),
        ({"panel": "secretive", "data": {"token": "s3cr3t"}}, ADMIN, "data.token", "secret"),
        ({"panel": "greet", "data": {"colour": "red"}}, ADMIN, "data.colour", "no field"),
        # No job could carry it: 144 KB in a message, each emoji 12 bytes.
        ({"panel": "greet", "data": {"message": "😀" * 12_000}}, ADMIN, "data.message", "131072"),
        ({"panel": "greet", "template": "greet"}, ADMIN, "panel", "either template or panel"),
        ({"template": "greet", "data": {"message": "x"}}, ADMIN, "data", "takes parameters"),
        ({"panel": "greet", "parameters": {"message": "x"}}, ADMIN, "parameters", "takes data"),
        ({}, ADMIN, "template", "a template or a panel"),
        ({"panel": "../templates"}, ADMIN, "panel", "pattern"),
    ],
)
async def test_bad_panel_targets_are_422_naming_the_field(
    platform: Platform, body: dict[str, Any], headers: dict[str, str], field: str, says: str
) -> None:
    response = await platform.operation.post(
        "/api/v1/schedules", json=body | {"cron": "0 3 * * *"}, headers=headers
    )
    assert response.status_code == 422, response.text
    errors = {error["field"]: error["message"] for error in response.json()["errors"]}
    assert field in errors
    assert says in errors[field]


async def test_a_viewer_may_not_schedule_a_panel_nor_an_admin_one_they_may_not_submit(
    platform: Platform,
) -> None:
    response = await platform.operation.post(
        "/api/v1/schedules", json={"panel": "greet", "cron": "0 3 * * *"}, headers=VIEWER
    )
    assert response.status_code == 403, response.text
    dba_only = await template(platform, "dba-only", "echo dba", [])
    await panel_for(platform, dba_only)
    await platform.panel.patch(
        "/api/v1/panels/dba-only", json={"allowed_groups": ["dba"]}, headers=ADMIN
    )
    response = await platform.operation.post(
        "/api/v1/schedules", json={"panel": "dba-only", "cron": "0 3 * * *"}, headers=ADMIN
    )
    assert response.status_code == 403, response.text
    assert "Panel 'dba-only' may only be run by" in response.json()["detail"]


async def test_overlap_skip_skips_a_slot_while_the_previous_submission_runs(
    platform: Platform,
) -> None:
    schedule = await create(platform, panel="slow", interval_seconds=2, overlap_policy="skip")

    async def overlapped() -> list[dict[str, Any]] | None:
        runs = await runs_of(platform, schedule["id"])
        outcomes = [(run["outcome"], (run["reason"] or "").split(":")[0]) for run in runs]
        return runs if ("skipped", "overlap") in outcomes[1:] else None

    runs = await eventually(overlapped, timeout=20)
    await platform.operation.post(f"/api/v1/schedules/{schedule['id']}/pause", headers=ADMIN)
    assert runs[0]["outcome"] == "fired"
    first_skip = next(i for i, run in enumerate(runs) if run["outcome"] == "skipped")
    # The slot skipped came while the run of the one fired before it was active (sleep 3).
    assert runs[first_skip - 1]["outcome"] == "fired"
    submission = await platform.panel.get(
        f"/api/v1/submissions/{runs[first_skip - 1]['submission_id']}", headers=VIEWER
    )
    assert submission.status_code == 200
    active = {run["submission_id"] for run in runs if run["outcome"] == "fired"}
    assert len(active) == sum(run["outcome"] == "fired" for run in runs)


async def test_a_panel_schedule_is_listed_with_its_panel_and_new_data_takes_it_over(
    platform: Platform,
) -> None:
    schedule = await create(platform, panel="greet", data={"message": "x"}, cron="0 3 * * *")
    listed = await platform.operation.get("/api/v1/schedules", headers=VIEWER)
    found = {item["id"]: item for item in listed.json()["items"]}[schedule["id"]]
    assert (found["panel_slug"], found["panel_id"], found["template_slug"]) == (
        "greet",
        schedule["panel_id"],
        None,
    )
    bob = auth_headers(subject="bob", groups=("ops",))
    changed = await platform.operation.patch(
        f"/api/v1/schedules/{schedule['id']}", json={"data": {"message": "y"}}, headers=bob
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["data"], changed.json()["owner_subject"]) == ({"message": "y"}, "bob")
    assert changed.json()["owner_groups"] == ["ops"]
    refused = await platform.operation.patch(
        f"/api/v1/schedules/{schedule['id']}", json={"parameters": {}}, headers=bob
    )
    assert refused.status_code == 422, refused.text
    path = f"/api/v1/schedules/{schedule['id']}"
    to_template = await platform.operation.patch(
        path, json={"template": "greet", "parameters": {"message": "z"}}, headers=ADMIN
    )
    assert to_template.status_code == 200, to_template.text
    changed_to = to_template.json()
    assert (changed_to["template_slug"], changed_to["parameters"]) == ("greet", {"message": "z"})
    assert (changed_to["panel_id"], changed_to["data"]) == (None, None)
    to_panel = await platform.operation.patch(path, json={"panel": "slow"}, headers=ADMIN)
    assert to_panel.status_code == 200, to_panel.text
    assert (to_panel.json()["panel_slug"], to_panel.json()["template_id"]) == ("slow", None)
    assert to_panel.json()["owner_subject"] == "alice"

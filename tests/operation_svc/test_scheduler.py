"""The scheduler on real databases, its time moved by a ManualClock: slots fire on time
(cron in its timezone, intervals), once each even with two schedulers on their own engines,
not while paused, under the misfire and overlap policies; the owner's access is checked at
every fire, and a schedule its owner may no longer run is paused, with the reason, audited."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from idp_common.api_keys import api_key_subject
from idp_common.auth import Principal
from idp_common.db import Database
from idp_common.errors import Conflict, ValidationFailed
from idp_common.sealing import is_sealed
from idp_common.settings import AuthSettings
from operation_svc.api_keys.schemas import ApiKeyIn
from operation_svc.api_keys.service import create_api_key
from operation_svc.config import OperationSettings
from operation_svc.models import (
    ApiKey,
    AuditEntry,
    Execution,
    OperationTemplate,
    Schedule,
    ScheduleRun,
    messaging,
)
from operation_svc.schedules import service
from operation_svc.schedules.metrics import FIRES, LATENESS, SKIPS
from operation_svc.schedules.panels import PanelClient
from operation_svc.schedules.repository import ScheduleBoard
from operation_svc.schedules.scheduler import TAKEN, Scheduler
from operation_svc.schedules.schemas import ScheduleIn, ScheduleOut, ScheduleUpdate
from tests.clock import ManualClock
from tests.harness import AUTH, SEALING, migrated_copy, migrated_database
from tests.operation_svc.schedule_rows import panel_schedule

START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ALICE = Principal("alice", "acme", frozenset({"admin"}), frozenset({"ops"}))
SETTINGS = OperationSettings(
    environment="test", auth=AUTH, sealing=SEALING, schedule_min_interval_seconds=1
)
BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


async def add_template(db: Database, **options: Any) -> OperationTemplate:
    template = OperationTemplate(
        id=uuid.uuid4(),
        tenant="acme",
        slug="nightly",
        name="nightly",
        command_template="echo hi",
        argv=["echo", "hi"],
        created_by="alice",
        updated_by="alice",
        **{"parameters": []} | options,
    )
    async with db.transaction() as session:
        session.add(template)
    return template


async def add_schedule(db: Database, clock: ManualClock, **fields: Any) -> Schedule:
    """A schedule of the ``nightly`` template, created by alice at the clock's time."""
    async with db.transaction() as session:
        return await service.create_schedule(
            session, ALICE, ScheduleIn(template="nightly", **fields), SETTINGS, clock.now()
        )


async def every_minute(db: Database, clock: ManualClock, **fields: Any) -> Schedule:
    """A schedule firing each minute from START."""
    return await add_schedule(db, clock, interval_seconds=60, starts_at=START, **fields)


async def runs(db: Database, schedule: Schedule) -> list[tuple[datetime, str, str | None]]:
    """(slot, outcome, reason's first word) of each slot handled, in order."""
    async with db.snapshot() as session:
        found = await session.scalars(
            select(ScheduleRun)
            .where(ScheduleRun.schedule_id == schedule.id)
            .order_by(ScheduleRun.slot_at)
        )
        return [
            (run.slot_at, run.outcome, run.reason.split(":")[0] if run.reason else None)
            for run in found
        ]


async def fired(db: Database) -> list[datetime]:
    """The slots of the executions schedules created, in order."""
    async with db.snapshot() as session:
        slots = await session.scalars(
            select(Execution.scheduled_for)
            .where(Execution.schedule_id.is_not(None))
            .order_by(Execution.scheduled_for)
        )
        return [slot for slot in slots if slot is not None]


async def end_runs(db: Database) -> None:
    """Every execution the schedules fired has succeeded."""
    async with db.transaction() as session:
        await session.execute(update(Execution).values(status="succeeded"))


async def refused_from_the_next_slot_on(
    db: Database, scheduler: Scheduler, clock: ManualClock, schedule: Schedule
) -> Schedule:
    """Three minutes on: the first slot fired, the next refused, and the schedule paused."""
    for _ in range(3):
        clock.advance(60)
        await scheduler.run_once()
    assert await fired(db) == minutes(0)
    assert await runs(db, schedule) == [
        (START, "fired", None),
        (START + timedelta(minutes=1), "skipped", "refused"),
    ]
    async with db.snapshot() as session:
        paused = await session.get(Schedule, schedule.id)
    assert paused is not None
    assert paused.is_paused
    return paused


def minutes(*offsets: int) -> list[datetime]:
    return [START + timedelta(minutes=offset) for offset in offsets]


@asynccontextmanager
async def scheduling(
    backend: str, tmp_path: Path, grace: float = 30, **template: Any
) -> AsyncIterator[tuple[Database, Scheduler, ManualClock]]:
    """A database with the ``nightly`` template, a scheduler and its clock (a second before
    START)."""
    clock = ManualClock(START.timestamp() - 1)
    async with migrated_database(backend, tmp_path, "operation") as db:
        await add_template(db, **template)
        scheduler = Scheduler(db, poll_seconds=1, misfire_grace_seconds=grace, clock=clock)
        yield db, scheduler, clock


@BACKENDS
async def test_an_interval_schedule_fires_each_slot_on_time_as_its_owner(
    backend: str, tmp_path: Path
) -> None:
    async with scheduling(backend, tmp_path) as (db, scheduler, clock):
        schedule = await every_minute(db, clock, overlap_policy="allow")
        assert schedule.next_slot_at == START
        on_time = LATENESS._buckets[0].get()  # within 0.1 s of the slot
        for _ in range(4):
            await scheduler.run_once()  # a second early: nothing yet
            clock.advance(1)
            await scheduler.run_once()
            clock.advance(59)
        assert await fired(db) == minutes(0, 1, 2, 3)
        assert await runs(db, schedule) == [(slot, "fired", None) for slot in minutes(0, 1, 2, 3)]
        assert LATENESS._buckets[0].get() - on_time == 4
        async with db.snapshot() as session:
            executions = (await session.scalars(select(Execution))).all()
            audits = (
                await session.scalars(
                    select(AuditEntry).where(AuditEntry.action == "execution.create")
                )
            ).all()
        assert {(e.submitted_by, e.schedule_id, e.status) for e in executions} == {
            ("alice", schedule.id, "pending")
        }
        assert {(a.actor, a.changes["schedule"]) for a in audits} == {("alice", str(schedule.id))}


@BACKENDS
async def test_a_cron_schedule_fires_at_its_wall_clock_time(backend: str, tmp_path: Path) -> None:
    async with scheduling(backend, tmp_path) as (db, scheduler, clock):
        await add_schedule(db, clock, cron="15 9 * * *", timezone="Europe/Berlin")
        clock.advance(1)  # on the hour: passes come at :00, :15, :30, :45
        for _ in range(3 * 24 * 4):  # three days, a pass every 15 minutes
            clock.advance(15 * 60)
            await scheduler.run_once()
            await end_runs(db)
        day = timedelta(days=1)
        first = datetime(2026, 5, 2, 7, 15, tzinfo=UTC)  # 09:15 CEST
        assert await fired(db) == [first, first + day, first + 2 * day]


@BACKENDS
async def test_pause_stops_fires_and_resume_restarts_them_from_the_next_slot(
    backend: str, tmp_path: Path
) -> None:
    async with scheduling(backend, tmp_path) as (db, scheduler, clock):
        schedule = await every_minute(db, clock, overlap_policy="allow")
        clock.advance(1)
        await scheduler.run_once()
        async with db.transaction() as session:
            await service.pause_schedule(session, ALICE, schedule.id)
        for _ in range(3):
            clock.advance(60)
            await scheduler.run_once()
        assert await fired(db) == minutes(0)
        clock.advance(30)  # 3.5 minutes after the start
        async with db.transaction() as session:
            resumed = await service.resume_schedule(session, ALICE, schedule.id, clock.now())
        assert resumed.next_slot_at == START + timedelta(minutes=4)
        clock.advance(30)
        await scheduler.run_once()
        assert await fired(db) == minutes(0, 4)
        assert [outcome for _, outcome, _ in await runs(db, schedule)] == ["fired", "fired"]


@BACKENDS
@pytest.mark.parametrize("policy", ["skip", "run_once"])
async def test_after_a_stop_skip_fires_no_missed_slot_and_run_once_fires_the_latest(
    backend: str, policy: str, tmp_path: Path
) -> None:
    async with scheduling(backend, tmp_path, grace=10) as (db, scheduler, clock):
        schedule = await every_minute(db, clock, misfire_policy=policy)
        clock.advance(1)
        await scheduler.run_once()
        await end_runs(db)
        clock.advance(10 * 60 + 15)  # down from just after minute 0 to 15 s after minute 10
        await scheduler.run_once()
        missed = minutes(*range(1, 11))
        expected: list[tuple[datetime, str, str | None]]
        if policy == "skip":
            assert await fired(db) == minutes(0)
            expected = [(slot, "skipped", "missed") for slot in missed]
        else:
            assert await fired(db) == minutes(0, 10)
            expected = [(slot, "skipped", "missed") for slot in missed[:-1]]
            expected.append((missed[-1], "fired", None))
        assert (await runs(db, schedule))[1:] == expected
        await end_runs(db)
        clock.advance(45)
        await scheduler.run_once()  # the next slot fires as usual
        assert (await fired(db))[-1] == START + timedelta(minutes=11)


@BACKENDS
async def test_overlap_skip_records_a_skip_while_the_previous_run_is_active(
    backend: str, tmp_path: Path
) -> None:
    async with scheduling(backend, tmp_path) as (db, scheduler, clock):
        schedule = await every_minute(db, clock, overlap_policy="skip")
        fires, skips = FIRES._value.get(), SKIPS.labels("overlap")._value.get()
        for _ in range(2):  # minute 0 fires; its run (no worker here) is still pending at 1
            clock.advance(1)
            await scheduler.run_once()
            clock.advance(59)
        await end_runs(db)
        clock.advance(1)
        await scheduler.run_once()
        assert await runs(db, schedule) == [
            (START, "fired", None),
            (START + timedelta(minutes=1), "skipped", "overlap"),
            (START + timedelta(minutes=2), "fired", None),
        ]
        assert FIRES._value.get() - fires == 2
        assert SKIPS.labels("overlap")._value.get() - skips == 1


@BACKENDS
async def test_overlap_queue_one_runs_one_waiting_slot_when_the_active_run_ends(
    backend: str, tmp_path: Path
) -> None:
    async with scheduling(backend, tmp_path) as (db, scheduler, clock):
        schedule = await every_minute(db, clock, overlap_policy="queue_one")
        for _ in range(3):  # 0 fires, 1 waits, 2 is skipped: one slot waits at most
            clock.advance(1)
            await scheduler.run_once()
            clock.advance(59)
        assert await fired(db) == minutes(0)
        await end_runs(db)
        clock.advance(20)
        await scheduler.run_once()  # the run of 0 ended: 1 fires, late; 3 waits for it
        assert await fired(db) == minutes(0, 1)
        assert await runs(db, schedule) == [
            (START, "fired", None),
            (START + timedelta(minutes=1), "fired", None),
            (START + timedelta(minutes=2), "skipped", "queue_full"),
            (START + timedelta(minutes=3), "queued", "waiting for the active run to end"),
        ]
        async with db.snapshot() as session:
            again = await session.get(Schedule, schedule.id)
        assert again is not None
        assert again.queued_slot_at == START + timedelta(minutes=3)


async def test_a_cron_firing_closer_than_the_least_interval_is_refused_naming_cron(
    tmp_path: Path,
) -> None:
    hourly = SETTINGS.model_copy(update={"schedule_min_interval_seconds": 3600})
    async with scheduling("sqlite", tmp_path) as (db, _, _):
        for cron in ("* * * * *", "*/30 * * * *", "0,59 0,23 * * *"):  # the last: 23:59, 00:00
            with pytest.raises(ValidationFailed) as refused:
                async with db.transaction() as session:
                    await service.create_schedule(
                        session, ALICE, ScheduleIn(template="nightly", cron=cron), hourly, START
                    )
            [error] = refused.value.errors or []
            assert error["field"] == "cron"
            assert "OPERATION_SCHEDULE_MIN_INTERVAL_SECONDS" in error["message"]
        async with db.transaction() as session:
            hours = ScheduleIn(template="nightly", cron="0 */2 * * *")
            assert await service.create_schedule(session, ALICE, hours, hourly, START)


async def test_a_jitter_bringing_two_fires_closer_than_the_least_interval_is_refused(
    tmp_path: Path,
) -> None:
    """Jitter was bounded by an hour alone: every 60 s with 3600 s of it fired slots out of
    turn and in bursts, long-missed ones as if on time."""
    minute = SETTINGS.model_copy(update={"schedule_min_interval_seconds": 60})
    async with scheduling("sqlite", tmp_path) as (db, _, _):
        for timing in (
            {"interval_seconds": 60, "jitter_seconds": 3600},
            {"interval_seconds": 120, "jitter_seconds": 61},
            {"cron": "0 * * * *", "jitter_seconds": 3600},
        ):
            with pytest.raises(ValidationFailed) as refused:
                async with db.transaction() as session:
                    await service.create_schedule(
                        session, ALICE, ScheduleIn(template="nightly", **timing), minute, START
                    )
            [error] = refused.value.errors or []
            assert error["field"] == "jitter_seconds"
            assert "OPERATION_SCHEDULE_MIN_INTERVAL_SECONDS" in error["message"]
        async with db.transaction() as session:
            fits = ScheduleIn(template="nightly", interval_seconds=120, jitter_seconds=60)
            assert await service.create_schedule(session, ALICE, fits, minute, START)


@BACKENDS
async def test_a_slot_queued_before_a_pause_does_not_fire_at_the_resume(
    backend: str, tmp_path: Path
) -> None:
    async with scheduling(backend, tmp_path) as (db, scheduler, clock):
        schedule = await every_minute(db, clock, overlap_policy="queue_one")
        for _ in range(2):  # 0 fires, 1 waits for it
            clock.advance(1)
            await scheduler.run_once()
            clock.advance(59)
        async with db.transaction() as session:
            await service.pause_schedule(session, ALICE, schedule.id)
        await end_runs(db)
        clock.advance(60 * 60)  # an hour later
        async with db.transaction() as session:
            await service.resume_schedule(session, ALICE, schedule.id, clock.now())
        await scheduler.run_once()
        assert await fired(db) == minutes(0)
        assert await runs(db, schedule) == [
            (START, "fired", None),
            (START + timedelta(minutes=1), "skipped", "paused"),
        ]


@BACKENDS
async def test_a_schedule_whose_owner_may_no_longer_run_the_template_is_paused_and_audited(
    backend: str, tmp_path: Path
) -> None:
    async with scheduling(backend, tmp_path, allowed_groups=["ops"]) as (db, scheduler, clock):
        schedule = await every_minute(db, clock, overlap_policy="allow")
        clock.advance(1)
        await scheduler.run_once()
        async with db.transaction() as session:  # alice is in ops, not in dba
            await session.execute(
                update(OperationTemplate)
                .where(OperationTemplate.slug == "nightly")
                .values(allowed_groups=["dba"])
            )
        paused = await refused_from_the_next_slot_on(db, scheduler, clock, schedule)
        async with db.snapshot() as session:
            audits = (
                await session.scalars(
                    select(AuditEntry).where(AuditEntry.action == "schedule.pause")
                )
            ).all()
        assert paused.paused_reason is not None
        assert paused.paused_reason.startswith("alice may no longer run it: Template 'nightly'")
        assert [(a.actor, a.object_id, a.changes["reason"]) for a in audits] == [
            ("system:scheduler", str(schedule.id), paused.paused_reason)
        ]


@BACKENDS
async def test_a_schedule_whose_template_was_deleted_is_paused(
    backend: str, tmp_path: Path
) -> None:
    async with scheduling(backend, tmp_path) as (db, scheduler, clock):
        schedule = await every_minute(db, clock)
        async with db.transaction() as session:
            await session.execute(
                update(OperationTemplate)
                .where(OperationTemplate.slug == "nightly")
                .values(is_deleted=True)
            )
        clock.advance(1)
        await scheduler.run_once()
        assert await fired(db) == []
        async with db.snapshot() as session:
            paused = await session.get(Schedule, schedule.id)
        assert paused is not None
        assert paused.is_paused
        assert "Unknown operation template" in (paused.paused_reason or "")


@pytest.mark.parametrize("withdrawn", ["revoked", "expired"])
async def test_a_schedule_made_through_an_api_key_stops_with_the_key(
    tmp_path: Path, withdrawn: str
) -> None:
    """It ran on as its key's principal, with the roles saved in it, long after the key was
    revoked or had expired: each fire checks the key now, and resuming it too."""
    async with scheduling("sqlite", tmp_path) as (db, scheduler, clock):
        async with db.transaction() as session:
            record, _ = await create_api_key(
                session, ALICE, ApiKeyIn(name="bot", roles=["admin"], groups=["ops"])
            )
        bot = Principal(api_key_subject(record.id), "acme", frozenset({"admin"}))
        async with db.transaction() as session:
            schedule = await service.create_schedule(
                session,
                bot,
                ScheduleIn(
                    template="nightly", interval_seconds=60, starts_at=START, overlap_policy="allow"
                ),
                SETTINGS,
                clock.now(),
            )
        clock.advance(1)
        await scheduler.run_once()
        async with db.transaction() as session:
            key = await session.get(ApiKey, record.id)
            assert key is not None
            if withdrawn == "revoked":
                key.revoked_at = clock.now()
            else:
                key.expires_at = clock.now()
        paused = await refused_from_the_next_slot_on(db, scheduler, clock, schedule)
        said = "was revoked" if withdrawn == "revoked" else "has expired"
        assert f"its API key {record.prefix}… {said}" in (paused.paused_reason or "")
        with pytest.raises(Conflict, match=said):
            async with db.transaction() as session:
                await service.resume_schedule(session, ALICE, schedule.id, clock.now())


@BACKENDS
async def test_two_schedulers_with_their_own_engines_fire_each_slot_once(
    backend: str, tmp_path: Path
) -> None:
    """The replicas race for every slot; the unique (schedule, slot) lets one win each."""
    clock = ManualClock(START.timestamp() - 1)
    async with migrated_copy(backend, tmp_path, "operation") as url:
        one, other = Database(url), Database(url)
        try:
            schedulers = [
                Scheduler(db, poll_seconds=1, misfire_grace_seconds=30, clock=clock)
                for db in (one, other)
            ]
            await add_template(one)
            schedule = await every_minute(one, clock, overlap_policy="allow")
            taken_before, fires_before = TAKEN._value.get(), FIRES._value.get()
            slots = 30
            for _ in range(slots):
                clock.advance(1)
                await asyncio.gather(*(scheduler.run_once() for scheduler in schedulers))
                clock.advance(59)
            assert await fired(one) == minutes(*range(slots))
            assert [outcome for _, outcome, _ in await runs(one, schedule)] == ["fired"] * slots
            assert FIRES._value.get() - fires_before == slots  # a turn given up counts nothing
            given_up = TAKEN._value.get() - taken_before
            if backend == "postgres":  # SQLite's one writer serializes the turns instead
                assert given_up > 0, "the replicas never raced for a slot"
        finally:
            await one.dispose()
            await other.dispose()


@BACKENDS
@pytest.mark.parametrize(
    ("day", "fires"),
    [
        (  # spring forward: the nonexistent 02:30 fires at 03:00 CEST
            datetime(2026, 3, 28, tzinfo=UTC),
            ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"],
        ),
        (  # fall back: the repeated 02:30 fires once, at its first occurrence (CEST)
            datetime(2026, 10, 24, tzinfo=UTC),
            ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"],
        ),
    ],
)
async def test_a_daily_0230_in_berlin_fires_once_a_day_across_the_dst_changes(
    backend: str, day: datetime, fires: list[str], tmp_path: Path
) -> None:
    clock = ManualClock(day.timestamp())
    async with migrated_database(backend, tmp_path, "operation") as db:
        scheduler = Scheduler(db, poll_seconds=1, misfire_grace_seconds=3600, clock=clock)
        await add_template(db)
        await add_schedule(db, clock, cron="30 2 * * *", timezone="Europe/Berlin")
        for _ in range(3 * 24 * 4):
            clock.advance(15 * 60)
            await scheduler.run_once()
            await end_runs(db)
        assert [slot.strftime("%Y-%m-%dT%H:%M") for slot in await fired(db)] == fires


async def test_secret_values_are_kept_sealed_and_fired_as_they_were_sealed(tmp_path: Path) -> None:
    secret = [{"name": "token", "type": "secret"}]
    async with scheduling("sqlite", tmp_path, parameters=secret) as (db, scheduler, clock):
        schedule = await every_minute(
            db, clock, overlap_policy="allow", parameters={"token": "s3cr3t-value"}
        )
        sealed = schedule.parameters["token"]
        assert is_sealed(sealed)
        assert ScheduleOut.model_validate(schedule).parameters == {"token": "***"}
        clock.advance(1)
        await scheduler.run_once()
        async with db.snapshot() as session:
            execution = await session.scalar(select(Execution))
        assert execution is not None
        assert execution.parameters == {"token": sealed}


async def test_resume_waits_for_an_owner_who_may_run_it_and_a_change_takes_it_over(
    tmp_path: Path,
) -> None:
    bob = Principal("bob", "acme", frozenset({"admin"}), frozenset({"dba"}))
    async with scheduling("sqlite", tmp_path, allowed_groups=["dba"]) as (db, scheduler, clock):
        async with db.transaction() as session:  # alice made it when ops could run it
            await session.execute(update(OperationTemplate).values(allowed_groups=["ops"]))
        schedule = await every_minute(db, clock, overlap_policy="allow")
        async with db.transaction() as session:
            await session.execute(update(OperationTemplate).values(allowed_groups=["dba"]))
        clock.advance(1)
        await scheduler.run_once()
        with pytest.raises(Conflict, match="cannot run as alice"):
            async with db.transaction() as session:
                await service.resume_schedule(session, bob, schedule.id, clock.now())
        async with db.transaction() as session:
            taken = await service.update_schedule(
                session, bob, schedule.id, ScheduleUpdate(parameters={}), SETTINGS, clock.now()
            )
            assert (taken.owner_subject, taken.owner_groups) == ("bob", ["dba"])
            await service.resume_schedule(session, bob, schedule.id, clock.now())
        clock.advance(60)
        await scheduler.run_once()
        async with db.snapshot() as session:
            executions = (await session.scalars(select(Execution))).all()
        assert [(e.submitted_by, e.scheduled_for) for e in executions] == [("bob", minutes(1)[0])]


async def test_a_scheduled_run_of_a_template_under_approval_waits_for_it(tmp_path: Path) -> None:
    policy = {"required": 1, "approver_roles": ["admin"], "expires_after_seconds": 3600}
    async with scheduling("sqlite", tmp_path, approval=policy) as (db, scheduler, clock):
        schedule = await every_minute(db, clock)  # overlap "skip"
        clock.advance(1)
        await scheduler.run_once()
        clock.advance(60)
        await scheduler.run_once()

        async with db.snapshot() as session:
            executions = (await session.scalars(select(Execution))).all()
            jobs = (await session.execute(select(messaging.outbox))).all()
        assert [(e.status, e.scheduled_for) for e in executions] == [("awaiting_approval", START)]
        assert jobs == []  # nothing for the workers before an approval
        # Waiting for approval, the run is still active: the next slot is an overlap.
        assert await runs(db, schedule) == [
            (START, "fired", None),
            (START + timedelta(minutes=1), "skipped", "overlap"),
        ]


@BACKENDS
async def test_a_panel_schedules_run_is_active_until_its_submissions_latest_execution_ends(
    backend: str, tmp_path: Path
) -> None:
    """Overlap for a panel target: its latest submission counts, from before operation-svc
    has an execution of it to the end of its latest attempt."""
    async with scheduling(backend, tmp_path) as (db, _, _clock):
        async with db.snapshot() as session:
            template_id = await session.scalar(select(OperationTemplate.id))
        schedule = panel_schedule(interval_seconds=60)
        submission = uuid.uuid4()

        async def active() -> bool:
            async with db.snapshot() as session:
                return await ScheduleBoard(session).has_active_run(schedule)

        def execution(status: str, attempt: int) -> Execution:
            return Execution(
                id=uuid.uuid4(),
                tenant="acme",
                template_id=template_id,
                template_slug="nightly",
                submission_id=submission,
                attempt=attempt,
                submitted_by="alice",
                parameters={},
                timeout_seconds=60,
                status=status,
            )

        async with db.transaction() as session:
            session.add(schedule)
        assert not await active()  # nothing fired yet
        async with db.transaction() as session:
            session.add(
                ScheduleRun(
                    tenant="acme",
                    schedule_id=schedule.id,
                    slot_at=START,
                    outcome="fired",
                    submission_id=submission,
                )
            )
        assert await active()  # submitted; operation-svc has no execution of it yet
        first = execution("running", 1)
        async with db.transaction() as session:
            session.add(first)
        assert await active()
        async with db.transaction() as session:
            await session.execute(
                update(Execution).where(Execution.id == first.id).values(status="failed")
            )
        assert not await active()
        async with db.transaction() as session:
            session.add(execution("pending", 2))  # a retry, which the submission follows
        assert await active()
        await end_runs(db)
        assert not await active()


async def test_a_panel_schedule_is_refused_where_owners_tokens_would_be_refused(
    tmp_path: Path,
) -> None:
    """An owner's token is signed with AUTH_JWT_SECRET: without HS256 among the accepted
    algorithms, panel-svc would refuse every fire."""
    asymmetric = AuthSettings(jwt_algorithms=["RS256"], jwks_url="http://127.0.0.1:9/jwks")
    async with (
        scheduling("sqlite", tmp_path) as (db, _, clock),
        httpx.AsyncClient(base_url="http://127.0.0.1:9") as http,
    ):
        with pytest.raises(Conflict, match="does not accept HS256"):
            async with db.transaction() as session:
                await service.create_schedule(
                    session,
                    ALICE,
                    ScheduleIn(panel="deploy", cron="0 3 * * *"),
                    SETTINGS,
                    clock.now(),
                    panels=PanelClient(http, asymmetric),
                )


@BACKENDS
async def test_a_schedule_whose_cron_draws_a_random_time_is_not_resumed(
    backend: str, tmp_path: Path
) -> None:
    """One saved with R before R was refused, paused by the migration, stays paused until
    its cron is written: each replica and each slot would draw another time."""
    async with scheduling(backend, tmp_path) as (db, _, clock):
        schedule = await every_minute(db, clock)
        async with db.transaction() as session:
            await service.pause_schedule(session, ALICE, schedule.id)
            await session.execute(
                update(Schedule).where(Schedule.id == schedule.id).values(cron="R * * * *")
            )
        with pytest.raises(Conflict, match=r"R \(a random value\) is not taken"):
            async with db.transaction() as session:
                await service.resume_schedule(session, ALICE, schedule.id, clock.now())

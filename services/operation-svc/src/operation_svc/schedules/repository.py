"""Queries of schedules: the tenant's (``ScheduleRepository``, ``ScheduleRunRepository``) and
the scheduler's, across tenants (``ScheduleBoard``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import insert_new
from idp_common.events import TERMINAL_STATUSES
from idp_common.repository import CrossTenantRepository, TenantRepository
from idp_common.unit_of_work import with_defaults
from operation_svc.models import Execution, Schedule, ScheduleRun

_RUNS = cast(Table, ScheduleRun.__table__)


class ScheduleBusy(Exception):
    """Another replica's scheduler is taking this schedule's turn."""


class ScheduleRepository(TenantRepository[Schedule]):
    """Deleted schedules are invisible: not listed, not found, never fired."""

    model = Schedule

    def scoped(self, *options: Any) -> Select[tuple[Schedule]]:
        return super().scoped(*options).where(Schedule.is_deleted.is_(False))


class ScheduleRunRepository(TenantRepository[ScheduleRun]):
    model = ScheduleRun

    def of(self, schedule_id: uuid.UUID) -> Select[tuple[ScheduleRun]]:
        return self.scoped().where(ScheduleRun.schedule_id == schedule_id)

    async def execution_statuses(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Execution.id, Execution.status).where(
                Execution.tenant == self.tenant, Execution.id.in_(ids)
            )
        )
        return dict(rows.tuples().all())

    async def latest_executions(
        self, submission_ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[uuid.UUID, str]]:
        """Each submission's latest execution (its highest attempt) and its status."""
        if not submission_ids:
            return {}
        rows = await self.session.execute(
            select(Execution.submission_id, Execution.id, Execution.status)
            .where(Execution.tenant == self.tenant, Execution.submission_id.in_(submission_ids))
            .order_by(Execution.attempt)
        )
        return {
            submission_id: (execution_id, status)
            for submission_id, execution_id, status in rows.tuples().all()
            if submission_id is not None
        }


class ScheduleBoard(CrossTenantRepository[AsyncSession]):
    """The scheduler's queries: it serves every tenant's schedules at once. Each schedule
    fires as its recorded owner, in the schedule's own tenant."""

    async def due(self, now: datetime, limit: int) -> list[uuid.UUID]:
        """Live schedules with a slot at or before ``now`` or a queued slot, oldest first."""
        stmt = (
            select(Schedule.id)
            .where(
                Schedule.is_paused.is_(False),
                Schedule.is_deleted.is_(False),
                or_(Schedule.next_slot_at <= now, Schedule.queued_slot_at.is_not(None)),
            )
            .order_by(Schedule.next_slot_at)
            .limit(limit)
        )
        return list((await self.connection.scalars(stmt)).all())

    async def take(self, schedule_id: uuid.UUID) -> Schedule | None:
        """The schedule, its row locked until this transaction ends, so that a pause or
        an edit waits for a turn in flight and a turn never fires after them (on SQLite the
        write turn does this); None when it is gone. ``ScheduleBusy`` when another
        replica's turn holds it: that turn has its slots."""
        locked = (
            select(Schedule)
            .where(Schedule.id == schedule_id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if (schedule := await self.connection.scalar(locked)) is not None:
            return schedule
        if await self.connection.scalar(select(Schedule.id).where(Schedule.id == schedule_id)):
            raise ScheduleBusy(schedule_id)
        return None

    async def claim_slot(self, run: ScheduleRun) -> bool:
        """Record what became of a slot, unless a run of that slot exists (another replica
        handled it): False then, and this transaction must be given up."""
        row = {column.key: getattr(run, column.key) for column in _RUNS.columns}
        return bool(await insert_new(self.connection, _RUNS, [row], "id"))

    async def record_submission(
        self, schedule: Schedule, slot_at: datetime, submission_id: uuid.UUID, reason: str
    ) -> None:
        """Record ``slot_at`` fired as ``submission_id``, unless it was recorded with a
        submission already (another replica's, the same one by its Idempotency-Key); one
        recorded without (skipped by a pause while it was queued) becomes fired."""
        run = ScheduleRun(
            tenant=schedule.tenant,
            schedule_id=schedule.id,
            slot_at=slot_at,
            outcome="fired",
            reason=reason,
            submission_id=submission_id,
        )
        if await self.claim_slot(with_defaults(run)):
            return
        await self.connection.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.schedule_id == schedule.id,
                ScheduleRun.slot_at == slot_at,
                ScheduleRun.submission_id.is_(None),
            )
            .values(outcome="fired", reason=reason, submission_id=submission_id)
        )

    async def has_active_run(self, schedule: Schedule) -> bool:
        """Whether an execution the schedule fired has not ended yet. A panel schedule's
        run is its latest submission: active while operation-svc has no execution of it
        yet, or one that has not ended (a retry, which the submission follows, is made
        after the attempt before it ended)."""
        if schedule.panel_id is None:
            stmt = select(Execution.id).where(
                Execution.schedule_id == schedule.id, Execution.status.not_in(TERMINAL_STATUSES)
            )
            return (await self.connection.scalar(stmt.limit(1))) is not None
        latest = (
            select(ScheduleRun.submission_id)
            .where(ScheduleRun.schedule_id == schedule.id, ScheduleRun.submission_id.is_not(None))
            .order_by(ScheduleRun.slot_at.desc())
            .limit(1)
            .scalar_subquery()
        )
        of_latest = select(Execution.id).where(Execution.submission_id == latest)
        active = and_(
            latest.is_not(None),
            or_(
                ~of_latest.exists(),
                of_latest.where(Execution.status.not_in(TERMINAL_STATUSES)).exists(),
            ),
        )
        return bool(await self.connection.scalar(select(active)))

    async def settle_queued(
        self,
        schedule_id: uuid.UUID,
        slot_at: datetime,
        *,
        outcome: str,
        reason: str | None = None,
        execution_id: uuid.UUID | None = None,
        submission_id: uuid.UUID | None = None,
    ) -> bool:
        """Record what became of the queued run of ``slot_at``, unless another replica did."""
        result = await self.connection.execute(
            update(ScheduleRun)
            .where(
                ScheduleRun.schedule_id == schedule_id,
                ScheduleRun.slot_at == slot_at,
                ScheduleRun.outcome == "queued",
            )
            .values(
                outcome=outcome,
                reason=reason,
                execution_id=execution_id,
                submission_id=submission_id,
            )
        )
        return bool(getattr(result, "rowcount", 0))

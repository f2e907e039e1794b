"""Queries of executions: the tenant's (``ExecutionRepository``) and the cross-tenant ones
of the worker protocol, the sweeper and the dispatcher (``SystemExecutions``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.idempotency import IdempotentRepository
from idp_common.repository import CrossTenantRepository, as_id
from operation_svc.executions.state import can_enter
from operation_svc.models import Execution, ExecutionLog, OperationTemplate

# Built once (they run for every retry, every group of worker events, every claim), the
# values given as parameters: building the claim's took a quarter of its CPU.
_RETRIED_AS = select(Execution.id).where(Execution.retry_of == bindparam("original")).limit(1)
_WITH_LIMITS = (
    select(Execution, OperationTemplate.max_concurrency)
    .outerjoin(OperationTemplate, OperationTemplate.id == Execution.template_id)
    .where(Execution.id.in_(bindparam("ids", expanding=True)))
)
_CLAIM = (
    update(Execution)
    .where(
        Execution.id.in_(bindparam("ids", expanding=True)),
        Execution.status.in_(can_enter("running")),
    )
    .values(
        status="running",
        worker_id=bindparam("worker_id"),
        claim_id=bindparam("claim_id"),
        started_at=bindparam("now"),
        heartbeat_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
    .returning(Execution)
    .execution_options(populate_existing=True)
)


class ExecutionRepository(IdempotentRepository[Execution]):
    model = Execution

    def listing(
        self,
        *,
        status: str | None,
        template: str | None,
        submitted_by: str | None,
        since: datetime | None,
    ) -> Select[tuple[Execution]]:
        """The tenant's executions by status, template (its id or slug), submitter, time."""
        stmt = self.scoped()
        if status:
            stmt = stmt.where(Execution.status == status)
        if template:
            named = Execution.template_slug == template
            template_id = as_id(template)
            stmt = stmt.where(
                named if template_id is None else named | (Execution.template_id == template_id)
            )
        if submitted_by:
            stmt = stmt.where(Execution.submitted_by == submitted_by)
        if since:
            stmt = stmt.where(Execution.created_at >= since)
        return stmt

    async def retried_as(self, original: Execution) -> uuid.UUID | None:
        """The execution that retried ``original`` (of this tenant), if any."""
        retried: uuid.UUID | None = await self.session.scalar(
            _RETRIED_AS, {"original": original.id}
        )
        return retried

    async def requesters(self, executions: Sequence[Execution]) -> dict[uuid.UUID, set[str]]:
        """Who requested each of ``executions``: its submitter and those of every attempt
        before it (a retry runs its original's parameters, whoever retried it)."""
        requesters = {execution.id: {execution.submitted_by} for execution in executions}
        # The attempt each chain has reached (chains never share one: an execution is
        # retried once): one query per generation of retries.
        reached = {e.retry_of: e.id for e in executions if e.retry_of is not None}
        while reached:
            stmt = self.scoped().where(Execution.id.in_(reached))
            earlier = (await self.session.scalars(stmt)).all()
            for attempt in earlier:
                requesters[reached[attempt.id]].add(attempt.submitted_by)
            reached = {e.retry_of: reached[e.id] for e in earlier if e.retry_of is not None}
        return requesters

    async def logs_after(
        self, execution_id: uuid.UUID, after_seq: int, limit: int
    ) -> Sequence[ExecutionLog]:
        stmt = (
            select(ExecutionLog)
            .where(ExecutionLog.execution_id == execution_id, ExecutionLog.seq > after_seq)
            .order_by(ExecutionLog.seq)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()


class SystemExecutions(CrossTenantRepository[AsyncSession]):
    """Cross-tenant: the worker protocol, the sweeper and the dispatcher act on executions
    by id or by template, for every tenant (a worker serves them all; a consumer compares
    the event's tenant with the execution's)."""

    async def with_limits(
        self, execution_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[Execution, int | None]]:
        """Each execution with its template's concurrency limit."""
        found = await self.connection.execute(_WITH_LIMITS, {"ids": execution_ids})
        return {execution.id: (execution, limit) for execution, limit in found.tuples()}

    async def latest_of_submissions(
        self, submission_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, Execution]:
        """Each submission's latest execution (its highest attempt), for those that have one."""
        stmt = (
            select(Execution)
            .where(Execution.submission_id.in_(submission_ids))
            .order_by(Execution.attempt)
        )
        return {e.submission_id: e for e in await self.connection.scalars(stmt) if e.submission_id}

    async def holding_slots(self, template_id: uuid.UUID) -> int:
        """The template's executions that hold a slot: running, or dispatched to a worker."""
        stmt = select(func.count()).where(
            Execution.template_id == template_id,
            (Execution.status == "running")
            | ((Execution.status == "pending") & Execution.dispatched_at.is_not(None)),
        )
        return int(await self.connection.scalar(stmt) or 0)

    async def not_started(self, template_id: uuid.UUID) -> Sequence[Execution]:
        """The template's executions no worker may have yet: awaiting approval, or pending
        and not dispatched (waiting for a slot)."""
        stmt = select(Execution).where(
            Execution.template_id == template_id,
            (Execution.status == "awaiting_approval")
            | ((Execution.status == "pending") & Execution.dispatched_at.is_(None)),
        )
        return (await self.connection.scalars(stmt.with_for_update())).all()

    async def waiting(self, template_id: uuid.UUID, limit: int | None) -> Sequence[Execution]:
        """The template's pending executions not yet dispatched, oldest first."""
        stmt = (
            select(Execution)
            .where(
                Execution.template_id == template_id,
                Execution.status == "pending",
                Execution.dispatched_at.is_(None),
            )
            .order_by(Execution.created_at)
            .limit(limit)
        )
        return (await self.connection.scalars(stmt)).all()

    async def claim(
        self,
        execution_ids: list[uuid.UUID],
        worker_id: str,
        claim_id: uuid.UUID | None,
        now: datetime,
    ) -> Sequence[Execution]:
        """Move the pending ones among ``execution_ids`` to running for ``worker_id``, in one
        conditional UPDATE (so only one claim of an execution ever succeeds)."""
        claimed = {"ids": execution_ids, "worker_id": worker_id, "claim_id": claim_id, "now": now}
        return (await self.connection.scalars(_CLAIM, claimed)).all()

    async def taken_by(
        self, execution_ids: list[uuid.UUID], worker_id: str, claim_id: uuid.UUID
    ) -> Sequence[uuid.UUID]:
        """Those among ``execution_ids`` running under ``worker_id`` since its claim
        ``claim_id`` took them."""
        stmt = select(Execution.id).where(
            Execution.id.in_(execution_ids),
            Execution.worker_id == worker_id,
            Execution.claim_id == claim_id,
            Execution.status == "running",
        )
        return (await self.connection.scalars(stmt)).all()

    async def beat(
        self, worker_id: str, execution_ids: list[uuid.UUID], now: datetime
    ) -> dict[uuid.UUID, datetime | None]:
        """Record a heartbeat on the executions ``worker_id`` still holds (running under it);
        returns them, each with when a cancel was requested (None: not requested)."""
        held = (
            Execution.id.in_(execution_ids),
            Execution.worker_id == worker_id,
            Execution.status == "running",
        )
        await self.connection.execute(
            update(Execution)
            .where(*held)
            .values(heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
        found = await self.connection.execute(
            select(Execution.id, Execution.cancel_requested_at).where(*held)
        )
        return dict(found.tuples().all())

    async def dispatched_unclaimed(self, before: datetime, limit: int) -> Sequence[Execution]:
        """Pending executions dispatched before ``before`` and still not claimed, oldest
        first, locked (another replica's reconciler skips them)."""
        stmt = (
            select(Execution)
            .where(Execution.status == "pending", Execution.dispatched_at < before)
            .order_by(Execution.dispatched_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.connection.scalars(stmt)).all()

    async def owed_a_job_message(self) -> int:
        """Executions whose job should be in the jobs queue: dispatched and not yet claimed,
        or running (its message is deleted when the run ends)."""
        stmt = select(func.count()).where(
            or_(
                and_(Execution.status == "pending", Execution.dispatched_at.is_not(None)),
                Execution.status == "running",
            )
        )
        return int(await self.connection.scalar(stmt) or 0)

    async def silent_since(self, older_than: datetime) -> Sequence[Execution]:
        """Running executions without a heartbeat since ``older_than``, locked (another
        replica's sweep skips them)."""
        stmt = (
            select(Execution)
            .where(Execution.status == "running", Execution.heartbeat_at < older_than)
            .with_for_update(skip_locked=True)
        )
        return (await self.connection.scalars(stmt)).all()

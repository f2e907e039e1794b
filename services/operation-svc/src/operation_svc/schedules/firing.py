"""One schedule's turn: what becomes of each of its due slots, in one transaction.

A slot is recorded once (``schedule_runs``, unique per schedule and slot) and fired through
the same path as ``POST /executions`` (``executions.intake``), as the schedule's owner,
whose access to the template is checked again each time. A replica that finds a slot
recorded already gives its whole turn up (``SlotTaken``): another one is ahead of it."""

from __future__ import annotations

import uuid
from datetime import datetime

from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.errors import Forbidden, ValidationFailed
from idp_common.unit_of_work import UnitOfWork, with_defaults
from operation_svc.executions.intake import (
    ScheduledSlot,
    plan_execution,
    template_to_run,
    write_new_executions,
)
from operation_svc.models import AuditEntry, Schedule, ScheduleRun
from operation_svc.schedules.metrics import record_fire, record_skip
from operation_svc.schedules.repository import ScheduleBoard
from operation_svc.schedules.slots import jittered

SCHEDULER = "system:scheduler"  # the actor of what the scheduler decides itself (pauses)
# Why a slot was skipped (the reason's first word; the label of the skips metric).
OVERLAP, QUEUE_FULL, MISSED, REFUSED = "overlap", "queue_full", "missed", "refused"


class SlotTaken(Exception):
    """Another replica recorded a slot of this turn first: this turn must be rolled back."""


def owner_of(schedule: Schedule) -> Principal:
    return Principal(
        schedule.owner_subject,
        schedule.tenant,
        frozenset(schedule.owner_roles),
        frozenset(schedule.owner_groups),
    )


class ScheduleTurn:
    def __init__(self, work: UnitOfWork, schedule: Schedule, now: datetime) -> None:
        self.work = work
        self.schedule = schedule
        self.now = now
        self.board = ScheduleBoard(work.session)

    async def offer(self, slot: datetime) -> bool:
        """A slot whose time has come, under the overlap policy. False: the schedule was
        paused (its owner may no longer run it)."""
        schedule = self.schedule
        if schedule.overlap_policy == "allow" or not await self.board.has_active_run(schedule.id):
            return await self.fire(slot)
        if schedule.overlap_policy == "queue_one" and schedule.queued_slot_at is None:
            await self.record(slot, "queued", "waiting for the active run to end")
            schedule.queued_slot_at = slot
        elif schedule.overlap_policy == "queue_one":
            await self.skip(slot, QUEUE_FULL, "a slot is queued already")
        else:
            await self.skip(slot, OVERLAP, "the previous run is still active")
        return True

    async def queued_may_fire(self) -> bool:
        """Whether a slot is queued and the run it waits for has ended."""
        schedule = self.schedule
        return schedule.queued_slot_at is not None and not await self.board.has_active_run(
            schedule.id
        )

    async def fire_queued(self) -> bool:
        """Fire the queued slot (the run it waited for has ended)."""
        slot = self.schedule.queued_slot_at
        assert slot is not None
        self.schedule.queued_slot_at = None
        return await self.fire(slot, queued=True)

    async def skip(self, slot: datetime, reason: str, detail: str, *, queued: bool = False) -> None:
        await self.record(slot, "skipped", f"{reason}: {detail}", queued=queued)
        record_skip(self.work.session, reason)

    async def fire(self, slot: datetime, *, queued: bool = False) -> bool:
        schedule, session = self.schedule, self.work.session
        try:
            target = await template_to_run(session, schedule.tenant, str(schedule.template_id))
            new = plan_execution(
                target,
                owner_of(schedule),
                schedule.parameters,
                None,  # secret values were sealed when the schedule was saved
                scheduled=ScheduledSlot(schedule.id, slot),
            )
        except (Forbidden, ValidationFailed) as refusal:
            reasons = [refusal.detail] + [
                f"{error['field']}: {error['message']}" for error in refusal.errors or []
            ]
            await self.pause("; ".join(reasons))
            await self.skip(slot, REFUSED, schedule.paused_reason or "", queued=queued)
            return False
        await write_new_executions(self.work, [new])
        await session.flush()  # the execution first: the run refers to it
        await self.record(slot, "fired", execution_id=new.execution.id, queued=queued)
        lateness = self.now - jittered(slot, schedule.id, schedule.jitter_seconds)
        record_fire(session, lateness.total_seconds())
        return True

    async def record(
        self,
        slot: datetime,
        outcome: str,
        reason: str | None = None,
        *,
        execution_id: uuid.UUID | None = None,
        queued: bool = False,
    ) -> None:
        """What became of ``slot``; a queued slot's run is updated rather than added."""
        schedule = self.schedule
        if queued:
            settled = await self.board.settle_queued(
                schedule.id, slot, outcome=outcome, reason=reason, execution_id=execution_id
            )
        else:
            run = ScheduleRun(
                tenant=schedule.tenant,
                schedule_id=schedule.id,
                slot_at=slot,
                outcome=outcome,
                reason=reason,
                execution_id=execution_id,
            )
            settled = await self.board.claim_slot(with_defaults(run))
        if not settled:
            raise SlotTaken(f"schedule {schedule.id}, slot {slot.isoformat()}")

    async def pause(self, why: str) -> None:
        """Pause the schedule: its owner may no longer run its target (audited)."""
        schedule = self.schedule
        schedule.is_paused = True
        schedule.paused_reason = f"{schedule.owner_subject} may no longer run it: {why}"
        schedule.queued_slot_at = None
        record_audit(
            self.work.session,
            AuditEntry,
            SCHEDULER,
            "schedule.pause",
            schedule.id,
            tenant=schedule.tenant,
            changes={"reason": schedule.paused_reason},
        )

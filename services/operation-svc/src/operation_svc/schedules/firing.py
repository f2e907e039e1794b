"""One schedule's turn: what becomes of each of its due slots, in one transaction.

A slot is recorded once (``schedule_runs``, unique per schedule and slot) and fired through
the same path as ``POST /executions`` (``executions.intake``), as the schedule's owner,
whose access to the template is checked again each time. A replica that finds a slot
recorded already gives its whole turn up (``SlotTaken``): another one is ahead of it.

A panel schedule's slot is submitted to panel-svc (``panels``) outside the transaction: a
turn that reaches such a slot without panel-svc's answer gives up (``SubmissionNeeded``,
nothing written), the scheduler asks panel-svc, and the turn is taken again with the answer
(SQLite's single write turn is never held across a call to another service)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime

from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.errors import Forbidden, ValidationFailed
from idp_common.unit_of_work import UnitOfWork, with_defaults
from operation_svc.api_keys.service import withdrawn_key
from operation_svc.executions.intake import (
    ScheduledSlot,
    plan_execution,
    template_to_run,
    write_new_executions,
)
from operation_svc.models import AuditEntry, Schedule, ScheduleRun
from operation_svc.schedules.metrics import record_fire, record_skip
from operation_svc.schedules.panels import (
    PanelAnswer,
    PanelFire,
    Refused,
    Submitted,
)
from operation_svc.schedules.repository import ScheduleBoard
from operation_svc.schedules.slots import jittered

logger = logging.getLogger(__name__)

SCHEDULER = "system:scheduler"  # the actor of what the scheduler decides itself (pauses)
# Why a slot was skipped (the reason's first word; the label of the skips metric).
OVERLAP, QUEUE_FULL, MISSED, REFUSED = "overlap", "queue_full", "missed", "refused"


class SlotTaken(Exception):
    """Another replica recorded a slot of this turn first: this turn must be rolled back."""


class SubmissionNeeded(Exception):
    """A panel schedule's slot is to fire and panel-svc has not been asked yet: the turn is
    rolled back, panel-svc asked (no transaction open), and the turn taken again."""

    def __init__(self, fire: PanelFire) -> None:
        super().__init__(f"schedule {fire.schedule_id}, slot {fire.slot.isoformat()}")
        self.fire = fire


def owner_of(schedule: Schedule) -> Principal:
    return Principal(
        schedule.owner_subject,
        schedule.tenant,
        frozenset(schedule.owner_roles),
        frozenset(schedule.owner_groups),
    )


class ScheduleTurn:
    def __init__(
        self,
        work: UnitOfWork,
        schedule: Schedule,
        now: datetime,
        answers: Mapping[datetime, PanelAnswer] | None = None,
    ) -> None:
        self.work = work
        self.schedule = schedule
        self.now = now
        self.board = ScheduleBoard(work.session)
        self.answers = answers or {}  # panel-svc's, per slot, asked before this turn
        self.recorded: set[datetime] = set()  # the slots of answers this turn recorded

    async def offer(self, slot: datetime) -> bool:
        """A slot whose time has come, under the overlap policy. False: the turn ends here
        (the schedule was paused: its owner may no longer run it; or panel-svc could not
        take a panel schedule's slot, which waits for the next pass)."""
        schedule = self.schedule
        if schedule.overlap_policy == "allow" or not await self.board.has_active_run(schedule):
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
        return schedule.queued_slot_at is not None and not await self.board.has_active_run(schedule)

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
        """Fire ``slot``. False: the turn ends here (the schedule was paused, or panel-svc
        could not take the slot, which then waits for the next pass)."""
        schedule, session = self.schedule, self.work.session
        owner = schedule.owner_subject
        if withdrawn := await withdrawn_key(session, schedule.tenant, owner, self.now):
            return await self.refused(slot, withdrawn, queued=queued)
        if schedule.panel_id is not None:
            return await self.submit(slot, queued=queued)
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
            return await self.refused(slot, "; ".join(reasons), queued=queued)
        await write_new_executions(self.work, [new])
        await session.flush()  # the execution first: the run refers to it
        await self.record(slot, "fired", execution_id=new.execution.id, queued=queued)
        lateness = self.now - jittered(slot, schedule.id, schedule.jitter_seconds)
        record_fire(session, lateness.total_seconds())
        return True

    async def submit(self, slot: datetime, *, queued: bool) -> bool:
        """A panel schedule's slot, by panel-svc's answer (asked before this turn)."""
        schedule = self.schedule
        answer = self.answers.get(slot)
        if answer is None:
            assert schedule.panel_id is not None
            raise SubmissionNeeded(
                PanelFire(
                    schedule.id, slot, schedule.panel_id, schedule.data or {}, owner_of(schedule)
                )
            )
        if isinstance(answer, Refused):
            return await self.refused(slot, answer.reason, queued=queued)
        if not isinstance(answer, Submitted):  # unreachable: the slot is tried again
            logger.warning(
                "schedule %s: slot %s waits for panel-svc: %s",
                schedule.id,
                slot.isoformat(),
                answer.reason,
            )
            if queued:
                schedule.queued_slot_at = slot
            else:
                schedule.next_slot_at = slot
            return False
        await self.record(slot, "fired", submission_id=answer.submission_id, queued=queued)
        self.recorded.add(slot)
        lateness = self.now - jittered(slot, schedule.id, schedule.jitter_seconds)
        record_fire(self.work.session, lateness.total_seconds())
        return True

    async def record_unused_submissions(self) -> None:
        """Record the submissions panel-svc made for this schedule that this turn did not
        (paused, deleted or retimed while panel-svc was asked): they run all the same."""
        for slot, answer in self.answers.items():
            if isinstance(answer, Submitted) and slot not in self.recorded:
                await self.board.record_submission(
                    self.schedule,
                    slot,
                    answer.submission_id,
                    "submitted while the schedule was paused, deleted or changed",
                )

    async def record(
        self,
        slot: datetime,
        outcome: str,
        reason: str | None = None,
        *,
        execution_id: uuid.UUID | None = None,
        submission_id: uuid.UUID | None = None,
        queued: bool = False,
    ) -> None:
        """What became of ``slot``; a queued slot's run is updated rather than added."""
        schedule = self.schedule
        if queued:
            settled = await self.board.settle_queued(
                schedule.id,
                slot,
                outcome=outcome,
                reason=reason,
                execution_id=execution_id,
                submission_id=submission_id,
            )
        else:
            run = ScheduleRun(
                tenant=schedule.tenant,
                schedule_id=schedule.id,
                slot_at=slot,
                outcome=outcome,
                reason=reason,
                execution_id=execution_id,
                submission_id=submission_id,
            )
            settled = await self.board.claim_slot(with_defaults(run))
        if not settled:
            raise SlotTaken(f"schedule {schedule.id}, slot {slot.isoformat()}")

    async def refused(self, slot: datetime, why: str, *, queued: bool) -> bool:
        """Pause the schedule, its owner may no longer run its target (audited), and skip
        ``slot``; False: the turn ends here."""
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
        await self.skip(slot, REFUSED, schedule.paused_reason, queued=queued)
        return False

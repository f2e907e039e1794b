"""The scheduler: a loop in every replica that fires the slots whose time has come.

Each pass reads the schedules with a due slot (``next_slot_at``) or a queued one and gives
each a turn in its own transaction (``firing.ScheduleTurn``). Replicas do not coordinate:
two that take the same slot both try to record it, the unique (schedule, slot) of
``schedule_runs`` (and of the executions) lets one commit, and the other's turn is rolled
back whole. A restart loses nothing: the slots are computed from the schedule and what was
recorded, never from the time the loop slept.

Slots found more than ``misfire_grace`` past their fire time were missed (the platform was
down, or the schedule's turns failed): the misfire policy ``skip`` records them all as
skipped, ``run_once`` fires the latest and skips the others. At most ``MAX_RECORDED_MISSES``
missed slots are recorded one by one; an outage longer than that jumps to its latest slot.

A panel schedule's slot is submitted to panel-svc between two attempts of its turn
(``firing.SubmissionNeeded``), never inside one: the turn gives up, panel-svc is asked, and
the turn is taken again with the answer; a turn that reaches several such slots asks for
one more each time.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prometheus_client import Counter
from sqlalchemy.exc import IntegrityError

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.db import Database
from idp_common.loops import PeriodicLoop
from operation_svc.models import Schedule
from operation_svc.schedules.firing import MISSED, ScheduleTurn, SlotTaken, SubmissionNeeded
from operation_svc.schedules.panels import PanelAnswer, PanelClient
from operation_svc.schedules.repository import ScheduleBoard, ScheduleBusy
from operation_svc.schedules.slots import TICK, Timing, jittered, timezone_named

logger = logging.getLogger(__name__)
TAKEN = Counter(
    "idp_schedule_turns_taken_total",
    "Turns given up because another replica was taking them, or recorded one of their slots first.",
)
BATCH = 100  # schedules given a turn in one pass at most (the next pass takes the rest)
MAX_RECORDED_MISSES = 50
MAX_SLOTS_PER_TURN = 50  # slots on time in one turn (more only when passes stall)
# Attempts of one turn: one more panel-svc answer each (the queued slot, a missed one fired
# by run_once, the slots on time).
MAX_ATTEMPTS = MAX_SLOTS_PER_TURN + 3


def timing_of(schedule: Schedule) -> Timing:
    timezone = timezone_named(schedule.timezone)
    assert timezone is not None, "checked when saved"
    interval = schedule.interval_seconds
    return Timing(
        cron=schedule.cron,
        interval=timedelta(seconds=interval) if interval else None,
        timezone=timezone,
        anchor=schedule.starts_at or schedule.created_at,
        starts_at=schedule.starts_at,
        ends_at=schedule.ends_at,
    )


@dataclass
class DueSlots:
    missed: list[datetime] = field(default_factory=list)
    on_time: list[datetime] = field(default_factory=list)
    next_slot: datetime | None = None


def due_slots(
    timing: Timing,
    first: datetime | None,
    now: datetime,
    grace: timedelta,
    fire_at: Callable[[datetime], datetime],
) -> DueSlots:
    """The slots from ``first`` whose fire time has come by ``now``: missed (more than
    ``grace`` ago) or on time; and the first slot after them."""
    due = DueSlots()
    cut_off = now - grace
    slot = first
    while slot is not None and fire_at(slot) < cut_off:
        if len(due.missed) == MAX_RECORDED_MISSES:
            latest = timing.latest_slot(cut_off)
            # Jitter may delay the latest slot before the cut-off past it: it is on time,
            # and the one before it is the latest missed (else the slots between the
            # recorded misses and it would all be fired as if on time).
            while latest is not None and latest > due.missed[-1] and fire_at(latest) >= cut_off:
                latest = timing.latest_slot(latest - TICK)
            if latest is not None and latest > due.missed[-1]:
                due.missed.append(latest)
                slot = timing.next_slot(latest)
            break
        due.missed.append(slot)
        slot = timing.next_slot(slot)
    while slot is not None and fire_at(slot) <= now and len(due.on_time) < MAX_SLOTS_PER_TURN:
        due.on_time.append(slot)
        slot = timing.next_slot(slot)
    due.next_slot = slot
    return due


class Scheduler(PeriodicLoop):
    def __init__(
        self,
        db: Database,
        *,
        poll_seconds: float,
        misfire_grace_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
        panels: PanelClient | None = None,
    ) -> None:
        super().__init__(poll_seconds)
        self.db = db
        self.grace = timedelta(seconds=misfire_grace_seconds)
        self.clock = clock
        self.panels = panels  # panel schedules' target; None: they wait (tests of templates)

    async def run_once(self) -> None:
        now = self.clock.now()
        async with self.db.snapshot() as session:
            due = await ScheduleBoard(session).due(now, BATCH)
        for schedule_id in due:
            await self.take_turn(schedule_id, now)

    async def take_turn(self, schedule_id: uuid.UUID, now: datetime) -> None:
        """Handle the schedule's due slots, unless another replica is ahead."""
        answers: dict[datetime, PanelAnswer] = {}
        for _ in range(MAX_ATTEMPTS):
            try:
                async with self.db.unit_of_work() as work:
                    schedule = await ScheduleBoard(work.session).take(schedule_id)
                    if schedule is None:
                        return
                    turn = ScheduleTurn(work, schedule, now, answers)
                    if not (schedule.is_paused or schedule.is_deleted):
                        await self._turn(turn)
                    await turn.record_unused_submissions()
                return
            except SubmissionNeeded as needed:  # rolled back: nothing was written
                if self.panels is None:
                    logger.error("schedule %s: no panel-svc client to submit to", schedule_id)
                    return
                answers[needed.fire.slot] = await self.panels.submit(needed.fire)
            except (ScheduleBusy, SlotTaken, IntegrityError):
                TAKEN.inc()
                logger.debug("schedule %s: another replica took its slot", schedule_id)
                return
            except Exception:
                # One schedule's failure must not hold up the others; its slots wait (and
                # are decided by the misfire policy if it keeps failing).
                logger.exception("schedule %s: its turn failed", schedule_id)
                return
        logger.warning("schedule %s: more slots than one turn takes; the rest wait", schedule_id)

    async def _turn(self, turn: ScheduleTurn) -> None:
        schedule = turn.schedule
        if await turn.queued_may_fire() and not await turn.fire_queued():
            return
        due = due_slots(
            timing_of(schedule),
            schedule.next_slot_at,
            turn.now,
            self.grace,
            lambda slot: jittered(slot, schedule.id, schedule.jitter_seconds),
        )
        schedule.next_slot_at = due.next_slot
        to_fire = list(due.on_time)
        missed = due.missed
        if missed and schedule.misfire_policy == "run_once":
            to_fire.insert(0, missed.pop())
        for slot in missed:
            await turn.skip(slot, MISSED, "the platform was not running at its time")
        for slot in to_fire:
            if not await turn.offer(slot):
                return

"""Marks executions whose worker stopped heartbeating as ``lost`` (a background loop).

Silence counts only while heartbeats could have been recorded. A heartbeat is written in a
transaction like any other: when writes stall (a slow disk, a long transaction, a busy
event loop) it waits, the worker sends no other one meanwhile, and the sweep waits too. So
each sweep's cut-off is moved back by how late that sweep comes after the one before: a
stall longer than ``lost_after`` would otherwise declare lost every execution whose
heartbeat was queued behind it, and their workers would then kill them. So is it by as much
as the wall clock stepped forward (NTP correcting it, a host resumed), for ``lost_after``
after the sweep that saw the step: the heartbeats are stamped by that clock, and every one
written before the step looks that much older until each execution has had ``lost_after`` to
send a new one."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.db import Database
from idp_common.loops import PeriodicLoop
from operation_svc.executions.worker_protocol import mark_lost

logger = logging.getLogger(__name__)


class LostExecutionSweeper(PeriodicLoop):
    def __init__(
        self,
        db: Database,
        *,
        lost_after_seconds: float,
        interval_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        # Heartbeats cannot reach a service that is down: after a start, listen for
        # lost_after before judging (a restart after an outage would otherwise declare every
        # running execution lost).
        # A full interval between sweeps: heartbeats queued behind a stall land before the
        # next one.
        super().__init__(interval_seconds, first_delay_seconds=lost_after_seconds, fixed_delay=True)
        self.db = db
        self.clock = clock
        self.lost_after = timedelta(seconds=lost_after_seconds)
        self._due: float | None = None  # when the next sweep should come (clock.monotonic)
        self._swept: tuple[float, datetime] | None = None  # the last sweep's monotonic, wall
        self._steps: list[tuple[float, float]] = []  # (monotonic when seen, seconds forward)

    async def sweep(self, late_by: float = 0.0) -> int:
        older_than = self.clock.now() - self.lost_after - timedelta(seconds=late_by)
        async with self.db.transaction() as session:
            return await mark_lost(session, older_than)

    async def run(self, loops: int | None = None) -> None:
        # The first sweep is due lost_after from now: a stall before it counts too.
        self._due = self.clock.monotonic() + self.first_delay_seconds
        self._swept = (self.clock.monotonic(), self.clock.now())
        await super().run(loops)

    async def run_once(self) -> None:
        now, wall = self.clock.monotonic(), self.clock.now()
        late = 0.0 if self._due is None else now - self._due
        lost = await self.sweep(max(late, 0.0) + self._stepped_forward(now, wall))
        # Only once it has swept: a sweep that failed (the database down, so heartbeats
        # could not be recorded either) leaves the next one late by the outage.
        self._due = now + self.period_seconds
        self._swept = (now, wall)
        if lost:
            logger.warning("%d execution(s) lost their worker", lost)

    def _stepped_forward(self, now: float, wall: datetime) -> float:
        """Seconds the wall clock moved beyond the monotonic one in steps seen less than
        ``lost_after`` ago."""
        if self._swept is not None:
            swept_at, swept_wall = self._swept
            step = (wall - swept_wall).total_seconds() - (now - swept_at)
            if step > 0:
                self._steps.append((now, step))
        seen_since = now - self.lost_after.total_seconds()
        self._steps = [(seen, step) for seen, step in self._steps if seen > seen_since]
        return sum(step for _, step in self._steps)

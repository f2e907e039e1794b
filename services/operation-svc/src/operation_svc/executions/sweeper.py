"""Marks executions whose worker stopped heartbeating as ``lost`` (a background loop).

Silence counts only while heartbeats could have been recorded. A heartbeat is written in a
transaction like any other: when writes stall (a slow disk, a long transaction, a busy
event loop) it waits, the worker sends no other one meanwhile, and the sweep waits too. So
each sweep's cut-off is moved back by how late that sweep comes after the one before: a
stall longer than ``lost_after`` would otherwise declare lost every execution whose
heartbeat was queued behind it, and their workers would then kill them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import timedelta

from idp_common.db import Database, utcnow
from operation_svc.executions.service import mark_lost

logger = logging.getLogger(__name__)


class LostExecutionSweeper:
    def __init__(self, db: Database, *, lost_after_seconds: float, interval_seconds: float) -> None:
        self.db = db
        self.lost_after = timedelta(seconds=lost_after_seconds)
        self.interval_seconds = interval_seconds
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def sweep(self, late_by: float = 0.0) -> int:
        older_than = utcnow() - self.lost_after - timedelta(seconds=late_by)
        async with self.db.transaction() as session:
            return await mark_lost(session, older_than)

    async def run(self) -> None:
        # Heartbeats cannot reach a service that is down: after a start, listen for
        # lost_after before judging (a restart after an outage would otherwise declare every
        # running execution lost).
        await self._pause(self.lost_after.total_seconds())
        previous = time.monotonic()
        while not self._stopping.is_set():
            now = time.monotonic()
            late, previous = max(0.0, now - previous - self.interval_seconds), now
            try:
                if lost := await self.sweep(late):
                    logger.warning("%d execution(s) lost their worker", lost)
            except Exception:
                logger.exception("lost-execution sweep failed")
            await self._pause(self.interval_seconds)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

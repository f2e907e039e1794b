"""Marks executions whose worker stopped heartbeating as ``lost`` (a background loop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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

    async def sweep(self) -> int:
        async with self.db.transaction() as session:
            return await mark_lost(session, utcnow() - self.lost_after)

    async def run(self) -> None:
        # Heartbeats cannot reach a service that is down: silence means a worker is gone only
        # once this one has listened for lost_after. Otherwise a restart after an outage
        # would declare every running execution lost, and their workers would kill them.
        await self._pause(self.lost_after.total_seconds())
        while not self._stopping.is_set():
            try:
                if lost := await self.sweep():
                    logger.warning("%d execution(s) lost their worker", lost)
            except Exception:
                logger.exception("lost-execution sweep failed")
            await self._pause(self.interval_seconds)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

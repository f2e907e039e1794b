"""Ends ``expired`` the runs nobody approved within their policy's window (a background
loop; ``clock`` decides what "now" is, so tests move time instead of waiting)."""

from __future__ import annotations

import logging

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.db import Database
from idp_common.loops import PeriodicLoop
from operation_svc.approvals.service import expire_due

logger = logging.getLogger(__name__)


class ApprovalExpirySweeper(PeriodicLoop):
    def __init__(
        self, db: Database, *, interval_seconds: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__(interval_seconds, fixed_delay=True)
        self.db = db
        self.clock = clock

    async def sweep(self) -> int:
        async with self.db.transaction() as session:
            return await expire_due(session, self.clock.now())

    async def run_once(self) -> None:
        if expired := await self.sweep():
            logger.info("%d execution(s) expired awaiting approval", expired)

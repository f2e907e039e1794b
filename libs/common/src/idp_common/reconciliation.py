"""Reconcilers: send again what was committed but never acted on.

The database is the source of truth; a queue message only delivers it. A message the
broker lost (a crash, SQS's retention, a purged queue) leaves its row waiting: each owning
service looks for rows waiting longer than ``resend_after`` and sends their message again,
and its consumers are idempotent, so one sent twice is acted on once."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.db import Database
from idp_common.loops import PeriodicLoop
from idp_common.resent_messages import RESENT

logger = logging.getLogger(__name__)
# Rows whose message is sent again in one pass at most (the next pass takes the rest).
BATCH = 100


class Reconciler(PeriodicLoop):
    """Subclasses name the ``kind`` of message and implement ``resend`` (one pass's rows,
    locked so another replica skips them, their messages added to the outbox)."""

    kind: str

    def __init__(
        self, db: Database, *, resend_after_seconds: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        super().__init__(min(resend_after_seconds / 3, 10.0), fixed_delay=True)
        self.db = db
        self.resend_after = timedelta(seconds=resend_after_seconds)
        self.clock = clock

    async def resend(self, session: AsyncSession, waiting_since: datetime, limit: int) -> int:
        raise NotImplementedError

    async def missing(self) -> int:
        """How many messages may be missing at most: a pass sends no more again than this
        (``BATCH`` unless a subclass can count them)."""
        return BATCH

    async def run_once(self) -> None:
        if (limit := min(await self.missing(), BATCH)) <= 0:
            return
        async with self.db.transaction() as session:
            resent = await self.resend(session, self.clock.now() - self.resend_after, limit)
        if resent:
            RESENT.labels(self.kind).inc(resent)
            logger.warning(
                "%d %s message(s) not acted on for %s: sent again",
                resent,
                self.kind,
                self.resend_after,
            )

"""Jobs no worker claimed for ``redispatch_after`` (the queue lost them) are sent again
(``idp_common.reconciliation``); the claim keeps a job sent twice from running twice.

Waiting that long is no sign of loss when the workers are busy: under a backlog every job
waits past it in the queue, and each pass sent another hundred copies, each a claim call of
a worker's, and raised the resent-messages alert. A pass now sends again at most as many
as the jobs queue lacks messages for: the jobs not yet claimed and those running (a run's
message stays in flight until it ends) less the messages the broker counts."""

from __future__ import annotations

import logging
from datetime import datetime

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.db import Database
from idp_common.messaging.dead_letters import message_counts
from idp_common.messaging.sqs import QueueDirectory
from idp_common.messaging.topology import OPERATION_JOBS
from idp_common.reconciliation import BATCH, Reconciler
from operation_svc.executions.dispatch import send_job
from operation_svc.executions.repository import SystemExecutions

logger = logging.getLogger(__name__)


class JobReconciler(Reconciler):
    kind = "job"

    def __init__(
        self,
        db: Database,
        queues: QueueDirectory,
        *,
        resend_after_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(db, resend_after_seconds=resend_after_seconds, clock=clock)
        self.queues = queues

    async def missing(self) -> int:
        try:
            queued = sum((await message_counts(self.queues, OPERATION_JOBS)).values())
        except (BotoCoreError, ClientError, OSError) as exc:
            logger.info("the jobs queue could not be counted (%r): sending again as due", exc)
            return BATCH
        async with self.db.snapshot() as session:
            owed = await SystemExecutions(session).owed_a_job_message()
        return owed - queued

    async def resend(self, session: AsyncSession, waiting_since: datetime, limit: int) -> int:
        unclaimed = await SystemExecutions(session).dispatched_unclaimed(waiting_since, limit)
        for execution in unclaimed:
            await send_job(session, execution)
        return len(unclaimed)

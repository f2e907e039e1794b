"""Jobs no worker claimed for ``redispatch_after`` (the queue lost them) are sent again
(``idp_common.reconciliation``); the claim keeps a job sent twice from running twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.reconciliation import Reconciler
from operation_svc.executions.dispatch import send_job
from operation_svc.executions.repository import SystemExecutions


class JobReconciler(Reconciler):
    kind = "job"

    async def resend(self, session: AsyncSession, waiting_since: datetime, limit: int) -> int:
        unclaimed = await SystemExecutions(session).dispatched_unclaimed(waiting_since, limit)
        for execution in unclaimed:
            await send_job(session, execution)
        return len(unclaimed)

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from idp_common.idempotency import IdempotentRepository
from operation_svc.models import Execution, ExecutionLog


class ExecutionRepository(IdempotentRepository[Execution]):
    model = Execution

    async def logs_after(
        self, execution_id: uuid.UUID, after_seq: int, limit: int
    ) -> Sequence[ExecutionLog]:
        stmt = (
            select(ExecutionLog)
            .where(ExecutionLog.execution_id == execution_id, ExecutionLog.seq > after_seq)
            .order_by(ExecutionLog.seq)
            .limit(limit)
        )
        return (await self.session.scalars(stmt)).all()

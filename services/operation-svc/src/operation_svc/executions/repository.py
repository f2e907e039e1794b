from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from idp_common.repository import TenantRepository
from operation_svc.models import Execution, ExecutionLog


class ExecutionRepository(TenantRepository[Execution]):
    model = Execution

    async def by_idempotency_key(self, key: str) -> Execution | None:
        stmt = self.scoped().where(Execution.idempotency_key == key)
        return (await self.session.scalars(stmt)).one_or_none()

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

"""Queries of approvals: the tenant's decisions and runs awaiting one, and the cross-tenant
query of the expiry sweeper (``ExpiredApprovals``)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.repository import CrossTenantRepository, TenantRepository
from operation_svc.models import Execution, ExecutionApproval


class ApprovalRepository(TenantRepository[ExecutionApproval]):
    model = ExecutionApproval

    async def of_executions(
        self, execution_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[ExecutionApproval]]:
        """The decisions on each of ``execution_ids``, oldest first."""
        stmt = (
            self.scoped()
            .where(ExecutionApproval.execution_id.in_(execution_ids))
            .order_by(ExecutionApproval.created_at)
        )
        found: dict[uuid.UUID, list[ExecutionApproval]] = defaultdict(list)
        for approval in await self.session.scalars(stmt):
            found[approval.execution_id].append(approval)
        return found


class AwaitingApproval(TenantRepository[Execution]):
    model = Execution

    async def oldest(
        self, limit: int, after: tuple[datetime, uuid.UUID] | None = None
    ) -> Sequence[Execution]:
        """The tenant's executions awaiting approval, oldest first (after ``after``, the
        creation time and id of the last one of the batch before)."""
        stmt = (
            self.scoped()
            .where(Execution.status == "awaiting_approval")
            .order_by(Execution.created_at, Execution.id)
            .limit(limit)
        )
        if after is not None:
            created_at, execution_id = after
            stmt = stmt.where(
                or_(
                    Execution.created_at > created_at,
                    and_(Execution.created_at == created_at, Execution.id > execution_id),
                )
            )
        return (await self.session.scalars(stmt)).all()


class ExpiredApprovals(CrossTenantRepository[AsyncSession]):
    """Cross-tenant: the expiry sweeper ends the runs of every tenant whose approval window
    has passed (it acts for the platform, not for a caller)."""

    async def due(self, now: datetime, limit: int) -> Sequence[Execution]:
        """Executions still awaiting approval whose window ended before ``now``, locked
        (another replica's sweep skips them)."""
        stmt = (
            select(Execution)
            .where(
                Execution.status == "awaiting_approval",
                Execution.approval_expires_at <= now,
            )
            .order_by(Execution.approval_expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return (await self.connection.scalars(stmt)).all()

"""What is told when a run asks for approval and when someone decides on it: the one place
where ``operation.approval.requested`` and ``operation.approval.decided`` are to be emitted
(in the same transaction, through the outbox, once the outbound events exist). Every path
that creates an execution awaiting approval calls ``approval_requested``; every decision
calls ``approval_decided``."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from operation_svc.models import Execution, ExecutionApproval

logger = logging.getLogger(__name__)


def approval_requested(session: AsyncSession, execution: Execution) -> None:
    """``execution`` was created awaiting approval (its policy in ``execution.approval``)."""
    logger.info(
        "approval requested",
        extra={"execution_id": str(execution.id), "template": execution.template_slug},
    )


def approval_decided(
    session: AsyncSession, execution: Execution, approval: ExecutionApproval
) -> None:
    """``approval`` was recorded on ``execution`` (its status already follows from it)."""
    logger.info(
        "approval decided",
        extra={
            "execution_id": str(execution.id),
            "decision": approval.decision,
            "status": execution.status,
        },
    )

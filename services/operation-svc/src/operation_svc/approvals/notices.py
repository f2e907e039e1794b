"""What is told when a run asks for approval and when someone decides on it:
``operation.approval.requested`` and ``operation.approval.decided``, to the tenant's
webhooks, in the transaction of the change. Every path that creates an execution awaiting
approval calls ``approval_requested``; every decision calls ``approval_decided``."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from operation_svc.models import Execution, ExecutionApproval
from operation_svc.webhooks.events import APPROVAL_DECIDED, APPROVAL_REQUESTED, notify_about


def _waiting(execution: Execution) -> dict[str, Any]:
    expires = execution.approval_expires_at
    return {
        "approval": execution.approval,
        "approval_expires_at": expires.isoformat() if expires else None,
        "submitted_by": execution.submitted_by,
    }


def approval_requested(session: AsyncSession, execution: Execution) -> None:
    """``execution`` was created awaiting approval (its policy in ``execution.approval``)."""
    notify_about(session, execution, APPROVAL_REQUESTED, str(execution.id), _waiting(execution))


def approval_decided(
    session: AsyncSession, execution: Execution, approval: ExecutionApproval
) -> None:
    """``approval`` was recorded on ``execution`` (its status already follows from it)."""
    decision = {
        "decision": approval.decision,
        "approver": approval.approver,
        "comment": approval.comment,
    }
    about = f"{execution.id}:{approval.approver}"
    notify_about(session, execution, APPROVAL_DECIDED, about, _waiting(execution) | decision)

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from idp_common.auth import Operator
from idp_common.dependencies import SessionDep
from operation_svc.approvals import service
from operation_svc.approvals.schemas import ApprovalOut, DecisionIn, DecisionOut, PendingApprovals
from operation_svc.executions.schemas import ExecutionOut

router = APIRouter(prefix="/api/v1", tags=["approvals"])


@router.post("/executions/{execution_id}/approvals")
async def decide(
    execution_id: uuid.UUID, data: DecisionIn, session: SessionDep, principal: Operator
) -> DecisionOut:
    """Approve or reject a run awaiting approval. Enough distinct approvals queue it; one
    rejection ends it ``rejected``. Each principal decides once (a second decision is a
    409); its requester may not approve it unless the policy allows self-approval."""
    decided = await service.decide(session, principal, execution_id, data)
    return DecisionOut(
        execution=ExecutionOut.model_validate(decided.execution),
        approvals=[ApprovalOut.model_validate(each) for each in decided.approvals],
        approvals_required=decided.policy.required,
    )


@router.get("/approvals")
async def pending_approvals(
    session: SessionDep,
    principal: Operator,
    status: Annotated[
        Literal["pending"], Query(description="Only runs still awaiting approval.")
    ] = "pending",
) -> PendingApprovals:
    """The runs awaiting approval that the caller may decide on and has not yet, oldest
    first, each as it will run (rendered argv or request; secrets as ***)."""
    return PendingApprovals(items=await service.decidable(session, principal))

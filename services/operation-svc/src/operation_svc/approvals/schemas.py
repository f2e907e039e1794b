from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from idp_common.schemas import ResponseModel, ShownRequest, StrictModel
from operation_svc.executions.schemas import ExecutionOut


class DecisionIn(StrictModel):
    decision: Literal["approve", "reject"]
    comment: Annotated[str, Field(max_length=2000)] = ""


class ApprovalOut(ResponseModel):
    approver: str
    decision: str
    comment: str
    created_at: datetime


class DecisionOut(ResponseModel):
    execution: ExecutionOut
    approvals: list[ApprovalOut] = Field(description="Every decision on it so far, oldest first.")
    approvals_required: int


class PendingApprovalOut(ResponseModel):
    """A run the caller may decide on, as it will run: the rendered argv (or HTTP request)
    and environment, secrets as ***."""

    execution_id: uuid.UUID
    template_slug: str
    template_version: int | None
    submission_id: uuid.UUID | None
    submitted_by: str
    requested_at: datetime
    expires_at: datetime | None
    approvals_required: int
    approvals: list[ApprovalOut]
    argv: list[str] | None
    http_request: ShownRequest | None
    env: dict[str, str]
    parameters: dict[str, Any]


class PendingApprovals(ResponseModel):
    items: list[PendingApprovalOut]

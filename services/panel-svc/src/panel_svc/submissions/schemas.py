from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from idp_common.schemas import ResponseModel, StrictModel


class SubmissionIn(StrictModel):
    data: Annotated[dict[str, Any], Field(max_length=100)]


class AttemptOut(ResponseModel):
    attempt: int
    execution_id: uuid.UUID | None
    status: str
    exit_code: int | None
    error: str | None
    updated_at: datetime


class SubmissionOut(ResponseModel):
    id: uuid.UUID
    panel_id: uuid.UUID
    status: str
    execution_id: uuid.UUID | None
    attempt: int = Field(description="The attempt it mirrors: 1, or a later retry's number.")
    exit_code: int | None
    output: str | None
    error: str | None
    data: dict[str, Any]
    submitted_by: str
    created_at: datetime
    updated_at: datetime
    trace_id: str | None = Field(description="The trace it was created in (Jaeger's id).")


class SubmissionDetailOut(SubmissionOut):
    attempts: list[AttemptOut] = Field(
        description="Each execution of the submission, first to latest (retries included)."
    )

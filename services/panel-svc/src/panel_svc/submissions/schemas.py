from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from idp_common.schemas import ResponseModel, StrictModel


class SubmissionIn(StrictModel):
    data: Annotated[dict[str, Any], Field(max_length=100)]


class SubmissionOut(ResponseModel):
    id: uuid.UUID
    panel_id: uuid.UUID
    status: str
    execution_id: uuid.UUID | None
    exit_code: int | None
    output: str | None
    error: str | None
    data: dict[str, Any]
    submitted_by: str
    created_at: datetime
    updated_at: datetime

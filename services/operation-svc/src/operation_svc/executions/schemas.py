from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from idp_common.schemas import ResponseModel, StrictModel


class ExecutionOut(ResponseModel):
    id: uuid.UUID
    template_id: uuid.UUID | None
    template_slug: str
    template_version: int | None
    submission_id: uuid.UUID | None
    submitted_by: str
    parameters: dict[str, Any]
    argv: list[str] | None
    timeout_seconds: float
    status: str
    exit_code: int | None
    output: str | None
    error: str | None
    worker_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class LogLineOut(ResponseModel):
    seq: int
    stream: str
    message: str
    timestamp: datetime


class LogPage(ResponseModel):
    items: list[LogLineOut]
    next_after_seq: int | None


class ClaimIn(StrictModel):
    worker_id: Annotated[str, Field(min_length=1, max_length=200)]


class ClaimOut(ResponseModel):
    execution_id: uuid.UUID
    status: str
    worker_id: str | None

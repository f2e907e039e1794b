from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, computed_field, field_validator

from idp_common.events import ExecutionLog
from idp_common.schemas import ResponseModel, ShownRequest, StrictModel
from operation_svc.safety.parameters import masked


class ExecutionIn(StrictModel):
    template: Annotated[str, Field(min_length=1, max_length=100, description="Slug or id.")]
    parameters: Annotated[dict[str, Any], Field(max_length=50)] = {}


class ExecutionOut(ResponseModel):
    id: uuid.UUID
    template_id: uuid.UUID | None
    template_slug: str
    template_version: int | None
    submission_id: uuid.UUID | None
    retry_of: uuid.UUID | None
    attempt: int
    submitted_by: str
    parameters: dict[str, Any]
    argv: list[str] | None
    http_request: ShownRequest | None
    timeout_seconds: float
    status: str
    exit_code: int | None
    output: str | None
    output_bytes: int | None
    output_truncated: bool | None
    error: str | None
    worker_id: str | None
    created_at: datetime
    dispatched_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    cancel_requested_at: datetime | None
    approval: dict[str, Any] | None = Field(description="The approval policy it waits on.")
    approval_expires_at: datetime | None
    trace_id: str | None = Field(description="The trace it was created in (Jaeger's id).")
    schedule_id: uuid.UUID | None = Field(default=None, description="The schedule that fired it.")
    scheduled_for: datetime | None = Field(default=None, description="The slot it was fired for.")

    @field_validator("parameters")
    @classmethod
    def _secrets_masked(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        return masked(parameters)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


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
    execution_ids: Annotated[list[uuid.UUID], Field(min_length=1, max_length=100)]
    claim_id: uuid.UUID | None = Field(
        default=None,
        description="An id the worker gives this claim (a new UUID each): the same claim sent "
        "again, because its answer never reached the worker, is also given the executions "
        "it took the first time, which no other claim is.",
    )


class ClaimOut(ResponseModel):
    claimed: list[uuid.UUID] = Field(description="The executions this worker now holds.")


class HeartbeatIn(StrictModel):
    worker_id: Annotated[str, Field(min_length=1, max_length=200)]
    execution_ids: Annotated[list[uuid.UUID], Field(max_length=1000)]


class WorkerLogIn(ExecutionLog):
    """A log batch, as its event carries it, with the worker that holds the run."""

    worker_id: Annotated[str, Field(min_length=1, max_length=200)]


class RecordedOut(ResponseModel):
    recorded: bool = Field(
        description="False when the execution is unknown or not this worker's, or (for a "
        "finish) had already ended, its finish having come through the broker too: nothing "
        "was changed."
    )


class HeartbeatOut(ResponseModel):
    stop: list[uuid.UUID] = Field(
        description="Executions the worker must kill now: cancelled, or no longer its own."
    )
    ended: list[uuid.UUID] = Field(
        description="Executions no longer running under this worker (finished, or declared "
        "lost): a worker that has reported their end may forget them."
    )

"""The queue and dead-letter admin API's bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import Field, model_validator

from idp_common.schemas import ResponseModel, StrictModel, UtcTimestamp


class DeadLetterQueueOut(ResponseModel):
    name: str
    depth: int
    oldest_age_seconds: float | None = Field(
        description="Age of its oldest message (since it failed); null when empty."
    )


class QueueOut(ResponseModel):
    name: str
    visible: int
    in_flight: int
    delayed: int
    dead_letters: DeadLetterQueueOut


class DeadLetterFilter(StrictModel):
    """Messages matching every given criterion."""

    type: Annotated[str | None, Field(max_length=200)] = None
    tenant: Annotated[str | None, Field(max_length=64)] = None
    since: UtcTimestamp | None = Field(default=None, description="Failed at or after.")
    until: UtcTimestamp | None = Field(default=None, description="Failed before.")
    reason: Annotated[
        str | None, Field(max_length=200, description="Text in the failure reason.")
    ] = None


class DeadLetterOut(ResponseModel):
    message_id: str
    event_id: str | None
    type: str | None
    source: str | None
    subject: str | None
    time: datetime | None
    tenant: str | None
    trace_id: str | None
    receive_count: int
    failed_at: datetime
    reason: str | None
    data: Any = Field(description="The event's data, redacted; null when the body is no event.")
    body: str | None = Field(description="The raw body, only when it is no event (redacted).")


class Selection(StrictModel):
    """Exactly one of ``message_ids``, ``filter`` or ``all``."""

    message_ids: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=1000)] = (
        Field(default_factory=list)
    )
    filter: DeadLetterFilter | None = None
    all: bool = False
    dry_run: bool = False

    @model_validator(mode="after")
    def one_selector(self) -> Self:
        given = [bool(self.message_ids), self.filter is not None, self.all]
        if sum(given) != 1:
            raise ValueError("give exactly one of message_ids, filter or all")
        return self


class DeleteSelection(Selection):
    confirm: Literal[True] = Field(description="Required, true: a delete cannot be undone.")


class ActionOut(ResponseModel):
    """What a replay or a delete matched, and how far it got."""

    id: str
    action: Literal["replay", "delete"]
    queue: str
    status: Literal["dry_run", "running", "completed", "failed"]
    dry_run: bool
    matched: int
    done: int = Field(description="Messages moved back (replay) or deleted so far.")
    message_ids: list[str]
    error: str | None = None

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from idp_common.schemas import PatchModel, ResponseModel, StrictModel, UtcTimestamp
from operation_svc.safety.parameters import masked
from operation_svc.schedules.slots import cron_problem, timezone_named

OverlapPolicy = Literal["skip", "allow", "queue_one"]
MisfirePolicy = Literal["skip", "run_once"]


# Slots, their jitter and their local times are computed past a schedule's bounds (the
# first slot one tick before its start): far enough from the smallest and largest dates
# there are that none of them can overflow.
EARLIEST_BOUND = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_BOUND = datetime(9000, 1, 1, tzinfo=UTC)


def _within_the_bounds(moment: datetime) -> datetime:
    if not EARLIEST_BOUND <= moment < LATEST_BOUND:
        raise ValueError(
            f"must be from {EARLIEST_BOUND.date().isoformat()} and before "
            f"{LATEST_BOUND.date().isoformat()}"
        )
    return moment


ScheduleMoment = Annotated[UtcTimestamp, AfterValidator(_within_the_bounds)]


def _valid_cron(expression: str) -> str:
    if (problem := cron_problem(expression)) is not None:
        raise ValueError(problem)
    return expression


def _known_timezone(name: str) -> str:
    if timezone_named(name) is None:
        raise ValueError(f"unknown IANA timezone {name!r}")
    return name


CronExpression = Annotated[
    str,
    Field(min_length=1, max_length=200, examples=["*/5 * * * *"]),
    AfterValidator(_valid_cron),
]
TimeZoneName = Annotated[
    str,
    Field(min_length=1, max_length=64, examples=["Europe/Berlin"]),
    AfterValidator(_known_timezone),
]
IntervalSeconds = Annotated[
    int,
    Field(gt=0, le=366 * 86400, description="At least OPERATION_SCHEDULE_MIN_INTERVAL_SECONDS."),
]
JitterSeconds = Annotated[
    int, Field(ge=0, le=3600, description="Each fire is delayed by 0 to this many seconds.")
]
Parameters = Annotated[dict[str, Any], Field(max_length=50)]
FormData = Annotated[
    dict[str, Any],
    Field(max_length=100, description="The panel's form data (no secret field's value)."),
]
Name = Annotated[str, Field(max_length=200)]
Target = Annotated[str, Field(min_length=1, max_length=100, description="Slug or id.")]
PanelReference = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$"),
    Field(description="The panel's slug or id (at panel-svc)."),
]


class ScheduleIn(StrictModel):
    """What to run at each slot of ``cron`` (in ``timezone``) or every ``interval_seconds``:
    a template (``template``: its slug or id) with ``parameters``, or a panel (``panel``)
    with form ``data``, submitted through panel-svc's own intake (its validation, access
    rules and approval policy apply at each fire)."""

    template: Target | None = None
    parameters: Parameters | None = None
    panel: PanelReference | None = None
    data: FormData | None = None
    name: Name = ""
    cron: CronExpression | None = None
    interval_seconds: IntervalSeconds | None = None
    timezone: TimeZoneName = "UTC"
    starts_at: ScheduleMoment | None = None
    ends_at: ScheduleMoment | None = None
    is_paused: bool = False
    overlap_policy: OverlapPolicy = Field(
        default="skip",
        description="When the previous run is still active: skip the slot, allow it anyway, "
        "or queue_one (run it when the active one ends; at most one waits).",
    )
    misfire_policy: MisfirePolicy = Field(
        default="skip",
        description="Slots missed while the platform was down: skip them all, or run_once "
        "(the latest of them, once).",
    )
    jitter_seconds: JitterSeconds = 0


class ScheduleUpdate(PatchModel):
    """The fields to change. Changing what it runs (``template``, ``parameters``,
    ``panel``, ``data``) makes the caller the schedule's owner (it runs as them from then
    on); giving ``panel`` makes a template schedule a panel schedule, and the reverse.
    ``null`` clears ``cron`` or ``interval_seconds`` (when the other is set) and the
    bounds."""

    clearable = frozenset({"cron", "interval_seconds", "starts_at", "ends_at"})

    template: Target | None = None
    parameters: Parameters | None = None
    panel: PanelReference | None = None
    data: FormData | None = None
    name: Name | None = None
    cron: CronExpression | None = None
    interval_seconds: IntervalSeconds | None = None
    timezone: TimeZoneName | None = None
    starts_at: ScheduleMoment | None = None
    ends_at: ScheduleMoment | None = None
    overlap_policy: OverlapPolicy | None = None
    misfire_policy: MisfirePolicy | None = None
    jitter_seconds: JitterSeconds | None = None


class ScheduleOut(ResponseModel):
    id: uuid.UUID
    name: str
    template_id: uuid.UUID | None = Field(description="A template schedule's template.")
    template_slug: str | None
    parameters: dict[str, Any]
    panel_id: uuid.UUID | None = Field(description="A panel schedule's panel (at panel-svc).")
    panel_slug: str | None
    data: dict[str, Any] | None = Field(description="A panel schedule's form data.")
    cron: str | None
    interval_seconds: int | None
    timezone: str
    starts_at: datetime | None
    ends_at: datetime | None
    jitter_seconds: int
    overlap_policy: str
    misfire_policy: str
    is_paused: bool
    paused_reason: str | None
    owner_subject: str = Field(description="Whom it runs as (roles and groups recorded too).")
    owner_roles: list[str]
    owner_groups: list[str]
    next_slot_at: datetime | None = Field(description="The next slot; None when none is left.")
    queued_slot_at: datetime | None
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime

    @field_validator("parameters")
    @classmethod
    def _secrets_masked(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        return masked(parameters)


class ScheduleRunOut(ResponseModel):
    """One slot: ``fired`` (its execution and that execution's status now; a panel
    schedule's submission, and its latest execution once operation-svc has one), ``queued``
    (waiting for the active run) or ``skipped`` (``reason``)."""

    id: uuid.UUID
    slot_at: datetime
    outcome: str
    reason: str | None
    execution_id: uuid.UUID | None
    submission_id: uuid.UUID | None = Field(description="A panel schedule's submission.")
    execution_status: str | None = None
    created_at: datetime


class FireTime(ResponseModel):
    slot: datetime = Field(description="The slot, in UTC (a fire is at most jitter later).")
    at: datetime = Field(description="When it fires, in UTC.")
    local: datetime = Field(description="When it fires, in the schedule's timezone.")


class SchedulePreview(ResponseModel):
    timezone: str
    fires: list[FireTime] = Field(description="The next slots (before jitter).")

"""The documented event types and the schema of each one's ``data``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from idp_common.messaging.envelope import Event, InvalidEvent
from idp_common.schemas import GroupName, HumanRole, StrictModel, UtcTimestamp, error_location

SUBMISSION_CREATED = "panel.submission.created"
SUBMISSION_UPDATED = "panel.submission.updated"
EXECUTION_REQUESTED = "operation.execution.requested"
EXECUTION_LOG = "operation.execution.log"
EXECUTION_FINISHED = "operation.execution.finished"
# Other services' requests (see idp_common.inbound).
SUBMISSION_REQUESTED = "panel.submission.requested"
EXECUTION_REQUESTED_EXTERNAL = "operation.execution.requested.external"
# A reply's short output: the end of what the run printed (masked by the worker).
EXCERPT_CHARS = 1000

ExecutionStatus = Literal[
    "awaiting_approval",
    "pending",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "cancelled",
    "lost",
    "rejected",
    "expired",
]
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"succeeded", "failed", "timed_out", "cancelled", "lost", "rejected", "expired"}
)


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventData(Payload):
    """The ``data`` of one event type; ``event_type`` names it."""

    event_type: ClassVar[str]

    def to_event(
        self, *, source: str, tenant: str, subject: str, extensions: dict[str, str] | None = None
    ) -> Event:
        return Event(
            type=self.event_type,
            source=source,
            tenant=tenant,
            subject=subject,
            data=self.model_dump(mode="json"),
            extensions=extensions or {},
        )

    @classmethod
    def from_event(cls, event: Event) -> Self:
        """The event's data; a wrong type or a payload that does not fit can never succeed."""
        if event.type != cls.event_type:
            raise InvalidEvent(f"expected {cls.event_type}, got {event.type!r}")
        try:
            return cls.model_validate(event.data)
        except ValidationError as exc:
            # Without the input values: this reason is logged and shown with dead letters.
            problems = "; ".join(
                f"{'.'.join(map(str, error_location(error))) or 'data'}: {error['msg']}"
                for error in exc.errors(include_input=False, include_url=False)
            )
            raise InvalidEvent(f"{event.type} data does not match its schema: {problems}") from exc


class ApprovalPolicy(Payload):
    """Who must approve a run of a template (or of a panel's submissions) before it is
    queued: ``required`` distinct principals holding one of ``approver_roles`` or belonging
    to one of ``approver_groups``; the requester only if ``allow_self_approval``. A run not
    approved within ``expires_after_seconds`` of its request ends ``expired``."""

    required: int = Field(default=1, ge=1, le=20)
    approver_roles: list[HumanRole] = Field(default=[], max_length=3)
    approver_groups: list[GroupName] = Field(default=[], max_length=50)
    allow_self_approval: bool = False
    expires_after_seconds: int = Field(default=86400, gt=0, le=90 * 86400)

    @model_validator(mode="after")
    def _someone_may_approve(self) -> Self:
        if not self.approver_roles and not self.approver_groups:
            raise PydanticCustomError(
                "no_approvers",
                "name at least one of approver_roles or approver_groups",
                {"path": ["approver_roles"]},
            )
        return self


class SubmissionCreated(EventData):
    event_type = SUBMISSION_CREATED

    submission_id: uuid.UUID
    panel_id: uuid.UUID
    panel_slug: str
    operation_template: str
    submitted_by: str
    submitter_roles: list[str] = []
    submitter_groups: list[str] = []
    parameters: dict[str, Any]  # a secret field's value is sealed (idp_common.sealing)
    # The panel's approval policy: it applies when the template has none of its own.
    approval: ApprovalPolicy | None = None


class SecretBinding(Payload):
    """A reference the worker resolves at run time; the value never travels."""

    env_var: str
    provider: Literal["env", "file", "aws-secretsmanager"]
    key: str


class HttpCall(Payload):
    method: str
    url: str
    headers: dict[str, str]
    body: Any = None


class ExecutionRequested(EventData):
    """A job: exactly one of ``argv`` (a command) or ``http`` (a request) is set."""

    event_type = EXECUTION_REQUESTED

    execution_id: uuid.UUID
    template_slug: str
    argv: list[str] = []
    http: HttpCall | None = None
    env: dict[str, str]
    # Secret parameters, sealed to the workers' key (idp_common.sealing): the worker opens
    # them into the child's environment and masks them in everything it reports.
    sealed_env: dict[str, str] = {}
    secrets: list[SecretBinding] = []
    timeout_seconds: float = Field(gt=0)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if bool(self.argv) == (self.http is not None):
            raise ValueError("a job is either a command (argv) or an HTTP call")
        return self


LogStream = Literal["stdout", "stderr", "system"]


def storable(text: str) -> str:
    """Text from outside (what a command printed, what a webhook receiver answered) as it
    can be stored: NUL, which PostgreSQL text cannot hold (the row was never written),
    becomes U+FFFD, as invalid UTF-8 does."""
    return text.replace("\x00", "\ufffd")


StorableText = Annotated[str, AfterValidator(storable)]


def printable(text: str) -> str:
    """``text`` as a log line, a trace and a dead letter's reason can carry it: what is not
    printable (a control character, a lone surrogate, which no UTF-8 encoder takes, U+FFFF,
    which SQS refuses in an attribute) as its escape, ``\\x01``."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


# A log line's seq, an exit code and a run's output counts are 32-bit integer columns: a
# worker's report with more (or a time no column holds) was a 500 at every attempt.
INT32_MAX = 2**31 - 1
Int32 = Annotated[int, Field(ge=-INT32_MAX - 1, le=INT32_MAX)]
Count32 = Annotated[int, Field(ge=0, le=INT32_MAX)]


class LogLine(Payload):
    seq: Count32
    stream: LogStream
    message: StorableText
    timestamp: UtcTimestamp


class ExecutionLog(EventData):
    event_type = EXECUTION_LOG

    execution_id: uuid.UUID
    lines: list[LogLine] = Field(min_length=1)


class ExecutionFinished(EventData):
    event_type = EXECUTION_FINISHED

    execution_id: uuid.UUID
    status: Literal["succeeded", "failed", "timed_out", "cancelled"]
    exit_code: Int32 | None
    duration_seconds: float
    output_excerpt: StorableText
    log_lines: Count32 = 0
    output_bytes: Count32 = 0
    output_truncated: bool = False
    error: StorableText | None = None
    worker_id: str
    last_lines: list[LogLine] = Field(
        default_factory=list,
        description="Lines no log event carried yet: a short run sends all its output here.",
    )


class SubmissionUpdated(EventData):
    event_type = SUBMISSION_UPDATED

    submission_id: uuid.UUID
    status: ExecutionStatus
    execution_id: uuid.UUID | None = None
    attempt: int = Field(default=1, ge=1)  # events sent before attempts were counted: 1
    exit_code: int | None = None
    output: str | None = None
    error: str | None = None


def excerpt(output: str | None) -> str | None:
    """The end of an output, at most ``EXCERPT_CHARS`` characters."""
    return output if output is None or len(output) <= EXCERPT_CHARS else output[-EXCERPT_CHARS:]


class SubmissionRequested(EventData, StrictModel):
    """Another service submits a panel's form, as ``POST /panels/{panel}/submissions`` would
    (consumed by panel-svc from ``panel-inbound-events``)."""

    event_type = SUBMISSION_REQUESTED

    panel: str = Field(min_length=1, max_length=100, description="The panel's id or slug.")
    data: dict[str, Any] = Field(max_length=100, description="The form's values, by field.")


class ExternalExecutionRequested(EventData, StrictModel):
    """Another service runs a template, as ``POST /executions`` would (consumed by
    operation-svc from ``operation-inbound-events``)."""

    event_type = EXECUTION_REQUESTED_EXTERNAL

    template: str = Field(min_length=1, max_length=100, description="The template's id or slug.")
    parameters: dict[str, Any] = Field(default={}, max_length=50)


class ExecutionOutcome(EventData):
    """What the producer of an ``operation.execution.requested.external`` hears when the run
    ends (on its reply queue, or ``outbound-events``), correlated by the request's id."""

    event_type = EXECUTION_FINISHED

    execution_id: uuid.UUID
    template: str
    status: ExecutionStatus
    attempt: int = Field(ge=1)
    exit_code: int | None = None
    output_excerpt: str | None = Field(
        default=None, description=f"The last {EXCERPT_CHARS} characters of the output, masked."
    )
    error: str | None = None
    finished_at: datetime | None = None

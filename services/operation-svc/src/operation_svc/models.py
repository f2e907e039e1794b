from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from idp_common.audit import AuditRecord
from idp_common.db import TenantRecord, UTCDateTime, new_id, new_metadata, utcnow
from idp_common.inbound import RequestedByEvent
from idp_common.messaging.tables import messaging_tables
from idp_common.request_context import current_trace_id


class Base(DeclarativeBase):
    metadata = new_metadata()


messaging = messaging_tables(Base.metadata)


class AuditEntry(AuditRecord, Base):
    __tablename__ = "audit_log"


class OperationTemplate(TenantRecord, Base):
    """The current version of a template; every version is kept in ``template_versions``."""

    __tablename__ = "operation_templates"
    __table_args__ = (UniqueConstraint("tenant", "slug"),)

    slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    operation_type: Mapped[str] = mapped_column(String(20), default="command")
    command_template: Mapped[str | None] = mapped_column(Text)
    argv: Mapped[list[str] | None] = mapped_column(JSON)
    http_spec: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    timeout_seconds: Mapped[float] = mapped_column(Float, default=300)
    max_concurrency: Mapped[int | None] = mapped_column(Integer)
    retry_safe: Mapped[bool] = mapped_column(Boolean, default=False)
    allowed_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    allowed_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    # An ``idp_common.events.ApprovalPolicy``: its runs wait for approval before they queue.
    approval: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(200))


class TemplateVersion(Base):
    """An immutable snapshot: what an execution of that version renders and runs."""

    __tablename__ = "template_versions"

    template_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("operation_templates.id"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SecretRef(TenantRecord, Base):
    """Where a secret lives; never its value."""

    __tablename__ = "secret_refs"
    __table_args__ = (UniqueConstraint("tenant", "slug"),)

    slug: Mapped[str] = mapped_column(String(100))
    provider: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))


class ApiKey(TenantRecord, Base):
    """A service account's key: only its SHA-256 is kept (see ``idp_common.api_keys``)."""

    __tablename__ = "api_keys"

    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class SecretMapping(TenantRecord, Base):
    """Binds a secret to a template as an environment variable of the child process."""

    __tablename__ = "secret_mappings"
    __table_args__ = (UniqueConstraint("template_id", "env_var"),)

    template_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("operation_templates.id"))
    secret_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("secret_refs.id"))
    env_var: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(200))


class Schedule(TenantRecord, Base):
    """A target run at each slot of a cron expression (in an IANA timezone) or of a fixed
    interval, as the principal recorded as its owner. The target is a template with fixed
    parameters, or a panel with fixed form data (submitted through panel-svc's intake):
    exactly one of ``template_id`` and ``panel_id`` is set."""

    __tablename__ = "schedules"
    __table_args__ = (Index("ix_schedules_due", "is_paused", "next_slot_at"),)

    name: Mapped[str] = mapped_column(String(200), default="")
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("operation_templates.id"))
    template_slug: Mapped[str | None] = mapped_column(String(100))
    # A template's: checked and normalized when saved; secret values sealed to the workers'
    # key. A panel schedule's is {}.
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A panel target (panel-svc's, so no foreign key) and the form data submitted at each
    # slot; panel-svc validates it at every fire. No secret field may have a value here.
    panel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    panel_slug: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cron: Mapped[str | None] = mapped_column(String(200))
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    timezone: Mapped[str] = mapped_column(String(64))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    jitter_seconds: Mapped[int] = mapped_column(Integer, default=0)
    overlap_policy: Mapped[str] = mapped_column(String(20))
    misfire_policy: Mapped[str] = mapped_column(String(20))
    is_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Who it runs as, as they were when they set what it runs.
    owner_subject: Mapped[str] = mapped_column(String(200))
    owner_roles: Mapped[list[str]] = mapped_column(JSON)
    owner_groups: Mapped[list[str]] = mapped_column(JSON)
    # The first slot not handled yet (None: no slot left); the scheduler's work list.
    next_slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A slot waiting for the active run to end (overlap policy ``queue_one``).
    queued_slot_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(200))


class ScheduleRun(TenantRecord, Base):
    """What became of one slot of a schedule: fired (its execution, or a panel schedule's
    submission at panel-svc), queued, or skipped (the reason). The unique (schedule, slot)
    is what makes a slot fire once across replicas and restarts."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "slot_at"),)

    schedule_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("schedules.id"))
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    execution_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("executions.id"))
    # A panel schedule's fire: the submission panel-svc created (its executions carry it).
    submission_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class Execution(RequestedByEvent, TenantRecord, Base):
    __tablename__ = "executions"
    __table_args__ = (
        UniqueConstraint("tenant", "submitted_by", "idempotency_key"),
        # One execution per attempt of a submission, however often it is asked for.
        Index("uq_executions_submission_attempt", "submission_id", "attempt", unique=True),
        # One execution per slot of a schedule, however many replicas fire it.
        Index("uq_executions_schedule_slot", "schedule_id", "scheduled_for", unique=True),
    )

    template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("operation_templates.id"), index=True
    )
    template_slug: Mapped[str] = mapped_column(String(100))
    template_version: Mapped[int | None] = mapped_column(Integer)
    submission_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    panel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the submission's panel
    retry_of: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("executions.id"), index=True)
    # 1 for a first run; a retry's is its original's + 1 (a submission follows the latest).
    attempt: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    submitted_by: Mapped[str] = mapped_column(String(200), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    argv: Mapped[list[str] | None] = mapped_column(JSON)
    http_request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Its template's secret bindings when it was asked for (SecretBinding's JSON): those it
    # runs with, whatever they are when it is dispatched (after its approval, say). None on
    # rows older than the column: they get the template's bindings of their dispatch.
    secret_bindings: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    timeout_seconds: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20), index=True)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[str | None] = mapped_column(String(200))
    claim_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the worker's claim that took it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    log_lines: Mapped[int | None] = mapped_column(Integer)
    output_bytes: Mapped[int | None] = mapped_column(Integer)
    output_truncated: Mapped[bool | None] = mapped_column(Boolean)
    # The trace it was created in: people follow it in Jaeger from here.
    trace_id: Mapped[str | None] = mapped_column(String(32), default=current_trace_id)
    # Set when a schedule fired it: the schedule and the slot (its unjittered time).
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("schedules.id"))
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The approval policy it waits on (its panel's or its template's), and until when.
    approval: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    approval_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)


class ExecutionApproval(TenantRecord, Base):
    """One principal's decision on an execution awaiting approval (one per principal)."""

    __tablename__ = "execution_approvals"
    __table_args__ = (UniqueConstraint("execution_id", "approver"),)

    execution_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("executions.id"), index=True)
    approver: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(10))
    comment: Mapped[str] = mapped_column(Text, default="")


class ExecutionLog(Base):
    __tablename__ = "execution_logs"

    execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    stream: Mapped[str] = mapped_column(String(10))
    message: Mapped[str] = mapped_column(Text)
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime)


class WebhookSubscription(TenantRecord, Base):
    """Where a tenant's events are posted (Standard Webhooks). The signing secret is kept to
    sign each delivery; it is returned once, at creation, and never logged or audited."""

    __tablename__ = "webhook_subscriptions"

    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(Text, default="")
    event_types: Mapped[list[str]] = mapped_column(JSON)
    template_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    panel_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # Since when every attempt has failed (None after a success): disabled past a limit.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    signing_secret: Mapped[str] = mapped_column(String(100))
    # The secret a rotation replaced, still signing beside the new one until then.
    previous_signing_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(200))

    def signing_secrets(self, now: datetime) -> tuple[str, ...]:
        """The secrets a delivery made at ``now`` is signed with: the current one, and the
        one a rotation replaced while its overlap lasts."""
        until = self.previous_secret_until
        if self.previous_signing_secret is None or until is None or until <= now:
            return (self.signing_secret,)
        return (self.signing_secret, self.previous_signing_secret)


class WebhookRoute(Base):
    """What an active subscription receives, one row per event type and filter value (None:
    any), rewritten on every change: events are matched to subscriptions by one indexed
    INSERT … SELECT at commit, with no read on the path that ends an execution."""

    __tablename__ = "webhook_routes"
    __table_args__ = (Index("ix_webhook_routes_match", "tenant", "event_type"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    tenant: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100))
    template_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    panel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class WebhookDelivery(Base):
    """One message to one subscription, until it is delivered or given up. ``id`` is the
    message id (the ``webhook-id`` header): the same event sent to several subscriptions
    shares it, and every attempt of a delivery sends it unchanged, with the same body."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    subscription_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    # pending → sending (leased by one replica) → succeeded | pending (retry) | failed
    status: Mapped[str] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_token: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    resend_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookAttempt(Base):
    """One POST of a delivery: what came back, how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["subscription_id", "delivery_id"],
            ["webhook_deliveries.subscription_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
        Index("ix_webhook_attempts_delivery", "subscription_id", "delivery_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    subscription_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    delivery_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    number: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(10))  # automatic | manual
    outcome: Mapped[str] = mapped_column(String(10))  # succeeded | failed
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)

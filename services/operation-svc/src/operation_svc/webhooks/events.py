"""What the platform tells webhooks, and the one way it does: ``notify`` adds a delivery for
every active subscription of the tenant that wants the event, in the transaction of the
change (the outbox: a rolled-back change sends nothing).

Events: ``operation.execution.finished`` for every execution that ends, whatever its status
(succeeded, failed, timed_out, cancelled, lost, rejected); ``operation.execution.failed``
as well for every end but ``succeeded``; ``panel.submission.updated`` whenever a
submission is told its execution's status; ``operation.approval.requested`` when a run
starts waiting for approval and ``operation.approval.decided`` at each decision
(``approvals.notices``)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Executable,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    bindparam,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import UTCDateTime, execute_at_commit, utcnow
from idp_common.events import excerpt
from operation_svc.models import Execution, WebhookDelivery, WebhookRoute

EXECUTION_FINISHED = "operation.execution.finished"
EXECUTION_FAILED = "operation.execution.failed"
SUBMISSION_UPDATED = "panel.submission.updated"
APPROVAL_REQUESTED = "operation.approval.requested"
APPROVAL_DECIDED = "operation.approval.decided"
WebhookEventType = Literal[
    "operation.execution.finished",
    "operation.execution.failed",
    "panel.submission.updated",
    "operation.approval.requested",
    "operation.approval.decided",
]
ERROR_EXCERPT_CHARS = 500
# Message ids derive from what happened, so telling the same thing twice (a submission
# told again after a redelivery) adds no second delivery.
_MESSAGE_IDS = uuid.UUID("5d0c3bb6-6d0e-4f0f-9a57-5b7f0e3c1d21")


def _enqueue() -> Executable:
    """INSERT … SELECT of one delivery per matching route (at most one route of a
    subscription matches: its filter values are distinct), unless that message is there
    already. Plain Core (the dialects' ON CONFLICT inserts are compiled at every use)."""
    routes = WebhookRoute.__table__
    deliveries: Table = WebhookDelivery.__table__  # type: ignore[assignment]
    message_id, tenant = bindparam("id", type_=Uuid), bindparam("tenant", type_=String)
    event_type, now = bindparam("event_type", type_=String), bindparam("now", type_=UTCDateTime)
    template_id = bindparam("template_id", type_=Uuid)
    panel_id = bindparam("panel_id", type_=Uuid)
    sent_already = (
        select(deliveries.c.id)
        .where(
            deliveries.c.subscription_id == routes.c.subscription_id,
            deliveries.c.id == message_id,
        )
        .exists()
    )
    matching = select(
        routes.c.subscription_id,
        message_id,
        tenant,
        event_type,
        bindparam("body", type_=Text),
        literal("pending", String),
        literal(0, Integer),
        now,
        literal(False, Boolean),
        now,
        now,
    ).where(
        routes.c.tenant == tenant,
        routes.c.event_type == event_type,
        or_(routes.c.template_id.is_(None), routes.c.template_id == template_id),
        or_(routes.c.panel_id.is_(None), routes.c.panel_id == panel_id),
        ~sent_already,
    )
    columns = ["subscription_id", "id", "tenant", "event_type", "body", "status", "attempts"]
    columns += ["next_attempt_at", "resend_requested", "created_at", "updated_at"]
    return insert(deliveries).from_select(columns, matching)


_ENQUEUE = _enqueue()


def notify(
    session: AsyncSession,
    tenant: str,
    event_type: str,
    data: dict[str, Any],
    *,
    about: str,
    template_id: uuid.UUID | None = None,
    panel_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> None:
    """Deliver ``event_type`` with ``data`` to the tenant's subscriptions that want it, once
    ``session`` commits. ``about`` names what happened (one message id per event type and
    ``about``). Costs one statement per transaction, however many events it has; a tenant
    with no subscription gets no row."""
    now = now or utcnow()
    body = {"type": event_type, "timestamp": now.isoformat(), "data": data}
    params = {
        "id": uuid.uuid5(_MESSAGE_IDS, f"{event_type}:{about}"),
        "tenant": tenant,
        "event_type": event_type,
        "body": json.dumps(body, separators=(",", ":"), default=str),
        "template_id": template_id,
        "panel_id": panel_id,
        "now": now,
    }
    execute_at_commit(session, _ENQUEUE, params)


def execution_data(execution: Execution) -> dict[str, Any]:
    """The execution as a receiver sees it: its output excerpt (masked by the worker) and
    error cut short."""
    return {
        "execution_id": str(execution.id),
        "template": execution.template_slug,
        "template_id": str(execution.template_id) if execution.template_id else None,
        "status": execution.status,
        "exit_code": execution.exit_code,
        "attempt": execution.attempt,
        "output_excerpt": excerpt(execution.output) or None,
        "error": (execution.error or "")[:ERROR_EXCERPT_CHARS] or None,
        "submission_id": str(execution.submission_id) if execution.submission_id else None,
        "panel_id": str(execution.panel_id) if execution.panel_id else None,
        "finished_at": execution.finished_at.isoformat() if execution.finished_at else None,
    }


def notify_about(
    session: AsyncSession,
    execution: Execution,
    event_type: str,
    about: str,
    extra: dict[str, Any] | None = None,
) -> None:
    """``event_type`` about ``execution`` (its data, and ``extra``)."""
    notify(
        session,
        execution.tenant,
        event_type,
        execution_data(execution) | (extra or {}),
        about=about,
        template_id=execution.template_id,
        panel_id=execution.panel_id,
    )


def notify_execution_ended(session: AsyncSession, execution: Execution) -> None:
    """``finished`` for every end; ``failed`` too for every end but success."""
    notify_about(session, execution, EXECUTION_FINISHED, str(execution.id))
    if execution.status != "succeeded":
        notify_about(session, execution, EXECUTION_FAILED, str(execution.id))


def notify_submission_updated(session: AsyncSession, execution: Execution) -> None:
    about = f"{execution.submission_id}:{execution.id}:{execution.status}"
    notify_about(session, execution, SUBMISSION_UPDATED, about)

"""New executions, accepted or rejected, and what their submission is told of them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from nacl.public import PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import utcnow
from idp_common.events import (
    TERMINAL_STATUSES,
    ApprovalPolicy,
    ExecutionOutcome,
    SecretBinding,
    SubmissionUpdated,
    excerpt,
)
from idp_common.inbound import reply_row
from idp_common.messaging.outbox import Superseding, add_event, add_outbox_row
from idp_common.messaging.topology import SUBMISSION_UPDATES
from idp_common.unit_of_work import with_defaults
from operation_svc.executions.metrics import record_end
from operation_svc.executions.state import transition
from operation_svc.models import Execution, OperationTemplate, messaging
from operation_svc.safety.commands import RenderedCommand
from operation_svc.safety.http import RenderedHttp
from operation_svc.safety.parameters import ParameterSpec, without_plaintext_secrets
from operation_svc.safety.verdict import Refusal
from operation_svc.templates.definition import Rendered, TemplateDefinition
from operation_svc.webhooks.events import notify_execution_ended, notify_submission_updated

SOURCE = "urn:idp:operation-svc"


def render(
    definition: TemplateDefinition | None,
    values: dict[str, Any],
    seal_to: PublicKey | None = None,
) -> tuple[Rendered | None, list[Refusal]]:
    """What a run of ``definition`` with ``values`` would do, or why it may not run."""
    if definition is None:
        return None, [Refusal("unknown_template", "no such operation template")]
    return definition.plan(values, seal_to)


def new_execution(
    *,
    tenant: str,
    template: OperationTemplate,
    version: int,
    definition: TemplateDefinition,
    rendered: Rendered,
    secrets: list[SecretBinding],
    submitted_by: str,
    attempt: int = 1,
    submission_id: uuid.UUID | None = None,
    panel_id: uuid.UUID | None = None,
    retry_of: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    approval: ApprovalPolicy | None = None,
    schedule_id: uuid.UUID | None = None,
    scheduled_for: datetime | None = None,
) -> Execution:
    """A new execution of ``rendered`` with its template's ``secrets`` as they are now (its id
    and times set), not in any session: pending,
    or ``awaiting_approval`` when an approval policy applies: the template's, which nothing
    can lift for one run, else ``approval`` (a panel's, or an original run's). Every creator
    comes through here, so none can queue a run that needs approval: an execution is
    dispatched only once pending."""
    policy = approval_policy(template) or approval
    return with_defaults(
        Execution(
            tenant=tenant,
            template_id=template.id,
            template_slug=template.slug,
            template_version=version,
            submitted_by=submitted_by,
            parameters=rendered.values,
            argv=rendered.argv if isinstance(rendered, RenderedCommand) else None,
            http_request=rendered.as_dict() if isinstance(rendered, RenderedHttp) else None,
            secret_bindings=[binding.model_dump(mode="json") for binding in secrets],
            timeout_seconds=definition.timeout_seconds,
            status="pending" if policy is None else "awaiting_approval",
            approval=None if policy is None else policy.model_dump(mode="json"),
            approval_expires_at=(
                None
                if policy is None
                else utcnow() + timedelta(seconds=policy.expires_after_seconds)
            ),
            attempt=attempt,
            submission_id=submission_id,
            panel_id=panel_id,
            retry_of=retry_of,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            schedule_id=schedule_id,
            scheduled_for=scheduled_for,
        )
    )


def approval_policy(template: OperationTemplate) -> ApprovalPolicy | None:
    """The template's approval policy, if it has one."""
    return None if template.approval is None else ApprovalPolicy.model_validate(template.approval)


def rejected_execution(
    *,
    tenant: str,
    template: OperationTemplate | None,
    named: str,
    parameters: dict[str, Any],
    specs: list[ParameterSpec],
    refusals: list[Refusal],
    submitted_by: str,
    submission_id: uuid.UUID,
    panel_id: uuid.UUID | None = None,
) -> Execution:
    """An execution a submission asked for and may not have, ended ``rejected`` with the
    reasons (secret values left out of what it keeps)."""
    execution = with_defaults(
        Execution(
            tenant=tenant,
            template_id=template.id if template else None,
            template_slug=named,
            template_version=template.version if template else None,
            submission_id=submission_id,
            panel_id=panel_id,
            submitted_by=submitted_by,
            parameters=without_plaintext_secrets(specs, parameters),
            timeout_seconds=0,
            status="pending",
            error="; ".join(str(refusal) for refusal in refusals),
        )
    )
    transition(execution, "rejected")
    return execution


def tell_requesters(session: AsyncSession, execution: Execution) -> None:
    """Send the execution's status to the submission it runs, if it runs one, and its end to
    the service that asked for it by event, if one did."""
    if execution.request_event_id is not None and execution.status in TERMINAL_STATUSES:
        add_outbox_row(
            session, messaging, reply_row(execution, _outcome(execution), execution.tenant, SOURCE)
        )
    if execution.submission_id is None:
        return
    update_data = SubmissionUpdated(
        submission_id=execution.submission_id,
        status=execution.status,
        execution_id=execution.id,
        attempt=execution.attempt,
        exit_code=execution.exit_code,
        output=execution.output,
        error=execution.error,
    )
    event = update_data.to_event(
        source=SOURCE, tenant=execution.tenant, subject=str(execution.submission_id)
    )
    # Each update carries the attempt's whole status: a newer one of the same attempt, while
    # this one is unsent, replaces it (so a short run costs one message, not three).
    final = execution.status in TERMINAL_STATUSES
    supersede = Superseding(f"{execution.submission_id}:{execution.attempt}", wait=not final)
    add_event(session, messaging, SUBMISSION_UPDATES, event, supersede)
    notify_submission_updated(session, execution)


def record_ended(session: AsyncSession, execution: Execution) -> None:
    """An execution has just ended (rejected, cancelled, lost or finished): counted once
    committed, and told to the tenant's webhooks."""
    record_end(session, execution)
    notify_execution_ended(session, execution)


def _outcome(execution: Execution) -> ExecutionOutcome:
    return ExecutionOutcome(
        execution_id=execution.id,
        template=execution.template_slug,
        status=execution.status,
        attempt=execution.attempt,
        exit_code=execution.exit_code,
        output_excerpt=excerpt(execution.output),
        error=execution.error,
        finished_at=execution.finished_at,
    )

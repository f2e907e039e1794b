"""New executions, accepted or rejected, and what their submission is told of them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from nacl.public import PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.events import SubmissionUpdated
from idp_common.messaging.outbox import add_event
from idp_common.messaging.topology import SUBMISSION_UPDATES
from idp_common.unit_of_work import with_defaults
from operation_svc.executions.state import transition
from operation_svc.models import Execution, OperationTemplate, messaging
from operation_svc.safety.commands import RenderedCommand
from operation_svc.safety.http import RenderedHttp
from operation_svc.safety.parameters import ParameterSpec, without_plaintext_secrets
from operation_svc.safety.verdict import Refusal
from operation_svc.templates.definition import Rendered, TemplateDefinition

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
    submitted_by: str,
    attempt: int = 1,
    submission_id: uuid.UUID | None = None,
    retry_of: uuid.UUID | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    schedule_id: uuid.UUID | None = None,
    scheduled_for: datetime | None = None,
) -> Execution:
    """A pending execution of ``rendered`` (its id and times set), not in any session."""
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
            timeout_seconds=definition.timeout_seconds,
            status="pending",
            attempt=attempt,
            submission_id=submission_id,
            retry_of=retry_of,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            schedule_id=schedule_id,
            scheduled_for=scheduled_for,
        )
    )


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
            submitted_by=submitted_by,
            parameters=without_plaintext_secrets(specs, parameters),
            timeout_seconds=0,
            status="pending",
            error="; ".join(str(refusal) for refusal in refusals),
        )
    )
    transition(execution, "rejected")
    return execution


def tell_submission(session: AsyncSession, execution: Execution) -> None:
    """Send the execution's status to the submission it runs, if it runs one."""
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
    add_event(session, messaging, SUBMISSION_UPDATES, event)

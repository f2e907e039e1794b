"""What people and services do with executions through the API: read, retry, cancel. (A
create goes through the intake; the workers' side is ``worker_protocol``.)"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.auth import Principal, check_run_access
from idp_common.db import utcnow
from idp_common.errors import Conflict, Forbidden, ValidationFailed, field_error
from idp_common.events import TERMINAL_STATUSES, ApprovalPolicy
from idp_common.pagination import PageParams
from operation_svc.executions.dispatch import dispatch_or_wait, release_slot
from operation_svc.executions.lifecycle import (
    new_execution,
    record_ended,
    render,
    tell_requesters,
)
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.state import transition
from operation_svc.models import AuditEntry, Execution, OperationTemplate
from operation_svc.templates.definition import TemplateDefinition
from operation_svc.templates.repository import TemplateCatalog, TemplateRepository


def check_access(principal: Principal, template: OperationTemplate) -> None:
    check_run_access(
        principal, template.allowed_roles, template.allowed_groups, f"Template {template.slug!r}"
    )


async def find_template(session: AsyncSession, tenant: str, reference: str) -> OperationTemplate:
    """The tenant's live template named by ``reference`` (its id or slug), or a 422."""
    template = await TemplateRepository(session, tenant).get_by_ref(reference)
    if template is None:
        raise ValidationFailed(
            "Unknown operation template.",
            errors=[field_error("template", f"no template {reference!r}", "unknown_template")],
        )
    return template


async def get_execution(
    session: AsyncSession, principal: Principal, execution_id: uuid.UUID
) -> Execution:
    return await ExecutionRepository(session, principal.tenant).get_or_404(execution_id)


async def list_executions(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    status: str | None,
    template: str | None,
    submitted_by: str | None,
    since: datetime | None,
) -> tuple[list[Execution], str | None]:
    executions = ExecutionRepository(session, principal.tenant)
    return await executions.page(
        page,
        executions.listing(
            status=status, template=template, submitted_by=submitted_by, since=since
        ),
    )


async def retry(session: AsyncSession, principal: Principal, execution_id: uuid.UUID) -> Execution:
    """A new execution with the same template version and parameters, linked to the old: its
    next attempt. An execution is retried once (then its retry is the one to retry), so the
    attempts of a submission follow each other and each has its own number."""
    executions = ExecutionRepository(session, principal.tenant)
    # Retries of one execution sent at once wait here for each other, so the later ones see
    # the first one's retry.
    original = await executions.get_or_404(execution_id, locked=True)
    if original.status not in TERMINAL_STATUSES or original.template_id is None:
        raise Conflict(f"Execution {execution_id} is {original.status}; it cannot be retried.")
    if (retried := await executions.retried_as(original)) is not None:
        raise Conflict(
            f"Execution {execution_id} was retried already, as execution {retried}; retry that one."
        )
    template = await TemplateCatalog(session).get(original.template_id)
    if template is not None:
        check_access(principal, template)
    new = await next_attempt(session, original, principal.subject)
    record_audit(
        session,
        AuditEntry,
        principal,
        "execution.retry",
        new.id,
        changes={"retry_of": str(original.id)},
    )
    await session.flush()
    return new


async def next_attempt(session: AsyncSession, original: Execution, actor: str) -> Execution:
    """Run ``original`` again as its next attempt, with its template version and parameters
    as checked now; a 409 when the version is gone or the parameters are refused now."""
    assert original.template_id is not None
    catalog = TemplateCatalog(session)
    version = await catalog.version(original.template_id, original.template_version)
    template = await catalog.get(original.template_id)
    if version is None or template is None:
        raise Conflict("The template version of this execution no longer exists.")
    if template.is_deleted:
        raise Conflict(f"Its template {original.template_slug} was deleted: it runs no more.")
    definition = TemplateDefinition.from_snapshot(version.definition)
    rendered, refusals = render(definition, original.parameters)
    if rendered is None:
        raise Conflict(f"The parameters are refused now: {'; '.join(map(str, refusals))}")
    secrets = await catalog.secret_bindings({template.id})
    new = new_execution(
        tenant=original.tenant,
        template=template,
        version=version.version,
        definition=definition,
        rendered=rendered,
        secrets=secrets.get(template.id, []),
        submitted_by=actor,
        attempt=original.attempt + 1,
        retry_of=original.id,
        submission_id=original.submission_id,
        # Under the policy its original was (its panel's or its template's), else the
        # template's current one.
        approval=ApprovalPolicy.model_validate(original.approval) if original.approval else None,
        panel_id=original.panel_id,
    )
    new.request_event_id, new.reply_queue = original.request_event_id, original.reply_queue
    await dispatch_or_wait(session, template, new)
    tell_requesters(session, new)  # the submission follows its newest attempt from now on
    return new


def cancel_unstarted(session: AsyncSession, execution: Execution, reason: str) -> None:
    """End an execution no worker has started: pending, or awaiting approval."""
    transition(execution, "cancelled")
    execution.error = reason
    tell_requesters(session, execution)
    record_ended(session, execution)


async def cancel(session: AsyncSession, principal: Principal, execution_id: uuid.UUID) -> Execution:
    """Pending or awaiting approval (by its requester or an admin): cancelled at once.
    Running: the worker holding it is told on its next heartbeat (within a second), kills
    the process group and reports ``cancelled``."""
    # As it is now: a worker's claim, an approval or another cancel may have just changed it.
    executions = ExecutionRepository(session, principal.tenant)
    execution = await executions.get_or_404(execution_id, locked=True)
    awaiting = execution.status == "awaiting_approval"
    if awaiting and not (
        principal.subject == execution.submitted_by or principal.has_role("admin")
    ):
        raise Forbidden("A run awaiting approval is cancelled by its requester or an admin.")
    if execution.status == "pending" or awaiting:
        cancel_unstarted(session, execution, f"cancelled by {principal.subject}")
        if execution.template_id is not None and not awaiting:  # it may have held a slot
            await release_slot(session, execution.template_id)
    elif execution.status == "running":
        execution.cancel_requested_at = execution.cancel_requested_at or utcnow()
    else:
        raise Conflict(f"Execution {execution_id} is already {execution.status}.")
    record_audit(
        session,
        AuditEntry,
        principal,
        "execution.cancel",
        execution.id,
        changes={"status": execution.status},
    )
    return execution

"""Dispatch: an execution's job goes to the workers when its template has a free slot.

A template without a concurrency limit has a slot for every execution: its executions are
dispatched when created. Under a limit they wait, and each end of one of them (finished,
cancelled, lost) or a change of the limit fills the free slots, oldest first, under the
template's lock."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import utcnow
from idp_common.events import ExecutionRequested, HttpCall, SecretBinding
from idp_common.messaging.envelope import Event
from idp_common.messaging.outbox import add_outbox_row, outbox_row
from idp_common.messaging.publisher import MessageTooLarge
from idp_common.messaging.topology import OPERATION_JOBS
from idp_common.sealing import is_sealed
from idp_common.unit_of_work import UnitOfWork
from operation_svc.approvals.notices import approval_requested
from operation_svc.executions.lifecycle import SOURCE, record_ended, tell_requesters
from operation_svc.executions.repository import SystemExecutions
from operation_svc.executions.state import transition
from operation_svc.models import Execution, OperationTemplate, messaging
from operation_svc.safety.commands import parameter_env
from operation_svc.templates.repository import TemplateCatalog


def job_for(execution: Execution, secrets: list[SecretBinding]) -> Event:
    """Mark ``execution`` dispatched and return the job a worker runs for it."""
    execution.dispatched_at = utcnow()
    env = parameter_env(execution.parameters)
    job = ExecutionRequested(
        execution_id=execution.id,
        template_slug=execution.template_slug,
        argv=execution.argv or [],
        http=HttpCall.model_validate(execution.http_request) if execution.http_request else None,
        env={name: value for name, value in env.items() if not is_sealed(value)},
        sealed_env={name: value for name, value in env.items() if is_sealed(value)},
        secrets=secrets,
        timeout_seconds=execution.timeout_seconds,
    )
    return job.to_event(source=SOURCE, tenant=execution.tenant, subject=str(execution.id))


def queue_job(session: AsyncSession, execution: Execution, secrets: list[SecretBinding]) -> None:
    """Queue ``execution``'s job for the workers, with its template's ``secrets``; a job no
    queue message can hold rejects the execution with the reason instead. Its values and
    what they render were bounded when it was asked for (``messaging.budget``), its
    template's secret references were not: such a job failed the transaction that queued
    it, a consumer's again at each delivery."""
    try:
        job = outbox_row(OPERATION_JOBS, job_for(execution, secrets))
    except MessageTooLarge as too_large:
        execution.dispatched_at = None
        execution.error = f"too_large: its job cannot be queued: {too_large}"
        transition(execution, "rejected")
        return
    add_outbox_row(session, messaging, job)


async def send_job(session: AsyncSession, execution: Execution) -> None:
    """Queue ``execution``'s job for the workers (``queue_job``); one it rejects ends now."""
    queue_job(session, execution, await secrets_of(session, execution))
    if execution.status == "rejected":
        tell_requesters(session, execution)
        record_ended(session, execution)


async def secrets_of(session: AsyncSession, execution: Execution) -> list[SecretBinding]:
    """The secret bindings ``execution`` was asked for with: an admin's change of its
    template's since (after its approvers saw it, say) does not reach it."""
    if execution.secret_bindings is not None:
        return [SecretBinding.model_validate(binding) for binding in execution.secret_bindings]
    assert execution.template_id is not None  # a row older than the column
    bindings = await TemplateCatalog(session).secret_bindings({execution.template_id})
    return bindings.get(execution.template_id, [])


async def fill_free_slots(session: AsyncSession, template_id: uuid.UUID) -> None:
    """Dispatch the template's waiting executions, as many as it has free slots."""
    template = await TemplateCatalog(session).locked(template_id)
    executions = SystemExecutions(session)
    free = None
    if template.max_concurrency is not None:
        free = template.max_concurrency - await executions.holding_slots(template_id)
        if free <= 0:
            return
    for execution in await executions.waiting(template_id, free):
        await send_job(session, execution)


def fill_free_slots_before_commit(work: UnitOfWork, template_id: uuid.UUID) -> None:
    """Fill the template's free slots once the unit of work's items are all in (once, however
    many of them ask)."""
    work.once_before_commit(
        ("free slots", template_id), lambda: fill_free_slots(work.session, template_id)
    )


async def release_slot(session: AsyncSession, template_id: uuid.UUID) -> None:
    """An execution of the template stopped holding a slot. Only a template with a limit
    has executions waiting: lifting a limit dispatches them (see ``update_template``)."""
    template = await TemplateCatalog(session).get(template_id)
    if template is not None and template.max_concurrency is not None:
        await fill_free_slots(session, template_id)


async def dispatch_or_wait(
    session: AsyncSession, template: OperationTemplate, execution: Execution
) -> None:
    """Add a new (or newly approved) execution: dispatched now, waiting for a slot under a
    limit, or, awaiting approval, not dispatched at all."""
    session.add(execution)
    if execution.status == "awaiting_approval":
        approval_requested(session, execution)
    elif template.max_concurrency is None:
        await send_job(session, execution)
    else:
        await fill_free_slots(session, template.id)

"""Executions created through the API (``idp_common.intake``: HTTP or another service's
event) and by schedules, on one path: the template is found (``template_to_run``), the
caller's access and the parameters checked and the job built (``plan_execution``) before
the write; the write (``write_new_executions``) checks again what a snapshot decided (the
template's concurrency limit)."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nacl.public import PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import add_audit_row, audit_row
from idp_common.auth import Principal
from idp_common.errors import ValidationFailed, field_error
from idp_common.events import SecretBinding
from idp_common.idempotency import request_fingerprint
from idp_common.inbound import InboundRequest
from idp_common.intake import IdempotentIntake
from idp_common.messaging.budget import queued_or_refused
from idp_common.messaging.outbox import OutboxRow, add_outbox_row
from idp_common.messaging.topology import OPERATION_JOBS
from idp_common.unit_of_work import UnitOfWork
from operation_svc.approvals.notices import approval_requested
from operation_svc.executions.dispatch import fill_free_slots_before_commit, job_for
from operation_svc.executions.lifecycle import new_execution, render
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.schemas import ExecutionIn
from operation_svc.executions.service import check_access, find_template
from operation_svc.models import AuditEntry, Execution, OperationTemplate, messaging
from operation_svc.safety.parameters import masked, secret_names
from operation_svc.templates.definition import Rendered, TemplateDefinition
from operation_svc.templates.repository import TemplateCatalog


@dataclass(frozen=True, slots=True)
class TemplateToRun:
    """The template a create names, as it was read (on a snapshot, for the API)."""

    template: OperationTemplate
    definition: TemplateDefinition
    secrets: list[SecretBinding]


@dataclass(frozen=True, slots=True)
class ScheduledSlot:
    """The schedule and slot an execution is fired for (none for the API's)."""

    schedule_id: uuid.UUID
    slot_at: datetime


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    """A run asked for through the API, or by another service's event."""

    body: ExecutionIn
    by_event: InboundRequest | None = None  # answered when the run ends


@dataclass(frozen=True, slots=True)
class NewExecution:
    """What creating one execution writes."""

    execution: Execution
    # None: awaiting approval, or its template has a concurrency limit (dispatched in turn)
    job: OutboxRow | None
    audit: dict[str, Any]


async def template_to_run(session: AsyncSession, tenant: str, reference: str) -> TemplateToRun:
    """The tenant's live template named by ``reference`` (a 422 if none), with its secrets."""
    template = await find_template(session, tenant, reference)
    secrets = await TemplateCatalog(session).secret_bindings({template.id})
    return TemplateToRun(template, TemplateDefinition.of(template), secrets.get(template.id, []))


def checked_values(
    target: TemplateToRun,
    principal: Principal,
    parameters: dict[str, Any],
    seal_to: PublicKey | None,
) -> Rendered:
    """What a run of ``target`` by ``principal`` with ``parameters`` would do: a 403 when
    they may not run it, a 422 naming each refused parameter."""
    check_access(principal, target.template)
    rendered, refusals = render(target.definition, parameters, seal_to)
    if rendered is None:
        raise ValidationFailed(
            f"{len(refusals)} parameter(s) are refused.",
            errors=[
                field_error(
                    f"parameters.{r.parameter}" if r.parameter else "parameters",
                    r.message,
                    r.rule,
                )
                for r in refusals
            ],
        )
    return rendered


def plan_execution(
    target: TemplateToRun,
    principal: Principal,
    parameters: dict[str, Any],
    seal_to: PublicKey | None,
    *,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    scheduled: ScheduledSlot | None = None,
    by_event: InboundRequest | None = None,
) -> NewExecution:
    """A checked execution (``checked_values``) of ``target`` for ``principal``, its job and
    its audit row; nothing written yet. ``seal_to`` seals plaintext secrets; without it
    they must arrive sealed."""
    template = target.template
    rendered = checked_values(target, principal, parameters, seal_to)
    execution = new_execution(
        tenant=principal.tenant,
        template=template,
        version=template.version,
        definition=target.definition,
        rendered=rendered,
        secrets=target.secrets,
        submitted_by=principal.subject,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        schedule_id=scheduled.schedule_id if scheduled else None,
        scheduled_for=scheduled.slot_at if scheduled else None,
    )
    if by_event is not None:
        by_event.applied_to(execution)
    job = None
    if template.max_concurrency is None and execution.status == "pending":
        job = queued_or_refused(OPERATION_JOBS, job_for(execution, target.secrets), "parameters")
    changes: dict[str, Any] = {
        "template": template.slug,
        "version": template.version,
        "parameters": masked(rendered.values),
        "status": execution.status,
    }
    if scheduled is not None:
        changes |= {"schedule": str(scheduled.schedule_id), "slot": scheduled.slot_at.isoformat()}
    audit = audit_row(principal, "execution.create", execution.id, changes=changes)
    return NewExecution(execution, job, audit)


async def write_new_executions(work: UnitOfWork, group: list[NewExecution]) -> None:
    """Write planned executions. A limit may have been set since they were planned: it is
    read again here (the templates' rows share-locked), and an execution whose template is
    limited now waits for a slot like any other. One awaiting approval is not dispatched."""
    ids = {tid for new in group if (tid := new.execution.template_id) is not None}
    limits = await TemplateCatalog(work.session).limits(ids)
    for new in group:
        template_id = new.execution.template_id
        assert template_id is not None
        if new.execution.status == "awaiting_approval":
            approval_requested(work.session, new.execution)
        elif new.job is None or limits.get(template_id) is not None:
            new.execution.dispatched_at = None
            fill_free_slots_before_commit(work, template_id)
        else:
            add_outbox_row(work.session, messaging, new.job)
        work.add(new.execution)
        add_audit_row(work.session, AuditEntry, new.audit)


class ExecutionIntake(IdempotentIntake[ExecutionRequest, TemplateToRun, NewExecution, Execution]):
    """Creates executions for API clients. Secret values are sealed to the workers' key
    (``seal_to``) before anything is stored."""

    repository = ExecutionRepository

    async def target(
        self, session: AsyncSession, principal: Principal, request: ExecutionRequest
    ) -> TemplateToRun:
        return await template_to_run(session, principal.tenant, request.body.template)

    def target_key(self, principal: Principal, request: ExecutionRequest) -> Hashable:
        return principal.tenant, request.body.template

    def fingerprint(self, target: TemplateToRun, request: ExecutionRequest) -> str:
        # Secret values stay out of the fingerprint: a plain hash of one can be reversed by
        # guessing. The same key with only another secret therefore replays the original.
        secret = secret_names(target.definition.parameter_specs())
        body = request.body
        return request_fingerprint(
            body.model_dump(mode="json")
            | {"parameters": {k: v for k, v in body.parameters.items() if k not in secret}}
        )

    async def build(
        self,
        target: TemplateToRun,
        principal: Principal,
        request: ExecutionRequest,
        key: str | None,
        digest: str,
    ) -> NewExecution:
        return plan_execution(
            target,
            principal,
            request.body.parameters,
            self.seal_to,
            idempotency_key=key,
            request_hash=digest,
            by_event=request.by_event,
        )

    def created(self, new: NewExecution) -> Execution:
        return new.execution

    async def write(self, work: UnitOfWork, group: list[NewExecution]) -> None:
        await write_new_executions(work, group)

"""Executions created through the API: planned on a snapshot, written in group commits.

A create finds its template, checks and renders on a snapshot (outside SQLite's single
write turn, which the other creates' writes and the workers' claims and results need), then
hands its row, its job and its audit row to the intake. Creates that arrive while a write
is in flight share the next transaction, one INSERT per table for all of them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from nacl.public import PublicKey
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import add_audit_row, audit_row
from idp_common.auth import Principal
from idp_common.db import Database
from idp_common.errors import ValidationFailed, field_error
from idp_common.group_commit import GroupCommit
from idp_common.idempotency import request_fingerprint
from idp_common.messaging.outbox import OutboxRow, add_outbox_row, outbox_row
from idp_common.messaging.topology import OPERATION_JOBS
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.schemas import ExecutionIn
from operation_svc.executions.service import (
    check_access,
    dispatch_job,
    dispatch_ready,
    find_template,
    insert_executions,
    new_execution,
    plan,
    secret_bindings,
)
from operation_svc.models import AuditEntry, Execution, OperationTemplate, messaging
from operation_svc.safety.parameters import masked, secret_names
from operation_svc.templates.definition import TemplateDefinition

# Built once: the limits of a group's templates, read again in the write.
_LIMITS_NOW = (
    select(OperationTemplate.id, OperationTemplate.max_concurrency)
    .where(OperationTemplate.id.in_(bindparam("ids", expanding=True)))
    .with_for_update(read=True)
)
# Creates written in one transaction at most (each client waits for one create at a time,
# so a group is as large as the number of clients waiting).
MAX_GROUP = 100


@dataclass(frozen=True, slots=True)
class NewExecution:
    """What creating one execution writes: built on the request, written by the intake."""

    execution: Execution  # not in any session: written by a Core insert
    job: OutboxRow | None  # None: its template has a concurrency limit (dispatched in turn)
    audit: dict[str, Any]


def _fingerprint(body: ExecutionIn, definition: TemplateDefinition) -> str:
    # Secret values stay out of the fingerprint: a plain hash of one can be reversed by
    # guessing. The same key with only another secret therefore replays the original.
    secret = secret_names(definition.parameter_specs())
    return request_fingerprint(
        body.model_dump(mode="json")
        | {"parameters": {k: v for k, v in body.parameters.items() if k not in secret}}
    )


async def _plan(
    session: AsyncSession,
    principal: Principal,
    body: ExecutionIn,
    idempotency_key: str | None,
    seal_to: PublicKey,
) -> NewExecution | Execution:
    """The execution to create, or the one an earlier request with this key created."""
    template = await find_template(session, principal.tenant, body.template)
    definition = TemplateDefinition.of(template)
    digest = _fingerprint(body, definition)
    executions = ExecutionRepository(session, principal.tenant)
    if (earlier := await executions.replay(idempotency_key, digest, principal.subject)) is not None:
        return earlier
    check_access(principal, template)
    rendered, refusals = plan(definition, body.parameters, seal_to)
    if rendered is None:
        raise ValidationFailed(
            f"{len(refusals)} parameter(s) are refused.",
            errors=[
                field_error(
                    f"parameters.{r.parameter}" if r.parameter else "parameters", r.message, r.rule
                )
                for r in refusals
            ],
        )
    execution = new_execution(
        tenant=principal.tenant,
        template=template,
        version=template.version,
        definition=definition,
        rendered=rendered,
        submitted_by=principal.subject,
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    job = None
    if template.max_concurrency is None:
        secrets = await secret_bindings(session, {template.id})
        job = outbox_row(OPERATION_JOBS, dispatch_job(execution, secrets.get(template.id, [])))
    audit = audit_row(
        principal,
        "execution.create",
        execution.id,
        changes={
            "template": template.slug,
            "version": template.version,
            "parameters": masked(rendered.values),
        },
    )
    return NewExecution(execution, job, audit)


class ExecutionIntake:
    """Creates executions for API clients (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._writes = GroupCommit(db, self._write_dispatched, max_items=MAX_GROUP)

    async def create_via_api(
        self,
        principal: Principal,
        body: ExecutionIn,
        idempotency_key: str | None,
        seal_to: PublicKey,
    ) -> tuple[Execution, bool]:
        """Start an execution; returns it and whether it was created now (False: the same
        Idempotency-Key and body were seen before). Secret values are sealed to the
        workers' key before anything is stored."""
        async with self.db.snapshot() as session:
            planned = await _plan(session, principal, body, idempotency_key, seal_to)
        if isinstance(planned, Execution):
            return planned, False
        try:
            if planned.job is None:
                await self._write_waiting(planned)
            else:
                await self._writes.submit(planned)
        except IntegrityError:
            # The key was taken since the snapshot: by the same request sent twice at once,
            # which gets the original, or by another body (409).
            if (earlier := await self._replay(principal.tenant, planned.execution)) is None:
                raise
            return earlier, False
        return planned.execution, True

    async def _replay(self, tenant: str, execution: Execution) -> Execution | None:
        if execution.idempotency_key is None:
            return None
        async with self.db.snapshot() as session:
            return await ExecutionRepository(session, tenant).replay(
                execution.idempotency_key, execution.request_hash or "", execution.submitted_by
            )

    async def _write_dispatched(self, session: AsyncSession, group: list[NewExecution]) -> None:
        """Executions planned on a snapshot that saw no concurrency limit. A limit may have
        been set since: what the snapshot decided is checked again inside the write (the
        templates' rows are share-locked), and an execution whose template is limited now
        waits for a slot like any other."""
        ids = list({new.execution.template_id for new in group})
        found = await session.execute(_LIMITS_NOW, {"ids": ids})
        limited = {template_id for template_id, limit in found.tuples() if limit is not None}
        for new in group:
            if new.execution.template_id in limited:
                new.execution.dispatched_at = None
        await insert_executions(session, [new.execution for new in group])
        for new in group:
            assert new.job is not None
            if new.execution.template_id not in limited:
                add_outbox_row(session, messaging, new.job)
            add_audit_row(session, AuditEntry, new.audit)
        for template_id in limited:
            assert template_id is not None
            await dispatch_ready(session, template_id)

    async def _write_waiting(self, new: NewExecution) -> None:
        """A template with a concurrency limit: the execution waits for a slot, taken under
        the template's lock (``dispatch_ready``), in a transaction of its own."""
        template_id: uuid.UUID | None = new.execution.template_id
        assert template_id is not None
        async with self.db.transaction() as session:
            session.add(new.execution)
            add_audit_row(session, AuditEntry, new.audit)
            await dispatch_ready(session, template_id)

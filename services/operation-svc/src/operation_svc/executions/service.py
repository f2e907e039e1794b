from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from typing import Any, cast

from nacl.public import PublicKey
from sqlalchemy import Select, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.auth import ALL_ROLES, Principal, check_run_access, may_run
from idp_common.db import column_values, insert_ignoring_conflicts, new_id, utcnow
from idp_common.errors import Conflict, ValidationFailed, field_error
from idp_common.events import (
    TERMINAL_STATUSES,
    ExecutionFinished,
    ExecutionLog,
    ExecutionRequested,
    HttpCall,
    LogLine,
    SecretBinding,
    SubmissionCreated,
    SubmissionUpdated,
)
from idp_common.messaging.envelope import Event, InvalidEvent
from idp_common.messaging.inbox import Received
from idp_common.messaging.outbox import add_event
from idp_common.messaging.topology import OPERATION_JOBS, SUBMISSION_UPDATES
from idp_common.pagination import PageParams, paginate
from idp_common.repository import as_id
from idp_common.sealing import is_sealed
from operation_svc.executions.repository import ExecutionRepository
from operation_svc.executions.schemas import HeartbeatOut
from operation_svc.executions.state import can_enter, transition
from operation_svc.models import (
    AuditEntry,
    Execution,
    OperationTemplate,
    SecretMapping,
    SecretRef,
    TemplateVersion,
    messaging,
)
from operation_svc.models import ExecutionLog as ExecutionLogRow
from operation_svc.safety.commands import RenderedCommand, parameter_env
from operation_svc.safety.http import RenderedHttp
from operation_svc.safety.parameters import without_plaintext_secrets
from operation_svc.safety.verdict import Refusal
from operation_svc.templates.definition import Rendered, TemplateDefinition
from operation_svc.templates.repository import TemplateRepository

SOURCE = "urn:idp:operation-svc"
logger = logging.getLogger(__name__)


def _tell_submission(session: AsyncSession, execution: Execution) -> None:
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


# Built once: building the query costs more than running it (it runs for every dispatch).
_BINDINGS_OF = (
    select(SecretMapping.template_id, SecretMapping.env_var, SecretRef.provider, SecretRef.key)
    .join(SecretRef, SecretRef.id == SecretMapping.secret_id)
    .where(SecretMapping.template_id.in_(bindparam("ids", expanding=True)))
    .order_by(SecretMapping.env_var)
)


async def secret_bindings(
    session: AsyncSession, template_ids: set[uuid.UUID]
) -> dict[uuid.UUID, list[SecretBinding]]:
    """The secrets each template's runs get, as references the worker resolves."""
    bindings: dict[uuid.UUID, list[SecretBinding]] = {}
    if template_ids:
        # No autoflush: the transactions that dispatch never change mappings, and the rows
        # they add (the executions) then go out in one flush.
        with session.no_autoflush:
            rows = await session.execute(_BINDINGS_OF, {"ids": list(template_ids)})
        for template_id, env_var, provider, key in rows:
            binding = SecretBinding(env_var=env_var, provider=provider, key=key)
            bindings.setdefault(template_id, []).append(binding)
    return bindings


def _active_for(template_id: uuid.UUID) -> Select[tuple[int]]:
    return select(func.count()).where(
        Execution.template_id == template_id,
        (Execution.status == "running")
        | ((Execution.status == "pending") & Execution.dispatched_at.is_not(None)),
    )


async def dispatch_ready(session: AsyncSession, template_id: uuid.UUID) -> None:
    """Send queued executions of a template to the workers, up to its max_concurrency."""
    template = await session.scalar(
        select(OperationTemplate).where(OperationTemplate.id == template_id).with_for_update()
    )
    assert template is not None
    waiting = (
        select(Execution)
        .where(
            Execution.template_id == template_id,
            Execution.status == "pending",
            Execution.dispatched_at.is_(None),
        )
        .order_by(Execution.created_at)
    )
    if template.max_concurrency is not None:
        free = template.max_concurrency - int(await session.scalar(_active_for(template_id)) or 0)
        if free <= 0:
            return
        waiting = waiting.limit(free)
    for execution in (await session.scalars(waiting)).all():
        await _dispatch(session, execution)


_INSERT_EXECUTIONS = cast(Table, Execution.__table__).insert()


async def insert_executions(session: AsyncSession, executions: list[Execution]) -> None:
    """New executions built outside the session, in one statement."""
    await session.execute(_INSERT_EXECUTIONS, [column_values(e) for e in executions])


# Built once (it runs for every group of worker events), the ids given as parameters. Each
# execution with its template's limit: a finish frees a slot only under a limit.
_EXECUTIONS_AND_LIMITS = (
    select(Execution, OperationTemplate.max_concurrency)
    .outerjoin(OperationTemplate, OperationTemplate.id == Execution.template_id)
    .where(Execution.id.in_(bindparam("ids", expanding=True)))
)


async def _release_slot(session: AsyncSession, template_id: uuid.UUID) -> None:
    """An execution of the template stopped holding a slot. Only a template with a limit
    has executions waiting: without one they are dispatched when created, and lifting a
    limit dispatches the waiting ones (see ``update_template``)."""
    template = await session.get(OperationTemplate, template_id)
    if template is not None and template.max_concurrency is not None:
        await dispatch_ready(session, template_id)


def dispatch_job(execution: Execution, secrets: list[SecretBinding]) -> Event:
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


async def _dispatch(session: AsyncSession, execution: Execution) -> None:
    assert execution.template_id is not None
    secrets = await secret_bindings(session, {execution.template_id})
    job = dispatch_job(execution, secrets.get(execution.template_id, []))
    add_event(session, messaging, OPERATION_JOBS, job)


def plan(
    definition: TemplateDefinition | None,
    values: dict[str, Any],
    seal_to: PublicKey | None = None,
) -> tuple[Rendered | None, list[Refusal]]:
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
    **links: Any,
) -> Execution:
    """A pending execution of ``rendered``, not yet added to a session."""
    now = utcnow()
    return Execution(
        id=new_id(),
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
        created_at=now,
        updated_at=now,
        **links,
    )


async def _create(
    session: AsyncSession, *, template: OperationTemplate, **fields: Any
) -> Execution:
    execution = new_execution(template=template, **fields)
    session.add(execution)
    if template.max_concurrency is None:
        await _dispatch(session, execution)
    else:
        await dispatch_ready(session, template.id)
    return execution


_TEMPLATES_NAMED = select(OperationTemplate).where(
    OperationTemplate.tenant.in_(bindparam("tenants", expanding=True)),
    OperationTemplate.slug.in_(bindparam("slugs", expanding=True))
    | OperationTemplate.id.in_(bindparam("ids", expanding=True)),
    OperationTemplate.is_deleted.is_(False),
)


async def _templates_named(
    session: AsyncSession, names: set[tuple[str, str]]
) -> dict[tuple[str, str], OperationTemplate]:
    """The live templates by (tenant, id or slug), in one query; an id is tried first, as
    ``TenantRepository.get_by_ref`` does."""
    ids = {reference: as_id(reference) for _, reference in names}
    params = {
        "tenants": list({tenant for tenant, _ in names}),
        "slugs": list(ids),
        "ids": [object_id for object_id in ids.values() if object_id is not None],
    }
    found = (await session.scalars(_TEMPLATES_NAMED, params)).all()
    by_id: dict[tuple[str, uuid.UUID | None], OperationTemplate] = {
        (template.tenant, template.id): template for template in found
    }
    by_slug = {(template.tenant, template.slug): template for template in found}
    named = {
        (tenant, reference): by_id.get((tenant, ids[reference])) or by_slug.get((tenant, reference))
        for tenant, reference in names
    }
    return {name: template for name, template in named.items() if template is not None}


def _execution_of(
    session: AsyncSession,
    tenant: str,
    submitted: SubmissionCreated,
    template: OperationTemplate | None,
    secrets: dict[uuid.UUID, list[SecretBinding]],
) -> Execution:
    """The execution a submission asks for, pending (with its job when its template has no
    limit) or rejected with the reason; audited, and the submission told."""
    definition = TemplateDefinition.of(template) if template else None
    submitter = Principal(
        submitted.submitted_by,
        tenant,
        frozenset(submitted.submitter_roles) & ALL_ROLES,
        frozenset(submitted.submitter_groups),
    )
    rendered: Rendered | None
    if template is not None and not may_run(
        submitter, template.allowed_roles, template.allowed_groups
    ):
        rendered = None
        refusals = [Refusal("not_allowed", f"{submitter.subject} may not run {template.slug!r}")]
    else:
        rendered, refusals = plan(definition, submitted.parameters)
    if template is not None and definition is not None and rendered is not None:
        execution = new_execution(
            tenant=tenant,
            template=template,
            version=template.version,
            definition=definition,
            rendered=rendered,
            submitted_by=submitted.submitted_by,
            submission_id=submitted.submission_id,
        )
        if template.max_concurrency is None:
            job = dispatch_job(execution, secrets.get(template.id, []))
            add_event(session, messaging, OPERATION_JOBS, job)
    else:
        now = utcnow()
        execution = Execution(
            id=new_id(),
            tenant=tenant,
            template_id=template.id if template else None,
            template_slug=submitted.operation_template,
            template_version=template.version if template else None,
            submission_id=submitted.submission_id,
            submitted_by=submitted.submitted_by,
            parameters=without_plaintext_secrets(
                definition.parameter_specs() if definition else [], submitted.parameters
            ),
            timeout_seconds=0,
            status="pending",
            attempt=1,
            error="; ".join(str(refusal) for refusal in refusals),
            created_at=now,
            updated_at=now,
        )
        transition(execution, "rejected")
    record_audit(
        session,
        AuditEntry,
        submitted.submitted_by,
        "execution.submit",
        execution.id,
        tenant=tenant,
        changes={
            "template": submitted.operation_template,
            "status": execution.status,
            "submission_id": str(submitted.submission_id),
        },
    )
    _tell_submission(session, execution)
    return execution


async def create_from_submissions(session: AsyncSession, group: list[Received]) -> None:
    """Turn ``panel.submission.created`` events into executions: pending and queued for a
    worker, or rejected with the reason; either way the submission is told. The group's
    templates, their secrets and its new executions take one statement each; an execution
    of a template with a limit waits for a slot (``dispatch_ready``)."""
    submitted = [(received, SubmissionCreated.from_event(received.event)) for received in group]
    names = {(received.event.tenant, data.operation_template) for received, data in submitted}
    with session.no_autoflush:
        templates = await _templates_named(session, names)
        secrets = await secret_bindings(session, {t.id for t in templates.values()})
    written: list[Execution] = []
    waiting: list[tuple[Received, Execution]] = []
    for received, data in submitted:
        template = templates.get((received.event.tenant, data.operation_template))
        execution = received.context.run(
            _execution_of, session, received.event.tenant, data, template, secrets
        )
        limited = template is not None and template.max_concurrency is not None
        if limited and execution.status == "pending":
            waiting.append((received, execution))
        else:
            written.append(execution)
    if written:
        await insert_executions(session, written)
    for received, execution in waiting:
        assert execution.template_id is not None
        session.add(execution)
        dispatching = dispatch_ready(session, execution.template_id)
        await asyncio.create_task(dispatching, context=received.context)


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


_RETRY_OF = select(Execution.id).where(Execution.retry_of == bindparam("original")).limit(1)


async def retry(session: AsyncSession, principal: Principal, execution_id: uuid.UUID) -> Execution:
    """A new execution with the same template version and parameters, linked to the old: its
    next attempt. An execution is retried once (then its retry is the one to retry), so the
    attempts of a submission follow each other and each has its own number."""
    original = await get_execution(session, principal, execution_id)
    # Retries of one execution sent at once wait here for each other (SQLite's writes take
    # turns anyway), so the later ones see the first one's retry.
    await session.refresh(original, with_for_update=True)
    if original.status not in TERMINAL_STATUSES or original.template_id is None:
        raise Conflict(f"Execution {execution_id} is {original.status}; it cannot be retried.")
    if (retried := await session.scalar(_RETRY_OF, {"original": original.id})) is not None:
        raise Conflict(
            f"Execution {execution_id} was retried already, as execution {retried}; retry that one."
        )
    template = await session.get(OperationTemplate, original.template_id)
    if template is not None:
        check_access(principal, template)
    new = await _retry(session, original, principal.subject)
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


async def _retry(session: AsyncSession, original: Execution, actor: str) -> Execution:
    version = await session.get(TemplateVersion, (original.template_id, original.template_version))
    template = await session.get(OperationTemplate, original.template_id)
    if version is None or template is None:
        raise Conflict("The template version of this execution no longer exists.")
    definition = TemplateDefinition.from_snapshot(version.definition)
    rendered, refusals = plan(definition, original.parameters)
    if rendered is None:
        raise Conflict(f"The parameters are refused now: {'; '.join(map(str, refusals))}")
    new = await _create(
        session,
        tenant=original.tenant,
        template=template,
        version=version.version,
        definition=definition,
        rendered=rendered,
        submitted_by=actor,
        attempt=original.attempt + 1,
        retry_of=original.id,
        submission_id=original.submission_id,
    )
    _tell_submission(session, new)  # the submission follows its newest attempt from now on
    return new


async def cancel(session: AsyncSession, principal: Principal, execution_id: uuid.UUID) -> Execution:
    """Pending: cancelled at once. Running: the worker holding it is told on its next
    heartbeat (within a second), kills the process group and reports ``cancelled``."""
    execution = await get_execution(session, principal, execution_id)
    if execution.status == "pending":
        transition(execution, "cancelled")
        execution.error = f"cancelled by {principal.subject}"
        _tell_submission(session, execution)
        if execution.template_id is not None:
            await _release_slot(session, execution.template_id)
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


async def claim(
    session: AsyncSession, execution_ids: list[uuid.UUID], worker_id: str
) -> list[Execution]:
    """Atomically move the pending executions among ``execution_ids`` to running for
    ``worker_id`` and return them; exactly one claim of an execution ever succeeds, so a
    redelivered job never runs twice."""
    now = utcnow()
    claimed = (
        await session.scalars(
            update(Execution)
            .where(Execution.id.in_(execution_ids), Execution.status.in_(can_enter("running")))
            .values(
                status="running",
                worker_id=worker_id,
                started_at=now,
                heartbeat_at=now,
                updated_at=now,
            )
            .returning(Execution)
            .execution_options(populate_existing=True)
        )
    ).all()
    for execution in claimed:
        _tell_submission(session, execution)
        record_audit(
            session,
            AuditEntry,
            worker_id,
            "execution.start",
            execution.id,
            tenant=execution.tenant,
        )
    return list(claimed)


async def heartbeat(
    session: AsyncSession, worker_id: str, execution_ids: list[uuid.UUID]
) -> HeartbeatOut:
    """Record that ``worker_id`` still holds these executions; answer which ones it must stop
    (cancel requested, or no longer running under this worker) and which have ended here
    (finished, or declared lost)."""
    if not execution_ids:
        return HeartbeatOut(stop=[], ended=[])
    held = (
        Execution.id.in_(execution_ids),
        Execution.worker_id == worker_id,
        Execution.status == "running",
    )
    await session.execute(
        update(Execution)
        .where(*held)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    still_held = dict(  # execution id -> when a cancel was requested (None: not requested)
        (await session.execute(select(Execution.id, Execution.cancel_requested_at).where(*held)))
        .tuples()
        .all()
    )
    ended = [execution_id for execution_id in execution_ids if execution_id not in still_held]
    cancelled = [execution_id for execution_id, at in still_held.items() if at is not None]
    return HeartbeatOut(stop=ended + cancelled, ended=ended)


async def mark_lost(session: AsyncSession, older_than: datetime) -> int:
    """Executions whose worker stopped heartbeating become ``lost``; a retry-safe template
    gets a new execution in their place."""
    stale = (
        select(Execution)
        .where(Execution.status == "running", Execution.heartbeat_at < older_than)
        .with_for_update(skip_locked=True)
    )
    executions = (await session.scalars(stale)).all()
    for execution in executions:
        transition(execution, "lost")
        execution.error = (
            f"no heartbeat from worker {execution.worker_id} since {execution.heartbeat_at}"
        )
        record_audit(
            session,
            AuditEntry,
            "operation-svc",
            "execution.lost",
            execution.id,
            tenant=execution.tenant,
            changes={"worker_id": execution.worker_id},
        )
        if not await _retried_when_safe(session, execution) and execution.template_id is not None:
            await _release_slot(session, execution.template_id)
        _tell_submission(session, execution)  # with the reason a retry was refused, if one was
    return len(executions)


async def _retried_when_safe(session: AsyncSession, lost: Execution) -> bool:
    """Retry a lost execution of a retry-safe template; False when it is not retried. A
    retry refused now (rules tightened since it ran) is noted on the lost execution and
    holds up no other one of the sweep."""
    version = await session.get(TemplateVersion, (lost.template_id, lost.template_version))
    if version is None or not version.definition.get("retry_safe"):
        return False
    try:
        await _retry(session, lost, "operation-svc")
    except Conflict as refused:
        logger.warning("lost execution %s not retried: %s", lost.id, refused.detail)
        lost.error = f"{lost.error}; not retried: {refused.detail}"
        return False
    return True


def _line_rows(execution_id: uuid.UUID, lines: list[LogLine]) -> list[dict[str, Any]]:
    return [{"execution_id": execution_id, **line.model_dump()} for line in lines]


def _worker_event(event: Event) -> ExecutionLog | ExecutionFinished:
    if event.type == ExecutionLog.event_type:
        return ExecutionLog.from_event(event)
    if event.type == ExecutionFinished.event_type:
        return ExecutionFinished.from_event(event)
    raise InvalidEvent(f"unexpected event type {event.type!r} on execution-events")


def _apply_finish(session: AsyncSession, execution: Execution, finished: ExecutionFinished) -> bool:
    """Record the end a worker reported; False if the execution had already ended."""
    if not transition(execution, finished.status):
        return False
    execution.exit_code = finished.exit_code
    execution.log_lines = finished.log_lines
    execution.output_bytes = finished.output_bytes
    execution.output_truncated = finished.output_truncated
    execution.output = finished.output_excerpt
    execution.error = finished.error
    _tell_submission(session, execution)
    record_audit(
        session,
        AuditEntry,
        finished.worker_id,
        "execution.finish",
        execution.id,
        tenant=execution.tenant,
        changes={"status": execution.status, "exit_code": execution.exit_code},
    )
    return True


async def apply_worker_events(session: AsyncSession, group: list[Received]) -> None:
    """Store the log lines (deduplicated by seq: a redelivered batch adds nothing) and apply
    the finishes (with their last lines) of a group of worker events: one statement per
    table for the whole group, each event's own work done in its consumer's context."""
    reported = [(received, _worker_event(received.event)) for received in group]
    with session.no_autoflush:
        found = await session.execute(
            _EXECUTIONS_AND_LIMITS, {"ids": [data.execution_id for _, data in reported]}
        )
    executions = {execution.id: (execution, limit) for execution, limit in found.tuples()}
    lines: list[dict[str, Any]] = []
    released: set[uuid.UUID] = set()  # templates with a limit that now have a free slot
    for received, data in reported:
        execution, limit = executions.get(data.execution_id, (None, None))
        if execution is None or execution.tenant != received.event.tenant:
            received.context.run(
                logger.warning, "event of an unknown execution %s ignored", data.execution_id
            )
            continue
        if isinstance(data, ExecutionLog):
            lines += _line_rows(data.execution_id, data.lines)
            continue
        lines += _line_rows(data.execution_id, data.last_lines)
        ended = received.context.run(_apply_finish, session, execution, data)
        if ended and execution.template_id is not None and limit is not None:
            released.add(execution.template_id)
    await insert_ignoring_conflicts(session, ExecutionLogRow.__table__, lines)  # type: ignore[arg-type]
    for template_id in released:
        await dispatch_ready(session, template_id)


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
    stmt = ExecutionRepository(session, principal.tenant).scoped()
    if status:
        stmt = stmt.where(Execution.status == status)
    if template:
        named = Execution.template_slug == template
        template_id = as_id(template)
        stmt = stmt.where(
            named if template_id is None else named | (Execution.template_id == template_id)
        )
    if submitted_by:
        stmt = stmt.where(Execution.submitted_by == submitted_by)
    if since:
        stmt = stmt.where(Execution.created_at >= since)
    rows, cursor = await paginate(session, stmt, Execution, page)
    return list(rows), cursor

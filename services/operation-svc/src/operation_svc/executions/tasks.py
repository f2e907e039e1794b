"""The event consumers of executions: submissions become executions; the workers' reports
(log lines, finishes) are recorded. Each handles one event; the inbox groups them."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from idp_common.audit import record_audit
from idp_common.auth import ALL_ROLES, Principal, may_run
from idp_common.events import (
    ExecutionFinished,
    ExecutionLog,
    SecretBinding,
    SubmissionCreated,
)
from idp_common.messaging.envelope import Event, InvalidEvent
from idp_common.unit_of_work import UnitOfWork
from operation_svc.approvals.notices import approval_requested
from operation_svc.executions.dispatch import fill_free_slots_before_commit, queue_job
from operation_svc.executions.lifecycle import (
    new_execution,
    record_ended,
    rejected_execution,
    render,
    tell_requesters,
)
from operation_svc.executions.reports import record_finish, store_lines
from operation_svc.executions.repository import SystemExecutions
from operation_svc.models import AuditEntry, Execution, OperationTemplate
from operation_svc.safety.verdict import Refusal
from operation_svc.templates.definition import Rendered, TemplateDefinition
from operation_svc.templates.repository import TemplateCatalog

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Requested:
    """A group's submissions with the templates they name and those templates' secrets."""

    submissions: dict[str, SubmissionCreated]  # by event id
    templates: dict[tuple[str, str], OperationTemplate]  # by (tenant, id or slug)
    secrets: dict[uuid.UUID, list[SecretBinding]]
    executions: dict[uuid.UUID, Execution]  # by submission id: those asked for already


class SubmissionsToExecutions:
    """``panel.submission.created`` → an execution: pending (queued for a worker, or waiting
    for a slot of its template), awaiting approval (under the panel's policy, carried by the
    event, else the template's) or rejected with the reason; audited, the submission told.
    A submission asked for again (panel-svc heard nothing back and sent it again) gets no
    second execution: it is told where its latest one is."""

    async def prefetch(self, work: UnitOfWork, events: list[Event]) -> _Requested:
        submissions = {event.id: SubmissionCreated.from_event(event) for event in events}
        names = {(event.tenant, submissions[event.id].operation_template) for event in events}
        catalog = TemplateCatalog(work.session)
        templates = await catalog.named(names)
        secrets = await catalog.secret_bindings({t.id for t in templates.values()})
        executions = await SystemExecutions(work.session).latest_of_submissions(
            [submitted.submission_id for submitted in submissions.values()]
        )
        return _Requested(submissions, templates, secrets, executions)

    async def handle(self, work: UnitOfWork, event: Event, requested: _Requested) -> None:
        submitted = requested.submissions[event.id]
        earlier = requested.executions.get(submitted.submission_id)
        if earlier is not None and earlier.tenant == event.tenant:
            tell_requesters(work.session, earlier)
            return
        template = requested.templates.get((event.tenant, submitted.operation_template))
        secrets = requested.secrets.get(template.id, []) if template else []
        execution = work.add(self._execution(event.tenant, submitted, template, secrets))
        requested.executions[submitted.submission_id] = execution  # a copy later in the group
        if execution.status == "pending":
            assert template is not None
            if template.max_concurrency is None:
                queue_job(work.session, execution, secrets)
            else:
                fill_free_slots_before_commit(work, template.id)
        elif execution.status == "awaiting_approval":
            approval_requested(work.session, execution)
        if execution.status == "rejected":
            record_ended(work.session, execution)
        record_audit(
            work.session,
            AuditEntry,
            submitted.submitted_by,
            "execution.submit",
            execution.id,
            tenant=event.tenant,
            changes={
                "template": submitted.operation_template,
                "status": execution.status,
                "submission_id": str(submitted.submission_id),
            },
        )
        tell_requesters(work.session, execution)

    @staticmethod
    def _execution(
        tenant: str,
        submitted: SubmissionCreated,
        template: OperationTemplate | None,
        secrets: list[SecretBinding],
    ) -> Execution:
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
            refusals = [
                Refusal("not_allowed", f"{submitter.subject} may not run {template.slug!r}")
            ]
        else:
            rendered, refusals = render(definition, submitted.parameters)
        if template is not None and definition is not None and rendered is not None:
            return new_execution(
                tenant=tenant,
                template=template,
                version=template.version,
                definition=definition,
                rendered=rendered,
                secrets=secrets,
                submitted_by=submitted.submitted_by,
                submission_id=submitted.submission_id,
                approval=submitted.approval,
                panel_id=submitted.panel_id,
            )
        return rejected_execution(
            tenant=tenant,
            template=template,
            named=submitted.operation_template,
            parameters=submitted.parameters,
            specs=definition.parameter_specs() if definition else [],
            refusals=refusals,
            submitted_by=submitted.submitted_by,
            submission_id=submitted.submission_id,
            panel_id=submitted.panel_id,
        )


def _reported(event: Event) -> ExecutionLog | ExecutionFinished:
    if event.type == ExecutionLog.event_type:
        return ExecutionLog.from_event(event)
    if event.type == ExecutionFinished.event_type:
        return ExecutionFinished.from_event(event)
    raise InvalidEvent(f"unexpected event type {event.type!r} on execution-events")


@dataclass(frozen=True, slots=True)
class _Reports:
    """A group's worker reports with the executions they are about (and their limits)."""

    reports: dict[str, ExecutionLog | ExecutionFinished]  # by event id
    executions: dict[uuid.UUID, tuple[Execution, int | None]]


class WorkerReports:
    """Log lines (deduplicated by seq: a redelivered report adds nothing) and finishes
    (with their last lines); a finish under a concurrency limit frees a slot."""

    async def prefetch(self, work: UnitOfWork, events: list[Event]) -> _Reports:
        reports = {event.id: _reported(event) for event in events}
        ids = [report.execution_id for report in reports.values()]
        return _Reports(reports, await SystemExecutions(work.session).with_limits(ids))

    async def handle(self, work: UnitOfWork, event: Event, found: _Reports) -> None:
        report = found.reports[event.id]
        execution, limit = found.executions.get(report.execution_id, (None, None))
        if execution is None or execution.tenant != event.tenant:
            logger.warning("event of an unknown execution %s ignored", report.execution_id)
            return
        if isinstance(report, ExecutionLog):
            store_lines(work.session, execution, report.lines)
            return
        store_lines(work.session, execution, report.last_lines)
        if record_finish(work.session, execution, report) and limit is not None:
            assert execution.template_id is not None
            fill_free_slots_before_commit(work, execution.template_id)

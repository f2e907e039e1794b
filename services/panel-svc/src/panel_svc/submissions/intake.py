"""Submissions (``idp_common.intake``): the panel is found on a snapshot; the values are
checked, the dynamic ones against their data sources, with no session open (that call may be
slow), and secret values sealed, before the write; the write takes a submission only if its
panel is still as it was checked against (``write``)."""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import add_audit_row, audit_row
from idp_common.auth import Principal, check_run_access
from idp_common.db import after_commit, new_id
from idp_common.errors import Conflict, ValidationFailed
from idp_common.events import ApprovalPolicy, SubmissionCreated
from idp_common.idempotency import request_fingerprint
from idp_common.inbound import InboundRequest
from idp_common.intake import IdempotentIntake
from idp_common.messaging.budget import oversized_errors, queued_or_refused
from idp_common.messaging.outbox import OutboxRow, add_outbox_row
from idp_common.messaging.topology import PANEL_SUBMISSIONS
from idp_common.redaction import MASK
from idp_common.sealing import seal
from idp_common.unit_of_work import UnitOfWork, with_defaults
from panel_svc.datasources import OptionsLookup
from panel_svc.models import AuditEntry, Panel, Submission, messaging
from panel_svc.panels.service import get_panel
from panel_svc.submissions.repository import SubmissionRepository
from panel_svc.submissions.schemas import SubmissionIn
from panel_svc.submissions.validation import dynamic_errors, validate_values

SOURCE = "urn:idp:panel-svc"
SUBMITTED = Counter("idp_submissions_created_total", "Submissions accepted (each runs once).")
# Each panel's last change, share-locked until the write ends (a change waits for it).
_PANELS_CHANGED_AT = (
    select(Panel.id, Panel.updated_at)
    .where(Panel.id.in_(bindparam("ids", expanding=True)))
    .with_for_update(read=True)
)


@dataclass(frozen=True, slots=True)
class SubmissionRequest:
    """A form sent to a panel, with the lookup of its dynamic fields' options."""

    panel: uuid.UUID | str
    payload: SubmissionIn
    options: OptionsLookup
    by_event: InboundRequest | None = None  # another service's, answered when it ends


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """What one submission writes."""

    submission: Submission
    event: OutboxRow
    audit: dict[str, Any]
    panel_slug: str
    panel_changed_at: datetime  # the panel's ``updated_at`` when the values were checked


class SubmissionIntake(IdempotentIntake[SubmissionRequest, Panel, NewSubmission, Submission]):
    """Stores a validated submission and, in the same transaction, its event for
    operation-svc. Secret values are sealed to the workers' key (``seal_to``): the row shows
    them as ***, the event carries them sealed."""

    repository = SubmissionRepository

    async def target(
        self, session: AsyncSession, principal: Principal, request: SubmissionRequest
    ) -> Panel:
        return await get_panel(session, principal, request.panel)

    def target_key(self, principal: Principal, request: SubmissionRequest) -> Hashable:
        return principal.tenant, request.panel

    def fingerprint(self, target: Panel, request: SubmissionRequest) -> str:
        # Secret values stay out of the fingerprint: a plain hash of one can be reversed by
        # guessing. The same key with only another secret therefore replays the original.
        secret = {field.name for field in target.fields if field.field_type == "secret"}
        data = {name: value for name, value in request.payload.data.items() if name not in secret}
        return request_fingerprint({"panel_id": str(target.id), "data": data})

    async def build(
        self,
        target: Panel,
        principal: Principal,
        request: SubmissionRequest,
        key: str | None,
        digest: str,
    ) -> NewSubmission:
        panel = target
        if not panel.is_active:
            raise Conflict(f"Panel {panel.slug!r} is inactive and accepts no submissions.")
        check_run_access(
            principal, panel.allowed_roles, panel.allowed_groups, f"Panel {panel.slug!r}"
        )
        values, errors = validate_values(panel.fields, request.payload.data)
        if not errors:
            errors = await dynamic_errors(panel.fields, values, request.options)
        if errors:
            raise ValidationFailed(f"{len(errors)} field(s) are invalid.", errors=errors)
        secret_fields = {field.name for field in panel.fields if field.field_type == "secret"}
        sealed = {name: seal(self.seal_to, values[name]) for name in secret_fields & values.keys()}
        parameters = values | sealed  # as its event carries them: what its job must hold
        if errors := oversized_errors(parameters, "data"):
            raise ValidationFailed("1 field(s) are invalid.", errors=errors)
        shown = values | dict.fromkeys(sealed, MASK)
        submission_id = new_id()
        created = SubmissionCreated(
            submission_id=submission_id,
            panel_id=panel.id,
            panel_slug=panel.slug,
            operation_template=panel.operation_template,
            submitted_by=principal.subject,
            submitter_roles=sorted(principal.roles),
            submitter_groups=sorted(principal.groups),
            parameters=parameters,
            approval=ApprovalPolicy.model_validate(panel.approval) if panel.approval else None,
        )
        submission = with_defaults(
            Submission(
                id=submission_id,
                tenant=principal.tenant,
                panel_id=panel.id,
                submitted_by=principal.subject,
                idempotency_key=key,
                request_hash=digest,
                data=shown,
                status="pending",
                execution_request=created.model_dump(mode="json"),
            )
        )
        if request.by_event is not None:
            request.by_event.applied_to(submission)
        event = created.to_event(source=SOURCE, tenant=principal.tenant, subject=str(submission.id))
        audit = audit_row(
            principal,
            "submission.create",
            submission.id,
            changes={"panel": panel.slug, "data": shown},
        )
        return NewSubmission(
            submission,
            queued_or_refused(PANEL_SUBMISSIONS, event, "data"),
            audit,
            panel.slug,
            panel.updated_at,
        )

    def created(self, new: NewSubmission) -> Submission:
        return new.submission

    async def write(self, work: UnitOfWork, group: list[NewSubmission]) -> None:
        """Write a group of submissions. Their panels are read again: one changed since its
        submission was checked (an approval added, roles restricted, deactivated, deleted,
        while a data source answered) refuses it with a 409, never accepts it as before."""
        ids = [new.submission.panel_id for new in group]
        found = await work.session.execute(_PANELS_CHANGED_AT, {"ids": ids})
        changed_at = dict(found.tuples().all())
        for new in group:
            if changed_at.get(new.submission.panel_id) != new.panel_changed_at:
                raise Conflict(
                    f"Panel {new.panel_slug!r} changed while this submission was checked "
                    "against it; send it again to have it checked against the panel as it "
                    "is now."
                )
        after_commit(work.session, lambda: SUBMITTED.inc(len(group)))
        for new in group:
            work.add(new.submission)
            add_outbox_row(work.session, messaging, new.event)
            add_audit_row(work.session, AuditEntry, new.audit)

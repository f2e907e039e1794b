from __future__ import annotations

import logging
import uuid

from nacl.public import PublicKey
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import MASK, record_audit
from idp_common.auth import Principal, check_run_access
from idp_common.errors import Conflict, ValidationFailed
from idp_common.events import TERMINAL_STATUSES, SubmissionCreated, SubmissionUpdated
from idp_common.idempotency import request_fingerprint
from idp_common.messaging.envelope import Event
from idp_common.messaging.outbox import add_event
from idp_common.messaging.topology import PANEL_SUBMISSIONS
from idp_common.pagination import PageParams, paginate
from idp_common.sealing import seal
from panel_svc.datasources import OptionsLookup
from panel_svc.models import AuditEntry, Submission, messaging
from panel_svc.panels.service import get_panel
from panel_svc.submissions.repository import SubmissionRepository
from panel_svc.submissions.schemas import SubmissionIn
from panel_svc.submissions.validation import dynamic_errors, validate_values

SOURCE = "urn:idp:panel-svc"
logger = logging.getLogger(__name__)


async def submit(
    session: AsyncSession,
    principal: Principal,
    panel_id: uuid.UUID,
    payload: SubmissionIn,
    *,
    idempotency_key: str | None,
    options: OptionsLookup,
    seal_to: PublicKey,
) -> tuple[Submission, bool]:
    """Store a validated submission and, in the same transaction, its event for operation-svc;
    returns it and whether it was created now (False: an Idempotency-Key replay). Secret
    values are sealed to the workers' key: the row shows them as ***, the event carries them
    sealed."""
    panel = await get_panel(session, principal, panel_id)
    secret_fields = {field.name for field in panel.fields if field.field_type == "secret"}
    # Secret values stay out of the fingerprint: a plain hash of one can be reversed by
    # guessing. The same key with only another secret therefore replays the original.
    fingerprinted = {
        name: value for name, value in payload.data.items() if name not in secret_fields
    }
    digest = request_fingerprint({"panel_id": str(panel_id), "data": fingerprinted})
    submissions = SubmissionRepository(session, principal.tenant)
    if (earlier := await submissions.replay(idempotency_key, digest)) is not None:
        return earlier, False
    if not panel.is_active:
        raise Conflict(f"Panel {panel.slug!r} is inactive and accepts no submissions.")
    check_run_access(principal, panel.allowed_roles, panel.allowed_groups, f"Panel {panel.slug!r}")
    values, errors = validate_values(panel.fields, payload.data)
    if not errors:
        errors = await dynamic_errors(panel.fields, values, options)
    if errors:
        raise ValidationFailed(f"{len(errors)} field(s) are invalid.", errors=errors)
    sealed = {name: seal(seal_to, values[name]) for name in secret_fields & values.keys()}
    shown = values | dict.fromkeys(sealed, MASK)
    submission = submissions.add(
        Submission(
            tenant=principal.tenant,
            panel_id=panel.id,
            submitted_by=principal.subject,
            idempotency_key=idempotency_key,
            request_hash=digest,
            data=shown,
            status="pending",
        )
    )
    await session.flush()
    created = SubmissionCreated(
        submission_id=submission.id,
        panel_id=panel.id,
        panel_slug=panel.slug,
        operation_template=panel.operation_template,
        submitted_by=principal.subject,
        submitter_roles=sorted(principal.roles),
        submitter_groups=sorted(principal.groups),
        parameters=values | sealed,
    )
    event = created.to_event(source=SOURCE, tenant=principal.tenant, subject=str(submission.id))
    await add_event(session, messaging, PANEL_SUBMISSIONS, event)
    await record_audit(
        session,
        AuditEntry,
        principal,
        "submission.create",
        submission.id,
        changes={"panel": panel.slug, "data": shown},
    )
    return submission, True


async def list_submissions(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    *,
    panel_id: uuid.UUID | None,
    submitted_by: str | None,
    status: str | None,
) -> tuple[list[Submission], str | None]:
    stmt = SubmissionRepository(session, principal.tenant).scoped()
    if panel_id is not None:
        stmt = stmt.where(Submission.panel_id == panel_id)
    if submitted_by is not None:
        stmt = stmt.where(Submission.submitted_by == submitted_by)
    if status is not None:
        stmt = stmt.where(Submission.status == status)
    rows, cursor = await paginate(session, stmt, Submission, page)
    return list(rows), cursor


async def get_submission(
    session: AsyncSession, principal: Principal, submission_id: uuid.UUID
) -> Submission:
    return await SubmissionRepository(session, principal.tenant).get_or_404(submission_id)


def _progress(status: str) -> int:
    return 2 if status in TERMINAL_STATUSES else {"pending": 0, "running": 1}[status]


async def apply_update(session: AsyncSession, event: Event) -> None:
    """Mirror the execution's status; updates arriving out of order never move it back."""
    update = SubmissionUpdated.from_event(event)
    submission = await SubmissionRepository(session, event.tenant).get(update.submission_id)
    if submission is None:
        logger.warning("update for an unknown submission %s ignored", update.submission_id)
        return
    if _progress(update.status) < _progress(submission.status) or (
        submission.status in TERMINAL_STATUSES
    ):
        logger.info("stale update %s -> %s ignored", submission.status, update.status)
        return
    submission.status = update.status
    submission.execution_id = update.execution_id or submission.execution_id
    submission.exit_code = update.exit_code
    submission.output = update.output
    submission.error = update.error

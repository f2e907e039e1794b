from __future__ import annotations

import logging
import uuid

from nacl.public import PublicKey
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import MASK, record_audit
from idp_common.auth import Principal, check_run_access
from idp_common.errors import Conflict, ValidationFailed
from idp_common.events import SubmissionCreated, SubmissionUpdated
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
    add_event(session, messaging, PANEL_SUBMISSIONS, event)
    record_audit(
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


def _may_follow(status: str) -> tuple[str, ...]:
    """The statuses an update to ``status`` may replace: a submission never moves back,
    and a finished one stays finished."""
    return ("pending",) if status == "pending" else ("pending", "running")


async def apply_update(session: AsyncSession, event: Event) -> None:
    """Mirror the execution's status in one conditional UPDATE, so updates arriving out of
    order (or handled concurrently by two replicas) never move it back."""
    mirrored = SubmissionUpdated.from_event(event)
    values: dict[str, object] = {
        "status": mirrored.status,
        "exit_code": mirrored.exit_code,
        "output": mirrored.output,
        "error": mirrored.error,
    }
    if mirrored.execution_id is not None:
        values["execution_id"] = mirrored.execution_id
    result = await session.execute(
        update(Submission)
        .where(
            Submission.id == mirrored.submission_id,
            Submission.tenant == event.tenant,
            Submission.status.in_(_may_follow(mirrored.status)),
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        logger.info(
            "update to %s ignored: submission %s is unknown or already further",
            mirrored.status,
            mirrored.submission_id,
        )

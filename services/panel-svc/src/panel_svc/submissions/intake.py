"""Submissions: checked outside any write, written in group commits.

A submission finds its panel on a snapshot (outside SQLite's single write turn), checks its
values, the dynamic ones against their data sources with no database session open (that
call may be slow), then hands its row, its event and its audit row to the intake.
Submissions that arrive while a write is in flight share the next transaction, one INSERT
per table for all of them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, cast

from nacl.public import PublicKey
from sqlalchemy import Table
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import MASK, add_audit_row, audit_row
from idp_common.auth import Principal, check_run_access
from idp_common.db import Database, column_values, new_id, utcnow
from idp_common.errors import Conflict, ValidationFailed
from idp_common.events import SubmissionCreated
from idp_common.group_commit import GroupCommit
from idp_common.idempotency import request_fingerprint
from idp_common.messaging.outbox import OutboxRow, add_outbox_row, outbox_row
from idp_common.messaging.topology import PANEL_SUBMISSIONS
from idp_common.sealing import seal
from panel_svc.datasources import OptionsLookup
from panel_svc.models import AuditEntry, Panel, Submission, messaging
from panel_svc.panels.service import get_panel
from panel_svc.submissions.repository import SubmissionRepository
from panel_svc.submissions.schemas import SubmissionIn
from panel_svc.submissions.validation import dynamic_errors, validate_values

SOURCE = "urn:idp:panel-svc"
# Submissions written in one transaction at most (each client waits for one at a time, so a
# group is as large as the number of clients waiting).
MAX_GROUP = 100
_INSERT_SUBMISSIONS = cast(Table, Submission.__table__).insert()


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """What one submission writes: built on the request, written by the intake."""

    submission: Submission  # not in any session: written by a Core insert
    event: OutboxRow
    audit: dict[str, Any]


def _fingerprint(panel: Panel, payload: SubmissionIn) -> str:
    # Secret values stay out of the fingerprint: a plain hash of one can be reversed by
    # guessing. The same key with only another secret therefore replays the original.
    secret = {field.name for field in panel.fields if field.field_type == "secret"}
    fingerprinted = {name: value for name, value in payload.data.items() if name not in secret}
    return request_fingerprint({"panel_id": str(panel.id), "data": fingerprinted})


async def _checked(
    panel: Panel,
    principal: Principal,
    payload: SubmissionIn,
    *,
    digest: str,
    idempotency_key: str | None,
    options: OptionsLookup,
    seal_to: PublicKey,
) -> NewSubmission:
    """The submission to write, once its values pass every check."""
    if not panel.is_active:
        raise Conflict(f"Panel {panel.slug!r} is inactive and accepts no submissions.")
    check_run_access(principal, panel.allowed_roles, panel.allowed_groups, f"Panel {panel.slug!r}")
    values, errors = validate_values(panel.fields, payload.data)
    if not errors:
        errors = await dynamic_errors(panel.fields, values, options)
    if errors:
        raise ValidationFailed(f"{len(errors)} field(s) are invalid.", errors=errors)
    secret_fields = {field.name for field in panel.fields if field.field_type == "secret"}
    sealed = {name: seal(seal_to, values[name]) for name in secret_fields & values.keys()}
    shown = values | dict.fromkeys(sealed, MASK)
    now = utcnow()
    submission = Submission(
        id=new_id(),
        tenant=principal.tenant,
        panel_id=panel.id,
        submitted_by=principal.subject,
        idempotency_key=idempotency_key,
        request_hash=digest,
        data=shown,
        status="pending",
        attempt=1,
        created_at=now,
        updated_at=now,
    )
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
    audit = audit_row(
        principal,
        "submission.create",
        submission.id,
        changes={"panel": panel.slug, "data": shown},
    )
    return NewSubmission(submission, outbox_row(PANEL_SUBMISSIONS, event), audit)


class SubmissionIntake:
    """Takes submissions (see the module's docstring)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._writes = GroupCommit(db, self._write, max_items=MAX_GROUP)

    async def submit(
        self,
        principal: Principal,
        panel_id: uuid.UUID | str,
        payload: SubmissionIn,
        *,
        idempotency_key: str | None,
        options: OptionsLookup,
        seal_to: PublicKey,
    ) -> tuple[Submission, bool]:
        """Store a validated submission and, in the same transaction, its event for
        operation-svc; returns it and whether it was created now (False: an Idempotency-Key
        replay). Secret values are sealed to the workers' key: the row shows them as ***,
        the event carries them sealed."""
        async with self.db.snapshot() as session:
            panel = await get_panel(session, principal, panel_id)
            digest = _fingerprint(panel, payload)
            earlier = await SubmissionRepository(session, principal.tenant).replay(
                idempotency_key, digest, principal.subject
            )
        if earlier is not None:
            return earlier, False
        new = await _checked(
            panel,
            principal,
            payload,
            digest=digest,
            idempotency_key=idempotency_key,
            options=options,
            seal_to=seal_to,
        )
        try:
            await self._writes.submit(new)
        except IntegrityError:
            # The key was taken since the snapshot: by the same request sent twice at once,
            # which gets the original, or by another body (409).
            if idempotency_key is None:
                raise
            async with self.db.snapshot() as session:
                earlier = await SubmissionRepository(session, principal.tenant).replay(
                    idempotency_key, digest, principal.subject
                )
            if earlier is None:
                raise
            return earlier, False
        return new.submission, True

    async def _write(self, session: AsyncSession, group: list[NewSubmission]) -> None:
        await session.execute(_INSERT_SUBMISSIONS, [column_values(new.submission) for new in group])
        for new in group:
            add_outbox_row(session, messaging, new.event)
            add_audit_row(session, AuditEntry, new.audit)

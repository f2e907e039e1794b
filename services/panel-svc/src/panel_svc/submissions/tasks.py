"""The event consumer of submissions: the executions' statuses, mirrored."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from idp_common.db import utcnow
from idp_common.events import SubmissionUpdated
from idp_common.messaging.envelope import Event
from idp_common.unit_of_work import UnitOfWork
from panel_svc.submissions.repository import SubmissionMirror

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Updates:
    """A group's updates with the tenants of the submissions they are about."""

    updates: dict[str, SubmissionUpdated]  # by event id
    tenants: dict[uuid.UUID, str]


class ExecutionUpdates:
    """``submission.updated`` → the submission and its attempt show the execution's status:
    a newer attempt (a retry's execution) takes the submission over whatever the older one
    said; within one attempt a status never moves back and a finished one stays finished."""

    async def prefetch(self, work: UnitOfWork, events: list[Event]) -> _Updates:
        updates = {event.id: SubmissionUpdated.from_event(event) for event in events}
        ids = [update.submission_id for update in updates.values()]
        return _Updates(updates, await SubmissionMirror(work.session).tenants_of(ids))

    async def handle(self, work: UnitOfWork, event: Event, found: _Updates) -> None:
        mirrored = found.updates[event.id]
        if found.tenants.get(mirrored.submission_id) != event.tenant:
            logger.warning("update of an unknown submission %s ignored", mirrored.submission_id)
            return
        SubmissionMirror(work.session).mirror_at_commit(
            {
                "of_submission": mirrored.submission_id,
                "of_tenant": event.tenant,
                "to_status": mirrored.status,
                "to_attempt": mirrored.attempt,
                "to_exit_code": mirrored.exit_code,
                "to_output": mirrored.output,
                "to_error": mirrored.error,
                "to_execution_id": mirrored.execution_id,
                "at": utcnow(),
            }
        )

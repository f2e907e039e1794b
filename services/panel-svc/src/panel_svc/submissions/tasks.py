"""The event consumer of submissions: the executions' statuses, mirrored."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from prometheus_client import Counter

from idp_common.db import after_commit, utcnow
from idp_common.events import TERMINAL_STATUSES, SubmissionUpdated, excerpt
from idp_common.inbound import reply_row
from idp_common.messaging.envelope import Event
from idp_common.messaging.outbox import add_outbox_row
from idp_common.unit_of_work import UnitOfWork
from panel_svc.models import messaging
from panel_svc.submissions.intake import SOURCE
from panel_svc.submissions.repository import SubmissionMirror, SubmissionState

logger = logging.getLogger(__name__)
ENDED = Counter(
    "idp_submissions_ended_total", "Submission attempts that ended, by final status.", ["status"]
)


@dataclass(frozen=True, slots=True)
class _Updates:
    """A group's updates with the tenants of the submissions they are about."""

    updates: dict[str, SubmissionUpdated]  # by event id
    states: dict[uuid.UUID, SubmissionState]


def _ends(state: SubmissionState, update: SubmissionUpdated) -> bool:
    """Whether ``update`` ends the attempt the submission shows (or a newer one)."""
    if update.status not in TERMINAL_STATUSES:
        return False
    return update.attempt > state.attempt or (
        update.attempt == state.attempt and state.status not in TERMINAL_STATUSES
    )


class ExecutionUpdates:
    """``submission.updated`` → the submission and its attempt show the execution's status:
    a newer attempt (a retry's execution) takes the submission over whatever the older one
    said; within one attempt a status never moves back and a finished one stays finished."""

    async def prefetch(self, work: UnitOfWork, events: list[Event]) -> _Updates:
        updates = {event.id: SubmissionUpdated.from_event(event) for event in events}
        ids = [update.submission_id for update in updates.values()]
        return _Updates(updates, await SubmissionMirror(work.session).states_of(ids))

    async def handle(self, work: UnitOfWork, event: Event, found: _Updates) -> None:
        mirrored = found.updates[event.id]
        state = found.states.get(mirrored.submission_id)
        if state is None or state.tenant != event.tenant:
            logger.warning("update of an unknown submission %s ignored", mirrored.submission_id)
            return
        if _ends(state, mirrored):
            state.status, state.attempt = mirrored.status, mirrored.attempt
            after_commit(work.session, ENDED.labels(mirrored.status).inc)
            if state.request_event_id is not None:
                outcome = mirrored.model_copy(update={"output": excerpt(mirrored.output)})
                reply = reply_row(state, outcome, event.tenant, SOURCE)
                add_outbox_row(work.session, messaging, reply)
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

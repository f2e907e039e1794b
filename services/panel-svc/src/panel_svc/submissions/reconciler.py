"""Submissions operation-svc has said nothing of for ``resend_after`` (ten times that when
awaiting approval) are asked for again (``idp_common.reconciliation``): their message was
lost, or the answer was. operation-svc creates no second execution for a submission; it
tells where its latest one is."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.events import SubmissionCreated
from idp_common.messaging.outbox import add_event
from idp_common.messaging.topology import PANEL_SUBMISSIONS
from idp_common.reconciliation import Reconciler
from panel_svc.models import messaging
from panel_svc.submissions.intake import SOURCE
from panel_svc.submissions.repository import UnsettledSubmissions

# A submission awaiting approval waits for people, often for hours: it is asked about this
# many times less often. Its end (rejected, expired, or approved and run) is news the queue
# can lose like any other, and no further news would come.
AWAITING_APPROVAL_ASKED_EVERY = 10


class SubmissionReconciler(Reconciler):
    kind = "submission"

    async def resend(self, session: AsyncSession, waiting_since: datetime, limit: int) -> int:
        submissions = UnsettledSubmissions(session)
        waiting = list(await submissions.waiting_since(waiting_since, limit))
        silent = len(waiting)
        if silent < limit:
            long_ago = waiting_since - self.resend_after * (AWAITING_APPROVAL_ASKED_EVERY - 1)
            waiting += await submissions.waiting_since(
                long_ago, limit - len(waiting), ("awaiting_approval",)
            )
        for submission in waiting:
            assert submission.execution_request is not None
            request = SubmissionCreated.model_validate(submission.execution_request)
            event = request.to_event(
                source=SOURCE, tenant=submission.tenant, subject=str(submission.id)
            )
            add_event(session, messaging, PANEL_SUBMISSIONS, event)
            # Asked again now (on the reconciler's clock, which decides the next ask).
            submission.updated_at = self.clock.now()
        # Not the questions about approvals: people, not a lost message, keep most of them
        # waiting, and an alert on what was sent again would fire for every long approval.
        return silent

"""``panel.submission.requested``: another service submits a panel's form, through the
same intake as ``POST /panels/{panel}/submissions`` (``idp_common.inbound``)."""

from __future__ import annotations

from dataclasses import dataclass

from idp_common.auth import check_role
from idp_common.events import SUBMISSION_REQUESTED, SubmissionRequested
from idp_common.inbound import Accepted, InboundEvents, InboundGate, InboundRequest
from idp_common.messaging.topology import PANEL_INBOUND_EVENTS
from idp_common.rate_limit import RateLimiter
from panel_svc.datasources import DatasourceClient, OptionsLookup
from panel_svc.submissions.intake import SubmissionIntake, SubmissionRequest
from panel_svc.submissions.schemas import SubmissionIn


@dataclass(frozen=True, slots=True)
class SubmitForm:
    intake: SubmissionIntake
    datasources: DatasourceClient
    rate_limiter: RateLimiter

    async def __call__(self, request: InboundRequest) -> Accepted:
        check_role(request.principal, "operator")
        asked = SubmissionRequested.from_event(request.event)
        await self.rate_limiter.hit("submissions", request.principal)
        # The dynamic fields' values are checked against their sources as the producer.
        options = OptionsLookup(self.datasources, request.credentials)
        form = SubmissionRequest(asked.panel, SubmissionIn(data=asked.data), options, request)
        submission, _ = await self.intake.create(request.principal, form, request.idempotency_key)
        return Accepted(submission.id, f"/api/v1/submissions/{submission.id}")


def submission_requests(gate: InboundGate, form: SubmitForm) -> InboundEvents:
    return InboundEvents(gate, {SUBMISSION_REQUESTED: form}, PANEL_INBOUND_EVENTS)

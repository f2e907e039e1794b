"""``operation.execution.requested.external``: another service runs a template, through the
same intake as ``POST /executions`` (``idp_common.inbound``)."""

from __future__ import annotations

from dataclasses import dataclass

from idp_common.auth import check_role
from idp_common.events import EXECUTION_REQUESTED_EXTERNAL, ExternalExecutionRequested
from idp_common.inbound import Accepted, InboundEvents, InboundGate, InboundRequest
from idp_common.messaging.topology import OPERATION_INBOUND_EVENTS
from idp_common.rate_limit import RateLimiter
from operation_svc.executions.intake import ExecutionIntake, ExecutionRequest
from operation_svc.executions.schemas import ExecutionIn


@dataclass(frozen=True, slots=True)
class RunTemplate:
    intake: ExecutionIntake
    rate_limiter: RateLimiter

    async def __call__(self, request: InboundRequest) -> Accepted:
        check_role(request.principal, "operator")
        asked = ExternalExecutionRequested.from_event(request.event)
        await self.rate_limiter.hit("executions", request.principal)
        body = ExecutionIn(template=asked.template, parameters=asked.parameters)
        execution, _ = await self.intake.create(
            request.principal, ExecutionRequest(body, request), request.idempotency_key
        )
        return Accepted(execution.id, f"/api/v1/executions/{execution.id}")


def execution_requests(gate: InboundGate, run: RunTemplate) -> InboundEvents:
    return InboundEvents(gate, {EXECUTION_REQUESTED_EXTERNAL: run}, OPERATION_INBOUND_EVENTS)

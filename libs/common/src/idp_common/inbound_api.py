"""``POST /api/v1/events``: other services' requests as CloudEvents over HTTP (the
CloudEvents HTTP binding), for producers that cannot reach the queues. Each service takes
the event types it owns (``idp_common.inbound``), checked as on its queue."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status

from idp_common.auth import CurrentPrincipal, authorization_of
from idp_common.errors import ValidationFailed, field_error
from idp_common.inbound import InboundEvents
from idp_common.messaging.envelope import InvalidEvent, decode_http_event
from idp_common.schemas import ResponseModel

router = APIRouter(prefix="/api/v1", tags=["events"])
_TEXT = {"type": "string", "minLength": 1}
_STRUCTURED_EVENT = {
    "type": "object",
    "description": "Structured mode: the whole event (other attributes are extensions).",
    "required": ["specversion", "id", "source", "type", "tenant", "data"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": _TEXT,
        "source": _TEXT,
        "type": _TEXT | {"description": "One of the event types this service owns."},
        "tenant": _TEXT | {"description": "The credential's tenant."},
        "data": {"type": "object"},
        "subject": _TEXT,
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": _TEXT,
    },
}
_CONTENT_MODES = {
    "application/cloudevents+json": {"schema": _STRUCTURED_EVENT},
    "application/json": {
        "schema": {"type": "object", "description": "Binary mode: the data; ce-* headers."}
    },
}


class EventAccepted(ResponseModel):
    event_id: str
    id: uuid.UUID
    location: str


def _invalid(where: str, exc: InvalidEvent) -> ValidationFailed:
    return ValidationFailed(str(exc), errors=[field_error(where, str(exc))])


@router.post(
    "/events",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra={"requestBody": {"required": True, "content": _CONTENT_MODES}},
)
async def ingest_event(
    request: Request, response: Response, principal: CurrentPrincipal
) -> EventAccepted:
    """An event this service owns, in structured (``Content-Type:
    application/cloudevents+json``) or binary content mode (``ce-id``, ``ce-source``,
    ``ce-type``, ``ce-specversion``, ``ce-tenant`` headers; the body is the data). It is
    checked and acted on as on the service's inbound queue; the answer names what it
    created. Sending the same (source, id) again answers with the same resource."""
    try:
        event = decode_http_event(request.headers, await request.body())
    except InvalidEvent as exc:
        raise _invalid("body", exc) from exc
    inbound: InboundEvents = request.app.state.inbound_events
    authorization = authorization_of(request)
    assert authorization is not None  # the principal was read from it
    try:
        accepted = await inbound.ingest(event, principal, authorization)
    except InvalidEvent as exc:
        raise _invalid("data", exc) from exc
    response.headers["Location"] = accepted.location
    return EventAccepted(event_id=event.id, id=accepted.id, location=accepted.location)

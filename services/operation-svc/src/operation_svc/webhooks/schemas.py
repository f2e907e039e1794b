from __future__ import annotations

import urllib.parse
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from idp_common.outbound import HTTP_URL_SCHEMA, unusable_url
from idp_common.redaction import masked_url
from idp_common.schemas import PatchModel, ResponseModel, StrictModel
from operation_svc.webhooks.events import WebhookEventType


def _http_url(url: str) -> str:
    if (unusable := unusable_url(url)) is not None:
        raise ValueError(unusable)
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not hold credentials (the signature authenticates deliveries)")
    return url


WebhookUrl = Annotated[
    str,
    Field(min_length=1, max_length=2000, json_schema_extra=HTTP_URL_SCHEMA),
    AfterValidator(_http_url),
]
EventTypes = Annotated[list[WebhookEventType], Field(min_length=1, max_length=10)]
TemplateRefs = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]],
    Field(max_length=50, description="Only events of these templates (ids or slugs)."),
]
PanelIds = Annotated[
    list[uuid.UUID], Field(max_length=50, description="Only events of these panels' submissions.")
]


class WebhookIn(StrictModel):
    url: WebhookUrl
    description: Annotated[str, Field(max_length=1000)] = ""
    event_types: EventTypes
    templates: TemplateRefs = []
    panel_ids: PanelIds = []
    active: bool = True


class WebhookUpdate(PatchModel):
    url: WebhookUrl | None = None
    description: Annotated[str, Field(max_length=1000)] | None = None
    event_types: EventTypes | None = None
    templates: TemplateRefs | None = None
    panel_ids: PanelIds | None = None
    active: bool | None = Field(
        default=None, description="true re-enables a disabled subscription (its reason cleared)."
    )


class WebhookOut(ResponseModel):
    id: uuid.UUID
    url: Annotated[str, AfterValidator(masked_url)] = Field(
        description="Credentials in its query (?token=) as ***: send them back to keep them."
    )
    description: str
    event_types: list[str]
    template_ids: list[str]
    panel_ids: list[str]
    active: bool
    disabled_reason: str | None
    failing_since: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class WebhookSecret(ResponseModel):
    secret: Annotated[
        str,
        Field(description="The signing secret (whsec_…): shown now and never again."),
    ]


class WebhookCreated(WebhookOut, WebhookSecret):
    pass


class WebhookRotated(WebhookSecret):
    previous_secret_until: datetime = Field(
        description="Until then deliveries are signed with the replaced secret too (rotate "
        "again to drop it at once)."
    )


DeliveryStatus = Literal["pending", "sending", "succeeded", "failed"]


class AttemptOut(ResponseModel):
    number: int
    trigger: str
    outcome: str
    status_code: int | None
    latency_ms: float
    response_excerpt: str | None
    error: str | None
    started_at: datetime


class DeliveryOut(ResponseModel):
    id: uuid.UUID = Field(description="The message id: the webhook-id header of every attempt.")
    event_type: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    attempt_log: list[AttemptOut] = []

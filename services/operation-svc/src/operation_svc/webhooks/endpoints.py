"""Outbound webhooks of the caller's tenant (admins): subscriptions, their deliveries and
the attempts of each, resends."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from idp_common.auth import Admin, caller_credentials
from idp_common.dependencies import SessionDep
from idp_common.pagination import Page, PageParamsDep
from operation_svc.config import OperationSettings
from operation_svc.schedules.panels import PanelClient
from operation_svc.webhooks import service
from operation_svc.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryStatus,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookRotated,
    WebhookUpdate,
)

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])


def _allowed_hosts(request: Request) -> list[str]:
    settings: OperationSettings = request.app.state.settings
    return settings.webhook.allowed_hosts


AllowedHosts = Annotated[list[str], Depends(_allowed_hosts)]


async def _check_panels(request: Request, panel_ids: list[uuid.UUID] | None) -> None:
    if panel_ids:
        panels: PanelClient = request.app.state.panels
        await service.check_panels(panels, panel_ids, caller_credentials(request))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    data: WebhookIn,
    request: Request,
    session: SessionDep,
    principal: Admin,
    allowed: AllowedHosts,
) -> WebhookCreated:
    """Subscribe a URL to events of the tenant. The answer holds the signing secret
    (``whsec_…``), which is never shown again: keep it to verify deliveries."""
    await _check_panels(request, data.panel_ids)
    hook, secret = await service.create_webhook(session, principal, data, allowed)
    return WebhookCreated(**WebhookOut.model_validate(hook).model_dump(), secret=secret)


@router.get("")
async def list_webhooks(
    session: SessionDep, principal: Admin, page: PageParamsDep
) -> Page[WebhookOut]:
    """The tenant's subscriptions, disabled ones with their reason."""
    hooks, cursor = await service.list_webhooks(session, principal, page)
    return Page(items=[WebhookOut.model_validate(hook) for hook in hooks], next_cursor=cursor)


@router.get("/{webhook_id}")
async def get_webhook(webhook_id: uuid.UUID, session: SessionDep, principal: Admin) -> WebhookOut:
    return WebhookOut.model_validate(await service.get_webhook(session, principal, webhook_id))


@router.patch("/{webhook_id}")
async def update_webhook(
    webhook_id: uuid.UUID,
    data: WebhookUpdate,
    request: Request,
    session: SessionDep,
    principal: Admin,
    allowed: AllowedHosts,
) -> WebhookOut:
    """Change a subscription; ``active: true`` enables a disabled one again."""
    await _check_panels(request, data.panel_ids)
    hook = await service.update_webhook(session, principal, webhook_id, data, allowed)
    return WebhookOut.model_validate(hook)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: uuid.UUID, session: SessionDep, principal: Admin) -> Response:
    """Remove a subscription with its deliveries: nothing more is sent to it."""
    await service.delete_webhook(session, principal, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/rotate-secret")
async def rotate_secret(
    webhook_id: uuid.UUID, session: SessionDep, principal: Admin
) -> WebhookRotated:
    """A new signing secret, used from the next attempt on and shown only now. The one it
    replaces signs each delivery beside it for 24 hours (``webhook-signature`` holds both),
    so a receiver may switch meanwhile; rotating again drops it at once."""
    hook = await service.rotate_secret(session, principal, webhook_id)
    assert hook.previous_secret_until is not None
    return WebhookRotated(
        secret=hook.signing_secret, previous_secret_until=hook.previous_secret_until
    )


@router.get("/{webhook_id}/deliveries")
async def list_deliveries(
    webhook_id: uuid.UUID,
    session: SessionDep,
    principal: Admin,
    page: PageParamsDep,
    status: DeliveryStatus | None = None,
) -> Page[DeliveryOut]:
    """The subscription's deliveries, newest first, each with every attempt: its status
    code, latency and an excerpt of the response (or why it failed). ``status=failed``
    lists those given up."""
    found, cursor = await service.list_deliveries(session, principal, webhook_id, page, status)
    items = [
        DeliveryOut.model_validate(delivery).model_copy(
            update={"attempt_log": [AttemptOut.model_validate(a) for a in attempts]}
        )
        for delivery, attempts in found
    ]
    return Page(items=items, next_cursor=cursor)


@router.post("/{webhook_id}/deliveries/{delivery_id}/resend", status_code=status.HTTP_202_ACCEPTED)
async def resend_delivery(
    webhook_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, principal: Admin
) -> DeliveryOut:
    """Send a delivery again now (same message id and body, a new attempt)."""
    delivery = await service.resend(session, principal, webhook_id, delivery_id)
    return DeliveryOut.model_validate(delivery)

"""Webhook subscriptions, managed by a tenant's admins: each target checked against the
outbound rules, each write audited (never with the secret), deliveries listed and resent."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.auth import Principal
from idp_common.db import utcnow
from idp_common.errors import Conflict, NotFound, ValidationFailed, field_error
from idp_common.kept_credentials import kept_for_their_host
from idp_common.outbound import internal_literal_host
from idp_common.pagination import PageParams
from operation_svc.models import AuditEntry, WebhookAttempt, WebhookDelivery, WebhookSubscription
from operation_svc.schedules.panels import PanelClient
from operation_svc.templates.repository import TemplateRepository
from operation_svc.webhooks.repository import DeliveryRepository, WebhookRepository
from operation_svc.webhooks.schemas import WebhookIn, WebhookUpdate
from operation_svc.webhooks.signing import ROTATION_OVERLAP, new_secret

ALLOWLIST_SETTING = "OPERATION_WEBHOOK_ALLOWED_HOSTS"


def check_target(url: str, allowed_hosts: Collection[str]) -> None:
    """Refuse a URL whose host is written as an internal address (names are checked when
    they are resolved, at each delivery)."""
    internal = internal_literal_host(url)
    if internal and internal not in {host.lower() for host in allowed_hosts}:
        message = f"{internal} is not public; add it to {ALLOWLIST_SETTING} if this is intended"
        raise ValidationFailed(
            "The webhook URL is an internal address.",
            errors=[field_error("url", message, "internal_address")],
        )


async def _template_ids(session: AsyncSession, tenant: str, references: list[str]) -> list[str]:
    templates = TemplateRepository(session, tenant)
    ids: list[str] = []
    for reference in references:
        template = await templates.get_by_ref(reference)
        if template is None:
            raise ValidationFailed(
                "Unknown operation template.",
                errors=[field_error("templates", f"no template {reference!r}", "unknown_template")],
            )
        ids.append(str(template.id))
    return sorted(set(ids))


async def check_panels(
    panels: PanelClient, panel_ids: Collection[uuid.UUID], credentials: Mapping[str, str]
) -> None:
    """Refuse a filter naming a panel the caller's tenant does not have at panel-svc (asked
    as the caller, before any transaction): another tenant's panel, or a mistyped id, was
    kept and silently matched nothing, as a template filter's is refused."""
    wanted = sorted(set(panel_ids))
    found = await asyncio.gather(*(panels.find(str(panel), credentials) for panel in wanted))
    if unknown := [str(panel) for panel, target in zip(wanted, found, strict=True) if not target]:
        message = f"this tenant has no panel {', '.join(unknown)}"
        raise ValidationFailed(
            "Unknown panel.", errors=[field_error("panel_ids", message, "unknown_panel")]
        )


async def create_webhook(
    session: AsyncSession, principal: Principal, data: WebhookIn, allowed_hosts: Collection[str]
) -> tuple[WebhookSubscription, str]:
    """The subscription and its signing secret, which only the caller will ever see."""
    check_target(data.url, allowed_hosts)
    secret = new_secret()
    hooks = WebhookRepository(session, principal.tenant)
    subscription = hooks.add(
        WebhookSubscription(
            tenant=principal.tenant,
            url=data.url,
            description=data.description,
            event_types=sorted(set(data.event_types)),
            template_ids=await _template_ids(session, principal.tenant, data.templates),
            panel_ids=sorted({str(panel) for panel in data.panel_ids}),
            active=data.active,
            signing_secret=secret,
            created_by=principal.subject,
            updated_by=principal.subject,
        )
    )
    await session.flush()
    await hooks.write_routes(subscription)
    _audit(session, principal, "webhook.create", subscription)
    return subscription, secret


def _audit(
    session: AsyncSession, principal: Principal, action: str, hook: WebhookSubscription
) -> None:
    changes: dict[str, Any] = {"url": hook.url, "event_types": hook.event_types}
    changes |= {"templates": hook.template_ids, "panels": hook.panel_ids, "active": hook.active}
    record_audit(session, AuditEntry, principal, action, hook.id, changes=changes)


async def list_webhooks(
    session: AsyncSession, principal: Principal, page: PageParams
) -> tuple[list[WebhookSubscription], str | None]:
    return await WebhookRepository(session, principal.tenant).page(page)


async def get_webhook(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID
) -> WebhookSubscription:
    return await WebhookRepository(session, principal.tenant).get_or_404(webhook_id)


async def update_webhook(
    session: AsyncSession,
    principal: Principal,
    webhook_id: uuid.UUID,
    data: WebhookUpdate,
    allowed_hosts: Collection[str],
) -> WebhookSubscription:
    """Changes sent at once take their turns on the subscription's row: each rewrites the
    routes the one before left (else each kept its own, and an event matching the copies
    was a second delivery of one message, refused by its key: the transaction that ended
    an execution failed)."""
    hooks = WebhookRepository(session, principal.tenant)
    hook = await hooks.get_or_404(webhook_id, locked=True)
    if data.url is not None:
        # Its credentials were shown masked: a mask sent back keeps the value it stands for.
        url = kept_for_their_host(
            data.url, hook.url, sent_url=data.url, stored_url=hook.url, field="url", key="url"
        )
        check_target(url, allowed_hosts)
        hook.url = url
    if data.description is not None:
        hook.description = data.description
    if data.event_types is not None:
        hook.event_types = sorted(set(data.event_types))
    if data.templates is not None:
        hook.template_ids = await _template_ids(session, principal.tenant, data.templates)
    if data.panel_ids is not None:
        hook.panel_ids = sorted({str(panel) for panel in data.panel_ids})
    if data.active is not None and data.active != hook.active:
        hook.active = data.active
        if hook.active:
            hook.disabled_reason, hook.failing_since = None, None
        else:
            hook.disabled_reason = f"disabled by {principal.subject}"
            await hooks.stop_deliveries(hook.id, hook.disabled_reason)
    hook.updated_by = principal.subject
    await hooks.write_routes(hook)
    _audit(session, principal, "webhook.update", hook)
    await session.flush()
    return hook


async def delete_webhook(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID
) -> None:
    """The subscription, its routes, deliveries and attempts are removed."""
    hooks = WebhookRepository(session, principal.tenant)
    hook = await hooks.get_or_404(webhook_id)
    _audit(session, principal, "webhook.delete", hook)
    await hooks.remove(hook)


async def rotate_secret(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID
) -> WebhookSubscription:
    """A new signing secret, used from the next attempt on (shown once); the one it
    replaces signs beside it for ``ROTATION_OVERLAP``, so that a receiver still checking
    with it refuses nothing while it switches. Two secrets sign at most: rotating again
    drops the older one at once (a leaked secret is rotated twice)."""
    hook = await WebhookRepository(session, principal.tenant).get_or_404(webhook_id, locked=True)
    hook.previous_signing_secret = hook.signing_secret
    hook.previous_secret_until = utcnow() + ROTATION_OVERLAP
    hook.signing_secret = new_secret()
    hook.updated_by = principal.subject
    record_audit(session, AuditEntry, principal, "webhook.rotate_secret", hook.id)
    return hook


async def list_deliveries(
    session: AsyncSession,
    principal: Principal,
    webhook_id: uuid.UUID,
    page: PageParams,
    status: str | None = None,
) -> tuple[list[tuple[WebhookDelivery, list[WebhookAttempt]]], str | None]:
    """The subscription's deliveries (in ``status`` if given), newest first, each with its
    attempts."""
    hook = await get_webhook(session, principal, webhook_id)
    deliveries = DeliveryRepository(session, principal.tenant)
    found, cursor = await deliveries.page(page, deliveries.of_subscription(hook.id, status))
    attempts = await deliveries.attempts_of(hook.id, [delivery.id for delivery in found])
    return [(delivery, attempts[delivery.id]) for delivery in found], cursor


async def resend(
    session: AsyncSession, principal: Principal, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery:
    """Ask for one more attempt now, whatever became of the delivery (same id and body)."""
    hook = await get_webhook(session, principal, webhook_id)
    if not hook.active:
        raise Conflict(f"Webhook {webhook_id} is disabled; enable it first.")
    delivery = await DeliveryRepository(session, principal.tenant).one(hook.id, delivery_id)
    if delivery is None:
        raise NotFound(f"Delivery {delivery_id} not found.")
    if delivery.status == "sending":
        raise Conflict(f"Delivery {delivery_id} is being sent right now.")
    delivery.status, delivery.next_attempt_at = "pending", utcnow()
    delivery.resend_requested = True
    record_audit(
        session,
        AuditEntry,
        principal,
        "webhook.resend",
        hook.id,
        changes={"delivery_id": str(delivery.id)},
    )
    await session.flush()
    return delivery

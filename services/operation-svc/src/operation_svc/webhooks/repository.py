"""Queries of webhooks: a tenant's subscriptions, their routes and deliveries; and the
cross-tenant claim of due deliveries by the delivery loop."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.repository import CrossTenantRepository, TenantRepository
from operation_svc.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookRoute,
    WebhookSubscription,
)

GAVE_UP = "failed"


class WebhookRepository(TenantRepository[WebhookSubscription]):
    model = WebhookSubscription

    async def write_routes(self, subscription: WebhookSubscription) -> None:
        """Make the routes say what ``subscription`` receives now (none while inactive)."""
        await self.session.execute(
            delete(WebhookRoute).where(WebhookRoute.subscription_id == subscription.id)
        )
        if not subscription.active:
            return
        none: list[uuid.UUID | None] = [None]  # no filter: any
        templates = [uuid.UUID(t) for t in subscription.template_ids] or none
        panels = [uuid.UUID(p) for p in subscription.panel_ids] or none
        self.session.add_all(
            WebhookRoute(
                subscription_id=subscription.id,
                tenant=subscription.tenant,
                event_type=event_type,
                template_id=template_id,
                panel_id=panel_id,
            )
            for event_type in subscription.event_types
            for template_id in templates
            for panel_id in panels
        )

    async def stop_deliveries(self, subscription_id: uuid.UUID, reason: str) -> None:
        """Give up what a subscription was still to be sent (it was disabled)."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.status.in_(("pending", "sending")),
            )
            .values(status=GAVE_UP, last_error=reason, lease_token=None)
        )


class DeliveryRepository(TenantRepository[WebhookDelivery]):
    model = WebhookDelivery

    def of_subscription(
        self, subscription_id: uuid.UUID, status: str | None = None
    ) -> Select[tuple[WebhookDelivery]]:
        stmt = self.scoped().where(WebhookDelivery.subscription_id == subscription_id)
        return stmt if status is None else stmt.where(WebhookDelivery.status == status)

    async def one(
        self, subscription_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery | None:
        stmt = self.of_subscription(subscription_id).where(WebhookDelivery.id == delivery_id)
        return (await self.session.scalars(stmt)).one_or_none()

    async def attempts_of(
        self, subscription_id: uuid.UUID, delivery_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[WebhookAttempt]]:
        """The attempts of the deliveries, oldest first (the subscription is the tenant's)."""
        found: dict[uuid.UUID, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
        stmt = (
            select(WebhookAttempt)
            .where(
                WebhookAttempt.subscription_id == subscription_id,
                WebhookAttempt.delivery_id.in_(delivery_ids),
            )
            .order_by(WebhookAttempt.number, WebhookAttempt.started_at)
        )
        for attempt in await self.session.scalars(stmt):
            found[attempt.delivery_id].append(attempt)
        return found


class DueDeliveries(CrossTenantRepository[AsyncSession]):
    """The delivery loop sends for every tenant at once."""

    async def claim(
        self, now: datetime, lease_until: datetime, token: uuid.UUID, limit: int
    ) -> list[tuple[WebhookDelivery, WebhookSubscription]]:
        """Lease up to ``limit`` due deliveries (or ones whose lease ran out: their sender
        stopped) of active subscriptions. Rows another replica is claiming are skipped
        (PostgreSQL); SQLite has one writer at a time."""
        stmt = (
            select(WebhookDelivery, WebhookSubscription)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(
                WebhookSubscription.active,
                or_(
                    and_(
                        WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now
                    ),
                    and_(WebhookDelivery.status == "sending", WebhookDelivery.lease_until < now),
                ),
            )
            .order_by(WebhookDelivery.next_attempt_at)
            .limit(limit)
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
        claimed = list((await self.connection.execute(stmt)).tuples())
        for delivery, _ in claimed:
            delivery.status, delivery.lease_until, delivery.lease_token = (
                "sending",
                lease_until,
                token,
            )
        return claimed

    async def forget_ended(self, before: datetime) -> int:
        """Delete the deliveries that ended before ``before`` (their attempts go with them)."""
        result = await self.connection.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.status.in_(("succeeded", GAVE_UP)),
                WebhookDelivery.updated_at < before,
            )
        )
        return int(getattr(result, "rowcount", 0))

    async def leased(
        self, subscription_id: uuid.UUID, delivery_id: uuid.UUID, token: uuid.UUID
    ) -> tuple[WebhookDelivery, WebhookSubscription] | None:
        """A delivery this sender still holds, locked, with its subscription."""
        stmt = (
            select(WebhookDelivery, WebhookSubscription)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.lease_token == token,
            )
            .with_for_update(of=WebhookDelivery)
        )
        return (await self.connection.execute(stmt)).tuples().one_or_none()

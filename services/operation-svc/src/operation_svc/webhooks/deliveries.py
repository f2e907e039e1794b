"""The delivery loop: every pass leases due deliveries (so no two replicas send one attempt)
for its free slots, POSTs each through the outbound guard, signed, records the attempt (which
frees its slot), and schedules the next one with exponential backoff and jitter, up to a
number of attempts. A subscription whose every attempt has failed for longer than a setting
is disabled, with the reason, and what it was still to be sent is given up."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.audit import record_audit
from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.content_decoding import read_capped
from idp_common.db import Database
from idp_common.events import storable
from idp_common.loops import PeriodicLoop
from idp_common.outbound import GuardedTransport, OutboundRefused, keeping_no_cookies
from operation_svc.config import WebhookSettings
from operation_svc.models import AuditEntry, WebhookAttempt, WebhookDelivery, WebhookSubscription
from operation_svc.webhooks.metrics import record_attempt
from operation_svc.webhooks.repository import GAVE_UP, DueDeliveries, WebhookRepository
from operation_svc.webhooks.service import ALLOWLIST_SETTING
from operation_svc.webhooks.signing import signed_headers

logger = logging.getLogger(__name__)
SYSTEM_ACTOR = "system:webhooks"
RESPONSE_EXCERPT_BYTES = 1024
# A sender holds a delivery this long past its request timeout; then another may take it.
LEASE_MARGIN_SECONDS = 60
CLEANUP_EVERY_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class _Claimed:
    subscription_id: uuid.UUID
    delivery_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    body: str


@dataclass(frozen=True, slots=True)
class _Outcome:
    started_at: datetime
    latency_seconds: float
    status_code: int | None = None
    excerpt: str | None = None
    error: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def reason(self) -> str:
        return self.error or f"HTTP {self.status_code}"


def retry_delay(attempts: int, base_seconds: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": between half and all of base·2^(n-1)."""
    ceiling = base_seconds * 2.0 ** (attempts - 1)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class WebhookDeliveryLoop(PeriodicLoop):
    def __init__(
        self,
        db: Database,
        settings: WebhookSettings,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(settings.poll_seconds)
        self.db = db
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311  (jitter, not a secret)
        self._next_cleanup = 0.0  # monotonic
        self._sending: set[asyncio.Task[None]] = set()  # deliveries started by run_once
        # No redirects: a receiver answers where it was registered (a 3xx is a failure).
        self.client = httpx.AsyncClient(
            transport=GuardedTransport(settings.allowed_hosts, ALLOWLIST_SETTING),
            timeout=settings.request_timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            cookies=keeping_no_cookies(),
        )

    async def run_once(self) -> None:
        """Start sending what is due, as many as there are free slots (``batch_size``): each
        delivery holds its own slot until its answer is recorded, which frees it and wakes the
        loop. A receiver that answers late (up to the timeout) holds one slot, not every
        other tenant's next deliveries, as a batch waiting for its slowest answer did."""
        while (free := self.settings.batch_size - len(self._sending)) > 0 and not self.stopping:
            token = uuid.uuid4()
            claimed = await self._claim(token, free)
            for each in claimed:
                task = asyncio.create_task(self._deliver(each, token))
                self._sending.add(task)
                task.add_done_callback(self._delivered)
            if len(claimed) < free:
                break
        if self.clock.monotonic() >= self._next_cleanup:
            self._next_cleanup = self.clock.monotonic() + CLEANUP_EVERY_SECONDS
            await self.forget_old()

    async def forget_old(self) -> int:
        """Delete what ended longer ago than the retention (any replica may: it is
        idempotent)."""
        before = self.clock.now() - timedelta(days=self.settings.retention_days)
        async with self.db.transaction() as session:
            return await DueDeliveries(session).forget_ended(before)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not task.cancelled() and (failed := task.exception()) is not None:
            # Its lease runs out and another pass sends it again.
            logger.error("a webhook delivery was not recorded", exc_info=failed)
        self.wake()

    async def after_stop(self) -> None:
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self.client.aclose()

    async def send_due(self) -> int:
        """Send what is due now (one batch) and wait for the answers; the number of attempts
        made."""
        token = uuid.uuid4()
        claimed = await self._claim(token, self.settings.batch_size)
        await asyncio.gather(*(self._deliver(each, token) for each in claimed))
        return len(claimed)

    async def _deliver(self, claimed: _Claimed, token: uuid.UUID) -> None:
        outcome = await self._post(claimed)
        async with self.db.transaction() as session:
            await self._record(session, claimed, token, outcome)

    async def _claim(self, token: uuid.UUID, limit: int) -> list[_Claimed]:
        now = self.clock.now()
        lease = timedelta(seconds=self.settings.request_timeout_seconds + LEASE_MARGIN_SECONDS)
        async with self.db.transaction() as session:
            rows = await DueDeliveries(session).claim(now, now + lease, token, limit)
            return [
                _Claimed(d.subscription_id, d.id, s.url, s.signing_secrets(now), d.body)
                for d, s in rows
            ]

    async def _post(self, claimed: _Claimed) -> _Outcome:
        now = self.clock.now()
        headers = signed_headers(claimed.secrets, str(claimed.delivery_id), now, claimed.body)
        started = time.perf_counter()

        def outcome(
            status_code: int | None = None, excerpt: str | None = None, error: str | None = None
        ) -> _Outcome:
            return _Outcome(now, time.perf_counter() - started, status_code, excerpt, error)

        try:
            # The whole answer within the timeout, not each read of it: a receiver
            # trickling its answer would otherwise outlive the lease, and be sent to twice.
            async with (
                asyncio.timeout(self.settings.request_timeout_seconds),
                self.client.stream(
                    "POST", claimed.url, content=claimed.body.encode(), headers=headers
                ) as response,
            ):
                body, _ = await read_capped(response, RESPONSE_EXCERPT_BYTES)
                excerpt = storable(body.decode("utf-8", "replace"))
                return outcome(status_code=response.status_code, excerpt=excerpt)
        except OutboundRefused as refused:
            return outcome(error=f"refused by the outbound rules: {refused}")
        except (httpx.TimeoutException, TimeoutError):
            return outcome(error=f"no answer within {self.settings.request_timeout_seconds}s")
        # ValueError: a redirect to a host name the client refuses (idna's errors)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as failed:
            return outcome(error=f"{type(failed).__name__}: {failed}"[:500])

    async def _record(
        self, session: AsyncSession, claimed: _Claimed, token: uuid.UUID, outcome: _Outcome
    ) -> None:
        found = await DueDeliveries(session).leased(
            claimed.subscription_id, claimed.delivery_id, token
        )
        if found is None:  # its lease ran out and another sender took it
            return
        delivery, subscription = found
        delivery.attempts += 1
        session.add(
            WebhookAttempt(
                subscription_id=delivery.subscription_id,
                delivery_id=delivery.id,
                number=delivery.attempts,
                trigger="manual" if delivery.resend_requested else "automatic",
                outcome="succeeded" if outcome.succeeded else "failed",
                status_code=outcome.status_code,
                latency_ms=round(outcome.latency_seconds * 1000, 3),
                response_excerpt=outcome.excerpt,
                error=outcome.error,
                started_at=outcome.started_at,
            )
        )
        delivery.lease_token, delivery.lease_until, delivery.resend_requested = None, None, False
        if outcome.succeeded:
            ended: str | None = self._succeeded(delivery, subscription)
        else:
            ended = await self._failed(session, delivery, subscription, outcome)
        record_attempt(
            session, "succeeded" if outcome.succeeded else "failed", outcome.latency_seconds, ended
        )

    @staticmethod
    def _succeeded(delivery: WebhookDelivery, subscription: WebhookSubscription) -> str:
        delivery.status, delivery.last_error = "succeeded", None
        subscription.failing_since = None
        return "succeeded"

    async def _failed(
        self,
        session: AsyncSession,
        delivery: WebhookDelivery,
        subscription: WebhookSubscription,
        outcome: _Outcome,
    ) -> str | None:
        """Retry later or give up; disable the subscription if it has failed for too long.
        How the delivery ended, if it did."""
        now = self.clock.now()
        delivery.last_error = outcome.reason
        if not subscription.active:  # disabled by an earlier attempt of this pass
            delivery.status = GAVE_UP
            return GAVE_UP
        subscription.failing_since = subscription.failing_since or now
        failing_for = (now - subscription.failing_since).total_seconds()
        if failing_for >= self.settings.disable_after_seconds:
            await self._disable(session, subscription, outcome.reason)
            delivery.status = GAVE_UP
            return GAVE_UP
        if delivery.attempts >= self.settings.max_attempts:
            delivery.status = GAVE_UP
            return GAVE_UP
        delay = retry_delay(delivery.attempts, self.settings.retry_base_seconds, self.rng)
        delivery.status, delivery.next_attempt_at = "pending", now + timedelta(seconds=delay)
        return None

    async def _disable(
        self, session: AsyncSession, subscription: WebhookSubscription, last_error: str
    ) -> None:
        assert subscription.failing_since is not None
        reason = (
            f"disabled automatically: every delivery attempt has failed since "
            f"{subscription.failing_since.isoformat()} (last: {last_error})"
        )
        subscription.active, subscription.disabled_reason = False, reason
        hooks = WebhookRepository(session, subscription.tenant)
        await hooks.write_routes(subscription)
        await hooks.stop_deliveries(subscription.id, "the subscription was disabled")
        logger.warning("webhook %s disabled: %s", subscription.id, last_error)
        record_audit(
            session,
            AuditEntry,
            SYSTEM_ACTOR,
            "webhook.disable",
            subscription.id,
            tenant=subscription.tenant,
            changes={"reason": reason},
        )

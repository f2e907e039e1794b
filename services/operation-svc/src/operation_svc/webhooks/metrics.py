"""Webhook metrics, counted once the attempt's record has committed."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import after_commit

ATTEMPTS = Counter(
    "idp_webhook_attempts_total", "Webhook delivery attempts, by outcome.", ["outcome"]
)
DELIVERIES_ENDED = Counter(
    "idp_webhook_deliveries_ended_total",
    "Webhook deliveries that ended: delivered or given up.",
    ["outcome"],
)
LATENCY = Histogram(
    "idp_webhook_attempt_latency_seconds",
    "From sending a webhook delivery to its answer (or failure).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record_attempt(
    session: AsyncSession, outcome: str, latency_seconds: float, ended: str | None
) -> None:
    """Count one attempt and, if it ended its delivery, how (``succeeded`` or ``failed``)."""

    def count() -> None:
        ATTEMPTS.labels(outcome).inc()
        LATENCY.observe(latency_seconds)
        if ended is not None:
            DELIVERIES_ENDED.labels(ended).inc()

    after_commit(session, count)

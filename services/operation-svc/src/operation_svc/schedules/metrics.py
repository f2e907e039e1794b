"""Schedule metrics, counted once their transaction has committed (a slot another replica
took, whose transaction rolls back, is not counted)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import after_commit

FIRES = Counter(
    "idp_schedule_fires_total",
    "Slots of schedules that created an execution (a panel schedule's: a submission).",
)
SKIPS = Counter(
    "idp_schedule_skips_total",
    "Slots of schedules that created no execution, by reason "
    "(overlap, queue_full, missed, refused).",
    ["reason"],
)
LATENESS = Histogram(
    "idp_schedule_fire_lateness_seconds",
    "From a slot's fire time (its time plus jitter) to the creation of its execution "
    "(a panel schedule's: its submission's acceptance).",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)


def record_fire(session: AsyncSession, lateness_seconds: float) -> None:
    def count() -> None:
        FIRES.inc()
        LATENESS.observe(max(lateness_seconds, 0.0))

    after_commit(session, count)


def record_skip(session: AsyncSession, reason: str) -> None:
    after_commit(session, SKIPS.labels(reason).inc)

"""Execution metrics, counted once their transaction has committed: by template (its slug;
a tenant has as many series as it has templates) and final status."""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from idp_common.db import after_commit
from operation_svc.models import Execution

ENDED = Counter(
    "idp_executions_ended_total",
    "Executions that ended, by template and final status.",
    ["template", "status"],
)
DURATION = Histogram(
    "idp_execution_duration_seconds",
    "From start to end of executions that ran, by template.",
    ["template"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600),
)
QUEUE_TO_START = Histogram(
    "idp_execution_queue_to_start_seconds",
    "From the creation of an execution to its claim by a worker, by template.",
    ["template"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)


def record_end(session: AsyncSession, execution: Execution) -> None:
    """Count an execution that has just ended (rejected, cancelled, lost or finished)."""
    template, status = execution.template_slug, execution.status
    ran = None
    if execution.started_at is not None and execution.finished_at is not None:
        ran = (execution.finished_at - execution.started_at).total_seconds()

    def count() -> None:
        ENDED.labels(template, status).inc()
        if ran is not None:
            DURATION.labels(template).observe(ran)

    after_commit(session, count)


def record_start(session: AsyncSession, execution: Execution) -> None:
    """Observe how long a claimed execution waited since its creation."""
    assert execution.started_at is not None
    template, waited = execution.template_slug, execution.started_at - execution.created_at
    after_commit(session, lambda: QUEUE_TO_START.labels(template).observe(waited.total_seconds()))

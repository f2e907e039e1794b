"""Sending what the worker reports of a run: its log batches and its finish (the only
report of how it ended: the worker has no outbox). They go through the broker; while the
broker will not take them (down, restarting, hung), over HTTP to operation-svc instead.

So a broker away for a while neither kills a run that prints (a batch it would not take
failed the run's output), nor drops its lines, nor leaves a run that ended held in this
worker's memory, to be declared lost (and run again, if retry-safe) when the worker stops
before the broker is back."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter

from executor_worker.operation_client import OperationClient
from executor_worker.running import REPORTED_KEPT_SECONDS
from idp_common.events import ExecutionFinished, ExecutionLog
from idp_common.messaging.envelope import Event
from idp_common.messaging.publisher import Publisher
from idp_common.messaging.topology import EXECUTION_EVENTS
from idp_common.retrying import retried

logger = logging.getLogger(__name__)
# A send the broker has not answered by then counts as refused (a hung broker would hold
# it for its client's read timeout and retries).
BROKER_SECONDS = 5.0
# After a refusal, reports go over HTTP this long before the broker is tried again: each
# try costs its client's retries, which would hold up every batch of a run that prints.
BROKER_AWAY_SECONDS = 5.0
SEND_RETRY_SECONDS = REPORTED_KEPT_SECONDS
SENT = Counter(
    "idp_worker_reports_total",
    "Log batches and finishes sent, by the way that took them (the broker, or operation-svc's "
    "HTTP API while the broker would not).",
    ["way"],
)


class ReportSender:
    def __init__(self, publisher: Publisher, operations: OperationClient) -> None:
        self.publisher = publisher
        self.operations = operations
        self._broker_away_until = 0.0

    async def send(self, report: Event) -> None:
        """Send ``report`` one way or the other, trying for up to a minute."""
        await retried(
            lambda: self._send_once(report),
            what=f"reporting on execution {report.subject}",
            for_seconds=SEND_RETRY_SECONDS,
        )

    async def _send_once(self, report: Event) -> None:
        if time.monotonic() >= self._broker_away_until:
            try:
                async with asyncio.timeout(BROKER_SECONDS):
                    await self.publisher.publish(EXECUTION_EVENTS.name, [report])
            except Exception as exc:
                logger.warning("the broker did not take a report (%r): sent over HTTP", exc)
                self._broker_away_until = time.monotonic() + BROKER_AWAY_SECONDS
            else:
                SENT.labels("broker").inc()
                return
        await self._over_http(report)
        SENT.labels("http").inc()

    async def _over_http(self, report: Event) -> None:
        if report.type == ExecutionLog.event_type:
            await self.operations.log(ExecutionLog.from_event(report))
        else:
            await self.operations.finish(ExecutionFinished.from_event(report))

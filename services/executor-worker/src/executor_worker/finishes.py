"""Reporting how a run ended. The finish is the only report of it (the worker has no
outbox). It goes through the broker like every report; while the broker will not take it
(down, restarting, hung), it goes to operation-svc over HTTP instead, the two tried in turn.
A run that ended while the broker was away is then recorded at once, rather than held in
this worker's memory until the broker is back, and declared lost (and run again, if
retry-safe) when the worker stops first."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable
from functools import partial

from prometheus_client import Counter

from executor_worker.operation_client import OperationClient
from executor_worker.running import REPORTED_KEPT_SECONDS
from idp_common.events import ExecutionFinished
from idp_common.messaging.envelope import Event
from idp_common.messaging.publisher import Publisher
from idp_common.messaging.topology import EXECUTION_EVENTS
from idp_common.retrying import retried

logger = logging.getLogger(__name__)
# A send the broker has not answered by then counts as refused (a hung broker would hold
# it for its client's read timeout and retries).
BROKER_SECONDS = 5.0
FINISH_RETRY_SECONDS = REPORTED_KEPT_SECONDS
REPORTED = Counter(
    "idp_worker_finishes_total",
    "Finishes reported, by the way that took them (the broker, or operation-svc's HTTP API "
    "while the broker would not).",
    ["way"],
)


class FinishReporter:
    def __init__(self, publisher: Publisher, operations: OperationClient) -> None:
        self.publisher = publisher
        self.operations = operations

    async def report(self, finish: Event) -> None:
        ways: itertools.cycle[Callable[[], Awaitable[None]]] = itertools.cycle(
            (partial(self._through_broker, finish), partial(self._over_http, finish))
        )
        await retried(
            lambda: next(ways)(),
            what=f"reporting the finish of execution {finish.subject}",
            for_seconds=FINISH_RETRY_SECONDS,
        )

    async def _through_broker(self, finish: Event) -> None:
        async with asyncio.timeout(BROKER_SECONDS):
            await self.publisher.publish(EXECUTION_EVENTS.name, [finish])
        REPORTED.labels("broker").inc()

    async def _over_http(self, finish: Event) -> None:
        recorded = await self.operations.finish(ExecutionFinished.from_event(finish))
        REPORTED.labels("http").inc()
        if not recorded:
            logger.info("the finish of execution %s was not needed: it had ended", finish.subject)

"""The queues' depths as metrics, polled from the broker by one replica (``Leadership``):
every replica asking SQS the same question would only multiply the calls."""

from __future__ import annotations

from prometheus_client import Gauge

from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.db import Database
from idp_common.leadership import Leadership
from idp_common.loops import PeriodicLoop
from idp_common.messaging.dead_letters import queue_depths
from idp_common.messaging.sqs import QueueDirectory
from idp_common.messaging.topology import QUEUES

MESSAGES = Gauge("idp_queue_messages", "Messages of a queue, by state.", ["queue", "state"])
DEAD_LETTERS = Gauge("idp_queue_dead_letters", "Messages in a queue's DLQ.", ["queue"])
OLDEST_DEAD_LETTER = Gauge(
    "idp_queue_oldest_dead_letter_age_seconds",
    "Age of the oldest message in a queue's DLQ (since it failed; 0 when the DLQ is empty).",
    ["queue"],
)


class QueueMonitor(PeriodicLoop):
    def __init__(
        self,
        db: Database,
        queues: QueueDirectory,
        *,
        poll_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(poll_seconds)
        self.queues = queues
        self.clock = clock
        self.leadership = Leadership(db, "queue-monitor")

    async def run_once(self) -> None:
        if not await self.leadership.held():
            # A replica that led until now would go on exporting its last depths beside the
            # new leader's, and max by (queue) kept an emptied DLQ's alert firing.
            for gauge in (MESSAGES, DEAD_LETTERS, OLDEST_DEAD_LETTER):
                gauge.clear()
            return
        now = self.clock.now()
        for spec in QUEUES:
            depths = await queue_depths(self.queues, spec)
            MESSAGES.labels(spec.name, "visible").set(depths.visible)
            MESSAGES.labels(spec.name, "in_flight").set(depths.in_flight)
            MESSAGES.labels(spec.name, "delayed").set(depths.delayed)
            DEAD_LETTERS.labels(spec.name).set(depths.dead_letters)
            oldest = depths.oldest_dead_letter
            OLDEST_DEAD_LETTER.labels(spec.name).set(
                (now - oldest).total_seconds() if oldest else 0
            )

    async def after_stop(self) -> None:
        await self.leadership.release()

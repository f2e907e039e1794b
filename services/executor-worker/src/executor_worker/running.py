"""The executions this worker holds, and the heartbeat that keeps them alive in
operation-svc and carries back the ones to stop (cancelled, or declared lost).

Why a heartbeat rather than a per-worker control queue or Redis pub/sub: it needs no extra
infrastructure (the embedded default has neither Redis nor per-worker queues), the same call
proves liveness, and a cancel reaches the worker within one interval (0.5 s).

A run whose end has been reported stays in the heartbeat until operation-svc has recorded
that end (its finish event waits in the queue behind others, or operation-svc is slow):
otherwise the lost-execution sweeper could declare a finished run lost in that gap. It is
kept for ``REPORTED_KEPT_SECONDS`` at most, so that a finish event that never arrives (dead
lettered) leaves the execution to the sweeper rather than running forever.

A finish the broker took can still be lost before operation-svc reads it (a broker restarted
without its state). The worker has no outbox, so the heartbeat is its receipt: a finish not
recorded ``FINISH_RESEND_SECONDS`` after it was sent is sent again, the same event, which
operation-svc records once however many copies arrive."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from executor_worker.operation_client import OperationClient
from idp_common.loops import PeriodicLoop
from idp_common.resent_messages import RESENT

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 0.5
REPORTED_KEPT_SECONDS = 60.0
FINISH_RESEND_SECONDS = 15.0

SendFinish = Callable[[], Coroutine[Any, Any, None]]


@dataclass(slots=True)
class _Reported:
    """A run whose end is reported and not yet recorded by operation-svc."""

    kept_until: float
    send_finish: SendFinish | None = None  # once the broker took the finish
    resend_at: float = 0.0


class RunningExecutions(PeriodicLoop):
    def __init__(self, operations: OperationClient) -> None:
        # A failed heartbeat is tried again at the next beat: silence is how runs get lost.
        super().__init__(
            HEARTBEAT_SECONDS,
            min_backoff_seconds=HEARTBEAT_SECONDS,
            max_backoff_seconds=HEARTBEAT_SECONDS,
        )
        self.operations = operations
        self._stop_requests: dict[uuid.UUID, asyncio.Event] = {}
        self._reported: dict[uuid.UUID, _Reported] = {}
        self._resending: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._stop_requests)

    def start(self, execution_id: uuid.UUID) -> asyncio.Event:
        """Track a run; the event is set when it must be stopped."""
        return self._stop_requests.setdefault(execution_id, asyncio.Event())

    def finish(self, execution_id: uuid.UUID) -> None:
        """The run is over and its end is (being) reported: keep it alive until recorded."""
        self._stop_requests.pop(execution_id, None)
        self._reported[execution_id] = _Reported(time.monotonic() + REPORTED_KEPT_SECONDS)

    def sent(self, execution_id: uuid.UUID, send_finish: SendFinish) -> None:
        """The broker took the run's finish; ``send_finish`` sends it again if it is lost."""
        if (reported := self._reported.get(execution_id)) is not None:
            reported.send_finish = send_finish
            reported.resend_at = time.monotonic() + FINISH_RESEND_SECONDS

    async def beat(self) -> None:
        now = time.monotonic()
        for execution_id, reported in list(self._reported.items()):
            if reported.kept_until < now:
                del self._reported[execution_id]
                logger.warning(
                    "the end of execution %s is still not recorded by operation-svc after "
                    "%.0f s; no longer kept alive",
                    execution_id,
                    REPORTED_KEPT_SECONDS,
                )
        ids = [*self._stop_requests, *self._reported]
        if not ids:
            return
        answer = await self.operations.heartbeat(ids)
        for execution_id in answer.stop:
            if request := self._stop_requests.get(execution_id):
                request.set()
        for execution_id in answer.ended:
            self._reported.pop(execution_id, None)
        for execution_id, reported in self._reported.items():
            if reported.send_finish is not None and reported.resend_at <= now:
                reported.resend_at = now + FINISH_RESEND_SECONDS
                self._resend(execution_id, reported.send_finish)

    def _resend(self, execution_id: uuid.UUID, send_finish: SendFinish) -> None:
        """Send a finish again without holding up the heartbeat (the broker may be slow)."""
        logger.warning(
            "the end of execution %s is not recorded %.0f s after it was last sent; "
            "sending it again",
            execution_id,
            FINISH_RESEND_SECONDS,
        )
        RESENT.labels("finish").inc()
        task = asyncio.create_task(send_finish())
        self._resending.add(task)
        task.add_done_callback(self._resent)

    def _resent(self, task: asyncio.Task[None]) -> None:
        self._resending.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.warning("a finish could not be sent again (%r); tried again later", error)

    async def run_once(self) -> None:
        await self.beat()

    async def after_stop(self) -> None:
        for task in self._resending:
            task.cancel()

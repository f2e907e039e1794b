"""The executions this worker holds, and the heartbeat that keeps them alive in
operation-svc and carries back the ones to stop (cancelled, or declared lost).

Why a heartbeat rather than a per-worker control queue or Redis pub/sub: it needs no extra
infrastructure (the embedded default has neither Redis nor per-worker queues), the same call
proves liveness, and a cancel reaches the worker within one interval (0.5 s).

A run whose end has been reported stays in the heartbeat until operation-svc has recorded
that end (its finish event waits in the queue behind others, or operation-svc is slow):
otherwise the lost-execution sweeper could declare a finished run lost in that gap. It is
kept for ``REPORTED_KEPT_SECONDS`` at most, so that a finish event that never arrives (dead
lettered) leaves the execution to the sweeper rather than running forever."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from executor_worker.operation_client import OperationClient
from idp_common.loops import PeriodicLoop

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 0.5
REPORTED_KEPT_SECONDS = 60.0


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
        self._reported: dict[uuid.UUID, float] = {}

    def __len__(self) -> int:
        return len(self._stop_requests)

    def start(self, execution_id: uuid.UUID) -> asyncio.Event:
        """Track a run; the event is set when it must be stopped."""
        return self._stop_requests.setdefault(execution_id, asyncio.Event())

    def finish(self, execution_id: uuid.UUID) -> None:
        """The run is over and its end is (being) reported: keep it alive until recorded."""
        self._stop_requests.pop(execution_id, None)
        self._reported[execution_id] = time.monotonic() + REPORTED_KEPT_SECONDS

    async def beat(self) -> None:
        now = time.monotonic()
        for execution_id, kept_until in list(self._reported.items()):
            if kept_until < now:
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

    async def run_once(self) -> None:
        await self.beat()

"""The executions this worker runs now, and the heartbeat that keeps them alive in
operation-svc and carries back the ones to stop (cancelled, or declared lost).

Why a heartbeat rather than a per-worker control queue or Redis pub/sub: it needs no extra
infrastructure (the embedded default has neither Redis nor per-worker queues), the same call
proves liveness, and a cancel reaches the worker within one interval (0.5 s)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from executor_worker.operation_client import OperationClient

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 0.5


class RunningExecutions:
    def __init__(self, operations: OperationClient) -> None:
        self.operations = operations
        self._stop_requests: dict[uuid.UUID, asyncio.Event] = {}
        self._stopping = asyncio.Event()

    def __len__(self) -> int:
        return len(self._stop_requests)

    def start(self, execution_id: uuid.UUID) -> asyncio.Event:
        """Track a run; the event is set when it must be stopped."""
        return self._stop_requests.setdefault(execution_id, asyncio.Event())

    def finish(self, execution_id: uuid.UUID) -> None:
        self._stop_requests.pop(execution_id, None)

    def stop(self) -> None:
        self._stopping.set()

    async def beat(self) -> None:
        ids = list(self._stop_requests)
        if not ids:
            return
        for execution_id in await self.operations.heartbeat(ids):
            if request := self._stop_requests.get(execution_id):
                request.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.beat()
            except Exception:
                logger.warning("heartbeat to operation-svc failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), HEARTBEAT_SECONDS)

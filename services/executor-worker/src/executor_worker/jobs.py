"""Handling one ``operation.execution.requested`` job: claim, run, stream logs, finish."""

from __future__ import annotations

import logging

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from executor_worker.config import WorkerSettings
from executor_worker.log_batches import LogBatcher
from executor_worker.operation_client import OperationClient
from executor_worker.runner import RunResult, resolve_executable, run_command
from idp_common.events import (
    ExecutionFinished,
    ExecutionRequested,
)
from idp_common.messaging.envelope import Event
from idp_common.messaging.publisher import Publisher
from idp_common.messaging.topology import EXECUTION_EVENTS

SOURCE = "urn:idp:executor-worker"
logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

JOBS = Counter("idp_worker_jobs_total", "Jobs received, by outcome.", ["outcome"])
IN_FLIGHT = Gauge("idp_worker_executions_in_flight", "Executions running in this worker.")
RUN_SECONDS = Histogram(
    "idp_worker_run_seconds",
    "Wall-clock duration of executions.",
    ["status"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)


class JobHandler:
    def __init__(
        self,
        settings: WorkerSettings,
        worker_id: str,
        operations: OperationClient,
        publisher: Publisher,
    ) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.operations = operations
        self.publisher = publisher

    async def __call__(self, event: Event) -> None:
        job = ExecutionRequested.from_event(event)
        with tracer.start_as_current_span(
            "claim", attributes={"execution.id": str(job.execution_id)}
        ):
            claimed = await self.operations.claim(job.execution_id, self.worker_id)
        if not claimed:
            JOBS.labels("dropped_duplicate").inc()
            return
        JOBS.labels("claimed").inc()
        IN_FLIGHT.inc()
        try:
            result = await self._run(event.tenant, job)
        finally:
            IN_FLIGHT.dec()
        RUN_SECONDS.labels(result.status).observe(result.duration_seconds)
        finished = ExecutionFinished(
            execution_id=job.execution_id,
            status=result.status,
            exit_code=result.exit_code,
            duration_seconds=result.duration_seconds,
            output_excerpt=result.stdout_excerpt,
            error=result.error,
            worker_id=self.worker_id,
        )
        await self.publisher.publish(
            EXECUTION_EVENTS.name,
            [finished.to_event(source=SOURCE, tenant=event.tenant, subject=str(job.execution_id))],
        )

    async def _run(self, tenant: str, job: ExecutionRequested) -> RunResult:
        executable = resolve_executable(
            job.argv[0], self.settings.path, self.settings.allowed_executables
        )
        if executable is None:
            return RunResult(
                "failed", None, 0.0, "", 0, False, f"{job.argv[0]!r} is not allowed here"
            )
        batcher = LogBatcher(
            self.publisher, tenant=tenant, execution_id=job.execution_id, source=SOURCE
        )
        with tracer.start_as_current_span(
            "run", attributes={"process.executable.path": executable}
        ):
            try:
                return await run_command(
                    executable,
                    job.argv,
                    env=job.env,
                    path=self.settings.path,
                    timeout_seconds=min(job.timeout_seconds, self.settings.default_timeout_seconds),
                    output_cap_bytes=self.settings.output_cap_bytes,
                    sink=batcher.add,
                )
            finally:
                await batcher.close()

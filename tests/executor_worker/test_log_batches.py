"""Log batching: a short run's lines all travel in its finish (one message); a long one
sends log events by count, and the finish carries the rest, with seq unbroken."""

from __future__ import annotations

import uuid

from executor_worker.log_batches import MAX_LINES, LogBatcher
from idp_common.events import ExecutionFinished, ExecutionLog
from idp_common.messaging.envelope import Event


class Recording:
    def __init__(self) -> None:
        self.sent: list[Event] = []

    async def send(self, report: Event) -> None:
        self.sent.append(report)


def finish(execution_id: uuid.UUID, lines: int) -> ExecutionFinished:
    return ExecutionFinished(
        execution_id=execution_id,
        status="succeeded",
        exit_code=0,
        duration_seconds=0.01,
        output_excerpt="",
        log_lines=lines,
        worker_id="w",
    )


def batcher(reports: Recording, execution_id: uuid.UUID) -> LogBatcher:
    return LogBatcher(reports.send, tenant="acme", execution_id=execution_id, source="urn:test")


async def test_a_short_run_sends_its_lines_inside_the_finish() -> None:
    reports, execution_id = Recording(), uuid.uuid4()
    lines = batcher(reports, execution_id)
    await lines.add("stdout", ["hello"])
    await lines.add("stderr", ["warning"])
    last = await lines.close(finish(execution_id, lines.line_count))
    finished = ExecutionFinished.from_event(last)
    assert reports.sent == []
    assert [(line.seq, line.stream, line.message) for line in finished.last_lines] == [
        (0, "stdout", "hello"),
        (1, "stderr", "warning"),
    ]
    assert finished.log_lines == 2


async def test_a_long_run_sends_log_events_then_the_rest_with_the_finish() -> None:
    reports, execution_id = Recording(), uuid.uuid4()
    lines = batcher(reports, execution_id)
    for n in range(MAX_LINES + 5):
        await lines.add("stdout", [f"line {n}"])
    last = await lines.close(finish(execution_id, lines.line_count))
    [log] = reports.sent
    seqs = [line.seq for line in ExecutionLog.from_event(log).lines]
    seqs += [line.seq for line in ExecutionFinished.from_event(last).last_lines]
    assert seqs == list(range(MAX_LINES + 5))

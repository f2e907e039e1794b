"""Which executions the worker's heartbeat carries: running ones, then reported ones until
operation-svc has recorded their end (or for a bounded time)."""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import pytest

from executor_worker import running
from executor_worker.operation_client import HeartbeatAnswer
from executor_worker.running import RunningExecutions
from executor_worker.sandbox import watch_children_with_pidfds
from idp_common.resent_messages import RESENT


class FakeOperations:
    def __init__(self) -> None:
        self.sent: list[list[uuid.UUID]] = []
        self.recorded: set[uuid.UUID] = set()

    async def heartbeat(self, execution_ids: list[uuid.UUID]) -> HeartbeatAnswer:
        self.sent.append(execution_ids)
        ended = self.recorded & set(execution_ids)
        return HeartbeatAnswer(stop=ended, ended=ended)


def tracked() -> tuple[RunningExecutions, FakeOperations]:
    operations = FakeOperations()
    fake: Any = operations
    return RunningExecutions(fake), operations


async def test_a_reported_run_is_kept_alive_until_its_end_is_recorded() -> None:
    executions, operations = tracked()
    execution_id = uuid.uuid4()
    stop = executions.start(execution_id)
    executions.finish(execution_id)
    await executions.beat()
    await executions.beat()
    assert operations.sent == [[execution_id], [execution_id]]
    operations.recorded.add(execution_id)
    await executions.beat()
    await executions.beat()
    assert operations.sent[2:] == [[execution_id]]
    assert not stop.is_set()


async def test_a_stop_reaches_only_runs_still_running() -> None:
    executions, operations = tracked()
    done, still_running = uuid.uuid4(), uuid.uuid4()
    executions.start(done)
    stop = executions.start(still_running)
    executions.finish(done)
    operations.recorded = {done, still_running}
    await executions.beat()
    assert stop.is_set()
    assert len(executions) == 1


async def test_a_reported_run_never_recorded_is_let_go_after_the_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(running, "REPORTED_KEPT_SECONDS", -1.0)
    executions, operations = tracked()
    execution_id = uuid.uuid4()
    executions.start(execution_id)
    executions.finish(execution_id)
    await executions.beat()
    assert operations.sent == []


async def test_a_finish_sent_and_not_recorded_is_sent_again_until_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker took the finish and lost it: the heartbeat shows the run still running,
    so the same finish is sent again, each ``FINISH_RESEND_SECONDS``, until recorded."""
    executions, operations = tracked()
    execution_id = uuid.uuid4()
    sends: list[str] = []

    async def send_again() -> None:
        sends.append("finish")

    resent_before = RESENT.labels("finish")._value.get()
    executions.start(execution_id)
    executions.finish(execution_id)
    executions.sent(execution_id, send_again)
    await executions.beat()
    await asyncio.sleep(0)
    assert sends == []  # not due yet
    monkeypatch.setattr(running, "FINISH_RESEND_SECONDS", 0.0)
    executions.sent(execution_id, send_again)
    for _ in range(2):
        await executions.beat()
        await asyncio.sleep(0)
    assert sends == ["finish", "finish"]
    assert RESENT.labels("finish")._value.get() == resent_before + 2  # the SREs' alert's count
    operations.recorded.add(execution_id)
    for _ in range(2):
        await executions.beat()
        await asyncio.sleep(0)
    assert sends == ["finish", "finish"]


async def test_a_finish_that_cannot_be_sent_again_holds_up_no_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(running, "FINISH_RESEND_SECONDS", 0.0)
    executions, operations = tracked()
    execution_id, other = uuid.uuid4(), uuid.uuid4()
    broker_back = asyncio.Event()

    async def broker_down() -> None:
        await broker_back.wait()
        raise ConnectionError("the broker is down")

    executions.start(execution_id)
    executions.finish(execution_id)
    executions.sent(execution_id, broker_down)
    await executions.beat()
    executions.start(other)
    await executions.beat()
    assert operations.sent == [[execution_id], [other, execution_id]]
    broker_back.set()
    await asyncio.sleep(0.01)
    await executions.beat()
    assert operations.sent[-1] == [other, execution_id]  # still kept alive, sent again later
    await executions.after_stop()


async def test_a_worker_app_starts_where_an_earlier_one_left_a_child_unawaited() -> None:
    """The tests start several worker apps in one process: one whose predecessor's command
    still ran failed to start, on the child watcher's warning about it."""
    watch_children_with_pidfds()
    left = await asyncio.create_subprocess_exec("sleep", "30")
    try:
        watch_children_with_pidfds()
    finally:
        left.kill()
        await asyncio.to_thread(os.waitpid, left.pid, 0)
        # No watcher tells its transport of the exit any more.
        left._transport.close()  # type: ignore[attr-defined]

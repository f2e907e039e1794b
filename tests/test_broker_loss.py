"""Nothing stays stuck when the broker loses messages, and nothing runs twice: the embedded
broker keeps its messages across a kill -9, and the reconcilers send again what a purged
queue lost."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest

from executor_worker import running
from idp_common.events import ExecutionFinished
from idp_common.messaging.dead_letters import DeadLetterQueue, dead_letter
from idp_common.messaging.envelope import Event
from idp_common.messaging.publisher import Publisher
from idp_common.messaging.topology import OPERATION_JOBS, PANEL_SUBMISSIONS
from idp_common.runtime import open_messaging
from tests.factories import ADMIN, has_status, new_execution, panel_for, template
from tests.harness import (
    SIGNER,
    LocalSQSServer,
    Platform,
    auth_headers,
    eventually,
    running_platform,
    sqs_settings,
    worker_for,
)

FINAL = {"succeeded", "failed", "timed_out", "cancelled", "lost", "rejected"}
EACH = 50


async def _queue_and_submit(platform: Platform) -> tuple[list[str], list[str]]:
    """EACH executions through the API (their jobs queued: no worker yet) and EACH
    submissions through panel-svc."""
    hello = await template(platform, "hello", "echo hello", [])
    panel = await panel_for(platform, hello)
    executions = await asyncio.gather(
        *(
            platform.operation.post("/api/v1/executions", json={"template": "hello"}, headers=ADMIN)
            for _ in range(EACH)
        )
    )
    submissions = await asyncio.gather(
        *(
            platform.panel.post(
                f"/api/v1/panels/{panel['id']}/submissions", json={"data": {}}, headers=ADMIN
            )
            for _ in range(EACH)
        )
    )
    return [r.json()["id"] for r in executions], [r.json()["id"] for r in submissions]


async def _all_final_and_run_once(
    platform: Platform, execution_ids: list[str], submission_ids: list[str]
) -> None:
    async def submissions_final() -> bool:
        found = [
            (await platform.panel.get(f"/api/v1/submissions/{s}", headers=ADMIN)).json()["status"]
            for s in submission_ids
        ]
        return all(status == "succeeded" for status in found)

    async def executions_final() -> bool:
        found = [
            (await platform.operation.get(f"/api/v1/executions/{e}", headers=ADMIN)).json()
            for e in execution_ids
        ]
        return all(execution["status"] == "succeeded" for execution in found)

    await eventually(executions_final, timeout=60, interval=0.5)
    await eventually(submissions_final, timeout=60, interval=0.5)
    executions = await _all_executions(platform)
    assert len(executions) == 2 * EACH  # one per execution asked for, one per submission
    by_submission = [e["submission_id"] for e in executions if e["submission_id"]]
    assert sorted(by_submission) == sorted(submission_ids)
    starts = await _all_audit(platform, "execution.start")
    assert sorted(entry["object_id"] for entry in starts) == sorted(e["id"] for e in executions)


async def _all_executions(platform: Platform) -> list[dict[str, Any]]:
    return await _all_pages(platform, "/api/v1/executions", {})


async def _all_audit(platform: Platform, action: str) -> list[dict[str, Any]]:
    return await _all_pages(platform, "/api/v1/audit", {"action": action})


async def _all_pages(platform: Platform, path: str, query: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = query | {"limit": "200"} | ({"cursor": cursor} if cursor else {})
        page = (await platform.operation.get(path, params=params, headers=ADMIN)).json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


async def test_a_broker_killed_with_queued_work_loses_none_of_it(tmp_path: Path) -> None:
    """kill -9 with jobs and submissions queued; after the restart every one finishes,
    with no action taken, and none ran twice."""
    server = LocalSQSServer(state_file=tmp_path / "sqs-state.json")
    await asyncio.to_thread(server.start)
    try:
        async with running_platform(
            "sqlite", tmp_path, server, allowed_executables=["echo"], with_worker=False
        ) as platform:
            execution_ids, submission_ids = await _queue_and_submit(platform)
            await asyncio.sleep(0.5)  # more than the broker's snapshot interval
            await asyncio.to_thread(server.kill)
            await asyncio.to_thread(server.start)
            async with worker_for(platform, allowed_executables=["echo"]):
                await _all_final_and_run_once(platform, execution_ids, submission_ids)
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_run_that_prints_and_ends_while_the_broker_is_down_loses_nothing(
    tmp_path: Path,
) -> None:
    """The worker's reports (log batches, and the finish: its only report of how the run
    ended) go to operation-svc over HTTP while the broker will not take them. A run that
    prints through a broker outage is neither failed nor missing lines, and is recorded
    succeeded while the broker is still down; a worker stopped before the broker is back
    leaves nothing to declare lost, so a retry-safe run is not run a second time."""
    server = LocalSQSServer(state_file=tmp_path / "sqs-state.json")
    await asyncio.to_thread(server.start)
    try:
        async with running_platform(
            "sqlite",
            tmp_path,
            server,
            allowed_executables=["sh"],
            with_worker=False,
            operation={"lost_after_seconds": 1.5, "sweep_interval_seconds": 0.2},
        ) as platform:
            command = "sh -c 'seq 1 300; sleep 3; seq 301 900'"
            await template(platform, "chatty", command, [], retry_safe=True)
            path = await new_execution(platform, "chatty")
            async with worker_for(platform, allowed_executables=["sh"]) as worker:
                await eventually(lambda: _has_lines(platform, path, 300))
                await asyncio.to_thread(server.stop)
                await eventually(lambda: has_status(platform, path, "succeeded"), timeout=30)
                assert await _has_lines(platform, path, 900)
                metrics = (await worker.get("/metrics")).text
                assert 'idp_worker_reports_total{way="http"}' in metrics
            await asyncio.to_thread(server.start)
            await asyncio.sleep(3)  # the run would be declared lost by now
            execution = (await platform.operation.get(path, headers=ADMIN)).json()
            assert execution["status"] == "succeeded"
            assert await _lines(platform, path) == [str(n) for n in range(1, 901)]
            assert len(await _all_executions(platform)) == 1
            assert len(await _all_audit(platform, "execution.start")) == 1
            assert len(await _all_audit(platform, "execution.finish")) == 1
    finally:
        await asyncio.to_thread(server.stop)


async def _has_lines(platform: Platform, path: str, count: int) -> bool:
    return len(await _lines(platform, path)) >= count


async def _lines(platform: Platform, path: str) -> list[str]:
    logs = await platform.operation.get(f"{path}/logs", params={"limit": 1000}, headers=ADMIN)
    return [line["message"] for line in logs.json()["items"]]


async def test_a_finish_the_broker_took_and_lost_is_sent_again(
    tmp_path: Path, sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker answers that it has the finish and loses it (a restart without its state):
    operation-svc still shows the run running, so the worker sends the finish again, and
    the run ends succeeded, not lost, having run once."""
    monkeypatch.setattr(running, "FINISH_RESEND_SECONDS", 1.0)
    lost: list[Event] = []
    publish = Publisher.publish

    async def losing_the_first_finish(self: Publisher, queue: str, events: Any) -> None:
        if not lost and events[0].type == ExecutionFinished.event_type:
            lost.append(events[0])
            return
        await publish(self, queue, events)

    monkeypatch.setattr(Publisher, "publish", losing_the_first_finish)
    async with running_platform(
        "sqlite", tmp_path, sqs_server, allowed_executables=["echo"]
    ) as platform:
        await template(platform, "hello", "echo hello", [])
        path = await new_execution(platform, "hello")
        await eventually(lambda: has_status(platform, path, "succeeded"))
        execution = (await platform.operation.get(path, headers=ADMIN)).json()
        assert execution["output"] == "hello\n"
        assert len(lost) == 1
        assert len(await _all_audit(platform, "execution.start")) == 1
        assert len(await _all_audit(platform, "execution.finish")) == 1


async def test_what_a_purged_queue_lost_is_sent_again(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with running_platform(
        "sqlite",
        tmp_path,
        sqs_server,
        allowed_executables=["echo"],
        with_worker=False,
        operation={"redispatch_after_seconds": 3},
        panel={"resend_after_seconds": 3},
    ) as platform:
        execution_ids, submission_ids = await _queue_and_submit(platform)
        async with open_messaging(platform.sqs, SIGNER) as bus:
            for queue in (OPERATION_JOBS, PANEL_SUBMISSIONS):
                await _drain(bus.queues, queue.name)
        async with worker_for(platform, allowed_executables=["echo"]):
            await _all_final_and_run_once(platform, execution_ids, submission_ids)


async def _drain(queues: Any, name: str) -> None:
    """Take every message off ``name`` (as a purge would; SQS's PurgeQueue may take 60 s)."""
    url = await queues.url(name)
    while messages := (
        await queues.client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    ).get("Messages"):
        for message in messages:
            await queues.client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


async def test_the_embedded_broker_keeps_its_dead_letters_across_restarts(tmp_path: Path) -> None:
    """A clean stop keeps everything; a kill -9 what it had 200 ms before (server.mjs)."""
    server = LocalSQSServer(state_file=tmp_path / "sqs-state.json")
    await asyncio.to_thread(server.start)
    settings = sqs_settings(server)
    try:
        for stop, body in ((server.stop, "kept through a stop"), (server.kill, "and a kill -9")):
            async with open_messaging(settings, SIGNER) as bus:
                await dead_letter(
                    bus.queues,
                    PANEL_SUBMISSIONS,
                    {"Body": body},
                    "it failed",
                    5,
                    signer=bus.publisher.signer,
                )
            await asyncio.sleep(0.5)
            await asyncio.to_thread(stop)
            await asyncio.to_thread(server.start)
        async with open_messaging(settings, SIGNER) as bus:
            letters = await DeadLetterQueue(bus.queues, PANEL_SUBMISSIONS).peek()
        assert [(letter.body, letter.reason, letter.receive_count) for letter in letters] == [
            ("kept through a stop", "it failed", 5),
            ("and a kill -9", "it failed", 5),
        ]
    finally:
        await asyncio.to_thread(server.stop)


async def test_a_broker_that_hangs_fails_an_operators_call_in_seconds(tmp_path: Path) -> None:
    """The queue API's calls waited as long as a long poll may (30 s) at each of three
    attempts: `GET /api/v1/queues` answered after two minutes. It is a 503 naming the
    broker, in the time of its calls' read timeout."""
    server = LocalSQSServer()
    await asyncio.to_thread(server.start)
    try:
        async with running_platform("sqlite", tmp_path, server, with_worker=False) as platform:
            assert server.process is not None
            server.process.send_signal(signal.SIGSTOP)
            try:
                async with asyncio.timeout(60):  # not a benchmark: it must not hang
                    answer = await platform.operation.get(
                        "/api/v1/queues", headers=auth_headers(roles=("platform-operator",))
                    )
            finally:
                server.process.send_signal(signal.SIGCONT)
        assert answer.status_code == 503, answer.text
        assert "The message broker (SQS at" in answer.json()["detail"]
    finally:
        await asyncio.to_thread(server.stop)

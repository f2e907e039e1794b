"""What the message bus promises, checked against the real local SQS server and real DBs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import func, select

from idp_common.db import Database
from idp_common.events import SUBMISSION_CREATED, SubmissionCreated
from idp_common.loops import Supervisor
from idp_common.messaging import outbox
from idp_common.messaging.consumer import release_slot
from idp_common.messaging.envelope import Event
from idp_common.messaging.inbox import transactional_handler
from idp_common.messaging.outbox import OutboxRelay, Superseding, add_event
from idp_common.messaging.topology import (
    MAX_BATCH_SIZE,
    MAX_RECEIVE_COUNT,
    OUTBOUND_EVENTS,
    PANEL_SUBMISSIONS,
    QueueSpec,
)
from idp_common.runtime import Messaging, open_messaging
from idp_common.settings import SQSSettings
from idp_common.unit_of_work import UnitOfWork
from operation_svc.executions.tasks import SubmissionsToExecutions
from operation_svc.models import Execution, messaging
from tests.harness import (
    SIGNER,
    LocalSQSServer,
    eventually,
    free_port,
    migrated_copy,
    sqs_settings,
    wait_until,
    write_queues_file,
)

QUEUE = PANEL_SUBMISSIONS


def event(kind: str = "test.thing.happened", **data: Any) -> Event:
    return Event(type=kind, source="urn:test", tenant="acme", data=data)


@contextlib.asynccontextmanager
async def database_and_bus(
    backend: str, tmp_path: Path, settings: SQSSettings, database: type[Database] = Database
) -> AsyncIterator[tuple[Database, Messaging]]:
    """operation-svc's migrated database, and a bus on ``settings``."""
    async with (
        migrated_copy(backend, tmp_path, "operation") as url,
        open_messaging(settings, SIGNER) as bus,
    ):
        db = database(url)
        try:
            yield db, bus
        finally:
            await db.dispose()


async def drain(bus: Messaging, queue: str, wait: int = 1) -> list[dict[str, Any]]:
    """Every message currently on ``queue`` (received and deleted)."""
    url = await bus.queues.url(queue)
    messages: list[dict[str, Any]] = []
    while True:
        response = await bus.queues.client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            AttributeNames=["ApproximateReceiveCount"],
        )
        batch = response.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            await bus.queues.client.delete_message(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"]
            )
        messages += batch


async def test_poison_and_failing_messages_go_to_the_dlq_while_good_ones_pass(
    sqs_server: LocalSQSServer,
) -> None:
    seen: Counter[str] = Counter()

    async def handler(received: Event) -> None:
        seen[received.type] += 1
        if received.type == "test.always.fails":
            raise RuntimeError("this handler always fails")

    async with open_messaging(sqs_settings(sqs_server), SIGNER) as bus:
        url = await bus.queues.url(QUEUE.name)
        await bus.queues.client.send_message(QueueUrl=url, MessageBody="{not an event")
        await bus.publisher.publish(QUEUE.name, [event("test.always.fails"), event("test.good")])
        consumer = bus.consumer(QUEUE, handler, concurrency=4)
        async with Supervisor([consumer]).running():
            dead = await eventually(lambda: _dlq_if_full(bus, 2), timeout=20)
        bodies = {message["Body"] for message in dead}
        assert "{not an event" in bodies
        bodies.remove("{not an event")
        assert [json.loads(body)["type"] for body in bodies] == ["test.always.fails"]
        assert seen["test.good"] == 1
        assert seen["test.always.fails"] == MAX_RECEIVE_COUNT
        assert await drain(bus, QUEUE.name) == []


async def _counts(bus: Messaging, queue_name: str) -> tuple[int, int]:
    """The queue's messages: visible, and in a consumer's hands (a received message is only
    invisible until it is handled and deleted)."""
    attributes = (
        await bus.queues.client.get_queue_attributes(
            QueueUrl=await bus.queues.url(queue_name),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


async def _dlq_if_full(bus: Messaging, expected: int) -> list[dict[str, Any]] | None:
    visible, _ = await _counts(bus, QUEUE.dlq_name)
    if visible < expected:
        return None
    return await drain(bus, QUEUE.dlq_name)


async def test_an_event_in_a_rolled_back_transaction_is_never_published(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with database_and_bus(backend, tmp_path, sqs_settings(sqs_server)) as (db, bus):
        relay = OutboxRelay(db, messaging, bus.publisher)
        with pytest.raises(RuntimeError, match="business rule"):
            async with db.transaction() as session:
                add_event(session, messaging, QUEUE, event())
                raise RuntimeError("business rule failed after the event was written")
        assert await relay.relay_pending() == 0
        assert await drain(bus, QUEUE.name) == []


async def test_large_outbox_events_leave_in_batches_the_broker_accepts(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    # Ten 150 KB events are 1.5 MB: over the 1 MiB a SendMessageBatch may carry (AWS and the
    # local server alike), which would leave the relay retrying the same batch forever.
    async with database_and_bus("sqlite", tmp_path, sqs_settings(sqs_server)) as (db, bus):
        relay = OutboxRelay(db, messaging, bus.publisher)
        sent = [event(padding="x" * 150_000) for _ in range(12)]
        async with db.transaction() as session:
            for large in sent:
                add_event(session, messaging, QUEUE, large)
        assert await relay.relay_pending() == 12
        received = await drain(bus, QUEUE.name)
        assert sorted(json.loads(m["Body"])["id"] for m in received) == sorted(e.id for e in sent)


async def test_a_reply_whose_queue_was_deleted_after_it_was_looked_up_is_dropped_alone(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    # An event's reply queue is looked up when the event is admitted; its producer may
    # delete it before the outcome leaves. Sending there raised, failing every pass of the
    # relay: the rows sent beside it were sent again at each one, and it never left.
    async with database_and_bus("sqlite", tmp_path, sqs_settings(sqs_server)) as (db, bus):
        relay = OutboxRelay(db, messaging, bus.publisher)
        gone = QueueSpec("replies-acme__gone")
        created = await bus.queues.wire.create_queue(QueueName=bus.queues.physical_name(gone.name))
        assert await bus.queues.url(gone.name) == created["QueueUrl"]
        await bus.queues.client.delete_queue(QueueUrl=created["QueueUrl"])
        sent = event()
        async with db.transaction() as session:
            add_event(session, messaging, gone, event())
            add_event(session, messaging, QUEUE, sent)

        assert await relay.relay_pending() == 1

        assert [json.loads(m["Body"])["id"] for m in await drain(bus, QUEUE.name)] == [sent.id]
        async with db.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(messaging.outbox)) == 0


async def test_rows_the_broker_keeps_refusing_hold_up_no_row_behind_them_in_the_sweep(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    # A batch of them ended each sweep at its first batch: what a crash left behind them was
    # never sent. A platform's queue that does not exist is waited for: its rows are kept (and
    # tried once a sweep, not once a batch).
    async with database_and_bus("sqlite", tmp_path, sqs_settings(sqs_server)) as (db, bus):
        await bus.queues.client.delete_queue(QueueUrl=await bus.queues.url(OUTBOUND_EVENTS.name))
        left = event()
        async with db.transaction() as session:
            for _ in range(2 * MAX_BATCH_SIZE):
                add_event(session, messaging, OUTBOUND_EVENTS, event())
            add_event(session, messaging, QUEUE, left)

        restarted = OutboxRelay(db, messaging, bus.publisher)
        assert await restarted.relay_pending() == 1

        assert [json.loads(m["Body"])["id"] for m in await drain(bus, QUEUE.name)] == [left.id]
        async with db.transaction() as session:
            kept = list((await session.execute(select(messaging.outbox.c.attempts))).scalars())
        assert sorted(kept) == [0] * MAX_BATCH_SIZE + [1] * MAX_BATCH_SIZE  # its first batch


async def test_an_event_committed_while_the_broker_is_down_is_sent_once_it_is_back(
    backend: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sqs_settings(LocalSQSServer(port=free_port()))
    broker = LocalSQSServer(
        port=int(settings.endpoint_url.rsplit(":", 1)[1]),  # type: ignore[union-attr]
        queues_file=write_queues_file(tmp_path / "queues.json", settings.queue_prefix),
    )
    down = settings.model_copy(update={"create_queues": False})
    # The bus's client is created while nothing listens.
    async with database_and_bus(backend, tmp_path, down) as (db, bus):
        relay = OutboxRelay(db, messaging, bus.publisher, poll_seconds=0.2, max_backoff_seconds=0.5)
        sent = event()
        async with Supervisor([relay]).running():
            async with db.transaction() as session:
                add_event(session, messaging, QUEUE, sent)
            await wait_until(lambda: "OutboxRelay failed" in caplog.text)  # and backs off
            async with db.transaction() as session:
                pending = await session.scalar(select(func.count()).select_from(messaging.outbox))
            assert pending == 1
            await asyncio.to_thread(broker.start)
            try:
                received = await eventually(lambda: drain(bus, QUEUE.name), timeout=15)
                await asyncio.sleep(1.5)  # long enough for a duplicate to show up
                received += await drain(bus, QUEUE.name)
            finally:
                await asyncio.to_thread(broker.stop)
        assert [json.loads(m["Body"])["id"] for m in received] == [sent.id]
        async with db.transaction() as session:
            assert await session.scalar(select(func.count()).select_from(messaging.outbox)) == 0


async def test_a_duplicated_delivery_is_processed_once(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    created = SubmissionCreated(
        submission_id=uuid.uuid4(),
        panel_id=uuid.uuid4(),
        panel_slug="p",
        operation_template="missing-template",
        submitted_by="bob",
        parameters={},
    )
    duplicate = Event(
        type=SUBMISSION_CREATED,
        source="urn:test",
        tenant="acme",
        data=created.model_dump(mode="json"),
    )
    async with database_and_bus(backend, tmp_path, sqs_settings(sqs_server)) as (db, bus):
        await bus.publisher.publish(QUEUE.name, [duplicate])
        await bus.publisher.publish(QUEUE.name, [duplicate])  # SQS may deliver twice
        consumer = bus.consumer(
            QUEUE, transactional_handler(db, messaging, "test", SubmissionsToExecutions())
        )
        async with Supervisor([consumer]).running():
            await eventually(lambda: _queue_empty(bus))
        async with db.transaction() as session:
            executions = (await session.scalars(select(Execution))).all()
            outbox = await session.scalar(select(func.count()).select_from(messaging.outbox))
        assert len(executions) == 1
        assert executions[0].status == "rejected"  # its template does not exist
        assert outbox == 1  # one submission update, not two


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_events_received_together_share_a_transaction_and_a_bad_one_fails_alone(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    transactions = 0

    class CountingDatabase(Database):
        def transaction(self) -> Any:
            nonlocal transactions
            transactions += 1
            return super().transaction()

    class FailingOnBadEvents:
        async def prefetch(self, work: UnitOfWork, events: list[Event]) -> None:
            return None

        async def handle(self, work: UnitOfWork, event: Event, prefetched: None) -> None:
            if event.data.get("bad"):
                raise ValueError("this event cannot be handled")

    settings = sqs_settings(sqs_server)
    async with database_and_bus(backend, tmp_path, settings, CountingDatabase) as (db, bus):

        async def processed() -> set[str] | None:
            async with db.reader() as connection:
                rows = await connection.execute(select(messaging.processed_events.c.event_id))
                return {row.event_id for row in rows}

        consumer = bus.consumer(
            QUEUE, transactional_handler(db, messaging, "test", FailingOnBadEvents())
        )
        good = [event() for _ in range(9)]
        await bus.publisher.publish(QUEUE.name, good)
        async with Supervisor([consumer]).running():
            await eventually(lambda: _all_in(processed, good))
            assert transactions <= 3  # nine events in one or two receives, not nine commits
            bad, *others = [event(bad=True)] + [event() for _ in range(4)]
            await bus.publisher.publish(QUEUE.name, [bad, *others])
            await eventually(lambda: _all_in(processed, others))
            assert bad.id not in (await processed() or set())


async def _all_in(processed: Any, events: list[Event]) -> bool:
    return {e.id for e in events} <= (await processed() or set())


async def _queue_empty(bus: Messaging) -> bool:
    """No message left, visible or in a consumer's hands."""
    return await _counts(bus, QUEUE.name) == (0, 0)


async def test_the_consumer_span_continues_the_producer_trace(
    sqs_server: LocalSQSServer, spans: InMemorySpanExporter
) -> None:
    handled: list[int] = []

    async def handler(_received: Event) -> None:
        handled.append(trace.get_current_span().get_span_context().trace_id)

    tracer = trace.get_tracer("test")
    async with open_messaging(sqs_settings(sqs_server), SIGNER) as bus:
        with tracer.start_as_current_span("producer request") as producer:
            await bus.publisher.publish(QUEUE.name, [event()])
        async with Supervisor([bus.consumer(QUEUE, handler)]).running():
            await eventually(lambda: asyncio.sleep(0, handled))
    assert handled == [producer.get_span_context().trace_id]
    consumer_span = next(s for s in spans.get_finished_spans() if s.kind == SpanKind.CONSUMER)
    assert consumer_span.parent is not None
    assert consumer_span.context.trace_id == producer.get_span_context().trace_id


async def test_rows_a_crash_left_are_sent_at_start_and_fresh_rows_of_another_replica_later(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with database_and_bus("sqlite", tmp_path, sqs_settings(sqs_server)) as (db, bus):
        left = event("test.left.by.a.crash")
        async with db.transaction() as session:  # committed; the process died before sending
            add_event(session, messaging, QUEUE, left)
        relay = OutboxRelay(Database(str(db.engine.url)), messaging, bus.publisher)
        async with Supervisor([relay]).running():
            received = await eventually(lambda: drain(bus, QUEUE.name, wait=0), timeout=5)
            assert [json.loads(m["Body"])["id"] for m in received] == [left.id]
            # Committed through another replica's database handle, whose relay holds it in
            # memory: this relay leaves it alone until it is older than 5 s (SWEEP_AFTER).
            fresh = event("test.fresh.elsewhere")
            async with db.transaction() as session:
                add_event(session, messaging, QUEUE, fresh)
            await asyncio.sleep(2.5)  # two sweeps of a 1 s poll, half of SWEEP_AFTER
            assert await drain(bus, QUEUE.name, wait=0) == []
            received = await eventually(lambda: drain(bus, QUEUE.name, wait=0), timeout=10)
        assert [json.loads(m["Body"])["id"] for m in received] == [fresh.id]
        await relay.db.dispose()


async def test_outbox_wakes_on_commit_not_on_the_timer(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with database_and_bus("sqlite", tmp_path, sqs_settings(sqs_server)) as (db, bus):
        relay = OutboxRelay(db, messaging, bus.publisher, poll_seconds=60)
        async with Supervisor([relay]).running():
            await asyncio.sleep(0.1)  # the relay is now waiting, for up to 60 s
            async with db.transaction() as session:
                add_event(session, messaging, QUEUE, event())
            received = await eventually(lambda: drain(bus, QUEUE.name, wait=0), timeout=2)
        assert len(received) == 1


async def _outbox_ids(db: Database) -> set[str]:
    async with db.snapshot() as session:
        return set(await session.scalars(select(messaging.outbox.c.event_id)))


async def test_sent_rows_are_deleted_by_the_next_transaction_that_writes_or_soon_by_the_relay(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbox, "DELETE_WITHIN", timedelta(seconds=60))
    async with database_and_bus(backend, tmp_path, sqs_settings(sqs_server)) as (db, bus):
        relay = OutboxRelay(db, messaging, bus.publisher, poll_seconds=60)
        async with Supervisor([relay]).running():
            await asyncio.sleep(0.2)  # past its first sweep, the relay waits for up to 60 s
            first, second = event(), event()
            async with db.transaction() as session:
                add_event(session, messaging, QUEUE, first)
            await eventually(lambda: drain(bus, QUEUE.name, wait=0))
            assert await _outbox_ids(db) == {first.id}  # sent, and no transaction of its own
            with pytest.raises(RuntimeError):
                async with db.transaction() as session:
                    add_event(session, messaging, QUEUE, event())
                    raise RuntimeError("rolled back: the sent row waits for the next one")
            assert await _outbox_ids(db) == {first.id}
            async with db.transaction() as session:
                add_event(session, messaging, QUEUE, second)
            assert first.id not in await _outbox_ids(db)  # deleted by that commit
            await eventually(lambda: drain(bus, QUEUE.name, wait=0))
            monkeypatch.setattr(outbox, "DELETE_WITHIN", timedelta(0))
            relay.wake()
            await eventually(lambda: _outbox_empty(db))


async def _outbox_empty(db: Database) -> bool:
    return not await _outbox_ids(db)


async def test_a_long_handler_keeps_its_message_invisible_with_heartbeats(
    sqs_server: LocalSQSServer,
) -> None:
    calls: list[str] = []

    async def slow(received: Event) -> None:
        calls.append(received.id)
        await asyncio.sleep(4)  # twice the visibility timeout

    short_visibility = QueueSpec(QUEUE.name, visibility_timeout_seconds=2)
    async with open_messaging(sqs_settings(sqs_server), SIGNER) as bus:
        await bus.publisher.publish(QUEUE.name, [event()])
        async with Supervisor([bus.consumer(short_visibility, slow, concurrency=2)]).running():
            await eventually(lambda: asyncio.sleep(0, calls))
            await asyncio.sleep(5)
        assert len(calls) == 1
        assert await drain(bus, QUEUE.name) == []


async def test_shutdown_lets_the_running_handler_finish_and_acknowledges_it(
    sqs_server: LocalSQSServer,
) -> None:
    finished: list[str] = []

    async def handler(received: Event) -> None:
        await asyncio.sleep(1)
        finished.append(received.id)

    async with open_messaging(sqs_settings(sqs_server), SIGNER) as bus:
        sent = event()
        await bus.publisher.publish(QUEUE.name, [sent])
        consumer = bus.consumer(QUEUE, handler, shutdown_grace_seconds=5)
        async with Supervisor([consumer]).running():
            await eventually(lambda: asyncio.sleep(0, consumer.in_flight))
        # leaving the block stopped the consumer: the handler still completed
        assert finished == [sent.id]
        visible, _ = await _counts(bus, QUEUE.name)
        assert visible == 0


async def test_a_handler_that_gives_its_slot_back_lets_the_next_message_in_and_is_acknowledged_when_it_returns(  # noqa: E501
    sqs_server: LocalSQSServer,
) -> None:
    started: list[str] = []
    finish = asyncio.Event()

    async def releasing(received: Event) -> None:
        started.append(received.id)
        release_slot()  # what is left holds nothing scarce: the worker reporting an exit
        await finish.wait()

    async with open_messaging(sqs_settings(sqs_server), SIGNER) as bus:
        sent = [event(n=n) for n in range(3)]
        await bus.publisher.publish(QUEUE.name, sent)
        consumer = bus.consumer(QUEUE, releasing, concurrency=1)
        async with Supervisor([consumer]).running():
            # One slot, yet two in hand: the first gave its slot back. Not a third: those
            # finishing count too, beyond as many again as the slots.
            await eventually(lambda: asyncio.sleep(0, len(started) == 2 or None))
            await asyncio.sleep(0.5)
            assert len(started) == 2
            assert consumer.in_flight == 2
            _, in_hand = await _counts(bus, QUEUE.name)
            assert in_hand == 2  # neither deleted before its handler returned
            finish.set()
            await eventually(lambda: asyncio.sleep(0, len(started) == 3 or None))
        assert sorted(started) == sorted(e.id for e in sent)
        assert await drain(bus, QUEUE.name) == []
        assert await _queue_empty(bus)


async def test_a_stop_with_every_slot_busy_starts_the_shutdown_grace_at_once(
    sqs_server: LocalSQSServer,
) -> None:
    outcome: list[str] = []

    async def long(received: Event) -> None:
        try:
            await asyncio.sleep(20)
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async with open_messaging(sqs_settings(sqs_server), SIGNER) as bus:
        await bus.publisher.publish(QUEUE.name, [event()])
        consumer = bus.consumer(QUEUE, long, concurrency=1, shutdown_grace_seconds=0.5)
        async with Supervisor([consumer]).running():
            await eventually(lambda: asyncio.sleep(0, consumer.in_flight))
        # The stop did not wait for the slot to free (20 s): the grace ran out, and the
        # message comes back for another consumer.
        assert outcome == ["cancelled"]


class HeldGroups:
    """A transactional handler whose groups' transactions run until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.groups: list[int] = []

    async def prefetch(self, work: UnitOfWork, events: list[Event]) -> None:
        self.groups.append(len(events))
        await self.release.wait()

    async def handle(self, work: UnitOfWork, received: Event, prefetched: None) -> None:
        pass


async def test_a_service_consumer_takes_in_the_next_batch_while_the_last_ones_transaction_runs(
    backend: str, tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    held = HeldGroups()
    async with database_and_bus(backend, tmp_path, sqs_settings(sqs_server)) as (db, bus):
        sent = [event(n=n) for n in range(25)]
        await bus.publisher.publish(QUEUE.name, sent)
        handler = transactional_handler(db, messaging, "test.held-groups", held)
        consumer = bus.consumer(QUEUE, handler)
        async with Supervisor([consumer]).running():
            # The first group's transaction is still running, yet a second batch is in
            # hand, waiting to be the next group: two receives' worth, not one.
            await eventually(lambda: asyncio.sleep(0, consumer.in_flight == 20 or None))
            await asyncio.sleep(0.5)
            assert consumer.in_flight == 20
            assert len(held.groups) == 1
            _, in_hand = await _counts(bus, QUEUE.name)
            assert in_hand == 20
            held.release.set()
            await eventually(lambda: _queue_empty(bus))
        assert sum(held.groups) == 25


def state(key: str, status: str) -> tuple[Event, Superseding]:
    return event("test.state.changed", key=key, status=status), Superseding(
        key, wait=status != "succeeded"
    )


def relay_on_a_long_poll(db: Database, bus: Messaging, supersede_wait: timedelta) -> OutboxRelay:
    """A relay that only a commit or a waiting row's timer wakes within a test."""
    return OutboxRelay(db, messaging, bus.publisher, poll_seconds=60, supersede_wait=supersede_wait)


async def commit_each(db: Database, *events: tuple[Event, Superseding | None]) -> None:
    for sent, supersede in events:  # one transaction each, as a run's updates are
        async with db.transaction() as session:
            add_event(session, messaging, QUEUE, sent, supersede)


async def test_a_state_superseded_while_unsent_is_deleted_and_only_the_newest_leaves(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with database_and_bus("sqlite", tmp_path, sqs_settings(sqs_server)) as (db, bus):
        plain = event("test.thing.happened")
        async with Supervisor([relay_on_a_long_poll(db, bus, timedelta(minutes=5))]).running():
            await commit_each(
                db,
                state("run-1", "pending"),
                state("run-1", "running"),
                (plain, None),  # not superseding: leaves at once
                state("run-2", "running"),  # waits for a newer state
                state("run-1", "succeeded"),  # final: leaves at once, the older two unsent
            )
            received: list[dict[str, Any]] = []

            async def two_received() -> bool:
                received.extend(await drain(bus, QUEUE.name, wait=0))
                return len(received) == 2

            await eventually(two_received, timeout=5)
        assert sorted(summary(message) for message in received) == [
            ("run-1", "succeeded"),
            ("test.thing.happened", None),
        ]
        flushed = await drain(bus, QUEUE.name, wait=0)  # by the stop, without waiting longer
        assert [summary(message) for message in flushed] == [("run-2", "running")]
        async with db.snapshot() as session:
            assert await session.scalar(select(func.count()).select_from(messaging.outbox)) == 0


async def test_a_waiting_state_leaves_once_its_wait_is_over(
    tmp_path: Path, sqs_server: LocalSQSServer
) -> None:
    async with database_and_bus("sqlite", tmp_path, sqs_settings(sqs_server)) as (db, bus):
        async with Supervisor([relay_on_a_long_poll(db, bus, timedelta(seconds=0.2))]).running():
            await commit_each(db, state("run-1", "running"))
            received = await eventually(lambda: drain(bus, QUEUE.name, wait=0), timeout=5)
        assert [summary(message) for message in received] == [("run-1", "running")]


def summary(message: dict[str, Any]) -> tuple[str, str | None]:
    body = json.loads(message["Body"])
    data = body["data"]
    return (data["key"], data["status"]) if "key" in data else (body["type"], None)

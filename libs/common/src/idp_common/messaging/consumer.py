"""The SQS consumer loop.

Long polls only for as many messages as it has free slots (a handler may give its slot back
before it returns: ``release_slot``), runs each handler in a CONSUMER span parented by the
producer's trace context, extends visibility while a handler runs, deletes a message only
after its handler returned (its transaction committed), and leaves a failed message to be
received again after a backoff; after ``MAX_RECEIVE_COUNT`` receives the broker moves it to
the queue's DLQ. Deletes are coalesced into ``DeleteMessageBatch`` calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter, Histogram

from idp_common.coalescing import Coalescer
from idp_common.events import printable
from idp_common.loops import PeriodicLoop
from idp_common.messaging.dead_letters import dead_letter
from idp_common.messaging.envelope import Event, EventRefused, InvalidEvent, decode_event
from idp_common.messaging.publisher import messaging_attributes
from idp_common.messaging.signing import MessageSigner
from idp_common.messaging.sqs import QueueDirectory
from idp_common.messaging.topology import MAX_BATCH_SIZE, MAX_RECEIVE_COUNT, QueueSpec
from idp_common.messaging.trace_context import extract_context
from idp_common.request_context import admitted_tenant_var, request_id_var, tenant_var

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

T = TypeVar("T")
EventHandler = Callable[[Event], Awaitable[None]]
# The string attributes of the message being handled, for a handler that needs more than
# its event (the inbound consumers read the producer's ``authorization`` there).
message_attributes_var: ContextVar[Mapping[str, str]] = ContextVar(
    "message_attributes", default=MappingProxyType({})
)
_slot_release: ContextVar[Callable[[], None] | None] = ContextVar("slot_release", default=None)


def release_slot() -> None:
    """Give the slot of the message being handled back to its consumer, which may then
    receive the next one while this handler finishes: for a handler whose remaining work
    holds nothing scarce (the worker reporting a command that has exited). The message is
    still deleted only once the handler returns."""
    release = _slot_release.get()
    if release is not None:
        release()


MESSAGES = Counter(
    "idp_messages_consumed_total", "Messages handled, by outcome.", ["queue", "outcome"]
)
DEAD_LETTERED = Counter(
    "idp_messages_dead_lettered_total",
    "Messages given up on and moved to their DLQ (each counted once).",
    ["queue"],
)
HANDLING_SECONDS = Histogram(
    "idp_message_handling_seconds", "Handler duration per message.", ["queue"]
)
QUEUE_SECONDS = Histogram(
    "idp_message_queue_seconds",
    "Time from send to first handling.",
    ["queue"],
    # Past a minute too: a quantile in +Inf reads as the highest bound, and IdpMessagesWaitLong
    # (over 60 s) could never fire when the top one was 30.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)


def _string_attributes(message: dict[str, Any]) -> Mapping[str, str]:
    return MappingProxyType(
        {
            name: value["StringValue"]
            for name, value in message.get("MessageAttributes", {}).items()
            if "StringValue" in value
        }
    )


def exponential_retry_delay(base_seconds: float, max_seconds: int) -> Callable[[int], int]:
    def delay(receive_count: int) -> int:
        return int(min(base_seconds * 2 ** (receive_count - 1), max_seconds))

    return delay


DEFAULT_RETRY_DELAY = exponential_retry_delay(1.0, 60)


UNSIGNED = (
    "not signed by the platform's services: only they write this queue (or they hold "
    "another AUTH_JWT_SECRET than this service)"
)


class Consumer(PeriodicLoop):
    def __init__(
        self,
        queues: QueueDirectory,
        queue: QueueSpec,
        handler: EventHandler,
        *,
        signer: MessageSigner,
        concurrency: int = 10,
        wait_time_seconds: int = 20,
        retry_delay: Callable[[int], int] = DEFAULT_RETRY_DELAY,
        shutdown_grace_seconds: float = 30.0,
        ready: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        # A pass is one long poll; an unreachable broker is asked again every second.
        super().__init__(0.0, min_backoff_seconds=1.0, max_backoff_seconds=1.0)
        self.queues = queues
        self.queue = queue
        self.handler = handler
        # Only the platform's services write the queues not open to other services.
        self.signer = None if queue.from_other_services else signer
        self.failure_signer = signer  # its dead letters are the platform's, whoever wrote it
        self.concurrency = concurrency
        self.wait_time_seconds = wait_time_seconds
        self.retry_delay = retry_delay
        self.shutdown_grace_seconds = shutdown_grace_seconds
        # What the handlers need (the database), checked after a handler failed and before
        # anything more is received: while it is down, messages are left in the queue rather
        # than received and failed until their receives are used up and they are dead-lettered.
        self.ready = ready
        self._check_ready = False
        self.heartbeat_seconds = max(queue.visibility_timeout_seconds / 3, 1)
        self._url: str | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._holding_slots: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._deletes = Coalescer(self._delete, max_items=MAX_BATCH_SIZE)

    @property
    def name(self) -> str:
        return f"Consumer({self.queue.name})"

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    async def run_once(self) -> None:
        """Receive as many messages as there are free slots, and start handling each. Those
        whose handlers gave their slots back and are finishing count too, beyond as many
        again: a broker that accepts receives but not the handlers' sends does not pile up
        unfinished work."""
        if self._url is None:
            self._url = await self.queues.url(self.queue.name)
        if self._check_ready:
            assert self.ready is not None
            await self._unless_stopped(self.ready())  # raises while it is down: tried again
            self._check_ready = False
        free = min(
            self.concurrency - len(self._holding_slots),
            2 * self.concurrency - len(self._inflight),
        )
        if free <= 0:
            self._slot_freed.clear()
            await self._unless_stopped(self._slot_freed.wait())
            return
        answer = await self._unless_stopped(
            self.queues.wire.receive_message(
                QueueUrl=self._url,
                MaxNumberOfMessages=min(MAX_BATCH_SIZE, free),
                WaitTimeSeconds=self.wait_time_seconds,
                VisibilityTimeout=self.queue.visibility_timeout_seconds,
                AttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                # All of them: a message given up on goes to the DLQ with every attribute.
                MessageAttributeNames=["All"],
            )
        )
        # None: stopped, and anything the broker handed over in this poll comes back later.
        for message in (answer or {}).get("Messages", []):
            task = asyncio.create_task(self._handle(self._url, message))
            self._inflight.add(task)
            self._holding_slots.add(task)
            task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._free_slot(task)

    def _free_slot(self, task: asyncio.Task[None]) -> None:
        self._holding_slots.discard(task)
        self._slot_freed.set()

    async def _unless_stopped(self, waiting: Awaitable[T]) -> T | None:
        """What ``waiting`` returned, or None when the stop came first (it is then cancelled)."""
        done = asyncio.ensure_future(waiting)
        stopped = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({done, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if not done.done():
            done.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await done
            return None
        return done.result()

    async def after_stop(self) -> None:
        """Let the messages in hand finish (within the grace), then cancel the rest."""
        if not self._inflight:
            return
        _, pending = await asyncio.wait(set(self._inflight), timeout=self.shutdown_grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _handle(self, url: str, message: dict[str, Any]) -> None:
        task = asyncio.current_task()
        assert task is not None
        _slot_release.set(lambda: self._free_slot(task))
        attributes = message.get("Attributes", {})
        receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
        if receive_count == 1 and "SentTimestamp" in attributes:
            waited = time.time() - int(attributes["SentTimestamp"]) / 1000
            QUEUE_SECONDS.labels(self.queue.name).observe(max(waited, 0.0))
        started = time.perf_counter()
        with tracer.start_as_current_span(
            f"{self.queue.name} process",
            context=extract_context(message.get("MessageAttributes")),
            kind=SpanKind.CONSUMER,
            attributes=messaging_attributes(self.queue.name, "process")
            | {
                "messaging.message.id": message["MessageId"],
                "messaging.receive_count": receive_count,
            },
        ) as span:
            heartbeat = asyncio.create_task(self._heartbeat(url, message["ReceiptHandle"]))
            # None: delete; a number: retry after that many seconds; a reason: dead-letter
            delay: int | str | None = None
            admitted_tenant_var.set(None)  # until this message's credential admits it
            try:
                event = decode_event(
                    message["Body"], from_another_service=self.queue.from_other_services
                )
                span.set_attribute("cloudevents.event_id", event.id)
                span.set_attribute("cloudevents.event_type", event.type)
                if self.signer and not self.signer.signed(
                    message["Body"], message.get("MessageAttributes", {})
                ):
                    raise EventRefused(UNSIGNED)
                if not self.queue.from_other_services:  # the platform's own: its signature
                    admitted_tenant_var.set(event.tenant)
                tenant_var.set(event.tenant)
                # What a message causes (logs, audit rows) is traced back to the event's id.
                request_id_var.set(event.id)
                message_attributes_var.set(_string_attributes(message))
                await self.handler(event)
            except InvalidEvent as exc:  # it can never succeed
                self._record_failure(span, exc, message, receive_count, "invalid", final=True)
                delay = f"invalid event: {exc}"
            except EventRefused as exc:
                self._record_failure(span, exc, message, receive_count, "refused", final=True)
                delay = f"refused: {exc}"
            except Exception as exc:
                self._check_ready = self.ready is not None
                final = receive_count >= MAX_RECEIVE_COUNT
                self._record_failure(span, exc, message, receive_count, "failed", final=final)
                delay = f"{type(exc).__name__}: {exc}" if final else self.retry_delay(receive_count)
            else:
                MESSAGES.labels(self.queue.name, "ok").inc()
            finally:
                heartbeat.cancel()
                HANDLING_SECONDS.labels(self.queue.name).observe(time.perf_counter() - started)
            if isinstance(delay, str):
                await self._dead_letter(url, message, delay, receive_count)
            else:
                await self._settle(url, message["ReceiptHandle"], delay)

    def _record_failure(
        self,
        span: trace.Span,
        exc: Exception,
        message: dict[str, Any],
        receive_count: int,
        outcome: str,
        *,
        final: bool,
    ) -> None:
        MESSAGES.labels(self.queue.name, outcome).inc()
        why = printable(str(exc))  # it may quote the message: a key named twice, as sent
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, why))
        logger.error(
            "message %s on %s: %s%s",
            message["MessageId"],
            self.queue.name,
            why,
            f" (receive {receive_count}; moving to {self.queue.dlq_name})" if final else "",
            exc_info=outcome == "failed",
            extra={"receive_count": receive_count, "outcome": outcome},
        )

    async def _dead_letter(
        self, url: str, message: dict[str, Any], reason: str, receive_count: int
    ) -> None:
        """Move the message to the DLQ with why it failed; if that send fails, leave it to
        come back (SQS's redrive moves it after its last receive, without the reason)."""
        try:
            await dead_letter(
                self.queues,
                self.queue,
                message,
                reason,
                receive_count,
                admitted_tenant_var.get(),
                signer=self.failure_signer,
            )
        except Exception:
            logger.warning("could not dead-letter a message on %s", self.queue.name, exc_info=True)
            await self._settle(url, message["ReceiptHandle"], self.retry_delay(receive_count))
            return
        DEAD_LETTERED.labels(self.queue.name).inc()
        await self._settle(url, message["ReceiptHandle"], None)

    async def _settle(self, url: str, receipt: str, retry_delay: int | None) -> None:
        if retry_delay is None:
            await self._deletes.submit((url, receipt))
            return
        try:
            await self.queues.wire.change_message_visibility(
                QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=retry_delay
            )
        except Exception:
            # The message comes back after its visibility timeout; consumers are idempotent.
            logger.warning("could not settle a message on %s", self.queue.name, exc_info=True)

    async def _delete(self, messages: list[tuple[str, str]]) -> list[None]:
        """Delete messages of this queue: (queue URL, receipt handle) pairs."""
        try:
            response = await self.queues.wire.delete_message_batch(
                QueueUrl=messages[0][0],
                Entries=[
                    {"Id": str(index), "ReceiptHandle": receipt}
                    for index, (_, receipt) in enumerate(messages)
                ],
            )
            for failure in response.get("Failed", []):
                # The message comes back after its visibility timeout; consumers are idempotent.
                logger.warning(
                    "could not delete a message on %s: %s",
                    self.queue.name,
                    failure.get("Message", failure.get("Code", "?")),
                )
        except Exception:
            logger.warning("could not delete messages on %s", self.queue.name, exc_info=True)
        return [None] * len(messages)

    async def _heartbeat(self, url: str, receipt: str) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await self.queues.wire.change_message_visibility(
                    QueueUrl=url,
                    ReceiptHandle=receipt,
                    VisibilityTimeout=self.queue.visibility_timeout_seconds,
                )
            except Exception:
                logger.warning("visibility heartbeat failed on %s", self.queue.name, exc_info=True)

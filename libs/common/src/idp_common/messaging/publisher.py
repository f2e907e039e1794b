"""Sending to SQS with the producer's trace context in MessageAttributes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from botocore.exceptions import ClientError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from idp_common.coalescing import Coalescer
from idp_common.messaging.envelope import Event, encode_event
from idp_common.messaging.signing import SIGNATURE, MessageSigner
from idp_common.messaging.sqs import QueueDirectory, is_missing_queue
from idp_common.messaging.topology import MAX_BATCH_BYTES, MAX_BATCH_SIZE, MAX_MESSAGE_BYTES
from idp_common.messaging.trace_context import current_trace_carrier, to_message_attributes

tracer = trace.get_tracer(__name__)


class MessageTooLarge(ValueError):
    pass


def checked_body(event: Event) -> str:
    body = encode_event(event)
    if (size := len(body.encode())) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"{event.type} takes {size} bytes, more than a queue message holds "
            f"({MAX_MESSAGE_BYTES})"
        )
    return body


def messaging_attributes(queue: str, operation: str) -> dict[str, str]:
    return {
        "messaging.system": "aws_sqs",
        "messaging.destination.name": queue,
        "messaging.operation.type": operation,
    }


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    body: str
    trace_carrier: Mapping[str, str]


def _entry_bytes(message: OutgoingMessage) -> int:
    return len(message.body.encode()) + sum(
        len(key) + len(value) for key, value in message.trace_carrier.items()
    )


def missing_queue(queue: str) -> str:
    """Why the broker refuses every message to ``queue``: there is no such queue."""
    return f"the queue {queue!r} does not exist"


class Publisher:
    def __init__(self, queues: QueueDirectory, signer: MessageSigner) -> None:
        self.queues = queues
        self.signer = signer
        self._sends: dict[str, Coalescer[OutgoingMessage, str | None]] = {}

    async def send(self, queue: str, message: OutgoingMessage) -> str | None:
        """Send one message in a ``SendMessageBatch`` shared with concurrent sends to
        ``queue`` (bounded by count and bytes); returns why the broker refused it, or None."""
        sends = self._sends.get(queue)
        if sends is None:
            sends = self._sends[queue] = Coalescer(
                partial(self._send_batch, queue),
                max_items=MAX_BATCH_SIZE,
                size=_entry_bytes,
                max_size=MAX_BATCH_BYTES,
            )
        return await sends.submit(message)

    async def _send_batch(self, queue: str, messages: list[OutgoingMessage]) -> list[str | None]:
        assert len(messages) <= MAX_BATCH_SIZE
        entries = [
            {
                "Id": str(index),
                "MessageBody": message.body,
                "MessageAttributes": to_message_attributes(message.trace_carrier)
                | {SIGNATURE: self.signer.attribute(message.body)},
            }
            for index, message in enumerate(messages)
        ]
        with tracer.start_as_current_span(
            f"{queue} send", kind=SpanKind.PRODUCER, attributes=messaging_attributes(queue, "send")
        ):
            try:
                url = await self.queues.url(queue)
                response = await self.queues.wire.send_message_batch(QueueUrl=url, Entries=entries)
            except ClientError as exc:
                if not is_missing_queue(exc):
                    raise
                # A reply queue its owner deleted (before its URL was looked up, or after): a
                # refusal of these messages, not an outage of the broker.
                return [missing_queue(queue)] * len(messages)
        failed = {
            int(failure["Id"]): failure.get("Message", failure.get("Code", "?"))
            for failure in response.get("Failed", [])
        }
        return [failed.get(index) for index in range(len(messages))]

    async def publish(self, queue: str, events: Sequence[Event]) -> None:
        """Send events now, as children of the current span (no outbox). Concurrent
        publishes to one queue share ``SendMessageBatch`` calls."""
        with tracer.start_as_current_span(
            f"{queue} publish",
            kind=SpanKind.PRODUCER,
            attributes=messaging_attributes(queue, "publish"),
        ):
            carrier = current_trace_carrier()
            failures = await asyncio.gather(
                *(self.send(queue, OutgoingMessage(checked_body(e), carrier)) for e in events)
            )
        failed = [failure for failure in failures if failure is not None]
        if failed:
            raise RuntimeError(f"SQS refused {len(failed)} message(s) for {queue}: {failed}")

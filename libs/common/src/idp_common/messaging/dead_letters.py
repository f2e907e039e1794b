"""Dead letters: the messages consumers gave up on, with why, and the operators' tools.

A consumer that gives up on a message (an event that can never succeed, or the last receive
failed) moves it to the queue's DLQ itself, body and attributes unchanged, with the reason
and the receive count as message attributes (``dead_letter``): SQS's redrive, which would
move it without a reason, stays as the net for a consumer that dies while handling it.

Operators peek at a DLQ without consuming it (``DeadLetterQueue.peek``: every message is
received, then its visibility restored at once), and send messages back to their queue or
delete them (``DeadLetterQueue.take``: the chosen messages stay hidden while that is done).
A read hides every message it takes in until it shows them again, so reads of one DLQ take
turns within a process: a replay started while a listing reads (the console's page, its
queue depths) would otherwise find none of its messages and replay 0 of 0."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from opentelemetry import trace

from idp_common.events import EXECUTION_REQUESTED_EXTERNAL, SUBMISSION_REQUESTED, printable
from idp_common.messaging.envelope import Event, InvalidEvent, decode_event
from idp_common.messaging.signing import SIGNATURE, MessageSigner
from idp_common.messaging.sqs import QueueDirectory
from idp_common.messaging.topology import MAX_BATCH_BYTES, MAX_BATCH_SIZE, QueueSpec, queue_arn
from idp_common.messaging.trace_context import extract_context
from idp_common.redaction import MASK, secret_looking
from idp_common.request_context import trace_id_of
from idp_common.schemas import LONE_SURROGATE
from idp_common.sealing import is_sealed

REASON = "idp.failure_reason"
FAILED_AT = "idp.failed_at"
RECEIVES = "idp.receive_count"
# A dead letter belongs to the tenant that admitted its event, not to the one its body names
# (anyone who can write a queue may write any tenant there): a producer's credential on an
# inbound queue, the platform's signature on the others. One a consumer refused before that
# (unsigned, unreadable, no credential) is the platform operators' alone.
ADMITTED_TENANT = "idp.admitted_tenant"
# The platform's signature of the failure attributes with the body: anyone who can write a
# queue can write its DLQ too, and would otherwise place a letter among any tenant's.
FAILURE_SIGNATURE = "idp.failure_signature"
FAILURE_ATTRIBUTES = (REASON, FAILED_AT, RECEIVES, ADMITTED_TENANT, FAILURE_SIGNATURE)
# SQS carries at most 10 attributes a message, and a producer may have used them all: with
# the failure's, its DLQ copy could not be sent (received again until SQS's redrive moved it
# without why). Its own that the platform reads (a credential, the platform's signature,
# the trace) are kept first; the others as room is left.
MAX_MESSAGE_ATTRIBUTES = 10
READ_ATTRIBUTES = frozenset({"authorization", SIGNATURE, "traceparent", "tracestate"})
MAX_REASON_CHARS = 2000
SEALED = "[sealed]"
# Shorter secret values are left in a reason: masking them would hide ordinary words.
MIN_REDACTED_CHARS = 4
# Messages one peek reads at most: a DLQ is read whole, and holding more at once would make
# a listing slow and hide them from other operators for longer.
PEEK_LIMIT = 1000
# How long a peek or an operation keeps the messages it read hidden, at most (a peek
# restores them at once; a crash leaves them to come back after this).
HOLD_SECONDS = 60
MOVE_POLL_SECONDS = 0.5
# How long a take of named messages reads again for those it did not find: longer than
# another process's listing holds them (its reads, then a last empty 1 s long poll).
TAKE_AGAIN_SECONDS = 3.0
# How deep an event's data is shown to operators (as deep as the APIs take JSON).
MAX_SHOWN_DEPTH = 32
NESTED_TOO_DEEPLY = "[nested too deeply]"


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _failure_text(body: str, attributes: dict[str, Any]) -> str:
    """What the failure signature covers: the body and each failure attribute (absent: empty)."""
    values = [
        (attributes.get(name) or {}).get("StringValue") or ""
        for name in (REASON, FAILED_AT, RECEIVES, ADMITTED_TENANT)
    ]
    return "\x00".join([body, *values])


def dead_letter_attributes(
    message_attributes: dict[str, Any],
    reason: str,
    receive_count: int,
    admitted_tenant: str | None,
    *,
    body: str,
    signer: MessageSigner,
) -> dict[str, Any]:
    """A message's attributes as its DLQ copy carries them: why, when, after how many
    receives, and which tenant's credential admitted it (a failure's earlier ones, or a
    producer's forgeries, replaced), signed with ``body`` by the platform."""
    kept = {k: v for k, v in message_attributes.items() if k not in FAILURE_ATTRIBUTES}
    failure = {
        REASON: _string(reason),
        FAILED_AT: _string(datetime.now(UTC).isoformat()),
        RECEIVES: {"DataType": "Number", "StringValue": str(receive_count)},
    }
    if admitted_tenant is not None:
        failure[ADMITTED_TENANT] = _string(admitted_tenant)
    failure[FAILURE_SIGNATURE] = signer.attribute(_failure_text(body, failure))
    room = MAX_MESSAGE_ATTRIBUTES - len(failure)
    names = sorted(kept, key=lambda name: name not in READ_ATTRIBUTES)[:room]
    return {name: kept[name] for name in names} | failure


def _secret_values(value: Any, secret_key: bool = False) -> Iterable[str]:
    """The strings of ``value`` that are secret: under a secret-looking key, or sealed."""
    if isinstance(value, dict):
        for key, item in value.items():
            hinted = secret_looking(str(key))
            yield from _secret_values(item, secret_key or hinted)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_values(item, secret_key)
    elif isinstance(value, str) and (secret_key or is_sealed(value)):
        yield value


def redacted_reason(reason: str, body: str) -> str:
    """``reason`` without the secret values of the message's data (an error message may
    quote what it failed on), ``printable``: a key named twice may hold ``\\x01``, which SQS
    refuses in an attribute, and the copy to the DLQ came only after the last receive,
    without its reason. A body nested deeper than the JSON parser goes raised here, and such
    a message could not be dead-lettered: it was received again until SQS's redrive."""
    with contextlib.suppress(ValueError, AttributeError, RecursionError):
        data = json.loads(body).get("data")
        for secret in sorted(set(_secret_values(data)), key=len, reverse=True):
            if len(secret) >= MIN_REDACTED_CHARS:
                reason = reason.replace(secret, MASK)
    return printable(reason)[:MAX_REASON_CHARS] or "unknown"


# Other services' requests carry a form's values or a run's parameters as sent, a secret
# field's too (which only its panel knows to be one): operators see their names only.
_VALUES_KEPT_FROM_OPERATORS = {
    SUBMISSION_REQUESTED: "data",
    EXECUTION_REQUESTED_EXTERNAL: "parameters",
}


def redacted_event_data(event: Event) -> Any:
    """An event's data as operators see it (``redacted_data``; the values of a request by
    event masked whatever their names)."""
    data = redacted_data(event.data)
    values = _VALUES_KEPT_FROM_OPERATORS.get(event.type)
    if values is not None and isinstance(data.get(values), dict):
        data[values] = dict.fromkeys(data[values], MASK)
    return data


def redacted_data(data: Any, *, values_shown: bool = True) -> Any:
    """Event data as operators see it: secret-looking keys masked, sealed values named
    (never opened), a lone surrogate (JSON's ``\\ud800``, which no answer can encode) as its
    escape, and nesting past ``MAX_SHOWN_DEPTH`` levels named. Walked without recursion: one
    message nested hundreds deep made every listing of its DLQ a 500. ``values_shown``
    False: every value masked, the names kept."""
    shown: list[Any] = [None]
    pending: list[tuple[Any, Any, Any, int]] = [(data, shown, 0, 0)]  # (value, into, at, depth)
    while pending:
        value, into, at, depth = pending.pop()
        if isinstance(value, dict | list) and depth >= MAX_SHOWN_DEPTH:
            into[at] = NESTED_TOO_DEEPLY
        elif isinstance(value, dict):
            fields: dict[str, Any] = {}
            into[at] = fields
            for key, item in value.items():
                name = _escaped_surrogates(str(key))
                fields[name] = MASK
                if not secret_looking(name):
                    pending.append((item, fields, name, depth + 1))
        elif isinstance(value, list):
            into[at] = items = [None] * len(value)
            pending.extend((item, items, index, depth + 1) for index, item in enumerate(value))
        elif not values_shown:
            into[at] = MASK
        elif isinstance(value, str):
            into[at] = SEALED if is_sealed(value) else _escaped_surrogates(value)
        else:
            into[at] = value
    return shown[0]


def redacted_body(body: str) -> str:
    """A message that is no event, as operators see it: its JSON with every value of its
    data masked (which request it was cannot be known, and a form's secret field may be
    among them), or the start of what is no JSON."""
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return _escaped_surrogates(body[:MAX_REASON_CHARS])
    if not isinstance(parsed, dict):
        return json.dumps(redacted_data(parsed, values_shown=False))[:MAX_REASON_CHARS]
    shown = redacted_data({key: value for key, value in parsed.items() if key != "data"})
    if "data" in parsed:
        shown["data"] = redacted_data(parsed["data"], values_shown=False)
    return json.dumps(shown)[:MAX_REASON_CHARS]


def _escaped_surrogates(text: str) -> str:
    return LONE_SURROGATE.sub(lambda found: ascii(found.group())[1:-1], text)


async def dead_letter(
    queues: QueueDirectory,
    queue: QueueSpec,
    message: dict[str, Any],
    reason: str,
    receives: int,
    admitted_tenant: str | None = None,
    *,
    signer: MessageSigner,
) -> None:
    """Send ``message`` (as received) to ``queue``'s DLQ with the reason it failed."""
    await queues.client.send_message(
        QueueUrl=await queues.url(queue.dlq_name),
        MessageBody=message["Body"],
        MessageAttributes=dead_letter_attributes(
            message.get("MessageAttributes", {}),
            redacted_reason(reason, message["Body"]),
            receives,
            admitted_tenant,
            body=message["Body"],
            signer=signer,
        ),
    )


@dataclass(slots=True)
class DeadLetter:
    """A message of a DLQ, as an operator sees it."""

    message_id: str
    receipt_handle: str
    body: str
    message_attributes: dict[str, Any]
    sent_at: datetime
    sqs_receive_count: int
    from_producers: bool  # its queue is an inbound one: see ADMITTED_TENANT
    # The platform wrote it: a consumer's signed failure, or SQS's redrive of a message the
    # platform signed. Any other is its operators' alone, whatever tenant it names.
    vouched: bool
    event: Event | None = field(init=False)
    unreadable: str | None = field(init=False)  # why the body is no event, if it is not

    def __post_init__(self) -> None:
        try:
            self.event, self.unreadable = decode_event(self.body), None
        except InvalidEvent as exc:
            self.event, self.unreadable = None, str(exc)

    def _attribute(self, name: str) -> str | None:
        value = self.message_attributes.get(name) or {}
        return value.get("StringValue")

    @property
    def event_time(self) -> datetime | None:
        """When its producer says the event happened; None when it does not say (the
        event's own default, the time it is read, would change at every listing)."""
        if self.event is None:
            return None
        with contextlib.suppress(ValueError, RecursionError, AttributeError):
            if json.loads(self.body).get("time") is not None:
                return self.event.time
        return None

    @property
    def reason(self) -> str | None:
        return self._attribute(REASON) or self.unreadable

    # A consumer writes the failure attributes; SQS's redrive moves a message with those its
    # producer wrote, anything at all. One not as a consumer writes it is not believed: it
    # made every read of the DLQ raise, which left all its messages hidden (HOLD_SECONDS),
    # and a time beyond UTC's range made a listing's cursor one it refuses.

    @property
    def failed_at(self) -> datetime:
        recorded = self._attribute(FAILED_AT)
        with contextlib.suppress(ValueError, OverflowError):  # OverflowError: beyond UTC
            failed = datetime.fromisoformat(recorded or "")
            if failed.tzinfo is not None:
                return failed.astimezone(UTC)
        return self.sent_at

    @property
    def receive_count(self) -> int:
        """Receives on its own queue (SQS's count on the DLQ when a consumer did not say)."""
        with contextlib.suppress(ValueError):
            return int(self._attribute(RECEIVES) or "")
        return self.sqs_receive_count

    @property
    def tenant(self) -> str | None:
        """The tenant it belongs to (None: the platform's operators' alone): the one that
        admitted it (see ADMITTED_TENANT) when a consumer dead-lettered it (with a reason);
        its body's when SQS's redrive moved it from one of the platform's own queues."""
        if not self.vouched:
            return None
        if self.from_producers or self._attribute(REASON) is not None:
            return self._attribute(ADMITTED_TENANT)
        return self.event.tenant if self.event else None

    @property
    def trace_id(self) -> str | None:
        return trace_id_of(trace.get_current_span(extract_context(self.message_attributes)))

    def replayed_attributes(self) -> dict[str, Any]:
        """The attributes it goes back to its queue with: its own, without the failure's."""
        return {k: v for k, v in self.message_attributes.items() if k not in FAILURE_ATTRIBUTES}


def _vouched(body: str, message_attributes: dict[str, Any], signer: MessageSigner | None) -> bool:
    if signer is None:
        return False
    if REASON in message_attributes or FAILURE_SIGNATURE in message_attributes:
        failure = _failure_text(body, message_attributes)
        return signer.signed(failure, message_attributes, FAILURE_SIGNATURE)
    return signer.signed(body, message_attributes)


def _dead_letter_of(
    message: dict[str, Any], queue: QueueSpec, signer: MessageSigner | None
) -> DeadLetter:
    attributes = message.get("Attributes", {})
    sent = int(attributes.get("SentTimestamp", "0")) / 1000
    message_attributes = message.get("MessageAttributes", {})
    return DeadLetter(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=message["Body"],
        message_attributes=message_attributes,
        sent_at=datetime.fromtimestamp(sent, UTC),
        sqs_receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
        from_producers=queue.from_other_services,
        vouched=_vouched(message["Body"], message_attributes, signer),
    )


def _batches(items: list[Any], size: Callable[[Any], int] = lambda _: 0) -> Iterable[list[Any]]:
    """``items`` in batches SQS takes: ``MAX_BATCH_SIZE`` at most, and ``MAX_BATCH_BYTES``
    by ``size`` (one item alone whatever its size)."""
    batch: list[Any] = []
    used = 0
    for item in items:
        if batch and (len(batch) == MAX_BATCH_SIZE or used + size(item) > MAX_BATCH_BYTES):
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += size(item)
    if batch:
        yield batch


def _sent_bytes(letter: DeadLetter) -> int:
    """What a letter sent back weighs in a batch: its body and attributes, as SQS counts."""
    attributes = letter.replayed_attributes()
    return len(letter.body.encode()) + sum(
        len(name) + len(str(value.get("DataType", ""))) + len(str(value.get("StringValue", "")))
        for name, value in attributes.items()
    )


class MoveRunning(Exception):
    """The broker moves the DLQ back already (one move task per queue at a time)."""

    def __init__(self, dlq: str) -> None:
        super().__init__(
            f"The whole of {dlq} is being moved back already: follow that replay, or start "
            "this one once it has ended."
        )


class DeadLetterQueue:
    """The DLQ of ``queue``; ``signer`` tells the platform's letters (without it, no letter
    is any tenant's)."""

    def __init__(
        self, queues: QueueDirectory, queue: QueueSpec, signer: MessageSigner | None = None
    ) -> None:
        self.queues = queues
        self.queue = queue
        self.signer = signer

    async def _read_all(self, url: str) -> list[DeadLetter]:
        """Every message of the DLQ (up to ``PEEK_LIMIT``), each hidden for a while."""
        found: dict[str, DeadLetter] = {}
        while len(found) < PEEK_LIMIT:
            response = await self.queues.client.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=MAX_BATCH_SIZE,
                VisibilityTimeout=HOLD_SECONDS,
                # A long poll: a short one samples only some of SQS's servers, and a listing
                # would miss messages.
                WaitTimeSeconds=1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                found[message["MessageId"]] = _dead_letter_of(message, self.queue, self.signer)
        return sorted(found.values(), key=lambda letter: (letter.failed_at, letter.message_id))

    async def _show_again(self, url: str, letters: list[DeadLetter]) -> None:
        for batch in _batches(letters):
            entries = [
                {"Id": str(index), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for index, letter in enumerate(batch)
            ]
            with contextlib.suppress(Exception):  # hidden for HOLD_SECONDS at most anyway
                await self.queues.client.change_message_visibility_batch(
                    QueueUrl=url, Entries=entries
                )

    def _reading(self) -> asyncio.Lock:
        """Held while a read of this DLQ has messages hidden that it shows again."""
        return self.queues.dlq_reads.setdefault(self.queue.dlq_name, asyncio.Lock())

    async def peek(self) -> list[DeadLetter]:
        """The DLQ's messages, oldest failure first, left in place."""
        url = await self.queues.url(self.queue.dlq_name)
        async with self._reading():
            letters = await self._read_all(url)
            await self._show_again(url, letters)
        return letters

    @contextlib.asynccontextmanager
    async def take(
        self, chosen: Callable[[DeadLetter], bool], *, expected: int = 0
    ) -> AsyncIterator[Taken]:
        """The messages ``chosen`` selects, kept hidden while the block works on them; the
        others are shown again at once, and the chosen ones still there when it ends.
        ``expected``: how many the caller named; while fewer are found, the DLQ is read
        again for up to ``TAKE_AGAIN_SECONDS`` (another process's read may hide them)."""
        url = await self.queues.url(self.queue.dlq_name)
        give_up_at = time.monotonic() + TAKE_AGAIN_SECONDS
        while True:
            async with self._reading():
                letters = await self._read_all(url)
                mine = [letter for letter in letters if chosen(letter)]
                if len(mine) >= expected or time.monotonic() >= give_up_at:
                    others = [letter for letter in letters if not chosen(letter)]
                    await self._show_again(url, others)
                    break
                await self._show_again(url, letters)
        taken = Taken(self, url, mine)
        try:
            yield taken
        finally:
            await self._show_again(url, taken.left())

    async def move_all(self, per_second: int) -> str:
        """Move the whole DLQ back to its queue with the broker's own task
        (``StartMessageMoveTask``); returns the task's handle. ``MoveRunning`` when the
        broker runs one for this DLQ already (it runs one at a time)."""
        source = await self._arn(self.queue.dlq_name)
        try:
            response = await self.queues.client.start_message_move_task(
                SourceArn=source,
                DestinationArn=await self._arn(self.queue.name),
                MaxNumberOfMessagesPerSecond=per_second,
            )
        except ClientError:
            tasks = await self.queues.client.list_message_move_tasks(SourceArn=source, MaxResults=1)
            if any(task["Status"] == "RUNNING" for task in tasks.get("Results", [])):
                raise MoveRunning(self.queue.dlq_name) from None
            raise
        return str(response["TaskHandle"])

    async def follow_move(self, progress: Callable[[int], None]) -> None:
        """Wait for the DLQ's move task to end, telling ``progress`` how many have moved."""
        source = await self._arn(self.queue.dlq_name)
        while True:
            tasks = await self.queues.client.list_message_move_tasks(SourceArn=source, MaxResults=1)
            task = tasks["Results"][0]
            progress(int(task.get("ApproximateNumberOfMessagesMoved", 0)))
            if task["Status"] == "FAILED":
                raise RuntimeError(f"the broker's move task failed: {task.get('FailureReason')}")
            if task["Status"] != "RUNNING":
                return
            await asyncio.sleep(MOVE_POLL_SECONDS)

    async def _arn(self, name: str) -> str:
        response = await self.queues.client.get_queue_attributes(
            QueueUrl=await self.queues.url(name), AttributeNames=["QueueArn"]
        )
        return str(response["Attributes"].get("QueueArn") or queue_arn(name))


class Taken:
    """Dead letters held by one operation (``DeadLetterQueue.take``)."""

    def __init__(self, dlq: DeadLetterQueue, url: str, letters: list[DeadLetter]) -> None:
        self.dlq = dlq
        self.url = url
        self.letters = letters
        self._removed: set[str] = set()

    def left(self) -> list[DeadLetter]:
        return [letter for letter in self.letters if letter.message_id not in self._removed]

    async def send_back(self, per_second: float, progress: Callable[[int], None]) -> int:
        """Send the letters back to their queue, body and trace attributes as they were, at
        most ``per_second`` a second, each deleted from the DLQ once sent; ``progress`` is
        told how many have moved after each batch."""
        client = self.dlq.queues.client
        source = await self.dlq.queues.url(self.dlq.queue.name)
        moved = 0
        # By bytes too: ten large letters in one batch were past SQS's limit, and the whole
        # replay failed (none of them could ever be sent back but by a whole-DLQ move).
        for batch in _batches(self.letters, _sent_bytes):
            started = time.monotonic()
            response = await client.send_message_batch(
                QueueUrl=source,
                Entries=[
                    {
                        "Id": str(index),
                        "MessageBody": letter.body,
                        "MessageAttributes": letter.replayed_attributes(),
                    }
                    for index, letter in enumerate(batch)
                ],
            )
            failed = {int(failure["Id"]) for failure in response.get("Failed", [])}
            sent = [letter for index, letter in enumerate(batch) if index not in failed]
            moved += await self._delete(sent)
            progress(moved)
            await asyncio.sleep(len(batch) / per_second - (time.monotonic() - started))
        return moved

    async def delete(self) -> int:
        """Delete the letters from the DLQ; returns how many were deleted."""
        deleted = 0
        for batch in _batches(self.letters):
            deleted += await self._delete(batch)
        return deleted

    async def _delete(self, batch: list[DeadLetter]) -> int:
        if not batch:
            return 0
        response = await self.dlq.queues.client.delete_message_batch(
            QueueUrl=self.url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": letter.receipt_handle}
                for index, letter in enumerate(batch)
            ],
        )
        failed = {int(failure["Id"]) for failure in response.get("Failed", [])}
        for index, letter in enumerate(batch):
            if index not in failed:
                self._removed.add(letter.message_id)
        return len(batch) - len(failed)


@dataclass(frozen=True, slots=True)
class QueueDepths:
    """A queue's messages by state, and its DLQ's depth and oldest failure."""

    queue: QueueSpec
    visible: int
    in_flight: int
    delayed: int
    dead_letters: int
    oldest_dead_letter: datetime | None


async def message_counts(queues: QueueDirectory, queue: QueueSpec) -> dict[str, int]:
    """The broker's counts of ``queue``'s messages: visible, in flight (received, not yet
    deleted) and delayed, by their attribute names."""
    response = await queues.wire.get_queue_attributes(
        QueueUrl=await queues.url(queue.name),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )
    return {key: int(value) for key, value in response["Attributes"].items()}


async def queue_depths(queues: QueueDirectory, queue: QueueSpec) -> QueueDepths:
    """Counted by the broker; the DLQ peeked (only when it is not empty) for its oldest."""
    counts = await message_counts(queues, queue)
    dlq = await queues.wire.get_queue_attributes(
        QueueUrl=await queues.url(queue.dlq_name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    waiting = sum(int(value) for value in dlq["Attributes"].values())
    letters = await DeadLetterQueue(queues, queue).peek() if waiting else []
    return QueueDepths(
        queue=queue,
        visible=counts["ApproximateNumberOfMessages"],
        in_flight=counts["ApproximateNumberOfMessagesNotVisible"],
        delayed=counts["ApproximateNumberOfMessagesDelayed"],
        dead_letters=max(waiting, len(letters)),
        oldest_dead_letter=min((letter.failed_at for letter in letters), default=None),
    )

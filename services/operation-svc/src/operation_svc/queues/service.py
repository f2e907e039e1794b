"""What operators do with the queues: their depths, and the dead letters of each, peeked,
sent back to their queue or deleted. A tenant's admin sees and acts on the messages of
their tenant; a platform operator on every message, unreadable ones included."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from idp_common.auth import PLATFORM_OPERATOR, Principal
from idp_common.errors import Conflict, NotFound, Unavailable
from idp_common.messaging.dead_letters import (
    DeadLetter,
    DeadLetterQueue,
    MoveRunning,
    queue_depths,
    redacted_body,
    redacted_event_data,
)
from idp_common.messaging.signing import MessageSigner
from idp_common.messaging.sqs import QueueDirectory, broker_calls
from idp_common.messaging.topology import QUEUES, QueueSpec
from idp_common.pagination import PageParams, decode_cursor, encode_cursor, text_id
from operation_svc.queues.schemas import (
    ActionOut,
    DeadLetterFilter,
    DeadLetterOut,
    DeadLetterQueueOut,
    QueueOut,
    Selection,
)

logger = logging.getLogger(__name__)


def queue_named(name: str) -> QueueSpec:
    for spec in QUEUES:
        if spec.name == name:
            return spec
    raise NotFound(f"No queue {name!r}: the queues are {', '.join(s.name for s in QUEUES)}.")


async def queue_stats(queues: QueueDirectory) -> list[QueueOut]:
    now = datetime.now(UTC)
    async with broker_calls(queues):
        depths = [await queue_depths(queues, spec) for spec in QUEUES]
    return [
        QueueOut(
            name=depth.queue.name,
            visible=depth.visible,
            in_flight=depth.in_flight,
            delayed=depth.delayed,
            dead_letters=DeadLetterQueueOut(
                name=depth.queue.dlq_name,
                depth=depth.dead_letters,
                oldest_age_seconds=(now - depth.oldest_dead_letter).total_seconds()
                if depth.oldest_dead_letter
                else None,
            ),
        )
        for depth in depths
    ]


def visible_to(principal: Principal) -> Callable[[DeadLetter], bool]:
    if principal.has_role(PLATFORM_OPERATOR):
        return lambda letter: True
    return lambda letter: letter.tenant == principal.tenant


def matching(criteria: DeadLetterFilter) -> Callable[[DeadLetter], bool]:
    def matches(letter: DeadLetter) -> bool:
        event = letter.event
        return (
            (criteria.type is None or (event is not None and event.type == criteria.type))
            and (criteria.tenant is None or letter.tenant == criteria.tenant)
            and (criteria.since is None or letter.failed_at >= criteria.since)
            and (criteria.until is None or letter.failed_at < criteria.until)
            and (
                criteria.reason is None or criteria.reason.lower() in (letter.reason or "").lower()
            )
        )

    return matches


def shown(letter: DeadLetter) -> DeadLetterOut:
    event = letter.event
    return DeadLetterOut(
        message_id=letter.message_id,
        event_id=event.id if event else None,
        type=event.type if event else None,
        source=event.source if event else None,
        subject=event.subject if event else None,
        time=letter.event_time,
        tenant=letter.tenant,
        trace_id=letter.trace_id,
        receive_count=letter.receive_count,
        failed_at=letter.failed_at,
        reason=letter.reason,
        data=redacted_event_data(event) if event else None,
        body=None if event else redacted_body(letter.body),
    )


async def list_dead_letters(
    queues: QueueDirectory,
    signer: MessageSigner,
    principal: Principal,
    spec: QueueSpec,
    criteria: DeadLetterFilter,
    page: PageParams,
) -> tuple[list[DeadLetterOut], str | None]:
    """The DLQ's messages the principal may see that match, oldest failure first."""
    async with broker_calls(queues):
        letters = await DeadLetterQueue(queues, spec, signer).peek()
    may_see, matches = visible_to(principal), matching(criteria)
    selected = [letter for letter in letters if may_see(letter) and matches(letter)]
    if page.cursor:
        after = decode_cursor(page.cursor, text_id)
        selected = [s for s in selected if (s.failed_at, s.message_id) > after]
    items = selected[: page.limit]
    more = len(selected) > page.limit
    last = items[-1] if items and more else None
    cursor = encode_cursor(last.failed_at, last.message_id) if last else None
    return [shown(letter) for letter in items], cursor


def selected_by(principal: Principal, selection: Selection) -> Callable[[DeadLetter], bool]:
    may_see = visible_to(principal)
    if selection.message_ids:
        wanted = set(selection.message_ids)
        return lambda letter: may_see(letter) and letter.message_id in wanted
    if selection.filter is not None:
        matches = matching(selection.filter)
        return lambda letter: may_see(letter) and matches(letter)
    return may_see


@dataclass
class QueueAction:
    """A replay or a delete, as far as it got (in this process's memory)."""

    action: str
    queue: str
    dry_run: bool
    tenant: str  # its starter's: another tenant's admin does not follow it
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: str = "running"
    matched: int = 0
    done: int = 0
    message_ids: list[str] = field(default_factory=list)
    error: str | None = None
    refused: Exception | None = None  # why it did nothing at all, when it is not an outage
    # The matched messages by the tenant they belong to (None: the platform's operators').
    tenants: dict[str | None, list[str]] = field(default_factory=dict)

    def out(self) -> ActionOut:
        return ActionOut.model_validate(self, from_attributes=True)


# Actions kept for following (the newest ones; a finished one stays until pushed out).
KEPT_ACTIONS = 100
# How long a request waits for its action to finish before answering 202 with its progress.
ANSWER_WITHIN_SECONDS = 5.0


class QueueActions:
    """The replays and deletes started in this process: a long one runs on after its
    request has answered, and is followed by its id."""

    def __init__(
        self, queues: QueueDirectory, signer: MessageSigner, replay_per_second: float
    ) -> None:
        self.queues = queues
        self.signer = signer
        self.replay_per_second = replay_per_second
        self._actions: dict[str, QueueAction] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, principal: Principal, spec: QueueSpec, action_id: str) -> QueueAction:
        action = self._actions.get(action_id)
        if (
            action is None
            or action.queue != spec.name
            or not (action.tenant == principal.tenant or principal.has_role(PLATFORM_OPERATOR))
        ):
            raise NotFound(f"No replay or delete {action_id} of {spec.name} in this process.")
        return action

    async def start(
        self, principal: Principal, spec: QueueSpec, kind: str, selection: Selection
    ) -> QueueAction:
        """Match the messages, then act on them (nothing for a dry run); returns once the
        matches are known and the action has ended or ``ANSWER_WITHIN_SECONDS`` passed."""
        action = QueueAction(kind, spec.name, selection.dry_run, principal.tenant)
        chosen = selected_by(principal, selection)
        # The whole DLQ, every tenant's: the broker moves it itself.
        whole = kind == "replay" and selection.all and principal.has_role(PLATFORM_OPERATOR)
        dlq = DeadLetterQueue(self.queues, spec, self.signer)
        if selection.dry_run:
            async with broker_calls(self.queues):
                letters = [letter for letter in await dlq.peek() if chosen(letter)]
            action.status, action.matched = "dry_run", len(letters)
            action.message_ids = [letter.message_id for letter in letters]
            return action
        self._keep(action)
        matched = asyncio.Event()
        named = len(set(selection.message_ids))
        task = asyncio.create_task(
            self._run(action, dlq, chosen, matched, whole=whole, named=named)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.wait(
            [asyncio.ensure_future(matched.wait()), task], return_when=asyncio.FIRST_COMPLETED
        )
        if action.status == "failed" and not action.matched:
            if isinstance(action.refused, MoveRunning):
                raise Conflict(str(action.refused))
            raise Unavailable(action.error or "The message broker failed.")
        await asyncio.wait([task], timeout=ANSWER_WITHIN_SECONDS)
        return action

    def _keep(self, action: QueueAction) -> None:
        self._actions[action.id] = action
        while len(self._actions) > KEPT_ACTIONS:
            self._actions.pop(next(iter(self._actions)))

    async def _run(
        self,
        action: QueueAction,
        dlq: DeadLetterQueue,
        chosen: Callable[[DeadLetter], bool],
        matched: asyncio.Event,
        *,
        whole: bool,
        named: int,
    ) -> None:
        def found(letters: list[DeadLetter]) -> None:
            action.matched = len(letters)
            action.message_ids = [letter.message_id for letter in letters]
            for letter in letters:
                action.tenants.setdefault(letter.tenant, []).append(letter.message_id)
            matched.set()

        def progress(done: int) -> None:
            action.done = done

        try:
            async with broker_calls(self.queues):
                if whole:
                    letters = await dlq.peek()
                    await dlq.move_all(max(int(self.replay_per_second), 1))
                    found(letters)  # only once the broker took the move: nothing else is
                    await dlq.follow_move(progress)
                else:
                    async with dlq.take(chosen, expected=named) as taken:
                        found(taken.letters)
                        if action.action == "replay":
                            await taken.send_back(self.replay_per_second, progress)
                        else:
                            progress(await taken.delete())
            action.status = "completed"
        except MoveRunning as running:
            action.status, action.error, action.refused = "failed", str(running), running
        except Exception as exc:
            logger.warning("%s of %s failed", action.action, action.queue, exc_info=True)
            action.status, action.error = "failed", str(exc)
        finally:
            matched.set()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

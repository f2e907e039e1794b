"""Requests from other services, by event: each acted on exactly as the HTTP request it
stands for, by the service that owns it, and answered when it ends.

- **Who**: the message attribute ``authorization`` holds what the HTTP header would
  (``Bearer <JWT>`` or ``ApiKey idp_…``) and is checked the same way (``auth.principal_of``);
  the event's ``tenant`` must be the credential's.
- **Refusals**: whatever the API would answer with a 4xx dead-letters the event at once,
  with the reason (``EventRefused``); what may pass later (a 429, a dependency down) comes
  back to be tried again.
- **Once**: an event's (``source``, ``id``) is its Idempotency-Key, so a redelivery or a
  producer's retry finds what the first copy created.
- **Replies**: an event may name a reply queue (the ``replyto`` extension); the outcome
  goes there, or to ``outbound-events``, with ``correlationid`` set to the request's id. A
  tenant may only name its own reply queues (``reply_queue_names``): anything else would let
  a producer write into another tenant's queue, or into the platform's own.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from botocore.exceptions import ClientError
from fastapi import FastAPI
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from idp_common.auth import ApiKeyVerifier, Principal, TokenVerifier, principal_of
from idp_common.errors import (
    Forbidden,
    ProblemError,
    TooManyRequests,
    Unavailable,
    ValidationFailed,
    field_error,
)
from idp_common.events import EventData
from idp_common.messaging.consumer import message_attributes_var
from idp_common.messaging.envelope import Event, EventRefused
from idp_common.messaging.outbox import OutboxRow, outbox_row
from idp_common.messaging.sqs import QueueDirectory, broker_calls, is_missing_queue
from idp_common.messaging.topology import OUTBOUND_EVENTS, QueueSpec
from idp_common.request_context import admitted_tenant_var
from idp_common.secret_values import tenant_label
from idp_common.settings import ServiceSettings

AUTHORIZATION = "authorization"
REPLY_TO = "replyto"
CORRELATION_ID = "correlationid"
MAX_EVENT_ID = 200
# A tenant's name in a queue name: what SQS allows but ``_``, which starts an escape.
_QUEUE_NAME_KEPT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
# What the key is made of can be told apart from any HTTP client's key: "ce:" + a digest.
_KEY_PREFIX = "ce:"


class RequestedByEvent:
    """Columns of what another service asked for by event: where its outcome goes."""

    # The request's event id (the replies' correlationid); None for API requests.
    request_event_id: Mapped[str | None] = mapped_column(String(MAX_EVENT_ID))
    # The producer's reply queue; None: outbound-events.
    reply_queue: Mapped[str | None] = mapped_column(String(80))


@dataclass(frozen=True, slots=True)
class InboundRequest:
    """An admitted event: who sent it and where its outcome goes."""

    event: Event
    principal: Principal
    authorization: str
    reply_queue: str | None

    @property
    def idempotency_key(self) -> str:
        identity = f"{self.event.source}\x00{self.event.id}".encode()
        return _KEY_PREFIX + hashlib.sha256(identity).hexdigest()

    @property
    def credentials(self) -> dict[str, str]:
        """The producer's credential as headers, to ask another service on its behalf."""
        return {"authorization": self.authorization}

    def applied_to(self, requested: Requested) -> None:
        requested.request_event_id = self.event.id
        requested.reply_queue = self.reply_queue


def reply_queue_names(prefix: str, tenant: str) -> re.Pattern[str]:
    """The reply queues ``tenant`` may name: ``{prefix}{tenant}`` and
    ``{prefix}{tenant}__{anything}``, the tenant written injectively (``tenant_label``), so
    that no tenant's names are another's."""
    label = re.escape(prefix + tenant_label(tenant, "".join(sorted(_QUEUE_NAME_KEPT))))
    return re.compile(rf"^{label}(__[A-Za-z0-9_-]+)?$")


class InboundGate:
    """Admits an event as its credential's request, or says why not (a ``ProblemError``:
    the HTTP ingestion answers with it, the consumers dead-letter the event with it)."""

    def __init__(
        self,
        tokens: TokenVerifier,
        api_keys: ApiKeyVerifier | None,
        queues: QueueDirectory,
        reply_prefix: str,
    ) -> None:
        self.tokens = tokens
        self.api_keys = api_keys
        self.queues = queues
        self.reply_prefix = reply_prefix

    @classmethod
    def of(cls, app: FastAPI, queues: QueueDirectory) -> InboundGate:
        """The gate of a service: its own verifiers and reply queue rule."""
        settings: ServiceSettings = app.state.settings
        return cls(
            app.state.token_verifier,
            app.state.api_key_verifier,
            queues,
            settings.sqs.reply_queue_prefix,
        )

    async def admit(self, event: Event, authorization: str | None) -> InboundRequest:
        principal = await principal_of(authorization, self.tokens, self.api_keys)
        assert authorization is not None  # principal_of refuses a missing credential
        return await self.admit_as(event, principal, authorization)

    async def admit_as(
        self, event: Event, principal: Principal, authorization: str
    ) -> InboundRequest:
        """``event`` from ``principal`` (verified already, with ``authorization``)."""
        if principal.tenant != event.tenant:
            raise Forbidden(f"The event's tenant {event.tenant!r} is not the credential's.")
        # The tenant's from here: its refusals below are its admins' to read.
        admitted_tenant_var.set(principal.tenant)
        if len(event.id) > MAX_EVENT_ID:
            raise _invalid("id", f"An event id has at most {MAX_EVENT_ID} characters.")
        reply_queue = event.extensions.get(REPLY_TO)
        if reply_queue is not None:
            await self._check_reply_queue(reply_queue, principal.tenant)
        return InboundRequest(event, principal, authorization, reply_queue)

    async def _check_reply_queue(self, name: str, tenant: str) -> None:
        allowed = reply_queue_names(self.reply_prefix, tenant)
        if not _QUEUE_NAME.match(name) or not allowed.match(name):
            raise _invalid(
                REPLY_TO,
                f"The reply queue must be one of the tenant's: {allowed.pattern} "
                "(SQS_REPLY_QUEUE_PREFIX sets the prefix).",
            )
        async with broker_calls(self.queues):
            try:
                await self.queues.url(name)
            except ClientError as exc:
                if not is_missing_queue(exc):
                    raise
                raise _invalid(REPLY_TO, f"The reply queue {name!r} does not exist.") from exc


def _invalid(attribute: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[field_error(attribute, message)])


class Requested(Protocol):
    """Something an event asked for: where its outcome goes."""

    request_event_id: str | None
    reply_queue: str | None


def reply_row(requested: Requested, outcome: EventData, tenant: str, source: str) -> OutboxRow:
    """The outcome of what an event asked for, for its reply queue (or ``outbound-events``)."""
    assert requested.request_event_id is not None
    event = outcome.to_event(
        source=source,
        tenant=tenant,
        subject=requested.request_event_id,
        extensions={CORRELATION_ID: requested.request_event_id},
    )
    queue = QueueSpec(requested.reply_queue) if requested.reply_queue else OUTBOUND_EVENTS
    return outbox_row(queue, event)


@contextmanager
def refused_unless_transient() -> Iterator[None]:
    """A 4xx answer becomes the event's refusal; a 429 or a 5xx is left to come back."""
    try:
        yield
    except (TooManyRequests, Unavailable):
        raise
    except ProblemError as exc:
        raise EventRefused(exc.summary()) from exc


@dataclass(frozen=True, slots=True)
class Accepted:
    """What an admitted event created: its id and where the API shows it."""

    id: uuid.UUID
    location: str


InboundAction = Callable[[InboundRequest], Awaitable[Accepted]]


@dataclass(frozen=True, slots=True)
class InboundEvents:
    """A service's inbound events: the types it owns, each with its action, taken from its
    queue (``consume``) or over HTTP (``ingest``)."""

    gate: InboundGate
    actions: Mapping[str, InboundAction]
    queue: QueueSpec

    def _action(self, event: Event) -> InboundAction:
        action = self.actions.get(event.type)
        if action is None:
            raise _invalid(
                "type",
                f"{self.queue.name} takes {', '.join(sorted(self.actions))} events, "
                f"not {event.type!r} (see the AsyncAPI document)",
            )
        return action

    async def ingest(self, event: Event, principal: Principal, authorization: str) -> Accepted:
        """An event sent over HTTP by ``principal`` (authenticated as every request is)."""
        action = self._action(event)
        return await action(await self.gate.admit_as(event, principal, authorization))

    async def consume(self, event: Event) -> None:
        """The queue's handler: a refusal dead-letters the event with the reason."""
        with refused_unless_transient():
            action = self._action(event)
            authorization = message_attributes_var.get().get(AUTHORIZATION)
            await action(await self.gate.admit(event, authorization))

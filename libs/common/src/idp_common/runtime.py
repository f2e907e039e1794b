"""Lifespan building blocks: the SQS side of a process and its background loops (no
database: the worker uses them; ``database_service`` adds one)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from idp_common.loops import PeriodicLoop, Supervisor
from idp_common.messaging.consumer import Consumer, EventHandler, exponential_retry_delay
from idp_common.messaging.publisher import Publisher
from idp_common.messaging.signing import MessageSigner
from idp_common.messaging.sqs import QueueDirectory, open_queues
from idp_common.messaging.topology import MAX_BATCH_SIZE, QueueSpec
from idp_common.settings import SQSSettings

logger = logging.getLogger(__name__)
# Messages a service's consumer holds: two receives' worth, so the next batch is taken in
# while the last one's transaction runs (its handlers group what arrives meanwhile), not
# once it has ended (ten alternating pairs against one receive's worth: panel path 199 ->
# 212/s, backlog 410 -> 433/s).
SERVICE_CONSUMER_CONCURRENCY = 2 * MAX_BATCH_SIZE


@dataclass(frozen=True, slots=True)
class Messaging:
    settings: SQSSettings
    queues: QueueDirectory
    publisher: Publisher

    def consumer(
        self,
        queue: QueueSpec,
        handler: EventHandler,
        *,
        concurrency: int = SERVICE_CONSUMER_CONCURRENCY,
        shutdown_grace_seconds: float = 30.0,
        ready: Callable[[], Awaitable[object]] | None = None,
    ) -> Consumer:
        return Consumer(
            self.queues,
            queue,
            handler,
            signer=self.publisher.signer,
            concurrency=concurrency,
            wait_time_seconds=self.settings.wait_time_seconds,
            retry_delay=exponential_retry_delay(
                self.settings.retry_base_seconds, self.settings.retry_max_seconds
            ),
            shutdown_grace_seconds=shutdown_grace_seconds,
            ready=ready,
        )


@asynccontextmanager
async def open_messaging(settings: SQSSettings, signer: MessageSigner) -> AsyncIterator[Messaging]:
    async with open_queues(settings) as queues:
        if settings.create_queues:
            await queues.ensure_queues()
        yield Messaging(settings=settings, queues=queues, publisher=Publisher(queues, signer))


def _fatal(app: FastAPI, reason: str) -> None:
    """A background loop is gone for good: stay unready, and have the process exit
    non-zero (``service_main`` gives it ``request_exit``)."""
    app.state.fatal = reason
    if (request_exit := getattr(app.state, "request_exit", None)) is not None:
        request_exit()


@asynccontextmanager
async def run_in_background(app: FastAPI, *loops: PeriodicLoop) -> AsyncIterator[None]:
    """Run the loops under a ``Supervisor`` while the block runs (a dead one makes /readyz
    fail); on exit stop them in order (consumers before the outbox relay, so the relay sends
    what they wrote)."""
    supervisor = Supervisor(loops, on_fatal=lambda reason: _fatal(app, reason))
    app.state.readiness_checks["background"] = supervisor.check
    async with supervisor.running():
        yield

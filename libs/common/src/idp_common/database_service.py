"""The lifespan core of a service with a database: the database, the SQS side, the outbox
relay and the service's loops, in the order they start and stop."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI

from idp_common.db import Database
from idp_common.loops import PeriodicLoop
from idp_common.messaging.outbox import OutboxRelay
from idp_common.messaging.signing import MessageSigner
from idp_common.messaging.tables import MessagingTables
from idp_common.runtime import Messaging, open_messaging, run_in_background
from idp_common.settings import DatabaseServiceSettings
from idp_common.telemetry import instrument_engines


@asynccontextmanager
async def serve_database_service(
    app: FastAPI,
    tables: MessagingTables,
    loops: Callable[[Database, Messaging], Sequence[PeriodicLoop]],
) -> AsyncIterator[Database]:
    """The lifespan core of a DB-backed service: database, SQS, outbox relay and its loops
    registered for readiness and shut down in order."""
    settings: DatabaseServiceSettings = app.state.settings
    db = Database(settings.database_url)
    instrument_engines(db.engines)
    try:
        async with open_messaging(settings.sqs, MessageSigner.of(settings.auth)) as messaging:
            relay = OutboxRelay(
                db, tables, messaging.publisher, poll_seconds=settings.outbox_poll_seconds
            )
            app.state.db = db
            app.state.bus = messaging
            app.state.readiness_checks.update(database=db.ping, broker=messaging.queues.ping)
            async with run_in_background(app, *loops(db, messaging), relay):
                yield db
    finally:
        await db.dispose()

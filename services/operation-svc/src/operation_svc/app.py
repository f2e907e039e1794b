from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from idp_common.app import build_service_app
from idp_common.asyncapi import router as asyncapi_router
from idp_common.audit_api import audit_router
from idp_common.clock import SYSTEM_CLOCK, Clock
from idp_common.database_service import serve_database_service
from idp_common.db import Database
from idp_common.inbound import InboundGate
from idp_common.inbound_api import router as events_router
from idp_common.loops import PeriodicLoop
from idp_common.messaging.inbox import transactional_handler
from idp_common.messaging.queue_monitor import QueueMonitor
from idp_common.messaging.topology import (
    EXECUTION_EVENTS,
    OPERATION_INBOUND_EVENTS,
    PANEL_SUBMISSIONS,
)
from idp_common.runtime import Messaging
from idp_common.tls import client_tls
from idp_common.unreachable_database import answer_unreachable_database_with_503
from operation_svc.api_keys.endpoints import router as api_keys_router
from operation_svc.api_keys.verifier import LocalApiKeyVerifier
from operation_svc.approvals.endpoints import router as approvals_router
from operation_svc.approvals.sweeper import ApprovalExpirySweeper
from operation_svc.config import NAME, OperationSettings
from operation_svc.executions.endpoints import router as executions_router
from operation_svc.executions.endpoints import workers_router
from operation_svc.executions.inbound import RunTemplate, execution_requests
from operation_svc.executions.intake import ExecutionIntake
from operation_svc.executions.log_stream import LiveStreams
from operation_svc.executions.reconciler import JobReconciler
from operation_svc.executions.sweeper import LostExecutionSweeper
from operation_svc.executions.tasks import SubmissionsToExecutions, WorkerReports
from operation_svc.models import AuditEntry, messaging
from operation_svc.queues.endpoints import router as queues_router
from operation_svc.queues.service import QueueActions
from operation_svc.schedules.endpoints import router as schedules_router
from operation_svc.schedules.panels import PANEL_TIMEOUT_SECONDS, PanelClient
from operation_svc.schedules.scheduler import Scheduler
from operation_svc.secrets.endpoints import router as secrets_router
from operation_svc.seed import seed_demo_template
from operation_svc.templates.endpoints import router as templates_router
from operation_svc.webhooks.deliveries import WebhookDeliveryLoop
from operation_svc.webhooks.endpoints import router as webhooks_router


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: OperationSettings = app.state.settings
    # panel-svc, for panel schedules: their panel checked when saved, submitted at each slot.
    panel_http = httpx.AsyncClient(
        base_url=settings.panel_api_url, timeout=PANEL_TIMEOUT_SECONDS, verify=client_tls()
    )
    app.state.panels = PanelClient(panel_http, settings.auth)

    def loops(db: Database, bus: Messaging) -> list[PeriodicLoop]:
        app.state.api_key_verifier = LocalApiKeyVerifier(db)
        intake = ExecutionIntake(db, settings.sealing.key())
        gate = InboundGate.of(app, bus.queues)
        app.state.execution_intake = intake
        app.state.inbound_events = execution_requests(
            gate, RunTemplate(intake, app.state.rate_limiter)
        )
        return [
            bus.consumer(
                PANEL_SUBMISSIONS,
                transactional_handler(
                    db, messaging, "operation-svc.panel-submissions", SubmissionsToExecutions()
                ),
                ready=db.ping,
            ),
            bus.consumer(
                EXECUTION_EVENTS,
                transactional_handler(
                    db, messaging, "operation-svc.execution-events", WorkerReports()
                ),
                ready=db.ping,
            ),
            bus.consumer(OPERATION_INBOUND_EVENTS, app.state.inbound_events.consume, ready=db.ping),
            JobReconciler(db, bus.queues, resend_after_seconds=settings.redispatch_after_seconds),
            QueueMonitor(db, bus.queues, poll_seconds=settings.queue_poll_seconds),
            LostExecutionSweeper(
                db,
                lost_after_seconds=settings.lost_after_seconds,
                interval_seconds=settings.sweep_interval_seconds,
            ),
            ApprovalExpirySweeper(db, interval_seconds=settings.approval_sweep_interval_seconds),
            WebhookDeliveryLoop(db, settings.webhook),
            Scheduler(
                db,
                poll_seconds=settings.scheduler_poll_seconds,
                misfire_grace_seconds=settings.schedule_misfire_grace_seconds,
                clock=app.state.clock,
                panels=app.state.panels,
            ),
        ]

    async with panel_http, serve_database_service(app, messaging, loops) as db:
        actions = QueueActions(
            app.state.bus.queues, app.state.bus.publisher.signer, settings.dlq_replay_per_second
        )
        app.state.queue_actions = actions
        if settings.seed_demo:
            await seed_demo_template(db, settings.executables)
        try:
            yield
        finally:
            await actions.stop()


def create_app(settings: OperationSettings | None = None, clock: Clock = SYSTEM_CLOCK) -> FastAPI:
    """The service; ``clock`` is what its schedules read the time from."""
    app = build_service_app(
        name=NAME,
        description="Operation templates, executions and their logs, schedules.",
        settings=settings or OperationSettings(),
        lifespan=lifespan,
        routers=[
            templates_router,
            executions_router,
            approvals_router,
            schedules_router,
            workers_router,
            secrets_router,
            api_keys_router,
            queues_router,
            events_router,
            asyncapi_router,
            webhooks_router,
            audit_router(AuditEntry),
        ],
        owns_api_keys=True,
    )
    answer_unreachable_database_with_503(app, app.state.settings.database_url)
    app.state.clock = clock
    app.state.live_streams = LiveStreams(app.state.settings.log_streams_per_caller)
    return app

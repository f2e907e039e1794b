from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from idp_common.app import build_service_app
from idp_common.asyncapi import router as asyncapi_router
from idp_common.audit_api import audit_router
from idp_common.database_service import serve_database_service
from idp_common.db import Database
from idp_common.inbound import InboundGate
from idp_common.inbound_api import router as events_router
from idp_common.loops import PeriodicLoop
from idp_common.messaging.inbox import transactional_handler
from idp_common.messaging.topology import PANEL_INBOUND_EVENTS, SUBMISSION_UPDATES
from idp_common.runtime import Messaging
from idp_common.tls import client_tls
from idp_common.unreachable_database import answer_unreachable_database_with_503
from panel_svc.config import NAME, PanelSettings
from panel_svc.datasources import DATASOURCE_TIMEOUT, DatasourceClient
from panel_svc.models import AuditEntry, messaging
from panel_svc.panels.endpoints import router as panels_router
from panel_svc.panels.references import OperationTemplates, PanelReferences
from panel_svc.seed import seed_demo_panel
from panel_svc.submissions.endpoints import router as submissions_router
from panel_svc.submissions.inbound import SubmitForm, submission_requests
from panel_svc.submissions.intake import SubmissionIntake
from panel_svc.submissions.reconciler import SubmissionReconciler
from panel_svc.submissions.tasks import ExecutionUpdates


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: PanelSettings = app.state.settings
    async with (
        httpx.AsyncClient(
            base_url=settings.datasource_api_url, timeout=DATASOURCE_TIMEOUT, verify=client_tls()
        ) as http,
        httpx.AsyncClient(
            base_url=settings.operation_api_url, timeout=15, verify=client_tls()
        ) as operations,
    ):
        app.state.datasources = DatasourceClient(http)
        app.state.references = PanelReferences(
            OperationTemplates(operations), app.state.datasources
        )

        def loops(db: Database, bus: Messaging) -> list[PeriodicLoop]:
            intake = SubmissionIntake(db, settings.sealing.key())
            gate = InboundGate.of(app, bus.queues)
            form = SubmitForm(intake, app.state.datasources, app.state.rate_limiter)
            app.state.submission_intake = intake
            app.state.inbound_events = submission_requests(gate, form)
            return [
                bus.consumer(
                    SUBMISSION_UPDATES,
                    transactional_handler(
                        db, messaging, "panel-svc.submission-updates", ExecutionUpdates()
                    ),
                    ready=db.ping,
                ),
                bus.consumer(PANEL_INBOUND_EVENTS, app.state.inbound_events.consume, ready=db.ping),
                SubmissionReconciler(db, resend_after_seconds=settings.resend_after_seconds),
            ]

        async with serve_database_service(app, messaging, loops) as db:
            if settings.seed_demo:
                await seed_demo_panel(db)
            yield


def create_app(settings: PanelSettings | None = None) -> FastAPI:
    app = build_service_app(
        name=NAME,
        description="Panels (self-service forms), their fields and submissions.",
        settings=settings or PanelSettings(),
        lifespan=lifespan,
        routers=[
            panels_router,
            submissions_router,
            events_router,
            asyncapi_router,
            audit_router(AuditEntry),
        ],
    )
    answer_unreachable_database_with_503(app, app.state.settings.database_url)
    return app

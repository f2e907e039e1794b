from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from fastapi import FastAPI

from executor_worker.config import NAME, WorkerSettings
from executor_worker.jobs import SLOTS, JobHandler
from executor_worker.operation_client import OperationClient, ServiceToken
from executor_worker.running import RunningExecutions
from executor_worker.sandbox import hide_worker_from_children, launcher, watch_children_with_pidfds
from idp_common.app import build_service_app
from idp_common.messaging.signing import MessageSigner
from idp_common.messaging.topology import OPERATION_JOBS
from idp_common.runtime import open_messaging, run_in_background
from idp_common.secret_values import SecretResolver

logger = logging.getLogger(__name__)


@asynccontextmanager
async def secrets_manager(settings: WorkerSettings) -> AsyncIterator[Any]:
    """An AWS Secrets Manager client when the worker is configured for one, else None."""
    if settings.secrets_manager_region is None:
        yield None
        return
    import aioboto3  # only then: a worker without one never loads botocore's client

    async with aioboto3.Session().client(
        "secretsmanager", region_name=settings.secrets_manager_region
    ) as client:
        yield client


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: WorkerSettings = app.state.settings
    hide_worker_from_children()
    launcher()  # refuse to start without it rather than fail every job
    watch_children_with_pidfds()
    if os.geteuid() != 0:
        logger.warning(
            "the worker is not root: runs share its uid %d, so they can read each other's "
            "/proc, and processes a run leaves outside its group are not killed",
            os.geteuid(),
        )
    worker_id = settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"
    token = ServiceToken(
        settings.service_token.get_secret_value() if settings.service_token else None,
        settings.auth,
        worker_id,
    )
    async with (
        contextlib.AsyncExitStack() as stack,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        open_messaging(settings.sqs, MessageSigner.of(settings.auth)) as bus,
    ):
        operations = OperationClient(http, settings.operation_api_url, token, worker_id)
        running = RunningExecutions(operations)
        secrets = SecretResolver(
            settings.secret_store, await stack.enter_async_context(secrets_manager(settings))
        )
        handler = JobHandler(settings, worker_id, operations, bus.publisher, running, secrets)
        consumer = bus.consumer(
            OPERATION_JOBS,
            handler,
            concurrency=settings.concurrency,
            shutdown_grace_seconds=settings.shutdown_grace_seconds,
            # After a job failed, no other is received until operation-svc is ready again:
            # each one's claim would fail in turn, its fifth receive dead-lettering it.
            ready=operations.ready_for_claims,
        )
        SLOTS.set(settings.concurrency)
        app.state.readiness_checks.update(broker=bus.queues.ping, operation_api=operations.ping)
        async with run_in_background(app, consumer, running):
            yield


def create_app(settings: WorkerSettings | None = None) -> FastAPI:
    return build_service_app(
        name=NAME,
        description="Runs operation jobs in a sandbox; serves health and metrics only.",
        settings=settings or WorkerSettings(),
        lifespan=lifespan,
        routers=[],
    )

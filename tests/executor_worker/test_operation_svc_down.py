"""While operation-svc cannot take claims, jobs wait in their queue: a worker whose claim
failed received job after job, each retried until its fifth receive dead-lettered it
(operation-svc down for some minutes sent every queued job to the DLQ)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from executor_worker import operation_client
from executor_worker.app import create_app
from executor_worker.config import WorkerSettings
from idp_common.events import ExecutionRequested
from idp_common.messaging.dead_letters import message_counts
from idp_common.messaging.topology import OPERATION_JOBS, QueueSpec
from idp_common.runtime import open_messaging
from tests.harness import (
    AUTH,
    SEALING_PRIVATE_KEY,
    SIGNER,
    LocalSQSServer,
    ServedApp,
    eventually,
    sqs_settings,
)


async def test_jobs_wait_in_their_queue_while_operation_svc_is_not_ready(
    sqs_server: LocalSQSServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(operation_client, "CLAIM_RETRY_SECONDS", 0.3)
    ready = False
    claimed: list[str] = []

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({}, status=200 if ready else 503)

    async def claims(request: web.Request) -> web.Response:
        if not ready:
            return web.json_response({"detail": "database unreachable"}, status=503)
        asked = (await request.json())["execution_ids"]
        claimed.extend(asked)
        return web.json_response({"claimed": []})  # another worker's: dropped, not run

    operation_svc = web.Application()
    operation_svc.router.add_get("/readyz", readyz)
    operation_svc.router.add_post("/api/v1/workers/claims", claims)
    sqs = sqs_settings(sqs_server)
    settings = WorkerSettings(
        environment="test",
        sqs=sqs,
        auth=AUTH,
        sealing_private_key=SEALING_PRIVATE_KEY,
        concurrency=1,
    )
    jobs = [
        ExecutionRequested(
            execution_id=uuid.uuid4(), template_slug="t", argv=["true"], env={}, timeout_seconds=5
        ).to_event(source="urn:test", tenant="acme", subject="job")
        for _ in range(3)
    ]
    async with TestServer(operation_svc) as server, open_messaging(sqs, SIGNER) as bus:
        await bus.publisher.publish(OPERATION_JOBS.name, jobs)
        worker = settings.model_copy(update={"operation_api_url": str(server.make_url(""))})
        async with ServedApp(create_app(worker)):
            await asyncio.sleep(4)  # ungated, every job had its five receives by now
            dead = await message_counts(bus.queues, QueueSpec(OPERATION_JOBS.dlq_name))
            assert dead["ApproximateNumberOfMessages"] == 0
            ready = True

            async def all_claimed() -> bool:
                return len(set(claimed)) == len(jobs)

            await eventually(all_claimed, timeout=30)

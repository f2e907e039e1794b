"""The worker's claims: shared calls under load, one run per execution even when the
same job reaches the worker twice at once, and retries that log no credential."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from executor_worker.operation_client import OperationAnswered, OperationClient, ServiceToken
from idp_common.settings import AuthSettings


@contextlib.asynccontextmanager
async def client_of(pending: set[str], calls: list[list[str]]) -> AsyncIterator[OperationClient]:
    """operation-svc's claim endpoint, in miniature: each pending execution is granted once."""

    async def claims(request: web.Request) -> web.Response:
        asked = (await request.json())["execution_ids"]
        calls.append(asked)
        await asyncio.sleep(0.01)
        granted = [execution_id for execution_id in dict.fromkeys(asked) if execution_id in pending]
        pending.difference_update(granted)
        return web.json_response({"claimed": granted})

    app = web.Application()
    app.router.add_post("/api/v1/workers/claims", claims)
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        url = str(server.make_url("/"))
        yield OperationClient(http, url, ServiceToken("token", AuthSettings(), "w1"), "w1")


async def test_a_job_delivered_twice_at_once_is_claimed_for_one_copy_only() -> None:
    execution_id = uuid.uuid4()
    calls: list[list[str]] = []
    async with client_of({str(execution_id)}, calls) as operations:
        first = asyncio.create_task(operations.claim(uuid.uuid4()))  # keeps the next call waiting
        await asyncio.sleep(0)
        copies = await asyncio.gather(*(operations.claim(execution_id) for _ in range(2)))
        await first
    assert sorted(copies) == [False, True]
    assert calls[1] == [str(execution_id), str(execution_id)]  # both copies in one call


async def test_claims_made_together_share_one_call() -> None:
    ids = [uuid.uuid4() for _ in range(6)]
    calls: list[list[str]] = []
    async with client_of({str(i) for i in ids}, calls) as operations:
        assert all(await asyncio.gather(*(operations.claim(i) for i in ids)))
    assert [len(call) for call in calls] == [6]


@pytest.mark.parametrize(
    ("answer", "logged"),
    [
        (lambda: web.json_response({"detail": "database unreachable"}, status=503), "503"),
        # A page between the worker and operation-svc (a proxy's): aiohttp's error for a body
        # that is not JSON holds the request's headers too.
        (lambda: web.Response(text="<html>starting</html>", content_type="text/html"), "200"),
    ],
)
async def test_a_claim_retried_after_a_5xx_logs_no_token(
    caplog: pytest.LogCaptureFixture, answer: Callable[[], web.Response], logged: str
) -> None:
    """aiohttp's error for a 5xx holds the request's headers, and its repr was logged by
    each retry: the worker's bearer token went to the logs whenever operation-svc's
    database hiccuped."""
    answers = [answer()]

    async def claims(request: web.Request) -> web.Response:
        asked = (await request.json())["execution_ids"]
        return answers.pop() if answers else web.json_response({"claimed": asked})

    app = web.Application()
    app.router.add_post("/api/v1/workers/claims", claims)
    token = ServiceToken("the-workers-token", AuthSettings(), "w1")
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        operations = OperationClient(http, str(server.make_url("/")), token, "w1")
        with caplog.at_level(logging.WARNING):
            assert await operations.claim(uuid.uuid4())
    assert f"answered {logged}" in caplog.text
    assert "the-workers-token" not in caplog.text


async def test_a_failed_ready_check_names_the_path_it_asked() -> None:
    """The check asks operation-svc's /readyz: its failure named /healthz, which answered."""

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response({"status": "not_ready"}, status=503)

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    token = ServiceToken("token", AuthSettings(), "w1")
    async with TestServer(app) as server, aiohttp.ClientSession() as http:
        operations = OperationClient(http, str(server.make_url("/")), token, "w1")
        with pytest.raises(OperationAnswered, match=r"503 .* to /readyz$"):
            await operations.ready_for_claims()

"""The worker's claims: shared calls under load, and one run per execution even when the
same job reaches the worker twice at once."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from executor_worker.operation_client import OperationClient, ServiceToken
from idp_common.settings import AuthSettings


def client_of(pending: set[str], calls: list[list[str]]) -> OperationClient:
    """operation-svc's claim endpoint, in miniature: each pending execution is granted once."""

    async def claims(request: httpx.Request) -> httpx.Response:
        asked = json.loads(request.content)["execution_ids"]
        calls.append(asked)
        await asyncio.sleep(0.01)
        granted = [execution_id for execution_id in dict.fromkeys(asked) if execution_id in pending]
        pending.difference_update(granted)
        return httpx.Response(200, json={"claimed": granted})

    http = httpx.AsyncClient(base_url="http://operation", transport=httpx.MockTransport(claims))
    return OperationClient(http, ServiceToken("token", AuthSettings(), "w1"), "w1")


async def test_a_job_delivered_twice_at_once_is_claimed_for_one_copy_only() -> None:
    execution_id = uuid.uuid4()
    calls: list[list[str]] = []
    operations = client_of({str(execution_id)}, calls)
    first = asyncio.create_task(operations.claim(uuid.uuid4()))  # keeps the next call waiting
    await asyncio.sleep(0)
    copies = await asyncio.gather(*(operations.claim(execution_id) for _ in range(2)))
    await first
    assert sorted(copies) == [False, True]
    assert calls[1] == [str(execution_id), str(execution_id)]  # both copies in one call


async def test_claims_made_together_share_one_call() -> None:
    ids = [uuid.uuid4() for _ in range(6)]
    calls: list[list[str]] = []
    operations = client_of({str(i) for i in ids}, calls)
    assert all(await asyncio.gather(*(operations.claim(i) for i in ids)))
    assert [len(call) for call in calls] == [6]

"""The hot loop's SQS calls without botocore: the broker sees a signed JSON-protocol request,
callers see botocore's answers and errors, transient failures are retried as botocore does."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from idp_common.messaging.aws_credentials import configured_credentials
from idp_common.messaging.sqs import is_missing_queue, open_queues
from idp_common.messaging.sqs_wire import SQSWire, open_sqs_wire
from tests.harness import LocalSQSServer, sqs_settings

Answer = tuple[int, dict[str, Any], dict[str, str]]


class FakeBroker:
    """Answers each request with the next canned (status, body, headers); records requests."""

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), json.loads(await request.read())))
        status, body, headers = self.answers.pop(0)
        return web.Response(status=status, text=json.dumps(body), headers=headers)


@pytest.fixture
async def broker() -> AsyncIterator[tuple[FakeBroker, str]]:
    fake = FakeBroker([])
    app = web.Application()
    app.router.add_post("/", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def call(endpoint: str, operation: str, **request: Any) -> dict[str, Any]:
    async with open_sqs_wire(
        configured_credentials("AKIDEXAMPLE", "secret"),
        endpoint,
        "eu-west-1",
        user_agent="test",
        read_timeout_seconds=5,
        max_connections=2,
    ) as wire:
        method = getattr(wire, operation)
        answer: dict[str, Any] = await method(**request)
        return answer


async def test_a_request_is_sqs_json_signed_with_sigv4_for_the_region(
    broker: tuple[FakeBroker, str],
) -> None:
    fake, endpoint = broker
    fake.answers = [(200, {"Successful": [{"Id": "0"}], "Failed": []}, {})]
    entries = [{"Id": "0", "MessageBody": "hello"}]
    answer = await call(endpoint, "send_message_batch", QueueUrl="q", Entries=entries)
    assert answer == {"Successful": [{"Id": "0"}], "Failed": []}
    headers, body = fake.requests[0]
    assert body == {"QueueUrl": "q", "Entries": entries}
    assert headers["X-Amz-Target"] == "AmazonSQS.SendMessageBatch"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/sqs/aws4_request" in headers["Authorization"]
    assert "X-Amz-Date" in headers


async def test_an_error_is_botocore_s_client_error_with_sqs_s_query_code(
    broker: tuple[FakeBroker, str],
) -> None:
    fake, endpoint = broker
    fake.answers = [
        (
            400,
            {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no such queue"},
            {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
        ),
        (400, {"__type": "com.amazonaws.sqs#ReceiptHandleIsInvalid", "message": "bad"}, {}),
    ]
    with pytest.raises(ClientError) as missing:
        await call(endpoint, "receive_message", QueueUrl="gone")
    assert is_missing_queue(missing.value)
    assert missing.value.response["Error"]["Message"] == "no such queue"
    with pytest.raises(ClientError) as invalid:
        await call(endpoint, "delete_message_batch", QueueUrl="q", Entries=[])
    assert invalid.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"
    assert len(fake.requests) == 2  # a client error is not retried


async def test_server_errors_and_throttling_are_retried_three_times_at_most(
    broker: tuple[FakeBroker, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("idp_common.messaging.sqs_wire.random.random", lambda: 0.0)
    fake, endpoint = broker
    throttled: Answer = (400, {"__type": "com.amazonaws.sqs#ThrottlingException"}, {})
    fake.answers = [(500, {}, {}), throttled, (200, {"Messages": []}, {})]
    assert await call(endpoint, "receive_message", QueueUrl="q") == {"Messages": []}
    fake.answers = [(503, {}, {}), (503, {}, {}), (503, {}, {})]
    with pytest.raises(ClientError) as unavailable:
        await call(endpoint, "receive_message", QueueUrl="q")
    assert unavailable.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert len(fake.requests) == 6


async def test_against_the_local_broker_answers_match_botocore_s_binary_values_included(
    sqs_server: LocalSQSServer,
) -> None:
    async with open_queues(sqs_settings(sqs_server)) as queues:
        await queues.ensure_queues()
        url = await queues.url("panel-submissions")
        attributes = {
            "text": {"DataType": "String", "StringValue": "värde"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffbytes"},
        }
        await queues.client.send_message(
            QueueUrl=url, MessageBody="one", MessageAttributes=attributes
        )
        wire: SQSWire = queues.wire
        received = await wire.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        (message,) = received["Messages"]
        assert message["Body"] == "one"
        assert message["MessageAttributes"]["text"]["StringValue"] == "värde"
        assert message["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\xffbytes"
        deleted = await wire.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": message["ReceiptHandle"]}]
        )
        assert [entry["Id"] for entry in deleted["Successful"]] == ["0"]
        empty = await wire.receive_message(QueueUrl=url, WaitTimeSeconds=0)
        assert "Messages" not in empty


WHAT_EVERY_PROCESS_DOES = """
import asyncio, json, os, sys
from idp_common.messaging.dead_letters import queue_depths
from idp_common.messaging.sqs import open_queues
from idp_common.messaging.topology import QUEUES
from idp_common.settings import SQSSettings

EXCEPTIONS = ("botocore.exceptions", "botocore.vendored")  # what ClientError takes


async def main():
    async with open_queues(SQSSettings()) as queues:
        await queues.ensure_queues()
        await queues.ping()
        url = await queues.url(QUEUES[0].name)
        await queues.wire.send_message_batch(
            QueueUrl=url, Entries=[{"Id": "0", "MessageBody": "job"}]
        )
        (message,) = (await queues.wire.receive_message(QueueUrl=url))["Messages"]
        await queues.wire.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
        await queue_depths(queues, QUEUES[0])
        loaded = sorted(
            m for m in sys.modules
            if m.startswith(("aiobotocore", "botocore.")) and not m.startswith(EXCEPTIONS)
        )
        await queues.client.get_queue_url(QueueName=queues.physical_name(QUEUES[0].name))
        made = "aiobotocore.client" in sys.modules
    print(json.dumps({"loaded": loaded, "made_when_asked": made}))

asyncio.run(main())
"""


async def test_what_every_process_does_loads_nothing_of_botocores_client(
    sqs_server: LocalSQSServer,
) -> None:
    """With keys and an endpoint configured (the local server, ElasticMQ), start-up,
    readiness, the consumer's and the publisher's calls, and the queue monitor's go through
    ``SQSWire``: aiobotocore's client is made only when a call needs it."""
    settings = sqs_settings(sqs_server)
    env = os.environ | {
        "SQS_ENDPOINT_URL": str(settings.endpoint_url),
        "SQS_ACCESS_KEY_ID": "test",
        "SQS_SECRET_ACCESS_KEY": "test",
        "SQS_QUEUE_PREFIX": settings.queue_prefix,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WHAT_EVERY_PROCESS_DOES, env=env, stdout=asyncio.subprocess.PIPE
    )
    output, _ = await process.communicate()
    assert process.returncode == 0
    answer = json.loads(output)
    assert answer == {"loaded": [], "made_when_asked": True}

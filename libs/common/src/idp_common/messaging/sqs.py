"""The SQS clients (aiobotocore; ``SQSWire`` for the hot loop), queue URL resolution and
``ensure_queues()`` for dev and tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from idp_common.errors import Unavailable
from idp_common.messaging.aws_session import aws_session
from idp_common.messaging.sqs_wire import MAX_ATTEMPTS, SQSWire, open_sqs_wire
from idp_common.messaging.topology import MAX_RECEIVE_COUNT, QUEUES, QueueSpec
from idp_common.settings import SQSSettings

SQSClient = Any  # aiobotocore's generated client has no importable type
USER_AGENT = "idp-platform (aiobotocore)"
MAX_CONNECTIONS = 50


ADMIN_READ_TIMEOUT_SECONDS = 5


@asynccontextmanager
async def open_queues(settings: SQSSettings) -> AsyncIterator[QueueDirectory]:
    """The topology's queues through one client per process (creating one costs far more
    than a request), with the hot loop's calls on ``SQSWire``."""
    session = aws_session()
    if settings.access_key_id and settings.secret_access_key:
        session.set_credentials(
            settings.access_key_id, settings.secret_access_key.get_secret_value()
        )
    read_timeout = settings.wait_time_seconds + 10  # must outlast a long poll
    config = Config(
        # A fixed User-Agent: botocore otherwise rebuilds and sanitizes its default one,
        # character by character, on every request (measured: about a fifth of a call's CPU).
        user_agent=USER_AGENT,
        connect_timeout=5,
        # No long poll goes through this client (``wire`` makes them): a broker that hangs
        # fails an operator's call in seconds, not after minutes of long-poll timeouts.
        read_timeout=ADMIN_READ_TIMEOUT_SECONDS,
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        max_pool_connections=MAX_CONNECTIONS,
    )
    async with (
        session.create_client(
            "sqs", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
        ) as client,
        open_sqs_wire(
            session,
            client.meta.endpoint_url,
            settings.region,
            user_agent=USER_AGENT,
            read_timeout_seconds=read_timeout,
            max_connections=MAX_CONNECTIONS,
        ) as wire,
    ):
        yield QueueDirectory(client, wire, settings.queue_prefix)


def is_missing_queue(error: ClientError) -> bool:
    """Whether the broker said the queue does not exist (AWS's code, or the query API's)."""
    code = error.response.get("Error", {}).get("Code", "")
    return code in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


class QueueDirectory:
    """Physical names (with the environment prefix) and cached URLs of the topology's queues,
    and the clients that call them: ``wire`` for receives, batch sends and batch deletes,
    ``client`` (aiobotocore) for the rest."""

    def __init__(self, client: SQSClient, wire: SQSWire, prefix: str = "") -> None:
        self.client = client
        self.wire = wire
        self.prefix = prefix
        self._urls: dict[str, str] = {}
        self.dlq_reads: dict[str, asyncio.Lock] = {}  # see ``dead_letters.DeadLetterQueue``

    def physical_name(self, name: str) -> str:
        return self.prefix + name

    async def url(self, name: str) -> str:
        if name not in self._urls:
            response = await self.client.get_queue_url(QueueName=self.physical_name(name))
            self._urls[name] = response["QueueUrl"]
        return self._urls[name]

    async def ping(self) -> None:
        """Reach the broker and check one queue of the topology exists (readiness)."""
        await self.client.get_queue_url(QueueName=self.physical_name(QUEUES[0].name))

    async def ensure_queues(self) -> None:
        """Create every queue and its DLQ with the redrive policy; safe to repeat."""
        for spec in QUEUES:
            await self._ensure(spec)

    async def _ensure(self, spec: QueueSpec) -> None:
        dlq = await self.client.create_queue(QueueName=self.physical_name(spec.dlq_name))
        dlq_arn = (
            await self.client.get_queue_attributes(
                QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"]
            )
        )["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
        await self.client.create_queue(
            QueueName=self.physical_name(spec.name),
            Attributes={
                "VisibilityTimeout": str(spec.visibility_timeout_seconds),
                "RedrivePolicy": json.dumps(redrive),
            },
        )


@asynccontextmanager
async def broker_calls(queues: QueueDirectory) -> AsyncIterator[None]:
    """SQS errors as a 503 naming the broker (the request was fine; the broker is not)."""
    try:
        yield
    except (BotoCoreError, ClientError, OSError) as exc:
        endpoint = queues.client.meta.endpoint_url
        raise Unavailable(f"The message broker (SQS at {endpoint}) failed: {exc}") from exc

"""The SQS clients (``SQSWire`` for every call a process makes from its start, the
aiobotocore client, made at its first call, for the rest), queue URL resolution and
``ensure_queues()`` for dev and tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from idp_common.errors import Unavailable
from idp_common.messaging.aws_credentials import configured_credentials, default_chain
from idp_common.messaging.sqs_wire import MAX_ATTEMPTS, SQSWire, open_sqs_wire
from idp_common.messaging.topology import MAX_RECEIVE_COUNT, QUEUES, QueueSpec
from idp_common.settings import SQSSettings

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

SQSClient = Any  # aiobotocore's generated client has no importable type
USER_AGENT = "idp-platform (aiobotocore)"
MAX_CONNECTIONS = 50


ADMIN_READ_TIMEOUT_SECONDS = 5


class AdminClient:
    """The aiobotocore SQS client, made at the first call that needs it (``client.<call>(…)``
    as on the client itself): most processes never make one (``sqs_wire``). One per process,
    as creating one costs far more than a request."""

    def __init__(self, settings: SQSSettings, stack: AsyncExitStack) -> None:
        self._settings = settings
        self._stack = stack
        self._session: AioSession | None = None
        self._client: SQSClient | None = None
        self._making = asyncio.Lock()

    def session(self) -> AioSession:
        """The botocore session (made once), with the configured keys if any."""
        if self._session is None:
            from idp_common.messaging.aws_session import aws_session  # loads botocore's client

            self._session = aws_session()
            if self._settings.access_key_id and self._settings.secret_access_key:
                self._session.set_credentials(
                    self._settings.access_key_id,
                    self._settings.secret_access_key.get_secret_value(),
                )
        return self._session

    async def made(self) -> SQSClient:
        async with self._making:
            if self._client is None:
                from botocore.config import Config

                config = Config(
                    # A fixed User-Agent: botocore otherwise rebuilds and sanitizes its
                    # default one, character by character, on every request (measured: about
                    # a fifth of a call's CPU).
                    user_agent=USER_AGENT,
                    connect_timeout=5,
                    # No long poll goes through this client (``wire`` makes them): a broker
                    # that hangs fails an operator's call in seconds, not after minutes.
                    read_timeout=ADMIN_READ_TIMEOUT_SECONDS,
                    retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                    max_pool_connections=MAX_CONNECTIONS,
                )
                self._client = await self._stack.enter_async_context(
                    self.session().create_client(
                        "sqs",
                        region_name=self._settings.region,
                        endpoint_url=self._settings.endpoint_url,
                        config=config,
                    )
                )
            return self._client

    def __getattr__(self, call: str) -> Callable[..., Awaitable[Any]]:
        async def on_the_client(**request: Any) -> Any:
            return await getattr(await self.made(), call)(**request)

        return on_the_client


@asynccontextmanager
async def open_queues(settings: SQSSettings) -> AsyncIterator[QueueDirectory]:
    """The topology's queues: ``SQSWire`` for the calls every process makes, the
    ``AdminClient`` for the rest. With keys and an endpoint configured (local brokers),
    nothing of botocore's client is loaded until a call needs it."""
    async with AsyncExitStack() as stack:
        client = AdminClient(settings, stack)
        if settings.access_key_id and settings.secret_access_key:
            credentials = configured_credentials(
                settings.access_key_id, settings.secret_access_key.get_secret_value()
            )
        else:
            credentials = default_chain(client.session())
        # AWS's endpoint for the region is botocore's to resolve.
        endpoint = settings.endpoint_url or (await client.made()).meta.endpoint_url
        wire = await stack.enter_async_context(
            open_sqs_wire(
                credentials,
                endpoint,
                settings.region,
                user_agent=USER_AGENT,
                read_timeout_seconds=settings.wait_time_seconds + 10,  # outlasts a long poll
                max_connections=MAX_CONNECTIONS,
            )
        )
        yield QueueDirectory(client, wire, endpoint, settings.queue_prefix)


def is_missing_queue(error: ClientError) -> bool:
    """Whether the broker said the queue does not exist (AWS's code, or the query API's)."""
    code = error.response.get("Error", {}).get("Code", "")
    return code in {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}


class QueueDirectory:
    """Physical names (with the environment prefix) and cached URLs of the topology's queues,
    and the clients that call them: ``wire`` for the calls every process makes, ``client``
    (aiobotocore, made when first needed) for the rest."""

    def __init__(
        self, client: SQSClient, wire: SQSWire, endpoint_url: str, prefix: str = ""
    ) -> None:
        self.client = client
        self.wire = wire
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self._urls: dict[str, str] = {}
        self.dlq_reads: dict[str, asyncio.Lock] = {}  # see ``dead_letters.DeadLetterQueue``

    def physical_name(self, name: str) -> str:
        return self.prefix + name

    async def url(self, name: str) -> str:
        if name not in self._urls:
            response = await self.wire.get_queue_url(QueueName=self.physical_name(name))
            self._urls[name] = response["QueueUrl"]
        return self._urls[name]

    async def ping(self) -> None:
        """Reach the broker and check one queue of the topology exists (readiness)."""
        await self.wire.get_queue_url(QueueName=self.physical_name(QUEUES[0].name))

    async def ensure_queues(self) -> None:
        """Create every queue and its DLQ with the redrive policy; safe to repeat."""
        for spec in QUEUES:
            await self._ensure(spec)

    async def _ensure(self, spec: QueueSpec) -> None:
        dlq = await self.wire.create_queue(QueueName=self.physical_name(spec.dlq_name))
        dlq_arn = (
            await self.wire.get_queue_attributes(
                QueueUrl=dlq["QueueUrl"], AttributeNames=["QueueArn"]
            )
        )["Attributes"]["QueueArn"]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
        await self.wire.create_queue(
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
        raise Unavailable(
            f"The message broker (SQS at {queues.endpoint_url}) failed: {exc}"
        ) from exc

"""The SQS calls every process makes, without botocore's per-call machinery or its client.

ReceiveMessage, SendMessageBatch and DeleteMessageBatch are nearly every call a busy process
makes to SQS, and aiobotocore spends about 0.8 ms of CPU on each (event hooks, parameter
validation, its serializer and parser) where the request itself is one small JSON document.
``SQSWire`` posts that document over SQS's JSON protocol (the one botocore speaks to SQS),
signed with SigV4 (``sigv4``: botocore's signatures, without its per-call work), and answers
with botocore's shapes and its ``ClientError``: about 0.3 ms per call (`make bench`, section
``sqs``). Retries follow botocore's standard mode.

It also makes the few other calls each process makes from its start (queue URLs and
attributes, creating the topology in development, a message's visibility): a process that
makes no other call then never loads aiobotocore's client, 10 MB of its memory and a third
of a second of its start (measured on the worker). The rest (DLQ reads and moves, sends
outside a batch) stays on the aiobotocore client (``sqs.AdminClient``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
from botocore.exceptions import ClientError

from idp_common.messaging.aws_credentials import CredentialSource
from idp_common.messaging.sigv4 import JsonPostSigner

MAX_ATTEMPTS = 3  # botocore's standard retry mode
# Calls that do not long-poll: a broker that hangs fails them in seconds (readiness, an
# operator's page), not after the long poll's read timeout.
SHORT_CALL_TIMEOUT = aiohttp.ClientTimeout(sock_connect=5, sock_read=5)
MAX_BACKOFF_SECONDS = 20
# The codes botocore's standard mode retries besides 5xx answers and lost connections.
RETRIED_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
    }
)


def _client_error(operation: str, status: int, body: bytes, query_error: str | None) -> ClientError:
    """The answer as botocore reports it: SQS's query-compatible code when it sends one."""
    try:
        detail = json.loads(body) if body else {}
    except ValueError:
        detail = {}
    code = (
        query_error.split(";", 1)[0]
        if query_error
        else str(detail.get("__type", f"HTTP{status}")).rsplit("#", 1)[-1]
    )
    message = str(detail.get("message", detail.get("Message", "")))
    error = {"Code": code, "Message": message}
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def _with_binary_values(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Binary message attributes as bytes (the JSON protocol carries them in base64)."""
    for message in messages:
        for value in message.get("MessageAttributes", {}).values():
            if "BinaryValue" in value:
                value["BinaryValue"] = base64.b64decode(value["BinaryValue"])
    return messages


class SQSWire:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: CredentialSource,
        endpoint_url: str,
        region: str,
        user_agent: str,
    ) -> None:
        self._http = session
        self._credentials = credentials
        self._url = endpoint_url.rstrip("/") + "/"
        self._signer = JsonPostSigner(self._url, region, "sqs")
        self._user_agent = user_agent

    async def receive_message(self, **request: Any) -> dict[str, Any]:
        answer = await self._call("ReceiveMessage", request)
        _with_binary_values(answer.get("Messages", []))
        return answer

    async def send_message_batch(self, **request: Any) -> dict[str, Any]:
        return await self._call("SendMessageBatch", request)

    async def delete_message_batch(self, **request: Any) -> dict[str, Any]:
        return await self._call("DeleteMessageBatch", request)

    async def change_message_visibility(self, **request: Any) -> dict[str, Any]:
        return await self._call("ChangeMessageVisibility", request, SHORT_CALL_TIMEOUT)

    async def get_queue_url(self, **request: Any) -> dict[str, Any]:
        return await self._call("GetQueueUrl", request, SHORT_CALL_TIMEOUT)

    async def get_queue_attributes(self, **request: Any) -> dict[str, Any]:
        return await self._call("GetQueueAttributes", request, SHORT_CALL_TIMEOUT)

    async def create_queue(self, **request: Any) -> dict[str, Any]:
        return await self._call("CreateQueue", request, SHORT_CALL_TIMEOUT)

    async def _call(
        self,
        operation: str,
        request: dict[str, Any],
        limits: aiohttp.ClientTimeout | None = None,
    ) -> dict[str, Any]:
        body = json.dumps(request).encode()
        for attempt in range(1, MAX_ATTEMPTS + 1):
            last = attempt == MAX_ATTEMPTS
            try:
                status, answer, query_error = await self._post(operation, body, limits)
            except (aiohttp.ClientConnectionError, TimeoutError):
                if last:
                    raise
            else:
                if status == 200:
                    return json.loads(answer) if answer else {}
                error = _client_error(operation, status, answer, query_error)
                retried = status >= 500 or status == 429
                if last or not (retried or error.response["Error"]["Code"] in RETRIED_CODES):
                    raise error
            await asyncio.sleep(random.random() * min(MAX_BACKOFF_SECONDS, 2 ** (attempt - 1)))  # noqa: S311
        raise AssertionError("unreachable")

    async def _post(
        self, operation: str, body: bytes, limits: aiohttp.ClientTimeout | None
    ) -> tuple[int, bytes, str | None]:
        headers = self._signer.headers(
            await self._credentials(),
            f"AmazonSQS.{operation}",
            body,
            datetime.now(UTC),
        )
        headers["User-Agent"] = self._user_agent
        posted = self._http.post(
            self._url, data=body, headers=headers, timeout=limits or self._http.timeout
        )
        async with posted as answer:
            return answer.status, await answer.read(), answer.headers.get("x-amzn-query-error")


@asynccontextmanager
async def open_sqs_wire(
    credentials: CredentialSource,
    endpoint_url: str,
    region: str,
    *,
    user_agent: str,
    read_timeout_seconds: float,
    max_connections: int,
) -> AsyncIterator[SQSWire]:
    timeout = aiohttp.ClientTimeout(sock_connect=5, sock_read=read_timeout_seconds)
    connector = aiohttp.TCPConnector(limit=max_connections)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        yield SQSWire(http, credentials, endpoint_url, region, user_agent)

"""The local SQS server (``tools/local-sqs``, the embedded default's broker) where it departs
from its npm package: as SQS does, and as the platform's latency depends on."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import pytest

from tests.harness import LocalSQSServer


def _request(operation: str, body: dict[str, Any]) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        "POST / HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/x-amz-json-1.0\r\n"
        f"X-Amz-Target: AmazonSQS.{operation}\r\nContent-Length: {len(payload)}\r\n\r\n"
    )
    return head.encode() + payload


async def _answers(port: int, requests: list[bytes]) -> list[dict[str, Any]]:
    """The JSON answers to ``requests``, written together on one connection (pipelined):
    the server takes them in within one turn of its event loop, before any timer fires."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"".join(requests))
        answers = []
        for _ in requests:
            headers = (await reader.readuntil(b"\r\n\r\n")).decode().lower()
            length = int(headers.split("content-length:")[1].split("\r\n")[0])
            body = await reader.readexactly(length)
            answers.append(json.loads(body) if body else {})  # no messages: an empty body
        return answers
    finally:
        writer.close()
        await writer.wait_closed()


async def _sent_counted_received(
    port: int, queue: str, message: dict[str, Any]
) -> tuple[dict[str, str], dict[str, Any]]:
    """On a new ``queue``: ``message`` sent, then, within the same turn of the server's event
    loop, the queue's visible and delayed counts and a receive that does not wait."""
    [created] = await _answers(port, [_request("CreateQueue", {"QueueName": queue})])
    url = created["QueueUrl"]
    attributes = {
        "QueueUrl": url,
        "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    }
    _, counted, received = await _answers(
        port,
        [
            _request("SendMessage", {"QueueUrl": url, **message}),
            _request("GetQueueAttributes", attributes),
            _request("ReceiveMessage", {"QueueUrl": url, "WaitTimeSeconds": 0}),
        ],
    )
    return counted["Attributes"], received


async def test_a_message_sent_without_delay_is_visible_at_once(
    sqs_server: LocalSQSServer,
) -> None:
    """local-aws-sqs 2.0.2 made every message visible from a timer, even with no delay, and
    Node runs no timer sooner than 1 ms later: each hop through a queue waited for it."""
    counted, received = await _sent_counted_received(
        sqs_server.port, "visible-at-once", {"MessageBody": "now"}
    )
    assert counted == {
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesDelayed": "0",
    }
    assert [message["Body"] for message in received["Messages"]] == ["now"]


async def test_a_message_sent_with_a_delay_still_waits_for_it(sqs_server: LocalSQSServer) -> None:
    counted, received = await _sent_counted_received(
        sqs_server.port, "delayed-still", {"MessageBody": "later", "DelaySeconds": 60}
    )
    assert counted == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesDelayed": "1",
    }
    assert "Messages" not in received


@pytest.mark.skipif(os.geteuid() != 0, reason="another user's process needs root to start")
async def test_only_processes_of_the_servers_own_user_may_use_it(
    sqs_server: LocalSQSServer,
) -> None:
    """SQS takes no credential here, and a command the worker runs under a uid of its own
    could otherwise read every queue (another tenant's dead letters, with the credentials
    producers sent) and write any: its connection is closed unanswered."""
    [created] = await _answers(sqs_server.port, [_request("CreateQueue", {"QueueName": "own"})])
    assert created["QueueUrl"].endswith("/own")
    request = _request("ListQueues", {})
    for uid in ("287654", "65534"):
        other = await asyncio.create_subprocess_exec(
            *("setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"),
            *("/usr/bin/python3", "-c", _SEND_AND_PRINT, str(sqs_server.port), request.decode()),
            stdout=asyncio.subprocess.PIPE,
        )
        answer, _ = await other.communicate()
        assert answer == b"sent\n", answer


# What the other user's process sends, and what comes back (nothing, the connection closed).
_SEND_AND_PRINT = """
import socket, sys
connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
try:
    connection.sendall(sys.argv[2].encode())
    print("sent", flush=True)
    sys.stdout.buffer.write(connection.recv(65536))
except ConnectionError:
    pass
"""

"""What one SQS call of the hot loop costs this process: aiobotocore against ``SQSWire``, the
figure behind carrying those calls on our own client (both against the local SQS server)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from idp_common.messaging.sqs import QueueDirectory, open_queues
from tests.harness import LocalSQSServer, sqs_settings

TRACEPARENT = {"DataType": "String", "StringValue": f"00-{'a' * 32}-{'b' * 16}-01"}


async def _cpu_per_call(calls: int, call: Any) -> float:
    started = time.process_time()
    for _ in range(calls):
        await call()
    return 1000 * (time.process_time() - started) / calls


async def _costs(queues: QueueDirectory, client: Any, calls: int) -> dict[str, float]:
    url = await queues.url("panel-submissions")
    entries = [{"Id": "0", "MessageBody": "x" * 500, "MessageAttributes": {"t": TRACEPARENT}}]
    costs = {
        "SendMessageBatch": await _cpu_per_call(
            calls, lambda: client.send_message_batch(QueueUrl=url, Entries=entries)
        )
    }
    received: dict[str, Any] = {}

    async def receive() -> None:
        received.update(
            await client.receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, MessageAttributeNames=["All"]
            )
        )

    costs["ReceiveMessage"] = await _cpu_per_call(calls, receive)
    receipt = received["Messages"][0]["ReceiptHandle"]
    costs["DeleteMessageBatch"] = await _cpu_per_call(
        calls,
        lambda: client.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": receipt}]
        ),
    )
    return costs


async def sqs_call_costs(calls: int) -> dict[str, float]:
    server = LocalSQSServer()
    server.start()
    try:
        async with open_queues(sqs_settings(server)) as queues:
            await queues.ensure_queues()
            botocore = await _costs(queues, queues.client, calls)
            wire = await _costs(queues, queues.wire, calls)
    finally:
        server.stop()
    for call in botocore:
        print(f"  {call}: aiobotocore {botocore[call]:.2f} ms, SQSWire {wire[call]:.2f} ms")
    return {
        "sqs_botocore_ms": statistics.mean(botocore.values()),
        "sqs_wire_ms": statistics.mean(wire.values()),
    }

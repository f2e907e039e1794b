"""Consumer deletes: batched under load, immediate when idle, failures only logged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from idp_common.messaging.consumer import BatchedDeletes
from idp_common.messaging.sqs import QueueDirectory


class RecordingClient:
    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def delete_message_batch(self, **request: Any) -> Any:
        entries = request["Entries"]
        self.calls.append([entry["ReceiptHandle"] for entry in entries])
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("broker gone")
        return {"Successful": [{"Id": entry["Id"]} for entry in entries]}


async def test_an_idle_delete_goes_out_at_once() -> None:
    client = RecordingClient()
    deletes = BatchedDeletes(QueueDirectory(client), "q")
    await asyncio.wait_for(deletes.delete("url", "r1"), 1)
    assert client.calls == [["r1"]]


async def test_deletes_arriving_during_a_call_leave_together_ten_at_a_time() -> None:
    client = RecordingClient()
    client.gate.clear()
    deletes = BatchedDeletes(QueueDirectory(client), "q")
    first = asyncio.create_task(deletes.delete("url", "r0"))
    await asyncio.sleep(0)
    others = [asyncio.create_task(deletes.delete("url", f"r{n}")) for n in range(1, 13)]
    await asyncio.sleep(0)
    assert not first.done()
    client.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *others), 1)
    assert [len(call) for call in client.calls] == [1, 10, 2]
    assert sorted(handle for call in client.calls for handle in call) == sorted(
        f"r{n}" for n in range(13)
    )


async def test_a_failed_call_is_logged_and_releases_its_callers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deletes = BatchedDeletes(QueueDirectory(RecordingClient(fail=True)), "q")
    await asyncio.wait_for(asyncio.gather(*(deletes.delete("url", f"r{n}") for n in range(3))), 1)
    assert "could not delete messages on q" in caplog.text

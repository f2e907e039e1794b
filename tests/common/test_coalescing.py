"""Coalesced batch calls: immediate when idle, shared under load, bounded, failures shared;
and calls of one key shared while one is in flight."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable

import pytest

from idp_common.coalescing import Coalescer, SharedCalls


class RecordingCall:
    def __init__(self, *, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, items: list[str]) -> list[str]:
        self.calls.append(items)
        await self.gate.wait()
        if self.fail:
            raise ConnectionError("broker gone")
        return [item.upper() for item in items]


async def test_an_idle_item_goes_out_at_once_and_gets_its_own_result() -> None:
    call = RecordingCall()
    coalescer = Coalescer(call, max_items=10)
    assert await asyncio.wait_for(coalescer.submit("a"), 1) == "A"
    assert call.calls == [["a"]]


async def test_items_arriving_during_a_call_leave_together_up_to_the_limit() -> None:
    call = RecordingCall()
    call.gate.clear()
    coalescer = Coalescer(call, max_items=10)
    first = asyncio.create_task(coalescer.submit("r0"))
    await asyncio.sleep(0)
    others = [asyncio.create_task(coalescer.submit(f"r{n}")) for n in range(1, 13)]
    await asyncio.sleep(0)
    assert not first.done()
    call.gate.set()
    results = await asyncio.wait_for(asyncio.gather(first, *others), 1)
    assert results == [f"R{n}" for n in range(13)]
    assert [len(items) for items in call.calls] == [1, 10, 2]


async def test_a_call_stays_within_its_size_budget_yet_an_oversized_item_still_goes() -> None:
    call = RecordingCall()
    call.gate.clear()
    coalescer = Coalescer(call, max_items=10, size=len, max_size=5)
    first = asyncio.create_task(coalescer.submit("x"))
    await asyncio.sleep(0)
    others = [
        asyncio.create_task(coalescer.submit(item)) for item in ("aa", "bbb", "c", "dddddddd")
    ]
    await asyncio.sleep(0)
    call.gate.set()
    await asyncio.wait_for(asyncio.gather(first, *others), 1)
    assert call.calls == [["x"], ["aa", "bbb"], ["c"], ["dddddddd"]]


async def test_a_failed_call_fails_each_of_its_callers_and_the_next_call_still_runs() -> None:
    call = RecordingCall(fail=True)
    coalescer = Coalescer(call, max_items=10)
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(coalescer.submit(f"r{n}") for n in range(3)), return_exceptions=True), 1
    )
    assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
    call.fail = False
    assert await asyncio.wait_for(coalescer.submit("again"), 1) == "AGAIN"


async def test_a_caller_that_gives_up_does_not_disturb_the_others() -> None:
    call = RecordingCall()
    call.gate.clear()
    coalescer = Coalescer(call, max_items=10)
    impatient = asyncio.create_task(coalescer.submit("a"))
    patient = asyncio.create_task(coalescer.submit("b"))
    await asyncio.sleep(0)
    impatient.cancel()
    call.gate.set()
    assert await asyncio.wait_for(patient, 1) == "B"
    with pytest.raises(asyncio.CancelledError):
        await impatient


class KeyedRead:
    """A read that waits for its gate, counted by key."""

    def __init__(self) -> None:
        self.made: list[str] = []
        self.gate = asyncio.Event()
        self.fail = False

    def of(self, key: str) -> Callable[[], Awaitable[str]]:
        async def read() -> str:
            self.made.append(key)
            await self.gate.wait()
            if self.fail:
                raise ConnectionError("database gone")
            return key.upper()

        return read


async def test_calls_of_one_key_in_flight_together_share_one_call() -> None:
    read, shared = KeyedRead(), SharedCalls[str]()
    calls = [asyncio.create_task(shared.call(key, read.of(key))) for key in "aaab"]
    await asyncio.sleep(0)
    read.gate.set()
    assert await asyncio.wait_for(asyncio.gather(*calls), 1) == ["A", "A", "A", "B"]
    assert read.made == ["a", "b"]
    assert await shared.call("a", read.of("a")) == "A"  # landed: the next one reads again
    assert read.made == ["a", "b", "a"]


async def test_an_error_reaches_every_caller_of_the_call_and_the_next_call_is_new() -> None:
    read, shared = KeyedRead(), SharedCalls[str]()
    read.fail = True
    read.gate.set()
    outcomes = await asyncio.gather(
        *(shared.call("a", read.of("a")) for _ in range(3)), return_exceptions=True
    )
    assert [type(outcome) for outcome in outcomes] == [ConnectionError] * 3
    read.fail = False
    assert await shared.call("a", read.of("a")) == "A"
    assert read.made == ["a", "a"]


async def test_a_caller_that_gives_up_leaves_the_call_to_the_others() -> None:
    read, shared = KeyedRead(), SharedCalls[str]()
    first = asyncio.create_task(shared.call("a", read.of("a")))
    second = asyncio.create_task(shared.call("a", read.of("a")))
    await asyncio.sleep(0)
    first.cancel()
    read.gate.set()
    assert await asyncio.wait_for(second, 1) == "A"
    with pytest.raises(asyncio.CancelledError):
        await first
    assert read.made == ["a"]


async def test_an_error_nobody_awaits_any_more_is_not_left_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    read, shared = KeyedRead(), SharedCalls[str]()
    read.fail = True
    alone = asyncio.create_task(shared.call("a", read.of("a")))
    await asyncio.sleep(0)
    alone.cancel()
    read.gate.set()
    await asyncio.sleep(0.01)
    gc.collect()
    assert "exception was never retrieved" not in caplog.text

"""Concurrent calls coalesced into batch calls (SQS sends and deletes, the worker's claims),
or into one call when they are the same call (``SharedCalls``: live log streams' reads)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Items submitted while a batch call is in flight leave together in the next call.

    Nothing waits to fill a batch: an item goes out at once when no call is in flight, so
    an idle system pays no latency, and under load one call carries up to ``max_items``
    (each call costs a round trip and a millisecond or more of CPU on both ends).
    ``send`` returns one result per item, in order; ``submit`` returns its item's result,
    or raises what the call raised. ``size``/``max_size`` bound a call's payload.
    """

    def __init__(
        self,
        send: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_items: int,
        size: Callable[[T], int] = lambda _: 0,
        max_size: int = 0,
    ) -> None:
        self._send = send
        self._max_items = max_items
        self._size = size
        self._max_size = max_size
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_pending())
        return await done

    def _next_batch(self) -> list[tuple[T, asyncio.Future[R]]]:
        taken, total = 0, 0
        for item, _ in self._pending[: self._max_items]:
            total += self._size(item)
            if taken and self._max_size and total > self._max_size:
                break
            taken += 1
        batch = self._pending[:taken]
        del self._pending[:taken]
        return batch

    async def _send_pending(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while self._pending:
                batch = self._next_batch()
                try:
                    results = await self._send([item for item, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for (_, done), result in zip(batch, results, strict=True):
                        if not done.done():
                            done.set_result(result)
        finally:
            self._sender = None
            for _, done in batch + self._pending:  # only left unsettled when cancelled
                done.cancel()
            self._pending.clear()


class SharedCalls(Generic[R]):
    """Calls made with the same key while one is in flight share its result (or its error)
    instead of each making it: for reads many callers make at once, such as every stream
    of one execution's live log asking for the lines after the same one. A caller that is
    cancelled leaves the call running for the others."""

    def __init__(self) -> None:
        self._in_flight: dict[Hashable, asyncio.Future[R]] = {}

    async def call(self, key: Hashable, make: Callable[[], Awaitable[R]]) -> R:
        flight = self._in_flight.get(key)
        if flight is None:
            flight = self._in_flight[key] = asyncio.ensure_future(make())
            flight.add_done_callback(lambda _: self._in_flight.pop(key))
        # A shield whose caller was cancelled retrieves the call's error: none is logged as
        # never retrieved when every caller has gone.
        return await asyncio.shield(flight)

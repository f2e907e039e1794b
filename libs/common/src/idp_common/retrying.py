"""Calling again, with backoff, what can fail for a while: a broker restarting, a service
stalled past a client's timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)
FIRST_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 2.0


async def retried(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    for_seconds: float,
    retryable: Callable[[Exception], bool] = lambda _: True,
) -> T:
    """``call()``'s result, called again after each failure ``retryable`` accepts (waiting
    0.25 s, doubled each time up to 2 s) for up to ``for_seconds``; then its last error is
    raised, as is at once any other."""
    give_up_at = time.monotonic() + for_seconds
    delay = FIRST_DELAY_SECONDS
    while True:
        try:
            return await call()
        except Exception as exc:
            if not retryable(exc) or time.monotonic() + delay > give_up_at:
                raise
            logger.warning("%s failed (%r); trying again in %.2f s", what, exc, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, MAX_DELAY_SECONDS)

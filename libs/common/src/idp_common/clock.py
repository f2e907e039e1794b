"""Time as the platform reads it. Code that decides by time (token expiry, the key cache,
the lost-execution sweep, schedules) takes a ``Clock``, so that a test moves time instead
of sleeping through it."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """The system's clock: wall time (seconds since the epoch, or an aware UTC datetime)
    and monotonic time (for intervals)."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)


SYSTEM_CLOCK = Clock()

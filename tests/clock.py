"""A clock the test moves (``idp_common.clock``): time passes when the test says so."""

from __future__ import annotations

import time

from idp_common.clock import Clock


class ManualClock(Clock):
    def __init__(self, start: float | None = None) -> None:
        self._time = time.time() if start is None else start
        self._monotonic = 0.0

    def time(self) -> float:
        return self._time

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        self._time += seconds
        self._monotonic += seconds

    def step(self, seconds: float) -> None:
        """The wall clock alone moves (NTP correcting it, a host resumed)."""
        self._time += seconds

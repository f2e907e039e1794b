"""The one background-loop shape: passes, backoff, stop, and a supervisor that restarts a
dead loop a bounded number of times, then gives up loudly."""

from __future__ import annotations

import asyncio

import pytest

from idp_common.loops import LoopDied, PeriodicLoop, Supervisor


class Counting(PeriodicLoop):
    def __init__(self, failures: int = 0) -> None:
        super().__init__(0.0, min_backoff_seconds=0.01, max_backoff_seconds=0.01)
        self.passes = 0
        self.failures = failures
        self.stopped_after = False
        self.passed = asyncio.Event()

    async def run_once(self) -> None:
        self.passes += 1
        self.passed.set()
        if self.passes <= self.failures:
            raise RuntimeError("a failing pass")

    async def after_stop(self) -> None:
        self.stopped_after = True


async def test_a_failing_pass_is_retried_and_loops_bounds_the_passes() -> None:
    loop = Counting(failures=2)
    await loop.run(loops=5)
    assert loop.passes == 5
    assert loop.stopped_after


async def test_stop_ends_the_loop_and_runs_after_stop() -> None:
    loop = Counting()
    loop.period_seconds = 60
    task = asyncio.create_task(loop.run())
    await loop.passed.wait()
    loop.stop()
    await asyncio.wait_for(task, 1)
    assert loop.stopped_after


class Fatal:
    """Records the reasons a supervisor gives up, and wakes whoever waits for one."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.reported = asyncio.Event()

    def __call__(self, reason: str) -> None:
        self.reasons.append(reason)
        self.reported.set()


class Dying(PeriodicLoop):
    def __init__(self) -> None:
        super().__init__(0.0)
        self.starts = 0

    async def run(self, loops: int | None = None) -> None:
        self.starts += 1
        raise RuntimeError("crashed outside a pass")


async def test_a_dead_loop_is_restarted_a_bounded_number_of_times_then_fatal() -> None:
    fatal = Fatal()
    dying = Dying()
    supervisor = Supervisor([dying], max_restarts=2, restart_delay_seconds=0.0, on_fatal=fatal)
    async with supervisor.running():
        await fatal.reported.wait()
        with pytest.raises(LoopDied, match="crashed outside a pass"):
            await supervisor.check()
    assert dying.starts == 3
    assert fatal.reasons == ["background loop Dying died: RuntimeError: crashed outside a pass"]


async def test_a_loop_that_returns_unasked_counts_as_dead() -> None:
    quitter = Counting()
    quitter.run = lambda loops=None: asyncio.sleep(0)  # type: ignore[method-assign]
    fatal = Fatal()
    supervisor = Supervisor([quitter], max_restarts=0, on_fatal=fatal)
    async with supervisor.running():
        await fatal.reported.wait()
    assert "returned without being stopped" in fatal.reasons[0]

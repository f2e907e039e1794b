"""Background loops, written once: a pass (``run_once``) repeated every ``period``, a pause
that a stop (and, between passes, a ``wake``) cuts short, exponential backoff after a failed
pass, a warning when a pass overruns its period, a last step after the stop (``after_stop``:
drain, flush), and ``run(loops=N)`` for deterministic tests.

The loops of a process run under a ``Supervisor``: a loop whose task dies (an error outside
its passes, or a return before it was stopped) is restarted a bounded number of times; then
the process reports itself unready and asks to exit non-zero, so an orchestrator restarts it
rather than letting it serve without consuming its queue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

logger = logging.getLogger(__name__)


class PeriodicLoop:
    """Subclasses implement ``run_once`` (one pass, its own transaction) and may override
    ``after_stop``."""

    def __init__(
        self,
        period_seconds: float,
        *,
        first_delay_seconds: float = 0.0,
        fixed_delay: bool = False,
        min_backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 10.0,
    ) -> None:
        """``fixed_delay``: wait the whole period after each pass, rather than start passes
        a period apart."""
        self.period_seconds = period_seconds
        self.fixed_delay = fixed_delay
        self.first_delay_seconds = first_delay_seconds
        self.min_backoff_seconds = min_backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    def wake(self) -> None:
        """Start the next pass now rather than at the end of the period."""
        self._wakeup.set()

    async def pause(self, seconds: float, *, wakeable: bool = True) -> None:
        """Wait ``seconds``, or less when stopped (or woken, if ``wakeable``)."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for((self._wakeup if wakeable else self._stopping).wait(), seconds)

    async def run_once(self) -> None:
        raise NotImplementedError

    async def after_stop(self) -> None:
        """After the stop: what must still be done (drain in-flight work, flush)."""

    async def run(self, loops: int | None = None) -> None:
        """Passes until stopped (or ``loops`` passes), then ``after_stop``."""
        if self.first_delay_seconds:
            await self.pause(self.first_delay_seconds, wakeable=False)
        backoff = 0.0
        passes = 0
        while not self.stopping:
            started = time.monotonic()
            self._wakeup.clear()
            try:
                await self.run_once()
                backoff = 0.0
            except Exception:
                backoff = min(max(backoff * 2, self.min_backoff_seconds), self.max_backoff_seconds)
                logger.warning("%s failed; retrying in %.1fs", self.name, backoff, exc_info=True)
            passes += 1
            if loops is not None and passes >= loops:
                break
            elapsed = 0.0 if self.fixed_delay else time.monotonic() - started
            if self.period_seconds and elapsed > self.period_seconds:
                logger.warning(
                    "%s took %.1fs, longer than its period (%.1fs)",
                    self.name,
                    elapsed,
                    self.period_seconds,
                )
            if backoff:
                await self.pause(backoff, wakeable=False)
            else:
                await self.pause(max(self.period_seconds - elapsed, 0.0))
        await self.after_stop()


class LoopDied(Exception):
    """A background loop stopped although nobody stopped it."""


class Supervisor:
    """Runs loops as tasks. A loop that dies makes the process unready and is restarted up
    to ``max_restarts`` times; then ``on_fatal`` is called with the reason."""

    def __init__(
        self,
        loops: Sequence[PeriodicLoop],
        *,
        max_restarts: int = 3,
        restart_delay_seconds: float = 1.0,
        on_fatal: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.loops = list(loops)
        self.max_restarts = max_restarts
        self.restart_delay_seconds = restart_delay_seconds
        self.on_fatal = on_fatal
        self.dead: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    async def _keep_running(self, loop: PeriodicLoop) -> None:
        for attempt in range(self.max_restarts + 1):
            try:
                await loop.run()
                if self._stopped:
                    return
                raise LoopDied("it returned without being stopped")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.critical("background loop %s died", loop.name, exc_info=exc)
                # Unready from the first death on: restarts keep the work going meanwhile.
                self.dead[loop.name] = f"{type(exc).__name__}: {exc}"
                if attempt == self.max_restarts:
                    self.on_fatal(f"background loop {loop.name} died: {self.dead[loop.name]}")
                    return
                await asyncio.sleep(self.restart_delay_seconds * 2**attempt)

    async def check(self) -> None:
        """A readiness check: fails while a loop is dead."""
        if self.dead:
            raise LoopDied("; ".join(f"{name}: {reason}" for name, reason in self.dead.items()))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Supervisor]:
        """Run the loops while the block runs; on exit stop them one after another, in
        order (consumers before the outbox relay, so the relay sends what they wrote)."""
        self._tasks = [
            asyncio.create_task(self._keep_running(loop), name=loop.name) for loop in self.loops
        ]
        try:
            yield self
        finally:
            self._stopped = True
            for loop, task in zip(self.loops, self._tasks, strict=True):
                loop.stop()
                await asyncio.gather(task, return_exceptions=True)

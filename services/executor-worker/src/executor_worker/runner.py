"""Running one command: no shell, minimal environment, its own process group, a fresh
working directory, a wall-clock timeout that kills the whole group, and an output cap."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from executor_worker.sandbox import Sandbox
from idp_common.executables import ExecutableAllowlist, ExecutableRefused
from idp_common.launchers import LaunchRefused, programs

READ_CHUNK_BYTES = 64 * 1024
STDERR_SAMPLE_CHARS = 4096
KILL_GRACE_SECONDS = 2.0
MAX_LINE_BYTES = 16 * 1024
EXCERPT_BYTES = 4096

if TYPE_CHECKING:
    from executor_worker.masking import SecretMasker

LineSink = Callable[[str, str], Awaitable[None]]  # (stream, text)


@dataclass(frozen=True, slots=True)
class RunResult:
    status: str  # succeeded | failed | timed_out | cancelled
    exit_code: int | None
    duration_seconds: float
    stdout_excerpt: str
    output_bytes: int
    truncated: bool
    error: str | None = None
    spawned_at: float | None = None  # time.monotonic() once the process existed

    @classmethod
    def refused(cls, reason: str) -> RunResult:
        """A job that never started a process."""
        return cls("failed", None, 0.0, "", 0, False, reason)

    def masked(self, masker: SecretMasker) -> RunResult:
        return replace(
            self,
            stdout_excerpt=masker.mask(self.stdout_excerpt),
            error=masker.mask(self.error) if self.error else None,
        )


def resolve_programs(argv: Sequence[str], allowlist: ExecutableAllowlist) -> list[str]:
    """``argv`` with every program it starts (``argv[0]``, and what each launcher among them
    starts, read by that launcher's grammar) replaced by the allowlisted absolute path that
    will be executed: checked here again, whatever operation-svc checked when the template
    was saved. Raises ``CommandRefused``."""
    resolved = list(argv)
    try:
        for program in programs(argv):
            resolved[program.start] = allowlist.resolve(argv[program.start])
    except (ExecutableRefused, LaunchRefused) as refused:
        raise CommandRefused(refused.message) from None
    return resolved


class CommandRefused(Exception):
    """The worker will not start this command; the message says why."""


class _Output:
    """Splits streams into lines and forwards them until the cap, then keeps draining (so
    the child never blocks on a full pipe) up to a hard ceiling that ends the run."""

    def __init__(self, sink: LineSink, cap_bytes: int, hard_limit_bytes: int) -> None:
        self.sink = sink
        self.cap_bytes = cap_bytes
        self.hard_limit_bytes = hard_limit_bytes
        self.forwarded = 0
        self.total = 0
        self.truncated = False
        self.stdout_head = bytearray()
        self.stderr_tail = ""
        self.overflow = asyncio.Event()

    async def pump(self, stream: asyncio.StreamReader, name: str) -> None:
        pending = b""
        while chunk := await stream.read(READ_CHUNK_BYTES):
            self.total += len(chunk)
            if self.total > self.hard_limit_bytes:
                # Keep reading and discarding until the killed child's pipe closes: asyncio
                # only reports the exit once every pipe has reached EOF.
                self.overflow.set()
                continue
            if name == "stdout" and len(self.stdout_head) < EXCERPT_BYTES:
                self.stdout_head += chunk[: EXCERPT_BYTES - len(self.stdout_head)]
            pending += chunk
            while True:
                cut = pending.find(b"\n")
                if 0 <= cut < MAX_LINE_BYTES:
                    await self._emit(name, pending[:cut])
                    pending = pending[cut + 1 :]
                elif len(pending) >= MAX_LINE_BYTES:  # a long line goes out in pieces
                    await self._emit(name, pending[:MAX_LINE_BYTES])
                    pending = pending[MAX_LINE_BYTES:]
                else:
                    break
        if pending:
            await self._emit(name, pending)

    async def _emit(self, name: str, line: bytes) -> None:
        if self.truncated and name != "stderr":
            return  # dropped; only stderr is still read, to name a limit that was hit
        # NUL cannot be stored in PostgreSQL text; U+FFFD marks it, as for invalid UTF-8.
        text = line.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
        if name == "stderr":
            self.stderr_tail = (self.stderr_tail + "\n" + text)[-STDERR_SAMPLE_CHARS:]
        if self.truncated:
            return
        if self.forwarded + len(line) > self.cap_bytes:
            self.truncated = True
            await self.sink("system", f"[output truncated after {self.forwarded} bytes]")
            return
        self.forwarded += len(line)
        await self.sink(name, text)


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def _collect(process: asyncio.subprocess.Process, everything: asyncio.Future[Any]) -> None:
    """Wait for the pipes to drain after the kill; a descendant that left the process group
    (setsid) may hold them open, so after a grace the pipes are closed from this side."""
    done, _ = await asyncio.wait({everything}, timeout=KILL_GRACE_SECONDS)
    if not done:
        everything.cancel()
        process._transport.close()  # type: ignore[attr-defined]  # no public way to drop the pipes
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await everything


async def run_command(
    argv: list[str],
    *,
    env: Mapping[str, str],
    path: str,
    timeout_seconds: float,
    output_cap_bytes: int,
    output_hard_limit_bytes: int,
    sandbox: Sandbox,
    sink: LineSink,
    stop: asyncio.Event | None = None,
) -> RunResult:
    started = time.monotonic()
    output = _Output(sink, output_cap_bytes, output_hard_limit_bytes)
    with sandbox.account() as uid, tempfile.TemporaryDirectory(prefix="idp-run-") as workdir:
        process = await asyncio.create_subprocess_exec(
            *sandbox.wrap(argv, workdir, uid),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env={"PATH": path, "HOME": workdir, "LANG": "C.UTF-8", **env},
            start_new_session=True,
        )
        spawned_at = time.monotonic()
        assert process.stdout is not None
        assert process.stderr is not None
        everything: asyncio.Future[Any] = asyncio.gather(
            output.pump(process.stdout, "stdout"),
            output.pump(process.stderr, "stderr"),
            process.wait(),
        )
        stop_requested: asyncio.Future[Any] = asyncio.ensure_future(
            (stop or asyncio.Event()).wait()
        )
        overflow: asyncio.Future[Any] = asyncio.ensure_future(output.overflow.wait())
        try:
            done, _ = await asyncio.wait(
                {everything, stop_requested, overflow},
                timeout=timeout_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            stop_requested.cancel()
            overflow.cancel()
            _kill_group(process.pid)
            sandbox.kill_leftovers(uid)  # also what left the group, so the pipes close now
        await _collect(process, everything)
    exit_code = process.returncode
    limit = sandbox.limit_hit(exit_code, output.stderr_tail)
    error: str | None
    if overflow in done:
        status, error = (
            "failed",
            f"output limit ({output_hard_limit_bytes // (1024 * 1024)} MiB) exceeded",
        )
    elif everything in done and everything.exception() is not None:
        status, error = "failed", f"output could not be streamed: {everything.exception()}"
    elif everything in done:
        status = "succeeded" if exit_code == 0 else "failed"
        error = f"stopped by the {limit}" if limit and exit_code != 0 else None
    elif stop_requested in done:
        status, error = "cancelled", "stopped on request"
    else:
        status = "timed_out"
        error = f"timed out after {timeout_seconds:g}s" + (f"; it hit the {limit}" if limit else "")
    return RunResult(
        status=status,
        exit_code=exit_code,
        duration_seconds=time.monotonic() - started,
        stdout_excerpt=bytes(output.stdout_head).decode("utf-8", errors="replace"),
        output_bytes=output.total,
        truncated=output.truncated or overflow in done,
        error=error,
        spawned_at=spawned_at,
    )

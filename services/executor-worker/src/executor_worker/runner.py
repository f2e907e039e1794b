"""Running one command: no shell, minimal environment, its own process group, a fresh
working directory, a wall-clock timeout that kills the whole group, and an output cap."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from executor_worker.sandbox import Sandbox, work_folders
from idp_common.events import LogStream
from idp_common.executables import ExecutableAllowlist, ExecutableRefused
from idp_common.launchers import LaunchRefused, programs, unsafe_variable
from idp_common.masking import SecretMasker

READ_CHUNK_BYTES = 256 * 1024
STDERR_SAMPLE_BYTES = 4096
KILL_GRACE_SECONDS = 2.0
MAX_LINE_BYTES = 16 * 1024
EXCERPT_BYTES = 4096
FORWARD_SLICE_LINES = 500
DRAIN_BYTES_PER_SECOND = 256 * 1024 * 1024

LineSink = Callable[[LogStream, list[str]], Awaitable[None]]  # (stream, lines)


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


def check_variables(names: Iterable[str]) -> None:
    """Refuse a job setting a variable that changes which code the command loads or runs
    (``LD_PRELOAD``, ``BASH_ENV``, …), whatever operation-svc checked when it was mapped.
    Raises ``CommandRefused``."""
    for name in names:
        if unsafe_variable(name):
            raise CommandRefused(f"{name} may not be set: it changes what code a command runs")


@dataclass(frozen=True, slots=True)
class OutputLimits:
    """Output forwarded per run (bytes and lines), and the total after which it ends."""

    cap_bytes: int = 1024 * 1024
    cap_lines: int = 20_000
    hard_limit_bytes: int = 64 * 1024 * 1024


class _Output:
    """Splits streams into lines, masks them and forwards them until the cap; past it, only
    counts what it drains (so the child never blocks on a full pipe, and a flood costs no
    per-line work) and keeps the end of stderr, up to a hard ceiling that ends the run."""

    def __init__(self, sink: LineSink, limits: OutputLimits, masker: SecretMasker) -> None:
        self.sink = sink
        self.limits = limits
        self.masker = masker
        self.forwarded = 0
        self.forwarded_lines = 0
        self.total = 0
        self.truncated = False
        self.stdout_head: list[str] = []  # the first lines, as they were printed
        self._head_bytes = 0
        self.stderr_tail = b""
        self.overflow = asyncio.Event()
        self._drain_started: float | None = None
        self._drained = 0

    async def pump(self, stream: asyncio.StreamReader, name: LogStream) -> None:
        pending = b""
        while chunk := await stream.read(READ_CHUNK_BYTES):
            self.total += len(chunk)
            if name == "stderr":
                self.stderr_tail = (self.stderr_tail + chunk)[-STDERR_SAMPLE_BYTES:]
            if self.total > self.limits.hard_limit_bytes:
                # Keep reading and discarding until the killed child's pipe closes: asyncio
                # only reports the exit once every pipe has reached EOF.
                self.overflow.set()
                continue
            if self.truncated:
                await self._pace_drain(len(chunk))
                continue
            pending += chunk
            end = pending.rfind(b"\n")
            if end >= 0:
                # The complete lines are masked as one block: one scan per read, and a
                # multi-line secret is masked whole. They go out a slice at a time, the
                # event loop served in between, so a flood of short lines holds up no
                # other run.
                lines = self.masker.mask_bytes(pending[:end]).split(b"\n")
                pending = pending[end + 1 :]
                for start in range(0, len(lines), FORWARD_SLICE_LINES):
                    await self._forward(name, lines[start : start + FORWARD_SLICE_LINES])
                    await asyncio.sleep(0)
            # A long line goes out in pieces, cut only once any secret that could straddle
            # the cut has wholly arrived.
            while len(pending) >= MAX_LINE_BYTES + self.masker.longest and not self.truncated:
                cut = self.masker.safe_cut(pending, MAX_LINE_BYTES)
                await self._forward(name, [self.masker.mask_bytes(pending[:cut])], ended=False)
                pending = pending[cut:]
        if pending and not self.truncated:
            await self._forward(name, [self.masker.mask_bytes(pending)], ended=False)

    async def _pace_drain(self, size: int) -> None:
        """Past the cap, read no faster than DRAIN_BYTES_PER_SECOND: a flood then costs a
        fraction of a core (the child waits on its full pipe), not the worker's whole core."""
        now = time.monotonic()
        if self._drain_started is None:
            self._drain_started, self._drained = now, 0
        self._drained += size
        ahead = self._drained / DRAIN_BYTES_PER_SECOND - (now - self._drain_started)
        if ahead > 0:
            await asyncio.sleep(ahead)

    async def _forward(self, name: LogStream, lines: list[bytes], ended: bool = True) -> None:
        """Masked lines, as far as the cap allows; lines over MAX_LINE_BYTES in pieces.
        ``ended``: the lines ended with a newline (not a piece of a longer one, nor the
        output's unterminated end)."""
        if self.truncated:  # the rest of a read that crossed the cap
            return
        if max(map(len, lines)) > MAX_LINE_BYTES:
            lines = [
                line[start : start + MAX_LINE_BYTES]
                for line in lines
                for start in range(0, max(len(line), 1), MAX_LINE_BYTES)
            ]
        room = self.limits.cap_bytes - self.forwarded
        sizes = list(map(len, lines))
        if sum(sizes) > room:
            kept = next(i for i, total in enumerate(itertools.accumulate(sizes)) if total > room)
            lines, self.truncated = lines[:kept], True
        if len(lines) > self.limits.cap_lines - self.forwarded_lines:
            lines, self.truncated = lines[: self.limits.cap_lines - self.forwarded_lines], True
        self.forwarded += sum(sizes[: len(lines)])
        self.forwarded_lines += len(lines)
        texts = [line.decode("utf-8", "replace") for line in lines]  # NUL: see StorableText
        if name == "stdout" and self._head_bytes < EXCERPT_BYTES:
            self.stdout_head += [text + "\n" for text in texts] if ended else texts
            self._head_bytes += sum(len(text) + 1 for text in texts)
        if texts:
            await self.sink(name, texts)
        if self.truncated:
            marker = (
                f"[output truncated after {self.forwarded_lines} lines, {self.forwarded} bytes]"
            )
            await self.sink("system", [marker])

    @property
    def stdout_excerpt(self) -> str:
        return "".join(self.stdout_head)[:EXCERPT_BYTES]


async def forward_body(body: bytes, sink: LineSink, limits: OutputLimits) -> bool:
    """Forward a whole output (an HTTP answer's body) as a command's stdout goes: lines of
    at most MAX_LINE_BYTES, within the caps of bytes and lines. Whether it was cut."""
    reader = asyncio.StreamReader(limit=READ_CHUNK_BYTES)
    reader.feed_data(body)
    reader.feed_eof()
    output = _Output(sink, limits, SecretMasker())
    await output.pump(reader, "stdout")
    return output.truncated


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
    limits: OutputLimits,
    sandbox: Sandbox,
    sink: LineSink,
    masker: SecretMasker | None = None,
    stop: asyncio.Event | None = None,
) -> RunResult:
    started = time.monotonic()
    output = _Output(sink, limits, masker or SecretMasker())
    with (
        sandbox.account() as uid,
        tempfile.TemporaryDirectory(prefix="idp-run-", dir=work_folders()) as workdir,
    ):
        process = await asyncio.create_subprocess_exec(
            *sandbox.wrap(argv, workdir, uid),
            stdin=asyncio.subprocess.DEVNULL,
            limit=READ_CHUNK_BYTES,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=workdir,
            env={**env, "PATH": path, "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"},
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
    limit = sandbox.limit_hit(exit_code, output.stderr_tail.decode("utf-8", "replace"))
    error: str | None
    if overflow in done:
        status, error = (
            "failed",
            f"output limit ({limits.hard_limit_bytes // (1024 * 1024)} MiB) exceeded",
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
        stdout_excerpt=output.stdout_excerpt,
        output_bytes=output.total,
        truncated=output.truncated or overflow in done,
        error=error,
        spawned_at=spawned_at,
    )

"""A job's command is started held while its claim is in flight (the launcher's --gate):
it runs only once released, and nothing of it runs when the claim goes to another copy of
the job or fails."""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor_worker.runner import (
    OutputLimits,
    Release,
    RunResult,
    resolve_programs,
    run_command,
)
from idp_common.executables import ExecutableAllowlist
from tests.executor_worker.commands import PATH, SANDBOX

HELD_FOR_SECONDS = 0.3  # long enough for an ungated launcher to have run its command


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A folder the run's own uid may write to."""
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o777)
        yield Path(folder)


async def touch(marker: Path, release: Release) -> RunResult | None:
    async def sink(stream: str, texts: list[str]) -> None:
        pass

    allowlist = ExecutableAllowlist(("touch",), PATH, "ALLOWED", "PATH")
    return await run_command(
        resolve_programs(["touch", str(marker)], allowlist),
        env={},
        path=PATH,
        timeout_seconds=10,
        limits=OutputLimits(cap_bytes=1 << 20, cap_lines=1000, hard_limit_bytes=1 << 26),
        sandbox=SANDBOX,
        sink=sink,
        release=release,
    )


async def test_the_command_runs_only_once_released(shared_dir: Path) -> None:
    marker = shared_dir / "ran"
    seen_before_release: list[bool] = []

    async def release() -> asyncio.Event:
        await asyncio.sleep(HELD_FOR_SECONDS)
        seen_before_release.append(marker.exists())
        return asyncio.Event()

    result = await touch(marker, release)
    assert result is not None
    assert result.status == "succeeded"
    assert seen_before_release == [False]
    assert marker.exists()


async def test_a_command_whose_claim_went_elsewhere_never_runs(shared_dir: Path) -> None:
    marker = shared_dir / "ran"

    async def elsewhere() -> None:
        await asyncio.sleep(HELD_FOR_SECONDS)

    assert await touch(marker, elsewhere) is None
    await asyncio.sleep(HELD_FOR_SECONDS)
    assert not marker.exists()


async def test_a_command_whose_claim_failed_never_runs(shared_dir: Path) -> None:
    marker = shared_dir / "ran"

    async def failed() -> None:
        await asyncio.sleep(HELD_FOR_SECONDS)
        raise ConnectionError("operation-svc did not answer")

    with pytest.raises(ConnectionError):
        await touch(marker, failed)
    await asyncio.sleep(HELD_FOR_SECONDS)
    assert not marker.exists()

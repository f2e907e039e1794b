"""Running a command as the worker does, its output lines collected."""

from __future__ import annotations

from executor_worker.runner import OutputLimits, RunResult, resolve_programs, run_command
from executor_worker.sandbox import Sandbox
from idp_common.executables import ExecutableAllowlist
from idp_common.masking import SecretMasker

PATH = "/usr/local/bin:/usr/bin:/bin"
SANDBOX = Sandbox(
    cpu_seconds=5,
    memory_bytes=256 * 1024 * 1024,
    processes=64,
    file_bytes=1024 * 1024,
    open_files=64,
    uid_first=200_000,
    uid_count=100_000,
)


async def run(
    argv: list[str],
    *,
    timeout: float = 10,
    cap: int = 1 << 20,
    hard_limit: int = 64 << 20,
    lines_cap: int = 1_000_000,
    env: dict[str, str] | None = None,
    masker: SecretMasker | None = None,
    sandbox: Sandbox = SANDBOX,
) -> tuple[RunResult, list[tuple[str, str]]]:
    lines: list[tuple[str, str]] = []

    async def sink(stream: str, texts: list[str]) -> None:
        lines.extend((stream, text) for text in texts)

    allowlist = ExecutableAllowlist((argv[0],), PATH, "ALLOWED", "PATH")
    result = await run_command(
        resolve_programs(argv, allowlist),
        env=env or {},
        path=PATH,
        timeout_seconds=timeout,
        limits=OutputLimits(cap_bytes=cap, cap_lines=lines_cap, hard_limit_bytes=hard_limit),
        sandbox=sandbox,
        sink=sink,
        masker=masker,
    )
    return result, lines

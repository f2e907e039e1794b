"""The runner: no shell, minimal environment, group-wide timeout, capped output."""

from __future__ import annotations

import os
import time

from executor_worker.runner import MAX_LINE_BYTES, resolve_executable, run_command

PATH = "/usr/local/bin:/usr/bin:/bin"


async def run(
    argv: list[str], *, timeout: float = 10, cap: int = 1 << 20, env: dict[str, str] | None = None
) -> tuple[object, list[tuple[str, str]]]:
    lines: list[tuple[str, str]] = []

    async def sink(stream: str, text: str) -> None:
        lines.append((stream, text))

    executable = resolve_executable(argv[0], PATH, [argv[0]])
    assert executable is not None
    result = await run_command(
        executable,
        argv,
        env=env or {},
        path=PATH,
        timeout_seconds=timeout,
        output_cap_bytes=cap,
        sink=sink,
    )
    return result, lines


async def test_output_is_streamed_by_line_and_the_exit_code_decides_the_status() -> None:
    result, lines = await run(["printf", "one\ntwo\n"])
    assert lines == [("stdout", "one"), ("stdout", "two")]
    assert result.status == "succeeded"  # type: ignore[attr-defined]
    failed, _ = await run(["false"])
    assert (failed.status, failed.exit_code) == ("failed", 1)  # type: ignore[attr-defined]


async def test_the_child_sees_only_the_declared_environment() -> None:
    os.environ["WORKER_SECRET_CREDENTIAL"] = "must-not-leak"
    try:
        _, lines = await run(["env"], env={"IDP_PARAM_NAME": "x"})
    finally:
        del os.environ["WORKER_SECRET_CREDENTIAL"]
    names = {text.split("=", 1)[0] for _, text in lines}
    assert names == {"PATH", "HOME", "LANG", "IDP_PARAM_NAME"}


async def test_a_timeout_kills_the_whole_process_group_promptly() -> None:
    started = time.monotonic()
    # A child that starts a grandchild; both must die with the group.
    result, _ = await run(["sleep", "30"], timeout=0.5)
    assert result.status == "timed_out"  # type: ignore[attr-defined]
    assert time.monotonic() - started < 2
    result, _ = await run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
    assert result.status == "timed_out"  # type: ignore[attr-defined]
    assert time.monotonic() - started < 3


async def test_output_past_the_cap_is_dropped_with_a_marker_while_draining() -> None:
    result, lines = await run(["seq", "1", "100000"], cap=1000)
    assert lines[-1][0] == "system"
    assert "truncated" in lines[-1][1]
    assert sum(len(text) for stream, text in lines if stream == "stdout") <= 1000
    assert result.truncated  # type: ignore[attr-defined]
    assert result.output_bytes == len("".join(f"{n}\n" for n in range(1, 100001)))  # type: ignore[attr-defined]
    assert result.status == "succeeded"  # type: ignore[attr-defined]


async def test_long_lines_are_split_and_invalid_utf8_is_replaced() -> None:
    _, lines = await run(["printf", "%s\\377\\n", "x" * (MAX_LINE_BYTES + 10)])
    assert [len(text) for _, text in lines] == [MAX_LINE_BYTES, 11]
    assert lines[1][1].endswith("\ufffd")


def test_only_allowlisted_executables_resolve() -> None:
    assert resolve_executable("rm", PATH, ["echo"]) is None
    assert resolve_executable("echo", PATH, ["echo"]) in {"/usr/bin/echo", "/bin/echo"}

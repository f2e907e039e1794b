"""The worker checks every program a job would start again, whatever operation-svc saved,
and execs the allowlisted absolute path it found, never the path written in the job."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from executor_worker.runner import CommandRefused, resolve_programs
from idp_common.executables import ExecutableAllowlist

SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"


def allowing(*entries: str) -> ExecutableAllowlist:
    return ExecutableAllowlist(entries, SEARCH_PATH, "WORKER_ALLOWED_EXECUTABLES", "WORKER_PATH")


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """An executable named like an allowlisted program, outside the search path."""
    fake = tmp_path / "echo"
    fake.write_text("#!/bin/sh\necho pwned\n")
    fake.chmod(0o755)
    return fake


def test_a_planted_program_named_like_an_allowlisted_one_is_refused(planted: Path) -> None:
    relative = os.path.relpath(planted, Path.cwd())
    for program in (str(planted), relative, f"./{relative}", f"/usr/bin/../..{planted}"):
        with pytest.raises(CommandRefused, match="WORKER_ALLOWED_EXECUTABLES"):
            resolve_programs([program, "hi"], allowing("echo"))


def test_the_allowlisted_path_found_on_the_search_path_is_what_runs() -> None:
    argv = resolve_programs(["echo", "hi"], allowing("echo"))
    assert argv[0] in {"/usr/local/bin/echo", "/usr/bin/echo", "/bin/echo"}
    assert os.access(argv[0], os.X_OK)
    assert argv[1:] == ["hi"]
    assert resolve_programs(["/bin/echo", "hi"], allowing("echo")) == ["/bin/echo", "hi"]


def test_an_allowlisted_name_missing_on_this_worker_is_refused() -> None:
    with pytest.raises(CommandRefused, match="not found on this worker"):
        resolve_programs(["no-such-program-here"], allowing("no-such-program-here"))


@pytest.mark.parametrize(
    "argv",
    [
        ["env", "sh", "-c", "id"],
        ["env", "-S", "sh -c id"],
        ["env", "--split-string=sh -c id"],
        ["env", "-u", "FOO", "sh"],
        ["env", "LD_PRELOAD=/tmp/x.so", "echo"],
        ["nice", "-n", "5", "sh", "-c", "id"],
        ["timeout", "5", "env", "sh"],
        ["xargs"],
        ["xargs", "-I{}", "{}"],
        ["xargs", "nice"],
        ["xargs", "-a", "/tmp/list", "env"],
        ["xargs", "-d", "=", "-a", "/proc/self/environ", "timeout", "5"],
        ["find", ".", "-exec", "sh", "-c", "id", ";"],
        ["find", ".", "-exec", "{}", ";"],
        ["sudo", "echo"],
    ],
)
def test_a_forged_job_cannot_start_another_program_through_a_launcher(argv: list[str]) -> None:
    with pytest.raises(CommandRefused):
        resolve_programs(argv, allowing("echo", "env", "nice", "timeout", "xargs", "find"))


def test_every_program_a_launcher_starts_is_replaced_by_its_checked_path() -> None:
    allowlist = allowing("echo", "env", "nice", "find")
    argv = resolve_programs(["nice", "-n", "5", "env", "A=B", "echo", "hi"], allowlist)
    assert [os.path.basename(argv[i]) for i in (0, 3, 5)] == ["nice", "env", "echo"]
    assert all(argv[i].startswith("/") for i in (0, 3, 5))
    assert [argv[i] for i in (1, 2, 4, 6)] == ["-n", "5", "A=B", "hi"]
    found = resolve_programs(["find", ".", "-exec", "echo", "{}", ";"], allowlist)
    assert os.path.isabs(found[3])
    assert found[3].endswith("/echo")

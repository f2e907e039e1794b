"""The sandbox launcher (idp-sandbox-exec) on its own: what it sets and what it refuses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from executor_worker.sandbox import launcher
from tests.harness import wait_until

LIMITS = ["--cpu=7", "--as=268435456", "--nproc=33", "--fsize=1048576", "--nofile=41"]


def launch(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [launcher(), *arguments], capture_output=True, text=True, timeout=10, check=False
    )


def test_the_command_runs_under_every_limit_and_without_new_privileges() -> None:
    shown = launch(*LIMITS, "--", "/bin/cat", "/proc/self/limits", "/proc/self/status")
    assert shown.returncode == 0, shown.stderr
    limits = {line[:26].strip(): line[26:].split()[:2] for line in shown.stdout.splitlines()[1:17]}
    assert limits["Max cpu time"] == ["7", "8"]  # SIGXCPU at 7 s, SIGKILL at 8 s
    assert limits["Max address space"] == ["268435456", "268435456"]
    assert limits["Max processes"] == ["33", "33"]
    assert limits["Max file size"] == ["1048576", "1048576"]
    assert limits["Max open files"] == ["41", "41"]
    assert limits["Max core file size"] == ["0", "0"]
    assert limits["Max msgqueue size"] == ["0", "0"]  # no POSIX message queue
    assert "NoNewPrivs:\t1" in shown.stdout


def test_the_command_runs_as_the_given_uid_with_no_groups() -> None:
    shown = launch(
        *LIMITS, "--uid=234567", "--spare-uid=234566", "--", "/bin/cat", "/proc/self/status"
    )
    if os.geteuid() != 0:  # only root may switch: the run is refused, never run as the worker
        assert shown.returncode == 126
        assert "switching to the run's uid" in shown.stderr
        return
    assert shown.returncode == 0, shown.stderr
    status = dict(line.split(":", 1) for line in shown.stdout.splitlines())
    assert status["Uid"].split() == ["234567"] * 4
    assert status["Gid"].split() == ["234567"] * 4
    assert status["Groups"].strip() == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (LIMITS[1:], "missing limit: cpu"),
        ([*LIMITS[:-1]], "missing limit: nofile"),
        (["--cpu=-1", *LIMITS[1:]], "not a number: cpu"),
        (["--cpu=1x", *LIMITS[1:]], "not a number: cpu"),
        ([*LIMITS, "--uid=0", "--spare-uid=1"], "a run never gets uid 0"),
        # Killing the run's processes with its uid as the real one, they could stop or kill
        # the launcher first, and outlive the worker.
        ([*LIMITS, "--uid=234567"], "--uid needs --spare-uid"),
        ([*LIMITS, "--uid=234567", "--spare-uid=234567"], "--uid needs --spare-uid"),
        ([*LIMITS, "--shell=/bin/sh"], "usage"),
    ],
)
def test_a_bad_command_line_is_refused_before_anything_runs(
    arguments: list[str], message: str
) -> None:
    refused = launch(*arguments, "--", "/bin/echo", "ran")
    assert refused.returncode == 126
    assert message in refused.stderr
    assert "ran" not in refused.stdout


def test_a_missing_command_exits_127_and_names_it() -> None:
    missing = launch(*LIMITS, "--", "/no/such/program")
    assert missing.returncode == 127
    assert "/no/such/program: No such file or directory" in missing.stderr


# Stands in for the worker: starts the launcher in a session of its own, as the worker does,
# and waits to be killed.
WORKER = (
    "import signal, subprocess, sys; "
    "subprocess.Popen(sys.argv[1:], start_new_session=True); signal.pause()"
)


def processes_running(argv: list[str]) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            running = (entry / "cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            continue
        if entry.name.isdigit() and [part.decode() for part in running] == argv:
            found.append(int(entry.name))
    return found


async def started_dies_with_the_worker(uid: list[str], then: str = "") -> None:
    """``then``: what the command does once its sleep has started."""
    # A duration no other process has, to find its sleep by its command line.
    duration = f"{300 + uuid.uuid4().int % 10**6 / 10**6}"
    command = ["/bin/sh", "-c", f"sleep {duration} & {then}wait"]
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WORKER, launcher(), *LIMITS, *uid, "--", *command
    )
    try:
        await wait_until(lambda: processes_running(["sleep", duration]) != [])
    finally:
        worker.kill()
        await worker.wait()
    await wait_until(lambda: processes_running(["sleep", duration]) == [], timeout=5)


# Only root may give a run a uid of its own.
@pytest.mark.parametrize("own_uid", [True, False] if os.geteuid() == 0 else [False])
async def test_what_the_command_started_dies_with_the_worker(own_uid: bool) -> None:
    """The kernel's parent-death signal reaches one process: given to the command alone,
    what it had started ran on after a kill -9 of the worker, beside the retry of its run."""
    await started_dies_with_the_worker(["--uid=190569", "--spare-uid=190469"] if own_uid else [])


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a run a uid of its own")
# A uid each, outside the range the other tests give runs: the end of one kills every
# process of its uid, and tests run at once.
@pytest.mark.parametrize(("signal_name", "uid"), [("STOP", 190570), ("KILL", 190571)])
async def test_the_command_cannot_stop_or_kill_the_launcher_to_outlive_the_worker(
    signal_name: str, uid: int
) -> None:
    """The launcher ran as the run's uid: a command that stopped it (or killed it, leaving
    what it had started) ran on after a kill -9 of the worker."""
    await started_dies_with_the_worker(
        [f"--uid={uid}", f"--spare-uid={uid - 100}"], f"kill -{signal_name} $PPID; "
    )

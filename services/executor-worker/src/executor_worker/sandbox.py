"""The child's sandbox: resource limits, an unprivileged user when the worker is root, and
the naming of the limit that stopped a command."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
from dataclasses import dataclass

# Messages programs print when a limit refuses them, mapped to the limit's name.
_LIMIT_MESSAGES = (
    (
        re.compile(
            r"MemoryError|Cannot allocate memory|memory exhausted|out of memory|bad_alloc",
            re.IGNORECASE,
        ),
        "memory",
    ),
    (
        re.compile(
            r"Resource temporarily unavailable|fork: retry|Cannot fork|can't fork", re.IGNORECASE
        ),
        "processes",
    ),
    (re.compile(r"Too many open files", re.IGNORECASE), "open files"),
    (re.compile(r"File too large|File size limit exceeded", re.IGNORECASE), "file size"),
    (re.compile(r"CPU time limit exceeded", re.IGNORECASE), "cpu time"),
)


def _tool(name: str) -> str:
    path = shutil.which(name, path="/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        raise RuntimeError(f"{name} (util-linux) is required to sandbox commands")
    return path


@dataclass(frozen=True)
class Sandbox:
    cpu_seconds: int
    memory_bytes: int
    processes: int
    file_bytes: int
    open_files: int
    run_as_user: str

    def describe(self, limit: str) -> str:
        value = {
            "cpu time": f"{self.cpu_seconds} s",
            "memory": f"{self.memory_bytes // (1024 * 1024)} MiB",
            "processes": str(self.processes),
            "file size": f"{self.file_bytes // (1024 * 1024)} MiB",
            "open files": str(self.open_files),
        }[limit]
        return f"{limit} limit ({value})"

    def wrap(self, executable: str, argv: list[str], workdir: str) -> list[str]:
        """The command line that runs ``argv`` inside the sandbox.

        Limits and the user switch are applied at exec time by util-linux's ``prlimit`` and
        ``setpriv`` rather than by Python code between fork and exec, which can deadlock in
        a threaded process and forces a slow full fork. ``--no-new-privs`` keeps setuid
        programs (sudo, …) from regaining privileges.
        """
        limits = [
            f"--cpu={self.cpu_seconds}:{self.cpu_seconds + 1}",
            f"--as={self.memory_bytes}",
            f"--nproc={self.processes}",
            f"--fsize={self.file_bytes}",
            f"--nofile={self.open_files}",
            "--core=0",
        ]
        privileges = ["--no-new-privs"]
        if os.geteuid() == 0:
            account = pwd.getpwnam(self.run_as_user)
            os.chown(workdir, account.pw_uid, account.pw_gid)
            privileges += [
                f"--reuid={account.pw_uid}",
                f"--regid={account.pw_gid}",
                "--clear-groups",
            ]
        return [
            _tool("prlimit"),
            *limits,
            "--",
            _tool("setpriv"),
            *privileges,
            "--",
            executable,
            *argv[1:],
        ]

    def limit_hit(self, returncode: int | None, stderr_sample: str) -> str | None:
        """The limit that most likely stopped the command, or None."""
        # A signal shows as -N, or as 128+N when a shell reports its child's death.
        if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
            return self.describe("cpu time")
        if returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
            return self.describe("file size")
        for pattern, limit in _LIMIT_MESSAGES:
            if pattern.search(stderr_sample):
                return self.describe(limit)
        return None

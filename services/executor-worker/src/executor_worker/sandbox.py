"""The child's sandbox: resource limits, an unprivileged user when the worker is root, and
the naming of the limit that stopped a command."""

from __future__ import annotations

import os
import pwd
import re
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

    def set_limits(self) -> None:
        """Runs in the child between fork and exec: only setrlimit calls, nothing else."""
        resource.setrlimit(resource.RLIMIT_CPU, (self.cpu_seconds, self.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (self.memory_bytes, self.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.open_files, self.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    def process_options(self, workdir: str) -> dict[str, Any]:
        """Options for create_subprocess_exec: limits, and when the worker runs as root, the
        unprivileged user (who then owns the fresh working directory)."""
        preexec: Callable[[], None] = self.set_limits
        options: dict[str, Any] = {"preexec_fn": preexec}
        if os.geteuid() == 0:
            account = pwd.getpwnam(self.run_as_user)
            os.chown(workdir, account.pw_uid, account.pw_gid)
            options |= {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        return options

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

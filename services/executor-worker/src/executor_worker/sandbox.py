"""The child's sandbox: resource limits, a user of its own when the worker is root, and the
naming of the limit that stopped a command.

Each run gets a uid (and a gid of the same number) that no other run of this worker holds,
drawn at random from a range with no accounts: runs cannot signal, trace or read the
``/proc`` environment of one another (their command lines, world-readable in ``/proc``, are
hidden only where the host mounts it with ``hidepid=invisible``), RLIMIT_NPROC, which the
kernel counts per uid, bounds each run rather than all of them together, and whatever a run
leaves behind, even outside its process group, is killed by its uid, all at once."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import errno
import functools
import logging
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

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


PR_SET_DUMPABLE = 4
logger = logging.getLogger(__name__)


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def watch_children_with_pidfds() -> None:
    """Learn of a command's exit through a pidfd on the event loop (Linux 5.3+), as asyncio
    does by default from Python 3.12 on; 3.11's default starts a thread per command to wait
    for it (measured: 0.87 -> 0.55 ms of the worker's CPU per spawn). Kept as it is where
    the kernel refuses pidfds."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        logger.warning("pidfd_open is not available: a thread waits for each command")
        return
    watcher = asyncio.PidfdChildWatcher()
    watcher.attach_loop(asyncio.get_running_loop())
    with warnings.catch_warnings():
        # An earlier worker app of this process (the tests start several) may have left
        # children its closed loop no longer waits for: nothing is left to tell.
        warnings.simplefilter("ignore", RuntimeWarning)
        asyncio.set_child_watcher(watcher)


def hide_worker_from_children() -> None:
    """Make the worker process non-dumpable: its ``/proc`` files (the environment, which
    holds the worker's credentials, and its memory) then belong to root, so a command running
    under the worker's own uid, as it must when the worker is not root, cannot read them."""
    libc = _libc()
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


# setresuid, kill and keyctl, by machine: Python has no way to change one thread's
# credentials.
_SYSCALLS = {"x86_64": (117, 62, 250), "aarch64": (147, 129, 219)}
_KEYCTL_CLEAR, _KEYCTL_INVALIDATE, _KEYCTL_GET_PERSISTENT = 7, 21, 22
# The keyrings of a uid, not of a process: what a run adds to them outlives it.
_USER_KEYRING, _USER_SESSION_KEYRING = -4, -5


# The one thread that takes a run's uid to kill its processes (see _kill_every_process_of),
# kept, with its libc handle: a thread started for each run, and a handle made, took
# 0.27 ms of CPU per run; now 0.09.
_KILLER = ThreadPoolExecutor(1, thread_name_prefix="kill-uid")


def _kill_every_process_of(uid: int, spare: int) -> None:
    """kill(-1, SIGKILL) as ``uid``: every process of the uid at once, none forking past it
    (the kernel lets no process fork while it signals them all), where a scan of ``/proc``
    killed one pid after another and a process that kept forking outran it. Done in a thread
    (``_KILLER``) that alone takes the uid (the raw syscall, where glibc's setresuid changes
    every thread) as its effective uid, and takes root back: its saved uid stays 0. Its real
    uid is then ``spare``, which no process holds: with the run's, the run's processes could
    stop or kill the thread, so the whole worker (tgkill), before it killed them. As the
    uid, it also removes the uid's System V IPC objects and empties
    the uid's keyrings: keys a run added there stayed in the kernel's memory (18 KB a uid)
    for the next run given that uid, another tenant's, to read."""
    numbers = _SYSCALLS.get(os.uname().machine)
    if numbers is None:
        _end_as_root(uid)
        return
    failures = _KILLER.submit(_kill_as, uid, spare, *numbers).result()
    if failures:
        logger.warning("ending what uid %s left went wrong (%s)", uid, failures)
        _end_as_root(uid)


def _end_as_root(uid: int) -> None:
    """What ``_kill_as`` does, where the uid cannot be taken: root removes another uid's IPC
    objects only with CAP_SYS_ADMIN, which a deployed worker lacks."""
    _kill_found_processes_of(uid)
    _remove_ipc_of(uid)


def _has_keys(uid: int) -> bool:
    """Whether ``uid`` holds keys: looking its keyrings up would make them."""
    try:
        with open("/proc/key-users") as users:
            return any(line.split(":", 1)[0].strip() == str(uid) for line in users)
    except OSError:  # no keys in this kernel
        return False


def _kill_as(uid: int, spare: int, setresuid: int, kill: int, keyctl: int) -> list[str]:
    """On ``_KILLER``'s thread: what failed of taking ``uid``, killing every process of it,
    emptying its keyrings when it has any, and taking root back."""
    libc = _libc()
    if libc.syscall(setresuid, spare, uid, 0) != 0:
        return [f"setresuid: {os.strerror(ctypes.get_errno())}"]
    failures = []
    try:
        if libc.syscall(kill, -1, signal.SIGKILL) != 0 and ctypes.get_errno() != errno.ESRCH:
            failures.append(f"kill: {os.strerror(ctypes.get_errno())}")
        # As the uid, its owner: root would need CAP_SYS_ADMIN, which the deployed worker
        # lacks (it has only what taking uids takes).
        _remove_ipc_of(uid)
        # The keyrings are the real uid's; its processes, all killed now, can signal no more.
        if _has_keys(uid):
            if libc.syscall(setresuid, uid, uid, 0) != 0:
                failures.append(f"setresuid: {os.strerror(ctypes.get_errno())}")
            else:
                failures += _empty_keyrings(libc, keyctl)
    finally:
        if libc.syscall(setresuid, 0, 0, 0) != 0:
            failures.append(f"taking root back: {os.strerror(ctypes.get_errno())}")
    return failures


def _empty_keyrings(libc: ctypes.CDLL, keyctl: int) -> list[str]:
    """As the uid: its persistent keyring (kept for days) invalidated, its user and user
    session keyrings emptied; what failed."""
    persistent = libc.syscall(keyctl, _KEYCTL_GET_PERSISTENT, -1, _USER_KEYRING)
    steps = [(_KEYCTL_INVALIDATE, persistent)] if persistent > 0 else []
    steps += [(_KEYCTL_CLEAR, _USER_KEYRING), (_KEYCTL_CLEAR, _USER_SESSION_KEYRING)]
    return [
        f"keyctl: {os.strerror(ctypes.get_errno())}"
        for operation, keyring in steps
        if libc.syscall(keyctl, operation, keyring) != 0
    ]


def _kill_found_processes_of(uid: int) -> None:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if entry.stat().st_uid == uid:
                    os.kill(int(entry.name), signal.SIGKILL)


# Folders every uid may write: a run's files there would outlive it, fill them, and wait
# for another tenant's run (a file named ``$(id)`` for a careless script to find).
SHARED_SCRATCH = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # noqa: S108  (cleaned, not used)


def _modified(folders: tuple[str, ...]) -> dict[str, int]:
    """Each folder's modification time: it changes when an entry is added or removed, so an
    unchanged folder (most runs write none) is not listed."""
    times = {}
    for folder in folders:
        with contextlib.suppress(OSError):
            times[folder] = os.stat(folder).st_mtime_ns
    return times


def _remove_files_of(uid: int, folders: list[str]) -> None:
    """Remove what ``uid`` owns at the top of ``folders``; its processes are dead by now."""
    for folder in folders:
        with contextlib.suppress(OSError), os.scandir(folder) as entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_uid != uid:
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, ignore_errors=True)
                    else:
                        os.unlink(entry.path)


_IPC_RMID = 0
# How each kind of System V IPC object is removed, by its id.
_IPC_REMOVALS: dict[str, Callable[[ctypes.CDLL, int], int]] = {
    "shm": lambda libc, ident: libc.shmctl(ident, _IPC_RMID, None),
    "msg": lambda libc, ident: libc.msgctl(ident, _IPC_RMID, None),
    "sem": lambda libc, ident: libc.semctl(ident, 0, _IPC_RMID),
}


def _remove_ipc_of(uid: int) -> None:
    """Remove the System V shared memory segments, message queues and semaphore sets that
    ``uid`` owns or made: they outlive every process, and a detached segment counts in no
    process's memory limit, so a run could hold the host's memory after it ended."""
    libc = _libc()
    for kind, remove in _IPC_REMOVALS.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as table:
                header, *rows = (line.split() for line in table)
        except (OSError, ValueError):
            continue
        for row in rows:
            fields = dict(zip(header, row, strict=False))
            if str(uid) in (fields["uid"], fields["cuid"]):
                remove(libc, int(row[1]))  # the id; one gone meanwhile is as good as removed


@functools.cache
def work_folders() -> str:
    """Where this worker makes its runs' work folders: a folder of its own, so that making
    and removing them leaves the shared ``/tmp`` unchanged (see ``_modified``). Runs may
    pass through it (mode 711) to their own folder, not list it. It goes when the worker
    exits."""
    folder = tempfile.mkdtemp(prefix="idp-runs-")
    os.chmod(folder, 0o711)  # noqa: S103  (traversable, not listable)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


LAUNCHER = "idp-sandbox-exec"


@functools.cache
def launcher() -> str:
    """The launcher's path: beside the worker's Python (the virtualenv's bin), or on PATH."""
    search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    path = shutil.which(LAUNCHER, path=search)
    if path is None:
        raise RuntimeError(
            f"{LAUNCHER} is required to sandbox commands: `make install` builds it from "
            "services/executor-worker/launcher"
        )
    return path


@dataclass(frozen=True)
class Sandbox:
    cpu_seconds: int
    memory_bytes: int
    processes: int
    file_bytes: int
    open_files: int
    uid_first: int
    uid_count: int
    _in_use: set[int] = field(default_factory=set, compare=False, repr=False)

    def describe(self, limit: str) -> str:
        value = {
            "cpu time": f"{self.cpu_seconds} s",
            "memory": f"{self.memory_bytes // (1024 * 1024)} MiB",
            "processes": str(self.processes),
            "file size": f"{self.file_bytes // (1024 * 1024)} MiB",
            "open files": str(self.open_files),
        }[limit]
        return f"{limit} limit ({value})"

    @contextlib.contextmanager
    def account(self) -> Iterator[int | None]:
        """The uid of one run, or None when the worker is not root (it cannot switch). What
        the run left in the shared scratch folders is removed before its uid is free again
        (its System V IPC objects are, with its processes, by ``kill_leftovers``)."""
        if os.geteuid() != 0:
            yield None
            return
        uid = self.uid_first + secrets.randbelow(self.uid_count - 1)
        while uid in self._in_use:
            uid = self.uid_first + secrets.randbelow(self.uid_count - 1)
        self._in_use.add(uid)
        before = _modified(SHARED_SCRATCH)
        try:
            yield uid
        finally:
            _remove_files_of(
                uid,
                [path for path, at in _modified(SHARED_SCRATCH).items() if before.get(path) != at],
            )
            self._in_use.discard(uid)

    @property
    def spare_uid(self) -> int:
        """The range's last uid, never a run's: held while killing a run's processes. Inside
        the range, so that a neighbouring worker's range never holds it as a run's uid."""
        return self.uid_first + self.uid_count - 1

    def kill_leftovers(self, uid: int | None) -> None:
        """Kill every process the run's uid still owns (daemons that left its group), and
        remove the System V IPC objects it owns or made."""
        if uid is not None:
            _kill_every_process_of(uid, self.spare_uid)

    def wrap(self, argv: list[str], workdir: str, uid: int | None) -> list[str]:
        """The command line that runs ``argv`` (its program an absolute path) inside the
        sandbox.

        Limits and the user switch are applied at exec time by the launcher
        (``services/executor-worker/launcher``) rather than by Python code between fork and
        exec, which can deadlock in a threaded process and forces a slow full fork; it also
        sets no_new_privs, so setuid programs (sudo, …) cannot regain privileges.
        """
        options = [
            f"--cpu={self.cpu_seconds}",
            f"--as={self.memory_bytes}",
            f"--nproc={self.processes}",
            f"--fsize={self.file_bytes}",
            f"--nofile={self.open_files}",
        ]
        if uid is not None:
            os.chown(workdir, uid, uid)
            options += [f"--uid={uid}", f"--spare-uid={self.spare_uid}"]
        return [launcher(), *options, "--", *argv]

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

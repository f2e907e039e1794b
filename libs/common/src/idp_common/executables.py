"""The executable allowlist: what a command may start, compared by absolute path, never by
the last path component (``/tmp/x/echo`` is not ``echo``).

Entries are names, found on a fixed search path (the worker's ``PATH``), or absolute paths.
A program written as a name must be an allowlisted name. One written as a path must be an
absolute, normalized path (no ``.``, ``..`` or ``//``) that is an allowlisted path, or an
allowlisted name in a directory of the search path. operation-svc checks this when a template
is saved (``check``); the worker checks it again and finds the file before it execs it
(``resolve``), then execs the path it found.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from idp_common.launchers import UNPARSED_LAUNCHERS, program_name
from idp_common.settings import variable_name

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]{0,254}$")


class ExecutableRefused(Exception):
    """A program that is not on the allowlist, or cannot be found; ``rule`` names why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def _is_normal_absolute(path: str) -> bool:
    return path.startswith("/") and not path.startswith("//") and posixpath.normpath(path) == path


@dataclass(frozen=True)
class ExecutableAllowlist:
    entries: tuple[str, ...]
    search_path: str
    setting: str  # the variable that holds the entries, named in refusals
    path_setting: str  # the variable that holds the search path

    def check_configuration(self) -> None:
        """Refuse an allowlist or search path that cannot be compared safely (settings check)."""
        for entry in self.entries:
            if not (_NAME.fullmatch(entry) or _is_normal_absolute(entry)):
                raise ValueError(
                    f"{self.setting}: {entry!r} is neither a program name nor a normalized "
                    "absolute path"
                )
            if program_name(entry) in UNPARSED_LAUNCHERS:
                raise ValueError(
                    f"{self.setting}: {entry!r} starts other programs in ways that cannot be "
                    "checked; remove it"
                )
        for directory in self.search_path.split(":"):
            if not _is_normal_absolute(directory):
                raise ValueError(f"{self.path_setting}: {directory!r} is not an absolute directory")

    @cached_property
    def _names(self) -> frozenset[str]:
        return frozenset(entry for entry in self.entries if "/" not in entry)

    @cached_property
    def _directories(self) -> tuple[str, ...]:
        return tuple(self.search_path.split(":"))

    @cached_property
    def paths(self) -> frozenset[str]:
        """Every absolute path a program may be written as."""
        found = {entry for entry in self.entries if "/" in entry}
        found |= {f"{directory}/{name}" for directory in self._directories for name in self._names}
        return frozenset(found)

    def _refused(self, program: str) -> ExecutableRefused:
        where = (
            f"a path must be one of the allowlisted paths or an allowlisted name in a "
            f"directory of {self.path_setting} ({self.search_path}); "
            if "/" in program
            else ""
        )
        return ExecutableRefused(
            "executable_not_allowed",
            f"{program!r} is not on the allowlist: {where}to allow it, add it to "
            f"{self.setting} ({', '.join(self.entries)})",
        )

    def check(self, program: str) -> None:
        """Refuse ``program`` unless it is an allowlisted name or absolute path."""
        allowed = program in self.paths if "/" in program else program in self._names
        if not allowed:
            raise self._refused(program)

    def resolve(self, program: str) -> str:
        """The absolute path to exec for ``program``, checked and found on this machine."""
        self.check(program)
        candidates = [program] if "/" in program else [f"{d}/{program}" for d in self._directories]
        for candidate in candidates:
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
        raise ExecutableRefused(
            "executable_not_found",
            f"{program!r} is allowlisted but not found on this worker "
            f"({self.path_setting}: {self.search_path})",
        )


def configured_allowlist(settings: Any, path_field: str) -> ExecutableAllowlist:
    """The allowlist a service's settings (a ``BaseSettings``) configure:
    ``allowed_executables`` and the PATH in ``path_field``, each named by its variable in the
    allowlist's errors."""
    return ExecutableAllowlist(
        tuple(settings.allowed_executables),
        getattr(settings, path_field),
        setting=variable_name(type(settings), ("allowed_executables",)),
        path_setting=variable_name(type(settings), (path_field,)),
    )

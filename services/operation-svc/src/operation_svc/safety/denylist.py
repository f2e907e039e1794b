"""Dangerous commands and patterns: defense in depth on top of the executable allowlist."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

from operation_svc.safety.verdict import Refusal

DENIED_EXECUTABLES = frozenset(
    {
        "shutdown",
        "reboot",
        "halt",
        "poweroff",
        "init",
        "telinit",
        "fdisk",
        "sfdisk",
        "parted",
        "wipefs",
        "shred",
        "mkswap",
        "sudo",
        "su",
        "doas",
    }
)
DENIED_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "rm -rf /",
        re.compile(r"\brm\s+(?:-\S+\s+)*-\S*[rR]\S*\s+(?:-\S+\s+)*(?:/|/\*|~|\$HOME)(?:\s|$)"),
    ),
    ("mkfs", re.compile(r"(?:^|[\s/])mkfs(?:\.\w+)?(?:\s|$)")),
    ("dd to a device", re.compile(r"\bdd\b.*\bof=/dev/")),
    ("write to a disk device", re.compile(r">\s*/dev/(?:sd|hd|nvme|vd|xvd)")),
    ("fork bomb", re.compile(r":\s*\(\s*\)\s*\{[^}]*:\s*\|\s*:")),
    ("download piped to a shell", re.compile(r"\b(?:curl|wget)\b[^|]*\|\s*(?:sudo\s+)?\w*sh\b")),
    ("recursive chmod of /", re.compile(r"\bchmod\s+(?:-\S+\s+)*[0-7]*777\s+/(?:\s|$)")),
)


def check_denylist(argv: Sequence[str]) -> None:
    executable = PurePosixPath(argv[0]).name
    if executable in DENIED_EXECUTABLES or executable.startswith("mkfs"):
        raise Refusal("denylisted_command", f"{executable!r} is never run")
    joined = " ".join(argv)
    for name, pattern in DENIED_PATTERNS:
        if pattern.search(joined):
            raise Refusal("denylisted_pattern", f"looks like {name}")

"""Command templates, safe by construction (no I/O here).

A template is split into argv once, when it is saved. ``argv[0]`` must be a literal,
allowlisted executable. Values are substituted inside single argv elements, in one pass
(a value containing ``{{x}}`` stays literal), so no value can add an argument or reach a
shell. A value that is a whole argument may not start with ``-`` (argument injection).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
MAX_RENDERED_BYTES = 64 * 1024


@dataclass(frozen=True)
class Refusal(Exception):
    """Why a template or a set of values was refused; ``rule`` names the check."""

    rule: str
    message: str
    parameter: str | None = None

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


def split_command(template: str, allowed_executables: Collection[str]) -> list[str]:
    """Split a command template into argv at save time, refusing what cannot be safe."""
    try:
        argv = shlex.split(template, posix=True)
    except ValueError as exc:
        raise Refusal("syntax", f"the command cannot be split: {exc}") from exc
    if not argv:
        raise Refusal("syntax", "the command is empty")
    executable = argv[0]
    if "{{" in executable or "}}" in executable:
        raise Refusal("executable_placeholder", "the executable must be a literal")
    if executable not in allowed_executables and PurePosixPath(executable).name not in (
        allowed_executables
    ):
        raise Refusal("executable_not_allowed", f"{executable!r} is not on the allowlist")
    return argv


def placeholders(argv: list[str]) -> list[str]:
    """The parameter names the argv refers to, in order of first appearance."""
    names: dict[str, None] = {}
    for element in argv:
        names.update(dict.fromkeys(PLACEHOLDER.findall(element)))
    return list(names)


def render_argv(argv: list[str], values: Mapping[str, str]) -> list[str]:
    """Substitute ``values`` into the saved argv (single pass, inside elements only)."""
    rendered: list[str] = []
    for element in argv:
        whole = PLACEHOLDER.fullmatch(element)
        if whole and values.get(whole.group(1), "").startswith("-"):
            raise Refusal(
                "leading_dash",
                "a value used as a whole argument may not start with '-'",
                whole.group(1),
            )

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in values:
                raise Refusal("missing_parameter", f"no value for {name!r}", name)
            value = values[name]
            if "\x00" in value:
                raise Refusal("nul_byte", "values may not contain NUL bytes", name)
            return value

        rendered.append(PLACEHOLDER.sub(substitute, element))
    if sum(len(element.encode()) for element in rendered) > MAX_RENDERED_BYTES:
        raise Refusal("too_long", f"the rendered command exceeds {MAX_RENDERED_BYTES} bytes")
    return rendered

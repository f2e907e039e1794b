"""Command templates, safe by construction.

A template is split into argv once, when it is saved. ``argv[0]`` is a literal, allowlisted
executable. Placeholders are substituted inside single argv elements, in one pass (a value
containing ``{{x}}`` stays literal), so no value can add an argument or reach a shell. A value
that is a whole argument may not start with ``-`` unless its parameter allows it. The script
of an interpreter (``sh -c``, ``python -c``, a script path, …) may hold no placeholder: such
templates read values from ``IDP_PARAM_<NAME>`` environment variables, which every command
receives. A ``secret`` parameter reaches the command only that way: argv is visible to every
process on the host (``/proc/<pid>/cmdline``), so it may hold no secret placeholder.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from operation_svc.safety.denylist import check_denylist
from operation_svc.safety.parameters import ParameterSpec
from operation_svc.safety.verdict import Refusal

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
MAX_RENDERED_BYTES = 64 * 1024
# Programs whose first positional argument is code (a script, program text or a command).
INTERPRETERS = frozenset(
    {
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "ash",
        "fish",
        "python",
        "python2",
        "python3",
        "perl",
        "ruby",
        "node",
        "nodejs",
        "php",
        "lua",
        "pwsh",
        "powershell",
        "tclsh",
        "Rscript",
        "awk",
        "gawk",
        "mawk",
        "sed",
        "env",
        "xargs",
        "nohup",
        "timeout",
        "nice",
        "watch",
    }
)
# Options whose value is code, for interpreters and for find.
SCRIPT_FLAGS = frozenset(
    {
        "-c",
        "-e",
        "-E",
        "-m",
        "-S",
        "-r",
        "--eval",
        "--command",
        "--split-string",
        "-Command",
        "-exec",
        "-execdir",
        "-ok",
        "-okdir",
    }
)


@dataclass(frozen=True)
class RenderedCommand:
    argv: list[str]
    values: dict[str, str]

    @property
    def env(self) -> dict[str, str]:
        return parameter_env(self.values)


def parameter_env(values: Mapping[str, str]) -> dict[str, str]:
    """Every parameter also reaches the child as ``IDP_PARAM_<NAME>``."""
    return {f"IDP_PARAM_{name.upper()}": value for name, value in values.items()}


def placeholders(argv: Sequence[str]) -> list[str]:
    """The parameter names the argv refers to, in order of first appearance."""
    names: dict[str, None] = {}
    for element in argv:
        names.update(dict.fromkeys(PLACEHOLDER.findall(element)))
    return list(names)


def _code_positions(argv: Sequence[str]) -> set[int]:
    """Positions holding code that a program will run: option values of script flags
    (``sh -c X``, ``python -m X``, ``find -exec X``) and an interpreter's first positional
    argument (its script, program text or command)."""
    name = PurePosixPath(argv[0]).name
    if name not in INTERPRETERS and name != "find":
        return set()
    positions = {index for index in range(1, len(argv)) if argv[index - 1] in SCRIPT_FLAGS}
    # Attached values are code too: -c'…', -mpkg, --eval=…
    positions |= {
        index
        for index, argument in enumerate(argv[1:], start=1)
        if (argument.split("=", 1)[0] in SCRIPT_FLAGS and "=" in argument)
        or (len(argument) > 2 and argument[:2] in SCRIPT_FLAGS and not argument.startswith("--"))
    }
    if name in INTERPRETERS and not positions:
        first = next((i for i in range(1, len(argv)) if not argv[i].startswith("-")), None)
        positions |= {first} if first is not None else set()
    return positions


def compile_command(
    template: str, parameters: Sequence[ParameterSpec], allowed_executables: Collection[str]
) -> list[str]:
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
    if (
        executable not in allowed_executables
        and PurePosixPath(executable).name not in allowed_executables
    ):
        raise Refusal("executable_not_allowed", f"{executable!r} is not on the allowlist")
    check_denylist(argv)
    for index in _code_positions(argv):
        if "{{" in argv[index]:
            raise Refusal(
                "placeholder_in_script",
                "an interpreter's script may not contain placeholders; read IDP_PARAM_<NAME> "
                "environment variables instead",
            )
    declared = {spec.name: spec.type for spec in parameters}
    for name in placeholders(argv):
        if name not in declared:
            raise Refusal(
                "undeclared_parameter", f"{{{{{name}}}}} is not a declared parameter", name
            )
        if declared[name] == "secret":
            raise Refusal(
                "secret_in_argv",
                f"{{{{{name}}}}} is a secret and argv is visible to every process: read the "
                f"environment variable IDP_PARAM_{name.upper()} instead",
                name,
            )
    return argv


def render_command(
    argv: Sequence[str], parameters: Sequence[ParameterSpec], values: Mapping[str, str]
) -> RenderedCommand:
    """Substitute validated, normalized ``values`` into the saved argv (single pass)."""
    allow_dash = {spec.name for spec in parameters if spec.allow_leading_dash}
    rendered: list[str] = []
    for element in argv:
        whole = PLACEHOLDER.fullmatch(element)
        if (
            whole
            and whole.group(1) not in allow_dash
            and values.get(whole.group(1), "").startswith("-")
        ):
            raise Refusal(
                "leading_dash",
                "a value used as a whole argument may not start with '-'",
                whole.group(1),
            )
        rendered.append(PLACEHOLDER.sub(lambda match: values[match.group(1)], element))
    if sum(len(element.encode()) for element in rendered) > MAX_RENDERED_BYTES:
        raise Refusal("too_long", f"the rendered command exceeds {MAX_RENDERED_BYTES} bytes")
    check_denylist(rendered)
    return RenderedCommand(argv=rendered, values=dict(values))

"""Command templates, safe by construction.

A template is split into argv once, when it is saved. Every program it starts (``argv[0]``,
and what an allowlisted launcher such as ``env`` or ``find -exec`` starts, read by that
launcher's own grammar: ``idp_common.launchers``) is a literal on the allowlist, compared by
absolute path (``idp_common.executables``). Placeholders are substituted inside single argv
elements, in one pass (a value containing ``{{x}}`` stays literal), so no value can add an
argument or reach a shell. A rendered argument may start with ``-`` only where that dash is
written in the template or the parameter allows it, so no value, alone or concatenated, can
become an option. The script of an interpreter (``sh -c``, ``python -c``, a script path, …)
may hold no placeholder: such templates read values from ``IDP_PARAM_<NAME>`` environment
variables, which every command receives. A ``secret`` parameter reaches the command only that
way: argv is visible to every process on the host (``/proc/<pid>/cmdline``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from idp_common.executables import ExecutableAllowlist, ExecutableRefused
from idp_common.launchers import LaunchRefused, Program, program_name, programs
from idp_common.values import as_text
from operation_svc.safety.denylist import check_denylist
from operation_svc.safety.parameters import ParameterSpec, Value
from operation_svc.safety.verdict import Refusal

PLACEHOLDER = re.compile(r"\{\{([a-z_][a-z0-9_]*)\}\}")
_PIECES = re.compile(r"(\{\{[a-z_][a-z0-9_]*\}\})")
# Spaces inside the braces are accepted, and removed before the template is split.
_SPACED_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
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
    }
)
# Options whose value is code, for interpreters.
SCRIPT_FLAGS = frozenset({"-c", "-e", "-E", "-m", "-r", "--eval", "--command", "-Command"})
# Shell syntax written as an argument of its own: no shell runs, so it would be passed on.
_SHELL_OPERATOR = re.compile(r"^(?:\|\|?|&&?|;;?|\|&|\d*(?:<<?|>>?|<>|>\|)(?:&\d*-?)?|&>>?)$")


@dataclass(frozen=True)
class RenderedCommand:
    argv: list[str]
    values: dict[str, Value]

    @property
    def env(self) -> dict[str, str]:
        return parameter_env(self.values)


def parameter_env(values: Mapping[str, Value]) -> dict[str, str]:
    """Every parameter also reaches the child as ``IDP_PARAM_<NAME>``."""
    return {f"IDP_PARAM_{name.upper()}": as_text(value) for name, value in values.items()}


def placeholders(argv: Sequence[str]) -> list[str]:
    """The parameter names the argv refers to, in order of first appearance."""
    names: dict[str, None] = {}
    for element in argv:
        names.update(dict.fromkeys(PLACEHOLDER.findall(element)))
    return list(names)


def _literal(argv: Sequence[str]) -> list[bool]:
    return ["{{" not in element for element in argv]


def _code_positions(argv: Sequence[str], program: Program) -> set[int]:
    """Positions holding code that an interpreter will run: option values of script flags
    (``sh -c X``, ``python -m X``) and its first positional argument (its script, program
    text or command)."""
    if program_name(argv[program.start]) not in INTERPRETERS:
        return set()
    arguments = range(program.start + 1, program.end)
    positions = {index for index in arguments if argv[index - 1] in SCRIPT_FLAGS}
    # Attached values are code too: -c'…', -mpkg, --eval=…
    positions |= {
        index
        for index in arguments
        if (argv[index].split("=", 1)[0] in SCRIPT_FLAGS and "=" in argv[index])
        or (
            len(argv[index]) > 2
            and argv[index][:2] in SCRIPT_FLAGS
            and not argv[index].startswith("--")
        )
    }
    if not positions:
        first = next((i for i in arguments if not argv[i].startswith("-")), None)
        positions |= {first} if first is not None else set()
    return positions


def _refuse_input_as_code(argv: Sequence[str], program: Program) -> None:
    """What find or xargs found or read may not become an interpreter's code: not at find's
    ``{}`` in its script (a file named ``$(id)``), and never through xargs, whose input may
    also be an option that is code (``-e``, ``-c``) wherever it stands."""
    name = program_name(argv[program.start])
    if name not in INTERPRETERS:
        return
    code = _code_positions(argv, program)
    if program.reads_input or any(text in argv[i] for i in code for text in program.fed):
        raise Refusal(
            "input_in_script",
            f"what its launcher finds or reads would become code {name} runs; have the "
            "script read its input itself",
        )


def _started_programs(argv: Sequence[str], literal: Sequence[bool]) -> list[Program]:
    try:
        return programs(argv, literal)
    except LaunchRefused as refused:
        raise Refusal(refused.rule, refused.message) from None


def normalize_placeholders(text: str) -> str:
    """``{{ name }}`` written as ``{{name}}``."""
    return _SPACED_PLACEHOLDER.sub(r"{{\1}}", text)


def _split(template: str) -> list[str]:
    """The template's argv; shell operators written as arguments of their own are refused."""
    template = normalize_placeholders(template)
    try:
        lexer = shlex.shlex(template, posix=False)
        lexer.whitespace_split = True
        for token in lexer:
            if _SHELL_OPERATOR.fullmatch(token):
                raise Refusal(
                    "shell_operator",
                    f"{token!r} is shell syntax, but no shell runs: it would reach the program "
                    "as an argument. Quote it to mean it literally, or run one program per "
                    "template",
                )
        argv = shlex.split(template, posix=True)
    except ValueError as exc:
        raise Refusal("syntax", f"the command cannot be split: {exc}") from exc
    if not argv:
        raise Refusal("syntax", "the command is empty")
    for element in argv:
        if "{{" in PLACEHOLDER.sub("", element) or "}}" in PLACEHOLDER.sub("", element):
            raise Refusal(
                "malformed_placeholder",
                f"{element!r} holds '{{{{' or '}}}}' that is not a placeholder {{{{name}}}} "
                "(lower-case name); to pass braces literally, make them a parameter's value",
            )
    return argv


def _check_parameters(template: str, argv: list[str], parameters: Sequence[ParameterSpec]) -> None:
    declared = {spec.name: spec.type for spec in parameters}
    used = placeholders(argv)
    for name in used:
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
    for name in declared:
        if name not in used and f"IDP_PARAM_{name.upper()}" not in template:
            raise Refusal(
                "unused_parameter",
                f"{name} is declared but the command never uses it: write {{{{{name}}}}} in "
                f"an argument, or read IDP_PARAM_{name.upper()} in the command",
                name,
            )


def compile_command(
    template: str, parameters: Sequence[ParameterSpec], allowlist: ExecutableAllowlist
) -> list[str]:
    """Split a command template into argv at save time, refusing what cannot be safe."""
    argv = _split(template)
    if "{{" in argv[0]:
        raise Refusal("executable_placeholder", "the executable must be a literal")
    started = _started_programs(argv, _literal(argv))
    for program in started:
        try:
            allowlist.check(argv[program.start])
        except ExecutableRefused as refused:
            raise Refusal(refused.rule, refused.message) from None
        check_denylist(argv[program.start : program.end])
        if any("{{" in argv[index] for index in _code_positions(argv, program)):
            raise Refusal(
                "placeholder_in_script",
                "an interpreter's script may not contain placeholders; read IDP_PARAM_<NAME> "
                "environment variables instead",
            )
        _refuse_input_as_code(argv, program)
    _check_parameters(template, argv, parameters)
    return argv


def _render_element(element: str, allow_dash: set[str], values: Mapping[str, str]) -> str:
    """One argument with its values in; refused when its leading dash comes from a value
    whose parameter does not allow one."""
    rendered = PLACEHOLDER.sub(lambda match: values[match.group(1)], element)
    if rendered.startswith("-"):
        for piece in _PIECES.split(element):
            match = PLACEHOLDER.fullmatch(piece)
            if not (values[match.group(1)] if match else piece):
                continue  # the first character comes from the first piece that is not empty
            if match and match.group(1) not in allow_dash:
                raise Refusal(
                    "leading_dash",
                    "a value may not start an argument with '-' (it would become an option) "
                    "unless its parameter allows a leading dash",
                    match.group(1),
                )
            break
    return rendered


def render_command(
    argv: Sequence[str], parameters: Sequence[ParameterSpec], values: Mapping[str, Value]
) -> RenderedCommand:
    """Substitute validated, normalized ``values`` into the saved argv (single pass)."""
    allow_dash = {spec.name for spec in parameters if spec.allow_leading_dash}
    texts = {name: as_text(value) for name, value in values.items()}
    rendered = [_render_element(element, allow_dash, texts) for element in argv]
    if sum(len(element.encode()) for element in rendered) > MAX_RENDERED_BYTES:
        raise Refusal("too_long", f"the rendered command exceeds {MAX_RENDERED_BYTES} bytes")
    literal = _literal(argv)
    saved = [program.start for program in _started_programs(argv, literal)]
    if [program.start for program in _started_programs(rendered, literal)] != saved:
        raise Refusal(
            "launcher_structure",
            "the values change which arguments a launcher reads as its program",
        )
    check_denylist(rendered)
    return RenderedCommand(argv=rendered, values=dict(values))

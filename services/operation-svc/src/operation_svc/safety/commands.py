"""Command templates, safe by construction.

A template is split into argv once, when it is saved. Every program it starts (``argv[0]``,
and what an allowlisted launcher such as ``env`` or ``find -exec`` starts, read by that
launcher's own grammar: ``idp_common.launchers``) is a literal on the allowlist, compared by
absolute path (``idp_common.executables``). Placeholders are substituted inside single argv
elements, in one pass (a value containing ``{{x}}`` stays literal), so no value can add an
argument or reach a shell. A rendered argument may start with ``-`` or ``@`` only where that
character is written in the template or the parameter allows a leading dash, so no value,
alone or concatenated, can become an option or a file read in its place. The script of an
interpreter (``sh -c``, ``python -c``, a script path, …) may hold no placeholder: such
templates read values from ``IDP_PARAM_<NAME>`` environment variables, which every command
receives. A ``secret`` parameter reaches the command only that
way: argv is visible to every process on the host (``/proc/<pid>/cmdline``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from idp_common.executables import ExecutableAllowlist, ExecutableRefused
from idp_common.launchers import LaunchRefused, Program, program_name, programs
from idp_common.values import as_text
from operation_svc.safety.denylist import check_denylist
from operation_svc.safety.parameters import ParameterSpec, Value
from operation_svc.safety.sizes import check_rendered_size
from operation_svc.safety.verdict import Refusal

PLACEHOLDER = re.compile(r"\{\{([a-z_][a-z0-9_]*)\}\}")
_PIECES = re.compile(r"(\{\{[a-z_][a-z0-9_]*\}\})")
# Spaces inside the braces are accepted, and removed before the template is split.
_SPACED_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


def _programs_named(pattern: str) -> re.Pattern[str]:
    """Names of programs, under the suffixes packagers add: a version (``python3.11``,
    ``perl5.36.0``, ``pdb3``), then a platform, build or diversion after a dash or a dot
    (``perl5.36-x86_64-linux-gnu``, ``python3.11-dbg``, Debian's ``sh.distrib``)."""
    return re.compile(rf"(?:{pattern})[\d.]*(?:[-.].*)?")


# Programs whose first positional argument is code (a script, program text, a filter or a
# command).
_SHELL = r"(?:r?ba|da|z|k|mk|pdk|a|ya|po|c|tc)?sh"
# Programs that may read any argument as code, so that none may be a placeholder: pwsh
# joins them into the command; lua runs the first one as a script after -e; busybox is any
# program; sqlite3 runs SQL and dot-commands (.shell) after its database; yq's expression
# follows a command; m4, bc and dc run every file; make runs what an assignment holds
# (X=$(shell …)); ed, ex and vim run a file name starting with '!' or '+'; psql and mysql
# take SQL and shell escapes in options; pydoc and pdb import or run a name or path; R,
# octave, gnuplot, the Lisps, Prologs and REPLs, lldb, osascript and TeX (\write18) read
# code in options or files of several kinds, or their arguments as commands.
_ARGUMENT_CODE = (
    r"busybox|lua|luajit|pwsh|powershell|sqlite|yq|m4|bc|dc|[gbp]?make|r?ed|ex|[gr]?vim?"
    r"|view|vimdiff|nvim|emacs|psql|mysql|mariadb|pydoc|pdb|jshell|R|octave|gnuplot|duckdb"
    r"|sbcl|clisp|ecl|racket|swipl|ghci|lldb|osascript|mongosh|mongo|erl|iex"
    r"|(?:pdf|xe|lua)?(?:la)?tex|texlua|etex"
)
_INTERPRETER = _programs_named(
    _SHELL + r"|fish|[gmn]?awk|g?sed|[ib]?python|ptpython|pypy|perl|raku|rakudo|ruby|irb"
    r"|node|nodejs|php|tclsh|wish|Rscript|julia|guile|jrunscript|jjs|rhino|groovy|scala"
    r"|kotlinc?|clojure|runghc|runhaskell|elixir|escript|deno|bun|jq|gojq|jaq|" + _ARGUMENT_CODE
)
# Interpreters that read no option after their script: what follows it is the script's.
_OPTIONS_END_AT_SCRIPT = _programs_named(_SHELL + r"|python|pypy")
_ARGUMENTS_MAY_BE_CODE = _programs_named(_ARGUMENT_CODE)
# Programs that read their first argument as bundled options even without a dash (tar's
# and ar's old style, ps's BSD style): a value there is options, past the leading-dash
# rule (tar's ``I`` runs the next argument as a program).
_DASHLESS_OPTIONS = _programs_named(r"g?tar|bsdtar|g?ar|ps")
# Options of programs that are no interpreter whose value is a program or a command line
# they run (``tar -I {{x}}`` ran any program, ``--checkpoint-action=exec={{x}}`` and
# ``split --filter={{x}}`` a shell line, ``sort --compress-program`` any program fed its
# data): short option strings (zip's is ``-TT``) and long names (GNU getopt takes any
# unambiguous abbreviation of them).
_COMMAND_OPTIONS: tuple[tuple[re.Pattern[str], frozenset[str], frozenset[str]], ...] = tuple(
    (_programs_named(pattern), frozenset(short), frozenset(long))
    for pattern, short, long in (
        (
            r"g?tar|bsdtar",
            {"I", "F"},
            {
                "use-compress-program",
                "to-command",
                "rsh-command",
                "info-script",
                "new-volume-script",
                "checkpoint-action",
            },
        ),
        (r"rsync", {"e"}, {"rsh", "rsync-path"}),
        (r"zip", {"TT"}, {"unzip-command"}),
        (r"wget", {"e"}, {"execute", "use-askpass"}),
        (r"scp|sftp", {"S", "o", "F", "D"}, set()),
        (r"ssh-copy-id", {"o", "F"}, set()),  # passed on to ssh (-o ProxyCommand=)
        (r"sort", set(), {"compress-program"}),
        (r"split", set(), {"filter"}),
        (r"diff3|sdiff", set(), {"diff-program"}),
        (r"install", set(), {"strip-program"}),
        (r"man", {"P", "H"}, {"pager", "html"}),
        (
            r"git",
            {"c", "x", "u", "O"},
            {
                "config-env",
                "exec-path",
                "upload-pack",
                "receive-pack",
                "exec",
                "extcmd",
                "open-files-in-pager",
                "smtp-server",
                "sendmail-cmd",
            },
        ),
    )
)
# Perl opens each argument its script reads with ``<>`` (and ``-n``/``-p``) by the
# two-argument open, which takes a leading ``<``, ``>``, ``+`` or ``|`` or a trailing ``|``
# (around blanks it drops) as the mode: ``id|`` ran ``id`` through the shell.
_MAGIC_OPEN = _programs_named("perl")
_OPEN_MODE = re.compile(r"^\s*[<>+|]|\|\s*$")
# curl reads a file where an option's argument says so: a form part's content starting
# with '@' or '<', or a ';headers=@FILE' after it (-F 'note={{x}}' with '@/etc/shadow' or
# 'x;headers=@FILE'), and --data-urlencode's and --url-query's 'name@FILE' (an '@' before
# any '=': 'a@/proc/self/environ' posted the run's environment, secrets included).
_CURL = _programs_named("curl")
_CURL_FORM = (frozenset({"F"}), frozenset({"form"}))
_CURL_ENCODED = (frozenset[str](), frozenset({"data-urlencode", "url-query"}))
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


def _script_position(argv: Sequence[str], program: Program) -> int | None:
    """Where the interpreter's script (its code, or the file holding it) stands when the
    shape leaves no doubt: ``prog SCRIPT …`` or ``prog -c CODE …`` (one code flag, alone,
    right after the program). None otherwise: with other options before it, which of them
    take a value, and so which argument is the script, depends on the interpreter
    (``sh -ec X``, ``awk -F : X``, ``sed -l 5 X``, ``perl -MX``)."""
    first = program.start + 1
    if first < program.end and not argv[first].startswith("-"):
        return first
    if first + 1 < program.end and argv[first] in SCRIPT_FLAGS:
        return first + 1
    return None


def _code_positions(argv: Sequence[str], program: Program) -> set[int]:
    """Positions where a value could become code an interpreter runs: its options and its
    script; after the script, for an interpreter that still reads options there, every
    option and option's value; all of them when the script's place is in doubt."""
    name = program_name(argv[program.start])
    if not _INTERPRETER.fullmatch(name):
        return set()
    arguments = range(program.start + 1, program.end)
    script = _script_position(argv, program)
    if script is None or _ARGUMENTS_MAY_BE_CODE.fullmatch(name):
        return set(arguments)
    positions = set(range(program.start + 1, script + 1))
    if not _OPTIONS_END_AT_SCRIPT.fullmatch(name):
        positions |= {
            index
            for index in range(script + 1, program.end)
            if argv[index].startswith("-") or argv[index - 1].startswith("-")
        }
    return positions


def _refuse_values_as_code(argv: Sequence[str], program: Program) -> None:
    name = program_name(argv[program.start])
    for index in sorted(_code_positions(argv, program)):
        if parameter := PLACEHOLDER.search(argv[index]):
            where = (
                f"{name} may read any of its arguments as code, so none may be a placeholder"
                if _ARGUMENTS_MAY_BE_CODE.fullmatch(name)
                else "a placeholder may only follow its script, written first ('python3 "
                "script.py {{x}}', \"jq '.[$x]' --arg x {{x}}\") or after one code flag alone "
                "(\"sh -c '…' sh {{x}}\"), and not as an option or option's value of an "
                "interpreter that reads options there"
            )
            raise Refusal(
                "placeholder_in_script",
                f"{{{{{parameter.group(1)}}}}} would become code {name} runs: {where}; read "
                f"IDP_PARAM_{parameter.group(1).upper()} instead",
                parameter.group(1),
            )


def _refuse_values_as_dashless_options(argv: Sequence[str], program: Program) -> None:
    name = program_name(argv[program.start])
    first = program.start + 1
    if not _DASHLESS_OPTIONS.fullmatch(name) or first >= program.end:
        return
    if parameter := PLACEHOLDER.search(argv[first]):
        raise Refusal(
            "placeholder_as_options",
            f"{{{{{parameter.group(1)}}}}} would be read as {name}'s options: {name} takes "
            "its first argument as options even without a dash; write the options first",
            parameter.group(1),
        )


def _names_a_command_option(element: str, short: frozenset[str], long: frozenset[str]) -> bool:
    """Whether ``element`` (its text before any placeholder) is or holds an option whose
    value is a command: a long name or an abbreviation of one, or a cluster of short
    options holding one (which letters take a value only the program knows, so any)."""
    text = element.split("{{", 1)[0]
    if text.startswith("--"):
        name = text[2:].split("=", 1)[0]
        return bool(name) and any(option.startswith(name) for option in long)
    return text.startswith("-") and any(option in text[1:] for option in short)


def _command_values(
    argv: Sequence[str], program: Program, short: frozenset[str], long: frozenset[str]
) -> Iterator[tuple[int, int]]:
    """(option, value) positions where ``argv[value]`` may be a command the option names."""
    first = program.start + 1
    dashless = _DASHLESS_OPTIONS.fullmatch(program_name(argv[program.start]))
    for index in range(first, program.end):
        element = argv[index]
        if element == "--":
            return
        if _names_a_command_option(element, short, long):
            attached = "{{" in element or (element.startswith("--") and "=" in element)
            yield index, (index if attached else index + 1)
        elif dashless and index == first and any(option in element for option in short):
            # tar's old style: each letter's value is one of the arguments after it.
            yield from ((index, index + 1 + offset) for offset in range(len(element)))


def _refuse_values_as_commands(argv: Sequence[str], program: Program) -> None:
    """A placeholder may not be, or be in, the value of an option that names a program or
    command line its program runs, attached (``-I{{x}}``, ``--to-command={{x}}``) or
    following it; nor follow tar's dashless options holding one (``tar cIf {{x}} …``)."""
    name = program_name(argv[program.start])
    for pattern, short, long in _COMMAND_OPTIONS:
        if not pattern.fullmatch(name):
            continue
        for option, value in _command_values(argv, program, short, long):
            if value < program.end and (parameter := PLACEHOLDER.search(argv[value])):
                raise Refusal(
                    "placeholder_as_command",
                    f"{{{{{parameter.group(1)}}}}} would be a program or command line {name} "
                    f"runs ({argv[option]}); write it in the template, or write any other "
                    "option by its long name",
                    parameter.group(1),
                )


def _refuse_input_as_code(argv: Sequence[str], program: Program) -> None:
    """What find or xargs found or read may not become an interpreter's code: not at find's
    ``{}`` in its script (a file named ``$(id)``), and never through xargs, whose input may
    also be an option that is code (``-e``, ``-c``) wherever it stands."""
    name = program_name(argv[program.start])
    if not _INTERPRETER.fullmatch(name):
        return
    code = _code_positions(argv, program)
    if program.reads_input or any(text in argv[i] for i in code for text in program.fed):
        raise Refusal(
            "input_in_script",
            f"what its launcher finds or reads would become code {name} runs; have the "
            "script read its input itself",
        )


def _refuse_values_as_open_modes(
    argv: Sequence[str], rendered: Sequence[str], program: Program
) -> None:
    """An argument of perl's holding a value may not be one its ``<>`` would open as a
    command or another mode; the rendered argument is checked, since a value may complete
    what the template wrote (``dir/{{x}}`` with ``x;id|``)."""
    if not _MAGIC_OPEN.fullmatch(program_name(argv[program.start])):
        return
    for index in range(program.start + 1, program.end):
        parameter = PLACEHOLDER.search(argv[index])
        if parameter and _OPEN_MODE.search(rendered[index]):
            raise Refusal(
                "value_as_open_mode",
                "a value may not make an argument of perl's start with '<', '>', '+' or '|' "
                "or end with '|': perl's <> opens such an argument as a command or in that "
                "mode",
                parameter.group(1),
            )


def _from_values(element: str, values: Mapping[str, str]) -> list[bool]:
    """For each character of ``element`` once rendered, whether a value put it there."""
    origin: list[bool] = []
    for piece in _PIECES.split(element):
        match = PLACEHOLDER.fullmatch(piece)
        origin += [bool(match)] * len(values[match.group(1)] if match else piece)
    return origin


def _value_start(element: str, attached: bool, short: frozenset[str]) -> int:
    """Where an option's value starts in ``element``: past ``--name=`` or the option's
    letter in a cluster when attached to it, else at once."""
    if not attached:
        return 0
    if element.startswith("--"):
        return element.index("=") + 1
    return min(element.index(letter, 1) for letter in short if letter in element[1:]) + 1


def _names_a_file(text: str, from_value: Sequence[bool], form: bool) -> bool:
    """Whether a value put in ``text`` (curl's form part or name@file) what makes curl read
    a file."""
    if form:
        content = text.find("=") + 1
        leading = content < len(text) and text[content] in "@<" and from_value[content]
        return leading or any(char == ";" and by for char, by in zip(text, from_value, strict=True))
    marker = re.search("[@=]", text)
    return bool(marker and marker[0] == "@" and from_value[marker.start()])


def _refuse_values_as_curl_files(
    argv: Sequence[str], values: Mapping[str, str], program: Program
) -> None:
    """A value may not make curl read a file in place of a form part's content or an
    encoded field (``-F``, ``--data-urlencode``, ``--url-query``)."""
    if not _CURL.fullmatch(program_name(argv[program.start])):
        return
    for (short, long), form in ((_CURL_FORM, True), (_CURL_ENCODED, False)):
        for option, index in _command_values(argv, program, short, long):
            parameter = PLACEHOLDER.search(argv[index]) if index < program.end else None
            if parameter is None:
                continue
            start = _value_start(argv[index], option == index, short)
            rendered = PLACEHOLDER.sub(lambda match: values[match.group(1)], argv[index])
            if _names_a_file(rendered[start:], _from_values(argv[index], values)[start:], form):
                raise Refusal(
                    "value_as_file",
                    f"a value may not make curl read a file for {argv[option]}: not a form "
                    "part's leading '@' or '<' or a ';' (curl reads ';headers=@FILE' after "
                    "it), not an '@' before the '=' of name@FILE; use --form-string for text",
                    parameter.group(1),
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
        _refuse_values_as_code(argv, program)
        _refuse_values_as_dashless_options(argv, program)
        _refuse_values_as_commands(argv, program)
        _refuse_input_as_code(argv, program)
    _check_parameters(template, argv, parameters)
    return argv


# What a value may not start an argument with, unless its parameter allows a leading dash:
# an option, or a file whose content a program reads in its place (curl -d @FILE, gcc and
# javac @ARGFILE, argparse's fromfile prefix): /proc/self/environ holds the run's secrets.
_LEADING = {
    "-": ("leading_dash", "'-' (it would become an option)"),
    "@": ("leading_at", "'@' (programs such as curl and compilers read the file it names)"),
}


def _render_element(element: str, allow_dash: set[str], values: Mapping[str, str]) -> str:
    """One argument with its values in; refused when its leading dash or at sign comes from
    a value whose parameter does not allow one."""
    rendered = PLACEHOLDER.sub(lambda match: values[match.group(1)], element)
    if rendered[:1] in _LEADING:
        for piece in _PIECES.split(element):
            match = PLACEHOLDER.fullmatch(piece)
            if not (values[match.group(1)] if match else piece):
                continue  # the first character comes from the first piece that is not empty
            if match and match.group(1) not in allow_dash:
                rule, what = _LEADING[rendered[0]]
                raise Refusal(
                    rule,
                    f"a value may not start an argument with {what} unless its parameter "
                    "allows a leading dash",
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
    check_rendered_size("the rendered command", rendered)
    literal = _literal(argv)
    started = _started_programs(argv, literal)
    for program in started:  # a template saved before the rules were as strict as they are now
        _refuse_values_as_code(argv, program)
        _refuse_values_as_dashless_options(argv, program)
        _refuse_values_as_commands(argv, program)
        _refuse_values_as_open_modes(argv, rendered, program)
        _refuse_values_as_curl_files(argv, texts, program)
    saved = [program.start for program in started]
    if [program.start for program in _started_programs(rendered, literal)] != saved:
        raise Refusal(
            "launcher_structure",
            "the values change which arguments a launcher reads as its program",
        )
    check_denylist(rendered)
    return RenderedCommand(argv=rendered, values=dict(values))

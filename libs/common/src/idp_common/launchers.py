"""Launchers: programs whose arguments name another program (``env``, ``nice``, ``timeout``,
``xargs``, ``find -exec``, …). A command line is read the way the launcher itself reads it
(GNU getopt with the launcher's real options: attached and separate values, clustered short
options, abbreviated long options, ``--``, ``NAME=VALUE``), so every program the line starts
is found, and each must then be an allowlisted literal like ``argv[0]``.

Elements are marked *literal* (written in the template) or not (a placeholder, or a value
substituted into one). Where the launcher reads its options, operands or program, an element
whose content is not known yet (``{{name}}`` at save time) is refused: a value could change
how the rest of the line is read. A program is always a literal.

Launchers without a grammar here (``sudo``, ``chroot``, ``watch``, ``ssh``, …) are refused
outright, even when allowlisted: what they run cannot be checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Literal

UNPARSED_LAUNCHERS = frozenset(
    {
        "sudo",
        "su",
        "doas",
        "runuser",
        "pkexec",
        "chroot",
        "watch",
        "ssh",
        "script",
        "strace",
        "ltrace",
        "gdb",
        "valgrind",
        "perf",
        "busybox",
        "toybox",
        "systemd-run",
        "unshare",
        "nsenter",
        "setpriv",
        "capsh",
        "sg",
        "newgrp",
        "parallel",
        "firejail",
        "bwrap",
        "proot",
        "chronic",
        "eatmydata",
        "fakeroot",
        "fakechroot",
        "torsocks",
        "proxychains",
        "proxychains4",
        "catchsegv",
        "xvfb-run",
        "dbus-run-session",
        "chrt",
        "taskset",
        "numactl",
        "cgexec",
        "prlimit",
        "setarch",
        "linux32",
        "linux64",
        "start-stop-daemon",
        "daemonize",
        "tini",
        "dumb-init",
        "at",
        "batch",
        "rlwrap",
        "unbuffer",
        "expect",
        "nohup.real",
        # Agents, wrappers and tools that run a command given as their arguments or in
        # theirs (ssh-agent CMD, pee and mispipe shell lines, socat's EXEC:, run-parts DIR):
        "ssh-agent",
        "gpg-agent",
        "dbus-launch",
        "logsave",
        "run-parts",
        "systemd-cat",
        "systemd-inhibit",
        "systemd-nspawn",
        "systemd-socket-activate",
        "machinectl",
        "ifne",
        "pee",
        "mispipe",
        "lckdo",
        "zrun",
        "vipe",
        "sem",
        "runcon",
        "aa-exec",
        "faketime",
        "trickle",
        "tsocks",
        "cpulimit",
        "sshpass",
        "socat",
        "tmux",
        "screen",
        "dtach",
        "abduco",
        "rr",
        "tsp",
        "nq",
        "entr",
        "chpst",
        "envdir",
        "setuidgid",
        "softlimit",
        "setlock",
        "flatpak-spawn",
        "xdg-open",
        "sensible-editor",
        "sensible-pager",
        "sensible-browser",
        "editor",
        "pager",
        "x-www-browser",
    }
)
# Variables that change which code a started program loads or runs; never set by a launcher.
_LOADER_VARIABLES = re.compile(
    r"^(?:PATH|LD_\w*|GCONV_PATH|LOCPATH|NLSPATH|GLIBC_TUNABLES|MALLOC_\w+|HOSTALIASES|"
    r"RES_OPTIONS|LOCALDOMAIN|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|PS4|IFS|BASH_FUNC_\w*|"
    r"PYTHON\w*|PERL\w*|RUBY\w*|NODE_\w*|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS)$"
)
# Variables a value may set through a launcher (``env TZ={{tz}} date``). Which variables a
# program reads as its options or a command is its own choice (TAR_OPTIONS, GIT_SSH_COMMAND,
# LESSOPEN, any vendor's), so no list of unsafe names is complete: only these are taken, as
# every value already reaches the command as IDP_PARAM_<NAME>. Locale names are not: they
# pick the translation catalogs whose format strings programs print with (a name holding a
# path loads one the run wrote).
_VALUE_VARIABLES = re.compile(r"TZ|COLUMNS|LINES|NO_COLOR")

Arg = Literal["none", "required", "optional"]


class LaunchRefused(Exception):
    """A command line whose programs cannot all be known and checked; ``rule`` names why."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


@dataclass(frozen=True)
class Program:
    """``argv[start]`` is a program; its own arguments run up to ``end`` (exclusive).

    ``fed``: texts its launcher replaces, as it runs, with what it found or read (find's
    ``{}``, xargs's replace string). ``reads_input``: its launcher (xargs) gives it
    arguments made of what it reads, any of which may be an option."""

    start: int
    end: int
    fed: frozenset[str] = frozenset()
    reads_input: bool = False


def program_name(text: str) -> str:
    return PurePosixPath(text).name


def unsafe_variable(name: str) -> bool:
    """Whether setting ``name`` in a command's environment could change the code it runs."""
    return bool(_LOADER_VARIABLES.fullmatch(name))


@dataclass(frozen=True)
class _Line:
    argv: Sequence[str]
    literal: Sequence[bool]

    def unknown(self, index: int) -> bool:
        """The element holds a placeholder whose value is not known yet."""
        return not self.literal[index] and "{{" in self.argv[index]


@dataclass(frozen=True)
class Getopt:
    """A launcher's options, as its getopt_long call declares them (``+``: options end at
    the first operand). ``refused`` names options (by long name, or the short letter when it
    has none) that run code this module cannot check."""

    short: Mapping[str, Arg]
    long: Mapping[str, Arg]
    aliases: Mapping[str, str] = field(default_factory=dict)  # short letter -> long name
    refused: frozenset[str] = frozenset()

    def canonical(self, option: str) -> str:
        return self.aliases.get(option, option)


@dataclass
class _Options:
    """The options read so far and where the operands start."""

    seen: dict[str, list[str | None]]
    next: int


_COLONS: dict[str | None, Arg] = {None: "none", ":": "required", "::": "optional"}


def _short(spec: str) -> dict[str, Arg]:
    """A getopt optstring (``"C:iS:u:v0"``, ``::`` for an optional value) as a mapping."""
    return {match.group(1): _COLONS[match.group(2)] for match in re.finditer(r"(.)(::|:)?", spec)}


def _read_options(
    line: _Line, start: int, name: str, grammar: Getopt, number_option: bool = False
) -> _Options:
    """Read options from ``argv[start]`` as GNU getopt_long with ``+`` does."""
    seen: dict[str, list[str | None]] = {}
    argv = line.argv
    index = start
    while index < len(argv):
        element = argv[index]
        if element == "--":
            return _Options(seen, index + 1)
        if not element.startswith("-") or element == "-":
            break
        if number_option and re.fullmatch(r"-[-+]?\d+", element):  # nice's legacy -N / --N
            seen.setdefault("adjustment", []).append(element.lstrip("-+"))
            index += 1
            continue
        if element.startswith("--"):
            option, value, index = _long_option(line, index, name, grammar)
            seen.setdefault(option, []).append(value)
            continue
        index = _short_cluster(line, index, name, grammar, seen)
    return _Options(seen, index)


def _placeholder_refused(name: str, where: str = "options") -> LaunchRefused:
    return LaunchRefused(
        "placeholder_in_launcher", f"a placeholder may not stand where {name} reads its {where}"
    )


def _long_option(
    line: _Line, index: int, name: str, grammar: Getopt
) -> tuple[str, str | None, int]:
    token = line.argv[index]
    written, has_value, attached = token[2:].partition("=")
    if "{" in written and line.unknown(index):
        raise _placeholder_refused(name)
    matches = [option for option in grammar.long if option.startswith(written)]
    if written in grammar.long:
        matches = [written]
    if len(matches) != 1:
        problem = "is ambiguous" if matches else "is not an option of"
        raise LaunchRefused("launcher_option", f"--{written} {problem} {name}")
    option = matches[0]
    kind = grammar.long[option]
    if kind == "none" and has_value:
        raise LaunchRefused("launcher_option", f"--{option} of {name} takes no value")
    if has_value or kind != "required":
        return option, (attached if has_value else None), index + 1
    if index + 1 >= len(line.argv):
        raise LaunchRefused("launcher_option", f"--{option} of {name} needs a value")
    return option, line.argv[index + 1], index + 2


def _short_cluster(
    line: _Line, index: int, name: str, grammar: Getopt, seen: dict[str, list[str | None]]
) -> int:
    token = line.argv[index]
    position = 1
    while position < len(token):
        letter = token[position]
        if letter == "{" and line.unknown(index):
            raise _placeholder_refused(name)
        kind = grammar.short.get(letter)
        if kind is None:
            raise LaunchRefused("launcher_option", f"-{letter} is not an option of {name}")
        option = grammar.canonical(letter)
        rest = token[position + 1 :]
        if kind == "none":
            seen.setdefault(option, []).append(None)
            position += 1
            continue
        if rest or kind == "optional":
            seen.setdefault(option, []).append(rest or None)
            return index + 1
        if index + 1 >= len(line.argv):
            raise LaunchRefused("launcher_option", f"-{letter} of {name} needs a value")
        seen.setdefault(option, []).append(line.argv[index + 1])
        return index + 2
    return index + 1


def _refuse_options(options: _Options, name: str, grammar: Getopt) -> None:
    for option in grammar.refused & set(options.seen):
        written = f"--{option}" if len(option) > 1 else f"-{option}"
        raise LaunchRefused(
            "launcher_option",
            f"{name} {written} runs what cannot be checked before it runs; it is refused",
        )


def _program_at(line: _Line, index: int, name: str) -> int:
    if not line.literal[index]:
        raise LaunchRefused(
            "program_not_literal",
            f"the program {name} starts must be written in the template, not a placeholder "
            "or value",
        )
    return index


Parser = Callable[[_Line, int], list[Program]]


def _simple(grammar: Getopt, operands_before: int = 0, number_option: bool = False) -> Parser:
    """A launcher read as ``NAME [OPTION]… [OPERAND]… PROGRAM [ARG]…``, with a fixed number
    of operands before the program (``timeout`` has its duration)."""

    def parse(line: _Line, start: int) -> list[Program]:
        name = program_name(line.argv[start])
        options = _read_options(line, start + 1, name, grammar, number_option)
        _refuse_options(options, name, grammar)
        index = options.next + operands_before
        if index >= len(line.argv):
            return []
        return [Program(_program_at(line, index, name), len(line.argv))]

    return parse


_ENV = Getopt(
    short=_short("a:C:iS:u:v0"),
    long={
        "argv0": "required",
        "chdir": "required",
        "ignore-environment": "none",
        "split-string": "required",
        "unset": "required",
        "null": "none",
        "debug": "none",
        "block-signal": "optional",
        "default-signal": "optional",
        "ignore-signal": "optional",
        "list-signal-handling": "none",
        "help": "none",
        "version": "none",
    },
    aliases={
        "a": "argv0",
        "C": "chdir",
        "S": "split-string",
        "u": "unset",
        "i": "ignore-environment",
        "0": "null",
        "v": "debug",
    },
    refused=frozenset({"argv0", "split-string"}),
)


def _env(line: _Line, start: int) -> list[Program]:
    """``env [OPTION]… [-] [NAME=VALUE]… [PROGRAM [ARG]…]``; ``-S`` (a whole command line
    in one string) and ``--argv0`` (a multi-call binary acts by it) are refused."""
    name = program_name(line.argv[start])
    options = _read_options(line, start + 1, name, _ENV)
    _refuse_options(options, name, _ENV)
    index = options.next
    if index < len(line.argv) and line.argv[index] == "-" and line.literal[index]:
        index += 1
    while index < len(line.argv):
        text = line.argv[index]
        settled = text.split("{{", 1)[0] if line.unknown(index) else text
        if "=" not in settled:
            break
        variable = settled.split("=", 1)[0]
        if unsafe_variable(variable):
            raise LaunchRefused(
                "unsafe_variable", f"{name} may not set {variable}: it changes what code runs"
            )
        if line.unknown(index) and not _VALUE_VARIABLES.fullmatch(variable):
            raise LaunchRefused(
                "placeholder_in_variable",
                f"a placeholder may not set {variable}: programs read variables of their own "
                "as options or commands; have the command read IDP_PARAM_<NAME> (a value may "
                "only set TZ, COLUMNS, LINES or NO_COLOR)",
            )
        index += 1
    if index >= len(line.argv):
        return []
    return [Program(_program_at(line, index, name), len(line.argv))]


_XARGS = Getopt(
    short=_short("0a:d:E:e::I:i::L:l::n:oprs:tP:x"),
    long={
        "null": "none",
        "arg-file": "required",
        "delimiter": "required",
        "eof": "optional",
        "replace": "optional",
        "max-lines": "optional",
        "max-args": "required",
        "open-tty": "none",
        "interactive": "none",
        "no-run-if-empty": "none",
        "max-chars": "required",
        "verbose": "none",
        "show-limits": "none",
        "exit": "none",
        "max-procs": "required",
        "process-slot-var": "required",
        "help": "none",
        "version": "none",
    },
    aliases={
        "i": "replace",
        "I": "replace",
        "e": "eof",
        "l": "max-lines",
        "a": "arg-file",
        "d": "delimiter",
    },
)


def _xargs(line: _Line, start: int) -> list[Program]:
    """``xargs [OPTION]… PROGRAM [ARG]…``: the program is named (xargs would otherwise pick
    ``echo`` itself), holds no replace string (input lines would become programs), and is
    no launcher: xargs adds what it reads to the launcher's arguments (or puts it at its
    replace string), where the launcher would read it as its options and its program."""
    name = program_name(line.argv[start])
    options = _read_options(line, start + 1, name, _XARGS)
    if options.next >= len(line.argv):
        raise LaunchRefused("launcher_program", f"name the program {name} runs")
    index = _program_at(line, options.next, name)
    replace = [value or "{}" for value in options.seen.get("replace", [])]
    if any(marker in line.argv[index] for marker in replace):
        raise LaunchRefused(
            "program_not_literal", f"the program {name} runs may not contain its replace string"
        )
    launched = program_name(line.argv[index])
    if launched in GRAMMARS or launched in UNPARSED_LAUNCHERS:
        raise LaunchRefused(
            "launcher_program",
            f"{name} may not run {launched}: what {name} reads would become the options and "
            f"the program {launched} runs",
        )
    return [Program(index, len(line.argv), fed=frozenset(replace), reads_input=True)]


_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})


def _find(line: _Line, start: int) -> list[Program]:
    """Each ``-exec``/``-execdir``/``-ok``/``-okdir`` starts a program, whose arguments end
    at ``;`` or at ``+`` after ``{}``; the program may not hold ``{}`` (a found file would
    become the program)."""
    name = program_name(line.argv[start])
    programs = []
    index = start + 1
    while index < len(line.argv):
        if line.unknown(index) and line.argv[index].startswith("-"):
            raise _placeholder_refused(name, "options or expression")
        if line.argv[index] not in _FIND_ACTIONS:
            index += 1
            continue
        program = index + 1
        if program >= len(line.argv):
            raise LaunchRefused("launcher_program", f"{line.argv[index]} of {name} needs a program")
        _program_at(line, program, name)
        if "{}" in line.argv[program]:
            raise LaunchRefused(
                "program_not_literal", f"the program {name} runs may not contain {{}}"
            )
        end = program + 1
        while end < len(line.argv) and not (
            line.argv[end] == ";" or (line.argv[end] == "+" and line.argv[end - 1] == "{}")
        ):
            end += 1
        programs.append(Program(program, end, fed=frozenset({"{}"})))
        index = end + 1
    return programs


_FLOCK = Getopt(
    short=_short("sexnoFuw:E:hV"),
    long={
        "shared": "none",
        "exclusive": "none",
        "unlock": "none",
        "nonblock": "none",
        "nb": "none",
        "close": "none",
        "no-fork": "none",
        "timeout": "required",
        "wait": "required",
        "conflict-exit-code": "required",
        "verbose": "none",
        "help": "none",
        "version": "none",
    },
)


def _flock(line: _Line, start: int) -> list[Program]:
    """``flock [OPTION]… FILE PROGRAM [ARG]…``; ``-c``/``--command`` (a shell line) is
    refused."""
    name = program_name(line.argv[start])
    options = _read_options(line, start + 1, name, _FLOCK)
    index = options.next + 1
    if index >= len(line.argv):
        return []
    if line.argv[index] in ("-c", "--command") or line.argv[index].startswith("--command="):
        raise LaunchRefused("launcher_option", f"{name} -c runs a shell line; it is refused")
    return [Program(_program_at(line, index, name), len(line.argv))]


_IONICE = Getopt(
    short=_short("c:n:p:P:tu:hV"),
    long={
        "class": "required",
        "classdata": "required",
        "pid": "required",
        "pgid": "required",
        "uid": "required",
        "ignore": "none",
        "help": "none",
        "version": "none",
    },
    aliases={"p": "pid", "P": "pgid", "u": "uid"},
)


def _ionice(line: _Line, start: int) -> list[Program]:
    """``ionice [OPTION]… PROGRAM [ARG]…``, or ``-p``/``-P``/``-u`` and ids (no program)."""
    name = program_name(line.argv[start])
    options = _read_options(line, start + 1, name, _IONICE)
    if {"pid", "pgid", "uid"} & set(options.seen) or options.next >= len(line.argv):
        return []
    return [Program(_program_at(line, options.next, name), len(line.argv))]


GRAMMARS: dict[str, Parser] = {
    "env": _env,
    "xargs": _xargs,
    "find": _find,
    "flock": _flock,
    "ionice": _ionice,
    "nice": _simple(
        Getopt(
            short=_short("n:"),
            long={"adjustment": "required", "help": "none", "version": "none"},
        ),
        number_option=True,
    ),
    "nohup": _simple(Getopt(short={}, long={"help": "none", "version": "none"})),
    "timeout": _simple(
        Getopt(
            short=_short("k:s:vfp"),
            long={
                "kill-after": "required",
                "signal": "required",
                "verbose": "none",
                "foreground": "none",
                "preserve-status": "none",
                "help": "none",
                "version": "none",
            },
        ),
        operands_before=1,
    ),
    "setsid": _simple(
        Getopt(
            short=_short("cfwhV"),
            long={
                "ctty": "none",
                "fork": "none",
                "wait": "none",
                "help": "none",
                "version": "none",
            },
        )
    ),
    "stdbuf": _simple(
        Getopt(
            short=_short("i:o:e:"),
            long={
                "input": "required",
                "output": "required",
                "error": "required",
                "help": "none",
                "version": "none",
            },
        )
    ),
    "time": _simple(
        Getopt(
            short=_short("af:o:pqvV"),
            long={
                "append": "none",
                "format": "required",
                "output": "required",
                "portability": "none",
                "quiet": "none",
                "verbose": "none",
                "help": "none",
                "version": "none",
            },
        )
    ),
}


def programs(argv: Sequence[str], literal: Sequence[bool] | None = None) -> list[Program]:
    """Every program ``argv`` starts: ``argv[0]`` and, through each launcher among them, the
    programs it launches. ``literal[i]`` is False where the element holds a placeholder or a
    value (every element is literal when not given)."""
    line = _Line(argv, literal if literal is not None else [True] * len(argv))
    found = []
    pending = [Program(0, len(argv))]
    while pending:
        program = pending.pop(0)
        found.append(program)
        name = program_name(argv[program.start])
        if name in UNPARSED_LAUNCHERS:
            raise LaunchRefused(
                "unchecked_launcher",
                f"{name} starts other programs in ways that cannot be checked; it is never run",
            )
        if (parse := GRAMMARS.get(name)) is not None:
            window = _Line(argv[: program.end], line.literal[: program.end])
            pending += parse(window, program.start)
    return found

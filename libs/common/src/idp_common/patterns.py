"""Field and parameter patterns are RE2, run by the services (google-re2) and by the
console's forms (re2js, RE2's JavaScript port). Where the two differ, a pattern the services
took would leave the form unable to submit, saying nothing: the differences are refused.

RE2 is linear in the value, but also in the pattern: a match costs up to (the pattern's
positions x the value's length). Capturing groups make RE2 run its NFA, which pays that on
every value (``(a?){1000}`` twenty times took 29 s on 4,096 characters); without captures
it runs its DFA, which builds at most one state per byte, each as large as the positions
live at once. So patterns are compiled without captures (only whether a value matches
counts), and a pattern whose size times the longest value it may be given exceeds
``MATCH_BUDGET`` is refused. The size is that of its program compiled for Latin-1, where a
Unicode class is one instruction as it is one position (UTF-8 counts ``\\pL`` as 1,201
instructions, though it matches in no more time than ``[a-z]``).

At the budget, patterns built so that every byte is a new DFA state (``.*a.{46}``,
``(?s).*a.{94}``, ``[ab]*a[ab]{94}``, ``(a?){50}``) take at most ~10 ms on random
4,096-character values, ~2 ms on 253 characters. Realistic patterns fit: IPv4 (51), semver
(60), a UUID (72), ``[\\pL .'-]+`` (15) for any value; a DNS label with {0,61} (253) or a
hostname with {0,61} labels (503) with a max_length (63, 253)."""

from __future__ import annotations

import re
from typing import Any

import re2

# Size x characters: 100 for any value (4,096 characters), 1,618 for a 253-character one.
MATCH_BUDGET = 100 * 4096


def _options(encoding: Any) -> Any:
    options = re2.Options()
    options.never_capture = True
    options.encoding = encoding
    # RE2 stops compiling past ~24,000 instructions (\p{L}{0,99}, 118,507, took 0.1 s to
    # compile, at every use) and gives the DFA at most this much memory.
    options.max_mem = 1 << 20
    options.log_errors = False
    return options


_RUN = _options(re2.Options.Encoding.UTF8)
_SIZE = _options(re2.Options.Encoding.LATIN1)

# ``\C`` (any byte, which can split a character): re2js has no such escape.
_ANY_BYTE = re.compile(r"(?<!\\)(?:\\\\)*\\C")


class PatternRefused(ValueError):
    """Why a pattern is not run (the message completes "pattern ...")."""


def compile_pattern(pattern: str, longest_value: int) -> Any:
    """``pattern`` compiled to tell whether a value of at most ``longest_value`` characters
    matches, or PatternRefused saying why not. Checked where a pattern is saved and again
    where it is used (a pattern saved before this rule is refused there, never run)."""
    if _ANY_BYTE.search(pattern):
        raise PatternRefused(
            r"refused: \C (any byte, which may split a character) is not supported by the console"
        )
    try:
        compiled = re2.compile(pattern, _RUN)
    except re2.error as exc:
        raise PatternRefused(f"does not compile: {exc}") from None
    allowed = MATCH_BUDGET // longest_value
    if (size := _size(pattern, compiled)) > allowed:
        raise PatternRefused(
            f"is too costly to match: its size is {size}, values of up "
            f"to {longest_value} characters allow {allowed} (counted repetitions such as "
            "{0,61} multiply it: write * or + and set max_length, or set a lower max_length)"
        )
    return compiled


def _size(pattern: str, compiled: Any) -> int:
    try:
        return int(re2.compile(pattern.encode(), _SIZE).programsize)
    except re2.error:  # \x{100} and above: no Latin-1 program, count the UTF-8 one
        return int(compiled.programsize)

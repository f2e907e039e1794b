"""One rule for typed values, on every intake (panel submissions, the executions API,
previews): a number is a JSON number, or text that is a plain decimal number (``"3"``,
``"-2.5"``, ``"007"``, ``"1e3"``; not ``" 3"``, ``"0x10"``, ``"3_000"``, ``"nan"``), an integer
one with no fraction and exact as written (``2.0``, ``1e3``; not ``1.5e300``); a boolean is
``true``/``false``, or the text ``"true"``/``"false"``. Values are stored as their declared
type and become text only where a command needs text (argv, its environment)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
# The integers a float holds exactly: ``2.0`` or ``1e3`` is an integer, ``1.5e300`` is not.
EXACT_FLOAT_INTEGERS = 2**53
# The characters of one text value, on every intake: a panel's field and the template
# parameter it fills take the same, so a value too long is refused where it is entered.
MAX_TEXT_LENGTH = 4096
# Python's limit on converting text to an integer (sys.get_int_max_str_digits()).
MAX_DIGITS = 4300


def as_number(value: Any, *, integer: bool) -> int | float:
    """``value`` as a finite number (an ``int`` when ``integer``); ValueError says why not."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise ValueError(f"must be {kind}")
        if len(value) > MAX_DIGITS:  # int() would refuse it naming sys.set_int_max_str_digits
            raise ValueError(f"must be {kind} of at most {MAX_DIGITS} digits")
        value = float(value) if any(mark in value for mark in ".eE") else int(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be {kind}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite {kind.split()[-1]}")
    if integer:
        if isinstance(value, float) and not value.is_integer():
            raise ValueError("must be an integer")
        if isinstance(value, float) and abs(value) > EXACT_FLOAT_INTEGERS:
            # 1.5e300 would become 1500000000000000078757…: digits nobody wrote.
            raise ValueError(
                "must be an integer: past 2**53 one with a fraction or an exponent is not "
                "exact, so write its digits"
            )
        return int(value)
    # -0.0 is zero, but its text "-0.0" starts an argument with a dash, which a command may
    # not be given: a bound of 0 took it, and its run was refused after it was accepted.
    return value + 0.0 if isinstance(value, float) else value


def as_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise ValueError("must be true or false")


def as_text(value: Any) -> str:
    """A stored value as a command receives it: ``true``/``false``, ``3``, ``2.5``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def one_of(allowed: Sequence[Any]) -> str:
    """The error of a value not allowed, naming the allowed ones as far as an error should: a
    list of 500 values of 4,096 characters made a 2 MB error, in the answer and
    in a rejected run's update, past what a queue message carries."""
    shown = [repr(value if len(str(value)) <= 40 else f"{str(value)[:40]}…") for value in allowed]
    listed = ", ".join(shown[:10])
    more = f", … ({len(allowed)} in all)" if len(allowed) > 10 else ""
    return f"must be one of [{listed}{more}]"

"""Field and parameter patterns are RE2, run by the services (google-re2) and by the
console's forms (re2js, RE2's JavaScript port). Where the two differ, a pattern the services
took would leave the form unable to submit, saying nothing: the differences are refused."""

from __future__ import annotations

import re

# ``\C`` (any byte, which can split a character): re2js has no such escape.
_ANY_BYTE = re.compile(r"(?<!\\)(?:\\\\)*\\C")


def not_for_the_console(pattern: str) -> str | None:
    """Why the console could not run ``pattern``, or None."""
    if _ANY_BYTE.search(pattern):
        return r"\C (any byte, which may split a character) is not supported by the console"
    return None

"""Secret values are masked in every line of output and every error, in the forms a command
is likely to print them: raw; base64 and base64url at each of the three alignments a value
can take inside a longer encoded stream (the part of the encoding that the value alone
determines); hex in lower and upper case; URL-encoded (as encoders differ: what they leave
unescaped, and their escapes' case); JSON-escaped (as encoders differ:
non-ASCII escaped or kept, ``/`` and HTML's ``<>&`` (Gson's ``='`` too) escaped or not,
escapes in either case, .NET's); and each line of a multi-line secret. A value (or line)
holding control characters, backslashes or quotes is also masked as programs escape it when
they quote it: C's escapes with octal (GNU's
quoting, as ``date``, ``ls`` and ``stat`` print a name), non-ASCII kept or in octal too;
Python's (``repr``, ``ascii``, of text and of bytes); and ``cat -v``'s notation.

Masking is a safety net, not a boundary: a command that means to leak a value can always
transform it some other way (reverse it, encrypt it). Secrets stay out of argv, messages and
the database by construction; masking catches the accidental echo. Output is masked as bytes
before it is decoded, with one compiled pattern (one scan per line, none without secrets),
and long lines are cut where no secret is (``safe_cut``), so a value never escapes by
straddling a cut."""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable

from idp_common.secret_values import MIN_SECRET_LENGTH

MASK = "***"
_ENCODERS: tuple[Callable[[bytes], bytes], ...] = (base64.b64encode, base64.urlsafe_b64encode)


def _aligned_encodings(raw: bytes) -> set[str]:
    """For base64 and base64url: the value encoded alone (with and without padding), and at
    each offset (0, 1 or 2 bytes before the value in a longer encoded stream) the
    characters whose 6 bits all come from the value."""
    forms = set()
    for encode in _ENCODERS:
        alone = encode(raw).decode()
        forms |= {alone, alone.rstrip("=")}
        for offset in range(3):
            encoded = encode(b"\0" * offset + raw).decode()
            start = -(-offset * 8 // 6)  # the first character past the offset's bits
            end = (offset + len(raw)) * 8 // 6  # the last character the value completes
            forms.add(encoded[start:end])
    return forms


_C_ESCAPES = {7: "a", 8: "b", 9: "t", 10: "n", 11: "v", 12: "f", 13: "r", 92: "\\"}


def _c_escaped(raw: bytes, *, octal_above_ascii: bool) -> str:
    escaped = bytearray()
    for byte in raw:
        if byte in _C_ESCAPES:
            escaped += b"\\" + _C_ESCAPES[byte].encode()
        elif byte < 32 or byte == 127 or (byte > 127 and octal_above_ascii):
            escaped += b"\\%03o" % byte
        else:
            escaped.append(byte)
    return escaped.decode("utf-8", "replace")


def _caret(raw: bytes, tab: str) -> str:
    """As ``cat -v`` shows bytes: a control character as ``^A``, a byte above ASCII as
    ``M-`` and its low seven bits (``cat -A`` also shows a tab as ``^I``)."""
    shown = []
    for byte in raw:
        meta, low = ("M-", byte - 128) if byte > 127 else ("", byte)
        if low == 9 and not meta:
            shown.append(tab)
        elif low < 32 or low == 127:
            shown.append(f"{meta}^{chr(low ^ 64)}")
        else:
            shown.append(meta + chr(low))
    return "".join(shown)


# What bash's ``printf %q`` puts a backslash before (its lib/sh/shquote.c; ``#`` and ``~``
# only at the start of a word, where the backslash is not part of the value's own text).
_SHELL_SPECIAL = frozenset(" \t\n'\"\\|&;()<>!{}*[]?^$`,")


def _shell_quoted(text: str) -> set[str]:
    """As shells and GNU tools quote a word: a backslash before each special character
    (bash's ``printf %q``), or in single quotes, a quote in it closed and reopened
    (``ls``, coreutils' ``printf %q``: ``'\\''``; Python's ``shlex.quote``: ``'"'"'``)."""
    return {
        "".join(f"\\{char}" if char in _SHELL_SPECIAL else char for char in text),
        text.replace("'", "'\\''"),
        text.replace("'", "'\"'\"'"),
    }


def _escaped(text: str) -> set[str]:
    """``text`` as programs print it quoted, when it holds what they escape."""
    raw = text.encode()
    gnu_escaped = {
        _c_escaped(raw, octal_above_ascii=False),
        _c_escaped(raw, octal_above_ascii=True),
    }
    return {
        *gnu_escaped,
        *(form.replace(" ", "\\ ") for form in gnu_escaped),  # ls -b, --quoting-style=escape
        *_shell_quoted(text),
        repr(text)[1:-1],
        ascii(text)[1:-1],
        repr(raw)[2:-1],
        _caret(raw, "\t"),
        _caret(raw, "^I"),
    }


_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
# Gson's default: HTML's, and '=' (a base64 key's padding) and "'".
_GSON_SAFE = {**_HTML_SAFE, ord("="): "\\u003d", ord("'"): "\\u0027"}
# What .NET's System.Text.Json escapes beside non-ASCII and control characters, by default.
_DOTNET_ESCAPED = frozenset("<>&'\"+`")
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-f]{4})")


def _dotnet_json(text: str) -> str:
    """As .NET writes it: ``\\u`` escapes in upper case, also of ``+``, quotes and ``<>&``
    (an access key ``ab+cd`` is ``ab\\u002Bcd``)."""
    plain = json.dumps(text, ensure_ascii=False)[1:-1].replace('\\"', '"')
    escaped = "".join(
        "".join(f"\\u{unit:04X}" for unit in _utf16_units(char))
        if char in _DOTNET_ESCAPED or ord(char) > 126
        else char
        for char in plain
    )
    return _upper_escapes(escaped)


def _upper_escapes(form: str) -> str:
    return _UNICODE_ESCAPE.sub(lambda escape: "\\u" + escape[1].upper(), form)


def _utf16_units(char: str) -> list[int]:
    encoded = char.encode("utf-16-be")
    return [int.from_bytes(encoded[i : i + 2], "big") for i in range(0, len(encoded), 2)]


def _json_escaped(text: str) -> set[str]:
    """As JSON encoders write it: non-ASCII as ``\\u`` escapes (Python's default, or in
    upper case as Java's and .NET's) or kept (jq, JavaScript, Go, ``ensure_ascii=False``);
    ``/`` as ``\\/`` (PHP); ``<>&`` as ``\\u003c``… (Go's default), and ``='`` too (Gson's);
    .NET's."""
    forms = {json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]}
    forms |= {form.replace("/", "\\/") for form in forms}
    forms |= {form.translate(table) for form in forms for table in (_HTML_SAFE, _GSON_SAFE)}
    forms |= {_upper_escapes(form) for form in forms}
    return forms | {_dotnet_json(text)}


# What URL encoders leave unescaped beside letters, digits and ``-._~``: nothing (curl,
# jq's @uri, ``quote(safe="")``, ``quote_plus``), ``/`` (Python's ``quote`` by default),
# JavaScript's encodeURIComponent and encodeURI.
_URL_SAFE = ("", "/", "!'()*", ";,/?:@&=+$#!'()*")


def _url_encoded(value: str) -> set[str]:
    """``value`` as each URL encoder writes it, with its escapes' hex in either case."""
    forms = {urllib.parse.quote(value, safe=safe) for safe in _URL_SAFE}
    forms.add(urllib.parse.quote_plus(value))
    return forms | {
        re.sub("%[0-9A-F]{2}", lambda escape: escape[0].lower(), form) for form in forms
    }


def _variants(value: str) -> set[str]:
    raw = value.encode()
    lines = {line for line in value.splitlines() if len(line) >= MIN_SECRET_LENGTH}
    forms = {
        value,
        *_url_encoded(value),
        raw.hex(),
        raw.hex().upper(),
        *_aligned_encodings(raw),
        *lines,
    }
    for text in (value, *lines):
        forms |= _escaped(text) | _json_escaped(text)
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class SecretMasker:
    def __init__(self, values: Iterable[str] = ()) -> None:
        # Longest first, so a secret is masked whole before any of its parts.
        forms = sorted(
            {form for value in values for form in _variants(value)}, key=len, reverse=True
        )
        self._text = re.compile("|".join(map(re.escape, forms))) if forms else None
        encoded = [form.encode() for form in forms]
        self._bytes = re.compile(b"|".join(map(re.escape, encoded))) if forms else None
        self.longest = max(map(len, encoded), default=0)

    def mask(self, text: str) -> str:
        return self._text.sub(MASK, text) if self._text is not None else text

    def mask_bytes(self, data: bytes) -> bytes:
        return self._bytes.sub(MASK.encode(), data) if self._bytes is not None else data

    def safe_cut(self, data: bytes, at: int) -> int:
        """A position near ``at`` to cut ``data`` at without splitting a secret: before the
        secret that would straddle ``at``, or after it when it starts the data."""
        if self._bytes is None:
            return at
        for match in self._bytes.finditer(data, 0, at + self.longest):
            if match.start() < at < match.end():
                return match.start() or match.end()
        return at

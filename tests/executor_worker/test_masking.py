"""Masking tried as a leaking command would: every base64 and base64url alignment, hex in
both cases, values cut by long-line splitting or by the pipe, regex metacharacters,
overlapping secrets, and values printed escaped by the programs that quote them."""

from __future__ import annotations

import base64
import binascii
import os
import random

import pytest

from executor_worker.runner import MAX_LINE_BYTES, RunResult
from idp_common.masking import MASK, SecretMasker
from tests.executor_worker.commands import run

SECRET = 'correct-horse/battery staple&"quoted"'


def determined_part(encoded: str, offset: int, length: int) -> str:
    """The characters of ``encoded`` set by the ``length`` bytes after ``offset`` alone."""
    return encoded[-(-offset * 8 // 6) : (offset + length) * 8 // 6]


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("seed", range(12))
def test_base64_at_every_alignment_is_masked(encode: object, seed: int) -> None:
    rng = random.Random(seed)
    prefix = os.urandom(rng.randrange(0, 7))
    suffix = os.urandom(rng.randrange(0, 7))
    encoded = encode(prefix + SECRET.encode() + suffix).decode()  # type: ignore[operator]
    leaked = determined_part(encoded[len(prefix) // 3 * 4 :], len(prefix) % 3, len(SECRET))
    masked = SecretMasker([SECRET]).mask(f"token: {encoded}")
    assert leaked in encoded
    assert leaked not in masked
    assert MASK in masked


@pytest.mark.parametrize("transform", [binascii.hexlify, lambda raw: binascii.hexlify(raw).upper()])
def test_hex_in_either_case_is_masked(transform: object) -> None:
    shown = transform(b"\x01" + SECRET.encode() + b"\x02").decode()  # type: ignore[operator]
    masked = SecretMasker([SECRET]).mask(shown)
    assert SECRET.encode().hex() not in masked.lower()


def test_regex_metacharacters_in_a_secret_are_literal() -> None:
    masker = SecretMasker(["a.b*c(d)[e]+f?"])
    assert masker.mask("x a.b*c(d)[e]+f? y") == f"x {MASK} y"
    assert masker.mask("aXbbbc(d)[e]f") == "aXbbbc(d)[e]f"


def test_overlapping_secrets_leave_neither_whole() -> None:
    masked = SecretMasker(["abcdef", "cdefgh"]).mask("abcdefgh and cdefgh")
    assert "abcdef" not in masked
    assert "cdefgh" not in masked


def test_no_secret_no_work() -> None:
    masker = SecretMasker()
    assert masker.mask("anything") == "anything"
    assert masker.safe_cut(b"x" * 100, 10) == 10


async def test_a_secret_straddling_a_long_line_cut_is_masked_whole() -> None:
    for before in (MAX_LINE_BYTES - 5, MAX_LINE_BYTES - 1, 0):
        line = "x" * before + SECRET + "y" * 20
        lines = await masked_run(["printf", "%s\\n", line])
        text = "".join(message for stream, message in lines if stream == "stdout")
        assert SECRET not in text
        assert SECRET[:10] not in text
        assert MASK in text


async def test_a_secret_arriving_in_two_reads_across_a_long_line_cut_is_masked() -> None:
    head, tail = SECRET[:5], SECRET[5:]
    filler = "x" * (MAX_LINE_BYTES - 3)
    script = f"printf %s '{filler}{head}'; sleep 0.3; printf '%s\\n' '{tail}'"
    lines = await masked_run(["sh", "-c", script])
    text = "".join(message for _, message in lines)
    assert head not in text.replace("x", "")
    assert MASK in text


async def test_a_secret_written_in_two_pieces_is_masked() -> None:
    head, tail = SECRET[:7], SECRET[7:]
    script = f"printf %s '{head}'; sleep 0.2; printf '%s\\n' '{tail}'"
    lines = await masked_run(["sh", "-c", script])
    assert [message for _, message in lines] == [MASK]


async def test_the_excerpt_never_shows_part_of_a_secret() -> None:
    lines_before = "a" * 4090
    result = await masked_result(["printf", "%s%s\\n", lines_before, SECRET])
    assert SECRET[:6] not in result.stdout_excerpt


async def masked_run(argv: list[str]) -> list[tuple[str, str]]:
    _, lines = await run(argv, masker=SecretMasker([SECRET]))
    return lines


async def masked_result(argv: list[str]) -> RunResult:
    result, _ = await run(argv, masker=SecretMasker([SECRET]))
    return result


MULTI_LINE = "first-line\nTok\tWith\x01Ctl\u00e9-two\\back\nthird-line"
SHOW = "import os; print({}(os.environ['S']))"
ESCAPING_PROGRAMS = [
    # GNU's quoting, in C.UTF-8 (non-ASCII kept) and in the C locale (octal)
    (["date", "-f", "/proc/self/environ"], {}),
    (["date", "-f", "/proc/self/environ"], {"LC_ALL": "C"}),
    (["cat", "-v", "/proc/self/environ"], {}),
    (["cat", "-A", "/proc/self/environ"], {}),
    (["python3", "-c", SHOW.format("repr")], {}),
    (["python3", "-c", SHOW.format("ascii")], {}),
    (["python3", "-c", "import os; print(os.environb[b'S'])"], {}),
    (["python3", "-c", "import os; print(os.environ['S'].splitlines())"], {}),
    # JSON with non-ASCII kept: jq (as JavaScript and Go), Python's ensure_ascii=False
    (["jq", "-n", "env.S"], {}),
    (
        [
            "python3",
            "-c",
            "import json, os; print(json.dumps(os.environ['S'], ensure_ascii=False))",
        ],
        {},
    ),
]


@pytest.mark.parametrize(("argv", "env"), ESCAPING_PROGRAMS)
async def test_a_secret_printed_escaped_is_masked(argv: list[str], env: dict[str, str]) -> None:
    """``date -f`` quoted a secret's control characters (``Tok\\tWith\\001Ctl…``) in its
    error: the line went out in clear."""
    masker = SecretMasker([MULTI_LINE])
    _, lines = await run(argv, env={"S": MULTI_LINE, **env}, masker=masker)
    shown = "\n".join(message for _, message in lines)
    assert MASK in shown, shown
    for part in ("Tok", "With", "Ctl", "back"):
        assert part not in shown, shown


SHELL_WORD = "pass word!x'q$y"
IN_A_FOLDER = ': > "$S" && ls {}'  # in the run's own work folder


@pytest.mark.parametrize(
    "argv",
    [
        ["bash", "-c", 'printf "%q\\n" "$S"'],  # pass\ word\!x\'q\$y
        ["sh", "-c", 'env printf "%q\\n" "$S"'],  # coreutils: 'pass word!x'\''q$y'
        ["sh", "-c", IN_A_FOLDER.format("-b")],  # pass\ word!x'q$y
        ["sh", "-c", IN_A_FOLDER.format("--quoting-style=escape")],
        ["sh", "-c", IN_A_FOLDER.format("--quoting-style=shell-always")],
        ["python3", "-c", "import os, shlex; print(shlex.quote(os.environ['S']))"],
    ],
)
async def test_a_secret_quoted_as_a_shell_word_is_masked(argv: list[str]) -> None:
    """``ls -b`` and ``printf %q`` printed a secret holding a space or a quote with
    backslashes or quotes in it: the line went out in clear."""
    _, lines = await run(argv, env={"S": SHELL_WORD}, masker=SecretMasker([SHELL_WORD]))
    shown = "\n".join(message for _, message in lines)
    assert MASK in shown, shown
    assert "word" not in shown, shown


def test_a_secret_in_each_encoders_json_is_masked() -> None:
    """Encoders differ in what they escape: PHP writes ``/`` as ``\\/``, Go ``<>&`` as
    ``\\u003c``…, jq and JavaScript keep non-ASCII that Python escapes."""
    value = 'pä/ss<w>&rd"1'
    masker = SecretMasker([value])
    for shown in (
        '"p\\u00e4\\/ss<w>&rd\\"1"',  # PHP
        '"pä/ss\\u003cw\\u003e\\u0026rd\\"1"',  # Go
        '"pä/ss<w>&rd\\"1"',  # jq, JavaScript
    ):
        assert masker.mask(f"token={shown}") == f'token="{MASK}"', shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("AKs3cr/et+K3y", "AKs3cr/et\\u002BK3y"),  # .NET escapes '+' (and quotes, <>&)
        ("pä/ss<w>&rd'1", "p\\u00E4/ss\\u003Cw\\u003E\\u0026rd\\u00271"),  # .NET
        ("päss\x1bword", "p\\u00E4ss\\u001Bword"),  # Java's escapes, in upper case
        # Gson's default escapes '=' and "'" too: a base64 key's padding.
        ("c2VjcmV0LWtleQ==", "c2VjcmV0LWtleQ\\u003d\\u003d"),
        ("it's<a>&b=c", "it\\u0027s\\u003ca\\u003e\\u0026b\\u003dc"),
    ],
)
def test_a_secret_in_json_as_java_and_dotnet_escape_it_is_masked(value: str, shown: str) -> None:
    assert SecretMasker([value]).mask(f'{{"key":"{shown}"}}') == f'{{"key":"{MASK}"}}'


@pytest.mark.parametrize(
    "shown",
    [
        "AKs3cr/et%2BK3y%21%28x%29",  # Python's urllib.parse.quote, which keeps '/'
        "AKs3cr%2Fet%2BK3y!(x)",  # JavaScript's encodeURIComponent
        "AKs3cr%2fet%2bK3y%21%28x%29",  # escapes in lower case
    ],
)
def test_a_secret_in_each_url_encoders_form_is_masked(shown: str) -> None:
    """Only the form that escapes every reserved character was masked: an access key
    holding '/' and '+' went out in clear as Python's quote() or JavaScript wrote it."""
    masked = SecretMasker(["AKs3cr/et+K3y!(x)"]).mask(f"GET /?key={shown} HTTP/1.1")
    assert masked == f"GET /?key={MASK} HTTP/1.1"

"""One call to a data source's upstream: dependent values substituted into the query and
body (never the host), auth from a resolved secret reference, the outbound SSRF rules, a
capped response, and JMESPath mapping of the JSON to ``[{value, label}]``."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.visitor import TreeInterpreter
from prometheus_client import Histogram

from datasource_svc.models import DataSource
from idp_common.content_decoding import read_capped
from idp_common.events import SecretBinding
from idp_common.masking import SecretMasker
from idp_common.outbound import OutboundRefused, guarded_client
from idp_common.schemas import UNSTORABLE_TEXT, unstorable
from idp_common.secret_values import SecretResolver, SecretUnavailable
from idp_common.values import MAX_DIGITS

HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
EXCERPT_CHARS = 2000
# What one mapping may build: the lengths of every list, object and string its expressions
# give, summed. [@,@,@,@,@,@,@,@,@,@][] multiplies a list tenfold in 24 characters (six of
# them on 100 elements: 10^8 references, 800 MB); 5,000 options of long labels stay far below.
MAPPING_WORK = 10_000_000
UPSTREAM_SECONDS = Histogram(
    "idp_upstream_request_seconds",
    "Calls to a data source's upstream (its slug), answered or not.",
    ["source"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class UpstreamFailed(Exception):
    """The upstream could not give options; ``timed_out`` tells 504 from 502."""

    def __init__(self, message: str, *, timed_out: bool = False, excerpt: str | None = None):
        super().__init__(message)
        self.timed_out = timed_out
        self.excerpt = excerpt


@dataclass(frozen=True)
class Fetched:
    status_code: int
    excerpt: str
    options: list[dict[str, str]]


def placeholders(source: DataSource) -> set[str]:
    texts = [*source.query.values(), json.dumps(source.body)]
    return {name for text in texts for name in PLACEHOLDER.findall(text)}


def _fill(text: str, values: Mapping[str, str]) -> str:
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), text)


def _fill_body(value: Any, values: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return _fill(value, values)
    if isinstance(value, dict):
        return {key: _fill_body(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill_body(item, values) for item in value]
    return value


def _not_a_json_constant(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _integer(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_DIGITS:  # int() would name sys.set_int_max_str_digits
        raise UpstreamFailed(
            f"the upstream's answer holds an integer of more than {MAX_DIGITS} digits"
        )
    return int(digits)


def parse_answer(content: bytes) -> Any:
    """The upstream's JSON, as RFC 8259 has it: NaN and Infinity, which Python's parser takes,
    are refused."""
    try:
        return json.loads(content, parse_constant=_not_a_json_constant, parse_int=_integer)
    except ValueError as exc:
        raise UpstreamFailed(f"the upstream did not answer JSON: {exc}") from None
    except RecursionError:
        raise UpstreamFailed("the upstream's JSON is nested too deeply to be read") from None


def _option_text(selected: Any, part: str, number: int) -> str:
    """A string as it is; a number or a boolean as JSON writes it (``true``, ``1.5``)."""
    if isinstance(selected, str):
        text = selected
    elif isinstance(selected, bool | int) or (
        isinstance(selected, float) and math.isfinite(selected)
    ):
        text = json.dumps(selected)
    elif isinstance(selected, float):  # 1e400
        raise UpstreamFailed(f"the {part} of option {number} is a number too large to be read")
    else:
        kind = "an object" if isinstance(selected, dict) else "a list"
        raise UpstreamFailed(
            f"the {part} of option {number} is {kind}, not a string, a number or a boolean"
        )
    # A NUL byte could never be submitted; a lone surrogate not even shown (no UTF-8).
    if (why := unstorable(text)) is not None:
        raise UpstreamFailed(f"the {part} of option {number} {UNSTORABLE_TEXT[why]}")
    return text


class _BoundedInterpreter(TreeInterpreter):  # type: ignore[misc]
    """JMESPath's interpreter, stopped past a deadline or once it built ``MAPPING_WORK``."""

    def __init__(self, source: DataSource, deadline: float) -> None:
        super().__init__()
        self._source = source
        self._deadline = deadline
        self._work = 0

    def visit(self, node: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() > self._deadline:
            raise UpstreamFailed(
                "mapping the upstream's answer took longer than the source's timeout_seconds "
                f"({self._source.timeout_seconds:g}s)",
                timed_out=True,
            )
        result = super().visit(node, *args, **kwargs)
        if isinstance(result, list | dict | str):
            self._work += len(result)
            if self._work > MAPPING_WORK:
                raise UpstreamFailed(
                    f"the mapping builds more than {MAPPING_WORK} elements and characters "
                    "(items_path, value_expr, label_expr)"
                )
        return result

    def search(self, expression: str, document: Any) -> Any:
        return self.visit(jmespath.compile(expression).parsed, document)


def map_options(source: DataSource, document: Any, deadline: float) -> list[dict[str, str]]:
    """The options the source's expressions select from ``document`` by ``deadline``
    (``time.monotonic``); an expression that cannot apply to it (``abs(name)`` of a text)
    is the upstream's answer not fitting."""
    try:
        return _mapped(source, document, _BoundedInterpreter(source, deadline))
    except JMESPathError as exc:
        raise UpstreamFailed(f"the mapping does not fit the upstream's answer: {exc}") from None
    except RecursionError:
        raise UpstreamFailed("the mapping is nested too deeply to be evaluated") from None


def _mapped(
    source: DataSource, document: Any, interpreter: _BoundedInterpreter
) -> list[dict[str, str]]:
    items = interpreter.search(source.items_path, document)
    if not isinstance(items, list):
        raise UpstreamFailed(f"items_path {source.items_path!r} did not select a list")
    options: dict[str, str] = {}  # value -> label; the first of a value named twice is kept
    for number, item in enumerate(items[: source.max_options]):
        value = interpreter.search(source.value_expr, item)
        label = interpreter.search(source.label_expr, item) if source.label_expr else value
        if value is None:
            continue
        text = _option_text(value, "value", number)
        if text not in options:
            options[text] = _option_text(value if label is None else label, "label", number)
    return [{"value": value, "label": label} for value, label in options.items()]


def _with_query(url: httpx.URL, query: Mapping[str, str], values: Mapping[str, str]) -> httpx.URL:
    """``url`` with the source's ``query`` (placeholders filled) after the query written in it,
    which is kept as written (httpx's ``params=`` would replace it)."""
    filled = str(httpx.QueryParams({name: _fill(text, values) for name, text in query.items()}))
    both = "&".join(part for part in (url.query.decode("ascii"), filled) if part)
    try:
        return url.copy_with(query=both.encode("ascii") or None)
    except httpx.InvalidURL:  # past the client's 64 KiB a URL part may take
        raise UpstreamFailed(
            f"the values given make the source's query {len(both)} characters long once "
            "encoded, more than a URL can carry: send long values in a POST body"
        ) from None


async def _auth_headers(
    source: DataSource, secrets: SecretResolver
) -> tuple[dict[str, str], SecretMasker]:
    """The headers of the source's auth, and what masks its secret (an upstream may quote
    the credential it was sent in its answer, which the source's test shows)."""
    config = source.auth_config
    if not config:
        return {}, SecretMasker()
    binding = SecretBinding(env_var="SECRET", **config["secret"])
    try:
        secret = (await secrets.resolve(source.tenant, [binding]))["SECRET"]
    except SecretUnavailable as exc:
        raise UpstreamFailed(f"the source's secret is unavailable: {exc}") from None
    masker = SecretMasker([secret])
    if config["type"] == "basic":
        token = base64.b64encode(f"{config['username']}:{secret}".encode()).decode()
        return {"Authorization": f"Basic {token}"}, masker
    # Sent as it is: httpx's own refusal would quote the character it cannot encode, and where.
    if not HEADER_VALUE.fullmatch(secret):
        raise UpstreamFailed(
            f"the source's secret {binding.key} is not printable ASCII text, which a header "
            "cannot carry (a basic auth_config's can be any text)"
        )
    if config["type"] == "bearer":
        return {"Authorization": f"Bearer {secret}"}, masker
    return {config["header_name"]: secret}, masker


async def fetch_options(
    source: DataSource,
    values: Mapping[str, str],
    *,
    secrets: SecretResolver,
    allowed_hosts: list[str],
    response_cap_bytes: int,
) -> Fetched:
    with UPSTREAM_SECONDS.labels(source.slug).time():
        return await _fetch(source, values, secrets, allowed_hosts, response_cap_bytes)


async def _fetch(
    source: DataSource,
    values: Mapping[str, str],
    secrets: SecretResolver,
    allowed_hosts: list[str],
    response_cap_bytes: int,
) -> Fetched:
    # The mapping counts in the source's timeout too, off the event loop.
    deadline = time.monotonic() + source.timeout_seconds
    # By lower-case name, so each goes out once (a source saved before that was checked may
    # name one twice); the secret's wins.
    auth, masker = await _auth_headers(source, secrets)
    written = dict(source.headers) | auth
    headers = {name.lower(): value for name, value in written.items()}
    url = _with_query(httpx.URL(str(source.endpoint_url)), source.query, values)
    body = {} if source.body is None else {"json": _fill_body(source.body, values)}
    try:
        # httpx's timeout bounds each read, not the answer: one trickled a byte at a time
        # would hold the request (and the cold requests coalesced on it) for as long as
        # it likes.
        async with (
            asyncio.timeout(source.timeout_seconds),
            guarded_client(
                allowed_hosts, source.timeout_seconds, "DATASOURCE_OUTBOUND_ALLOWED_HOSTS"
            ) as client,
        ):
            request = client.build_request(source.method, url, headers=headers, **body)
            response = await client.send(request, stream=True)
            try:
                content, truncated = await read_capped(response, response_cap_bytes)
            finally:
                await response.aclose()
    except OutboundRefused as exc:
        raise UpstreamFailed(f"outbound call refused: {exc}") from None
    except (httpx.TimeoutException, TimeoutError):
        raise UpstreamFailed(
            "the upstream did not answer within the source's timeout_seconds "
            f"({source.timeout_seconds:g}s)",
            timed_out=True,
        ) from None
    except httpx.DecodingError as exc:
        raise UpstreamFailed(f"the upstream's answer could not be read: {exc}") from None
    except httpx.HTTPError as exc:
        raise UpstreamFailed(f"the upstream could not be reached: {type(exc).__name__}") from None
    except (httpx.InvalidURL, ValueError) as exc:  # a stored URL or a redirect's, unusable
        raise UpstreamFailed(f"the request could not be made: {exc}") from None
    excerpt = masker.mask_bytes(content)[:EXCERPT_CHARS].decode("utf-8", errors="replace")
    if truncated:
        raise UpstreamFailed(
            f"the response exceeds {response_cap_bytes} bytes (DATASOURCE_RESPONSE_CAP_BYTES)",
            excerpt=excerpt,
        )
    if not response.is_success:
        raise UpstreamFailed(f"the upstream answered HTTP {response.status_code}", excerpt=excerpt)
    try:
        document = parse_answer(content)
        options = await asyncio.to_thread(map_options, source, document, deadline)
    except UpstreamFailed as exc:
        exc.excerpt = excerpt
        raise
    return Fetched(response.status_code, excerpt, options)

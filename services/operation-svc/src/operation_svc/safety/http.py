"""HTTP operation templates, safe by construction (no I/O here).

The scheme and host of the URL are literal; values substituted into its path or query are
percent-encoded, so they cannot change the destination. Header names are literal and header
values may not contain CR, LF or NUL. The body is a JSON document whose string leaves may hold
placeholders; values are substituted into the parsed document, never into JSON text.
Secret parameters are refused: only a worker can open them, and it opens them into a
command's environment, never into a request.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from idp_common.outbound import (
    HEADER_VALUE_RULE,
    header_named_again,
    sendable_header_value,
    settable_header_name,
    unusable_url,
)
from idp_common.values import as_text
from operation_svc.safety.commands import PLACEHOLDER, normalize_placeholders
from operation_svc.safety.parameters import ParameterSpec, Value
from operation_svc.safety.sizes import check_rendered_size
from operation_svc.safety.verdict import Refusal

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
DOT_SEGMENTS = frozenset({".", ".."})


@dataclass(frozen=True)
class RenderedHttp:
    method: str
    url: str
    headers: dict[str, str]
    body: Any
    values: dict[str, Value]

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url, "headers": self.headers, "body": self.body}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def compile_http(spec: Mapping[str, Any], parameters: Sequence[ParameterSpec]) -> dict[str, Any]:
    """Check an HTTP template at save time; returns it normalized."""
    if secret := next((spec.name for spec in parameters if spec.type == "secret"), None):
        raise Refusal(
            "secret_in_http",
            "HTTP templates take no secret parameter (a worker opens secrets only into a "
            "command's environment): use a command template, which reads IDP_PARAM_"
            f"{secret.upper()}",
            secret,
        )
    method = str(spec.get("method", "GET")).upper()
    if method not in METHODS:
        raise Refusal("method", f"{method} is not one of {sorted(METHODS)}", at="method")
    url = normalize_placeholders(str(spec.get("url", "")))
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # "http://[::1/": an unclosed address
        raise Refusal("url", f"the URL is not a URL: {exc}", at="url") from None
    if "{{" in parts.scheme + parts.netloc:
        raise Refusal("placeholder_in_host", "the scheme, host and port must be literal", at="url")
    if (unusable := unusable_url(url)) is not None:
        raise Refusal("url", f"the URL {unusable}", at="url")
    if DOT_SEGMENTS & set(parts.path.split("/")):
        raise Refusal(
            "url", "the URL's path holds a '.' or '..' segment: write the path it names", at="url"
        )
    written_headers = spec.get("headers") or {}
    headers = {name: normalize_placeholders(str(value)) for name, value in written_headers.items()}
    body = _map_strings(spec.get("body"), normalize_placeholders)
    if (again := header_named_again(headers)) is not None:
        raise Refusal(
            "header_name",
            f"{again!r} is named twice (header names ignore case): write it once",
            at=f"headers.{again}",
        )
    for name, value in headers.items():
        if not settable_header_name(name):
            raise Refusal("header_name", f"{name!r} cannot be set", at=f"headers.{name}")
        if not sendable_header_value(value):
            raise Refusal(
                "header_value", f"the value of {name} {HEADER_VALUE_RULE}", at=f"headers.{name}"
            )
    declared = {parameter.name for parameter in parameters}
    texts = [url, *headers.values(), *_strings(body)]
    used = {name for text in texts for name in PLACEHOLDER.findall(text)}
    for name in sorted(used - declared):
        raise Refusal("undeclared_parameter", f"{{{{{name}}}}} is not declared", name)
    for name in sorted(declared - used):
        raise Refusal(
            "unused_parameter",
            f"{name} is declared but the request never uses it: write {{{{{name}}}}} in the "
            "URL's path or query, a header value or the body",
            name,
        )
    for text in texts:
        if "{{" in PLACEHOLDER.sub("", text) or "}}" in PLACEHOLDER.sub("", text):
            raise Refusal(
                "malformed_placeholder",
                f"{text[:100]!r} holds '{{{{' or '}}}}' that is not a placeholder {{{{name}}}}",
            )
    return {"method": method, "url": url, "headers": headers, "body": body}


def _substitute(text: str, values: Mapping[str, str], encode: bool = False) -> str:
    def replacement(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return urllib.parse.quote(value, safe="") if encode else value

    return PLACEHOLDER.sub(replacement, text)


def _render_path(path: str, values: Mapping[str, str]) -> str:
    """The path with its values in, each within its segment: a value that makes a whole
    segment ``.`` or ``..`` is refused, as the client (and any server after it) would
    resolve it and send the request to another path than the one approved."""
    segments = []
    for segment in path.split("/"):
        rendered = _substitute(segment, values, encode=True)
        if rendered in DOT_SEGMENTS:
            raise Refusal(
                "dot_segment",
                f"a value may not make a segment of the URL's path {rendered!r}: the request "
                "would go to another path",
                next(name for name in PLACEHOLDER.findall(segment) if values[name]),
            )
        segments.append(rendered)
    return "/".join(segments)


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    """``value`` (a JSON document) with ``change`` applied to every string leaf."""
    if isinstance(value, str):
        return change(value)
    if isinstance(value, Mapping):
        return {key: _map_strings(item, change) for key, item in value.items()}
    if isinstance(value, list):
        return [_map_strings(item, change) for item in value]
    return value


def _first(
    names: list[str], refused: Callable[[str], bool], values: Mapping[str, str]
) -> str | None:
    return next((name for name in names if refused(values[name])), names[0] if names else None)


def render_http(spec: Mapping[str, Any], typed: Mapping[str, Value]) -> RenderedHttp:
    """Substitute validated, normalized values into a saved HTTP template (single pass)."""
    values = {name: as_text(value) for name, value in typed.items()}
    parts = urllib.parse.urlsplit(spec["url"])
    url = urllib.parse.urlunsplit(
        (
            parts.scheme,
            parts.netloc,
            _render_path(parts.path, values),
            _substitute(parts.query, values, encode=True),
            _substitute(parts.fragment, values, encode=True),
        )
    )
    headers = {}
    for name, template in spec["headers"].items():
        rendered = _substitute(str(template), values)
        # The value at fault: the first one the header takes that is refused alone, else its
        # first (together they made it unsendable).
        taken = PLACEHOLDER.findall(str(template))
        if any(character in rendered for character in "\r\n\x00"):
            raise Refusal(
                "header_injection",
                f"the value of {name} may not contain CR, LF or NUL",
                _first(taken, lambda value: any(c in value for c in "\r\n\x00"), values),
            )
        if not sendable_header_value(rendered):
            raise Refusal(
                "header_value",
                f"the value of {name} {HEADER_VALUE_RULE}",
                _first(taken, lambda value: not sendable_header_value(value), values),
            )
        headers[name] = rendered
    body = _map_strings(spec["body"], lambda text: _substitute(text, values))
    request = RenderedHttp(spec["method"], url, headers, body, dict(typed))
    check_rendered_size("the rendered request", request.as_dict())
    return request

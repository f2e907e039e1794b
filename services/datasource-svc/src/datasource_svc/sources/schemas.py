from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import AfterValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from idp_common.outbound import (
    HEADER_VALUE_RULE,
    HTTP_URL_SCHEMA,
    MAX_SOURCE_TIMEOUT_SECONDS,
    header_named_again,
    sendable_header_value,
    settable_header_name,
    unusable_url,
)
from idp_common.redaction import mask_secrets, masked_credentials, masked_url
from idp_common.schemas import (
    DISTINCT_VALUES,
    JsonBody,
    OptionIn,
    PatchModel,
    ResponseModel,
    Slug,
    StrictModel,
    json_path_to,
)

# Deeper expressions ("!" 470 times) overflowed the interpreter's stack at every lookup.
MAX_EXPRESSION_DEPTH = 32


def _compiled(expression: str) -> str:
    try:
        parsed = jmespath.compile(expression).parsed
    except JMESPathError as exc:
        raise ValueError(f"not a valid JMESPath expression: {exc}") from exc
    except RecursionError:
        parsed = None
    if parsed is None or _depth(parsed) > MAX_EXPRESSION_DEPTH:
        raise ValueError(f"nested more than {MAX_EXPRESSION_DEPTH} levels deep")
    return expression


def _depth(node: dict[str, Any]) -> int:
    deepest, below = 0, [(node, 1)]
    while below:
        node, depth = below.pop()
        deepest = max(deepest, depth)
        below.extend((child, depth + 1) for child in node["children"] if isinstance(child, dict))
    return deepest


# Where ``{{name}}`` is written anywhere else, it was sent as written (``/%7B%7Bx%7D%7D``).
FILLED_PLACES = "placeholders are filled in query values and body values only"


def _http_url(url: str) -> str:
    if "{{" in url:
        raise ValueError(f"holds '{{{{': {FILLED_PLACES}")
    if (unusable := unusable_url(url)) is not None:
        raise ValueError(unusable)
    return url


JMESPathExpression = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_compiled)]
EndpointUrl = Annotated[
    str, Field(max_length=2000, json_schema_extra=HTTP_URL_SCHEMA), AfterValidator(_http_url)
]


Name = Annotated[str, Field(min_length=1, max_length=200)]
Options = Annotated[list[OptionIn], Field(max_length=5000), DISTINCT_VALUES]
Strings = Annotated[dict[str, Annotated[str, Field(max_length=2000)]], Field(max_length=30)]


def _sendable_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not settable_header_name(name):
            raise ValueError(f"{name!r} cannot be set")
        if not sendable_header_value(value):
            raise ValueError(f"the value of {name} {HEADER_VALUE_RULE}")
    return headers


Headers = Annotated[Strings, AfterValidator(_sendable_headers)]


def _literal_names(query: dict[str, str]) -> dict[str, str]:
    for name in query:
        if "{{" in name:
            raise ValueError(f"the name {name!r} holds '{{{{': {FILLED_PLACES}")
    return query


def _holds_braces(key: Any, _value: Any) -> bool | None:
    return (isinstance(key, str) and "{{" in key) or None


def _literal_keys(body: Any) -> Any:
    if (found := json_path_to(body, _holds_braces)) is not None:
        raise PydanticCustomError(
            "placeholder_in_key", f"a key holds '{{{{': {FILLED_PLACES}", {"path": found[1]}
        )
    return body


Query = Annotated[Strings, AfterValidator(_literal_names)]
Body = Annotated[JsonBody, AfterValidator(_literal_keys)]
TtlSeconds = Annotated[int, Field(ge=0, le=86400)]
TimeoutSeconds = Annotated[float, Field(ge=0.1, le=MAX_SOURCE_TIMEOUT_SECONDS)]
MaxOptions = Annotated[int, Field(ge=1, le=5000)]


class SecretReference(StrictModel):
    provider: Literal["env", "file", "aws-secretsmanager"]
    key: Annotated[str, Field(min_length=1, max_length=500)]


def _auth_header_name(name: str) -> str:
    # Nor Cookie: the client drops it at each redirect and sends its own jar's instead.
    if not settable_header_name(name) or name.lower() == "cookie":
        raise ValueError(f"{name!r} cannot carry the secret")
    return name


class AuthConfig(StrictModel):
    """How to authenticate to the upstream; the secret is a reference, never a value."""

    type: Literal["bearer", "basic", "header"]
    secret: SecretReference
    username: Annotated[str, Field(max_length=200)] | None = None
    header_name: (
        Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,100}$"), AfterValidator(_auth_header_name)]
        | None
    ) = None

    @model_validator(mode="after")
    def _complete(self) -> AuthConfig:
        if self.type == "basic" and not self.username:
            raise ValueError("basic auth needs a username")
        if self.type == "header" and not self.header_name:
            raise ValueError("header auth needs header_name")
        return self

    def secret_header(self) -> str:
        """The header, in lower case, that carries the secret."""
        return (self.header_name or "").lower() if self.type == "header" else "authorization"


class DataSourceIn(StrictModel):
    slug: Slug
    name: Name
    source_type: Literal["http", "static"]
    options: Options | None = None
    endpoint_url: EndpointUrl | None = None
    method: Literal["GET", "POST"] = "GET"
    headers: Headers = {}
    query: Query = {}
    body: Body = None
    auth_config: AuthConfig | None = None
    items_path: JMESPathExpression = "@"
    value_expr: JMESPathExpression = "@"
    label_expr: JMESPathExpression | None = None
    ttl_seconds: TtlSeconds = 300
    timeout_seconds: TimeoutSeconds = 5.0
    max_options: MaxOptions = 500

    @model_validator(mode="after")
    def _kind(self) -> DataSourceIn:
        if self.source_type == "static" and not self.options:
            raise ValueError("a static source needs options")
        if self.source_type == "http" and not self.endpoint_url:
            raise ValueError("an http source needs endpoint_url")
        written = urllib.parse.urlsplit(self.endpoint_url or "").query
        for name, _ in urllib.parse.parse_qsl(written, keep_blank_values=True):
            if name in self.query:
                raise PydanticCustomError(
                    "query_in_url_too",
                    "{name} is in endpoint_url's query too: write it in one place",
                    {"name": name, "path": ["query", name]},
                )
        self._headers_once()
        return self

    def _headers_once(self) -> None:
        """Each header is sent once: a name written twice (in any case), or also set by
        ``auth_config``, went out twice, which a server may refuse (this platform's do)."""
        credential = [self.auth_config.secret_header()] if self.auth_config else []
        if (name := header_named_again(self.headers, credential)) is not None:
            raise PydanticCustomError(
                "header_twice",
                "{name} is sent once: it is named twice, or auth_config sets it",
                {"name": name, "path": ["headers", name]},
            )

    @classmethod
    def revised(cls, current: object, changes: Mapping[str, Any]) -> DataSourceIn:
        """The ``current`` definition with ``changes`` applied, checked as a whole like a new
        source (raises pydantic's ValidationError)."""
        kept = {name: getattr(current, name) for name in cls.model_fields}
        return cls.model_validate(kept | dict(changes))


class DataSourceUpdate(PatchModel):
    """Change a data source: omitted attributes keep their value; ``null`` clears an optional
    one (``label_expr``, ``auth_config``, ...)."""

    clearable = frozenset({"options", "endpoint_url", "body", "auth_config", "label_expr"})

    slug: Slug | None = None
    name: Name | None = None
    source_type: Literal["http", "static"] | None = None
    options: Options | None = None
    endpoint_url: EndpointUrl | None = None
    method: Literal["GET", "POST"] | None = None
    headers: Headers | None = None
    query: Query | None = None
    body: Body = None
    auth_config: AuthConfig | None = None
    items_path: JMESPathExpression | None = None
    value_expr: JMESPathExpression | None = None
    label_expr: JMESPathExpression | None = None
    ttl_seconds: TtlSeconds | None = None
    timeout_seconds: TimeoutSeconds | None = None
    max_options: MaxOptions | None = None


def _secrets_masked(body: Any) -> Any:
    return mask_secrets(body) if isinstance(body, Mapping) else body


class DataSourceOut(ResponseModel):
    id: uuid.UUID
    slug: str
    name: str
    source_type: str
    options: list[dict[str, str]] | None
    # Credentials written into its request are shown masked, as in the audit log.
    endpoint_url: Annotated[str, AfterValidator(masked_url)] | None
    method: str
    headers: Annotated[dict[str, str], AfterValidator(masked_credentials)]
    query: Annotated[dict[str, str], AfterValidator(masked_credentials)]
    body: Annotated[Any, AfterValidator(_secrets_masked)]
    auth_config: dict[str, Any] | None
    items_path: str
    value_expr: str
    label_expr: str | None
    ttl_seconds: int
    timeout_seconds: float
    max_options: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class ResolveIn(StrictModel):
    values: Annotated[dict[str, str | int | float | bool | None], Field(max_length=50)] = {}


class Option(ResponseModel):
    value: str
    label: str


class ResolveOut(ResponseModel):
    options: list[Option]
    cached: bool
    fetched_at: datetime
    stale: bool


class TestOut(ResponseModel):
    """What one call of the upstream gave; a static source calls none (no status code, no
    excerpt) and shows its options."""

    status_code: int | None
    response_excerpt: str | None
    options: list[Option]
    error: str | None

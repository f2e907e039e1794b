"""Request-model conventions: unknown fields and text no database here can store are
refused, slugs and names have one shape."""

from __future__ import annotations

import math
import re
import types
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin

from fastapi import Path
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from idp_common.redaction import mask_secrets
from idp_common.values import EXACT_FLOAT_INTEGERS


def json_members(value: Any) -> Iterable[tuple[Any, Any]]:
    """An object's keys and values, an array's indexes and items; nothing for a scalar."""
    if isinstance(value, dict):
        return value.items()
    return enumerate(value) if isinstance(value, list) else ()


Found = TypeVar("Found")


def json_path_to(
    data: Any, found: Callable[[Any, Any], Found | None]
) -> tuple[Found, list[str | int]] | None:
    """What ``found(key, value)`` says of the first member of a JSON document (depth first)
    it says anything of, and the path to that member; None when it says nothing."""
    for key, value in json_members(data):
        if (said := found(key, value)) is not None:
            return said, [key]
        if (inner := json_path_to(value, found)) is not None:
            return inner[0], [key, *inner[1]]
    return None


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unstorable(text: str) -> str | None:
    """Why no text column here can hold ``text`` (a NUL byte; a lone surrogate, which JSON's
    \\ud800 escapes can spell and which has no UTF-8), or None."""
    if "\x00" in text:
        return "nul_byte"
    if not text.isascii() and LONE_SURROGATE.search(text):
        return "lone_surrogate"
    return None


def unstorable_value(data: Any) -> tuple[str, list[str | int]] | None:
    """Why and where a JSON document holds what cannot be stored: text (a key or a string)
    no column can hold, or a number JSON cannot write (Python's parser reads ``NaN``,
    ``Infinity`` and a number past the largest float, ``1e400``, as floats that
    PostgreSQL's json refuses and SQLite's shows as null), or None."""
    if (why := _unstorable_scalar(data)) is not None:
        return why, []
    return json_path_to(data, _unstorable_member)


def _unstorable_scalar(value: Any) -> str | None:
    if isinstance(value, str):
        return unstorable(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "finite_number"
    return None


def _unstorable_member(key: Any, value: Any) -> str | None:
    if isinstance(key, str) and (why := unstorable(key)) is not None:
        return why
    return _unstorable_scalar(value)


UNSTORABLE_TEXT = {
    "nul_byte": "must not contain NUL bytes",
    "lone_surrogate": "must be Unicode text: a lone surrogate (\\ud800-\\udfff) is not",
}
UNSTORABLE_VALUE = UNSTORABLE_TEXT | {
    "finite_number": "must be a finite number: JSON has no NaN or Infinity, and 1e400 is past "
    "the largest there is",
}


# How deep a request's JSON may nest (objects and arrays, the body itself the first level):
# no form, template or source needs more, and the recursive walks over a document and its
# serialization (pydantic stops at 255 levels) must never reach their limits.
MAX_JSON_DEPTH = 32


def too_deep_path(data: Any) -> list[str | int] | None:
    """The field (the body's key holding it, or [] for the body) of JSON nested deeper than
    ``MAX_JSON_DEPTH``, or None. Walked without recursion: the document may be as deep as
    the JSON parser allows."""
    pending: list[tuple[Any, int, list[str | int]]] = [(data, 1, [])]
    while pending:
        value, depth, field = pending.pop()
        for key, child in json_members(value):
            if isinstance(child, dict | list):
                if depth == MAX_JSON_DEPTH:
                    return field or [key]
                pending.append((child, depth + 1, field or [key]))
    return None


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once in UTC") from None


# A moment a client gives: with its offset (a naive time means nothing here), in UTC range.
UtcTimestamp = Annotated[AwareDatetime, AfterValidator(_in_utc)]


def exact_as_a_float(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > EXACT_FLOAT_INTEGERS:
        raise PydanticCustomError(
            "inexact_integer",
            "must be between -2**53 and 2**53: a float, which a bound is kept as and a form "
            "reads a number as, holds no larger integer exactly",
        )
    return value


# A number a definition keeps (a field's or a parameter's default, an enum value, a bound)
# is read as a float: bounds are kept as floats, a form reads a default as a JavaScript
# number, and SQLite stored a default past 2**63 as a REAL (every submission without the
# field then failed). An integer past 2**53 would come back as other digits, so it is
# refused; a value (form data, parameters) may be any integer written as digits.
EXACT_NUMBER = BeforeValidator(exact_as_a_float)

# A body a definition sends (a data source's, an HTTP template's) is any JSON whose integers
# fit 64 bits: SQLite keeps a larger one standing alone as an approximate REAL, and one rule
# holds for each integer of a body, wherever it stands.
BODY_INTEGERS = range(-(2**63), 2**63)


def _too_large(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value not in BODY_INTEGERS


def _too_large_at(body: Any) -> list[str | int] | None:
    """Where a JSON document holds an integer outside ``BODY_INTEGERS``, or None."""
    if _too_large(body):
        return []
    found = json_path_to(body, lambda _key, value: _too_large(value) or None)
    return None if found is None else found[1]


def _integers_of_64_bits(body: Any) -> Any:
    if (path := _too_large_at(body)) is not None:
        raise PydanticCustomError(
            "integer_too_large", "an integer must be between -2**63 and 2**63-1", {"path": path}
        )
    return body


JsonBody = Annotated[Any, AfterValidator(_integers_of_64_bits)]


def error_location(error: Mapping[str, Any]) -> tuple[str | int, ...]:
    """Where one of pydantic's errors is: its ``loc``, then the ``path`` a check of a whole
    model names (StrictModel's refusals are raised for the model, not for an attribute)."""
    return (*error["loc"], *error.get("ctx", {}).get("path", ()))


# A boolean or numeric attribute takes that JSON type only: pydantic's lax mode read ``true``
# as 1 (a timeout, an approval's expiry of one second) and ``"1"`` or ``0`` as a boolean.
JSON_TYPE_MESSAGES: dict[type, str] = {
    bool: "Input should be a valid boolean",
    int: "Input should be a valid integer",
    float: "Input should be a valid number",
}


def _bare(annotation: Any) -> Any:
    """``annotation`` without ``Annotated`` and ``| None``: one type, or None for a union."""
    if get_origin(annotation) is Annotated:
        return _bare(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        others = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _bare(others[0]) if len(others) == 1 else None
    return annotation


def _is_json(kind: type, value: Any) -> bool:
    """Whether ``value`` is JSON of ``kind``'s type (a boolean is no number)."""
    if isinstance(value, bool):
        return kind is bool
    return kind is not bool and isinstance(value, int | float if kind is float else int)


def wrong_json_type(model: type[BaseModel], data: Any) -> tuple[type, list[str | int]] | None:
    """The type and place of the first boolean or numeric attribute of ``model`` (or of a
    model it holds that is no StrictModel, which checks itself) that ``data`` gives a value
    of another JSON type, or None."""
    if not isinstance(data, dict):
        return None
    for name, info in model.model_fields.items():
        key = info.alias or name
        value, kind = data.get(key), _bare(info.annotation)
        if value is None:
            continue
        if kind in JSON_TYPE_MESSAGES and not _is_json(kind, value):
            return kind, [key]
        if (
            isinstance(kind, type)
            and issubclass(kind, BaseModel)
            and not issubclass(kind, StrictModel)
            and (inner := wrong_json_type(kind, value)) is not None
        ):
            return inner[0], [key, *inner[1]]
    return None


class StrictModel(BaseModel):
    """A request body: unknown fields, NUL bytes and lone surrogates (which no text stored
    here may hold: PostgreSQL cannot store the one, UTF-8 has no bytes for the other), NaN or
    infinite numbers (which JSON has no words for), in typed and free-form attributes alike,
    and JSON nested deeper than ``MAX_JSON_DEPTH`` are refused, naming where they are."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _storable_and_shallow(cls, data: Any) -> Any:
        if (path := too_deep_path(data)) is not None:
            raise PydanticCustomError(
                "too_deep",
                "is nested deeper than {limit} levels",
                {"path": path, "limit": MAX_JSON_DEPTH},
            )
        if (unstorable := unstorable_value(data)) is not None:
            why, path = unstorable
            raise PydanticCustomError(why, UNSTORABLE_VALUE[why], {"path": path})
        if (wrong := wrong_json_type(cls, data)) is not None:
            kind, path = wrong
            raise PydanticCustomError(
                f"{kind.__name__}_type", JSON_TYPE_MESSAGES[kind], {"path": path}
            )
        return data


class OptionIn(StrictModel):
    """One choice of a select field: the value submitted, the label shown."""

    value: Annotated[str, Field(min_length=1, max_length=500)]
    label: Annotated[str, Field(min_length=1, max_length=500)]


def distinct(attribute: str, item: str) -> AfterValidator:
    """On a list of models: each ``attribute`` once; the 422 names the later ``item``'s."""

    def check(items: list[BaseModel]) -> list[BaseModel]:
        seen: set[Any] = set()
        for index, model in enumerate(items):
            if (value := getattr(model, attribute)) in seen:
                raise PydanticCustomError(
                    f"duplicate_{attribute}",
                    f"{{value}} is the {attribute} of an earlier {item} too",
                    {"value": value, "path": [index, attribute]},
                )
            seen.add(value)
        return items

    return AfterValidator(check)


# Two choices of one value would differ by their labels alone, and what is submitted would
# name either.
DISTINCT_VALUES = distinct("value", "option")


_NULL = {"type": "null"}


def _partial_update_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A partial update's JSON Schema offers ``null`` only where ``clearable`` takes it (the
    Python type of an attribute that may be omitted admits None, so pydantic offers it for
    each, and a client generated from the OpenAPI document would send what is refused), and
    no defaults: an attribute left out keeps its value."""
    clearable: frozenset[str] = getattr(model, "clearable", frozenset())
    for name, attribute in schema.get("properties", {}).items():
        attribute.pop("default", None)
        if name in clearable or _NULL not in attribute.get("anyOf", []):
            continue
        kept = [branch for branch in attribute.pop("anyOf") if branch != _NULL]
        attribute.update(kept[0] if len(kept) == 1 else {"anyOf": kept})


class PatchModel(StrictModel):
    """A partial update: an omitted attribute keeps its value, and ``null`` clears only the
    attributes named in ``clearable`` (anywhere else it is refused, naming the field, and
    the JSON Schema does not offer it)."""

    model_config = ConfigDict(json_schema_extra=_partial_update_schema)
    clearable: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _null_only_where_clearable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, value in data.items():
                if value is None and name in cls.model_fields and name not in cls.clearable:
                    raise PydanticCustomError(
                        "not_nullable",
                        "cannot be null: omit it to keep its value",
                        {"path": [name]},
                    )
        return data


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# What a response shows of an HTTP request (a template's, a run's, a data source's parts):
# credentials written into it masked, as in the audit log (``redaction.mask_secrets``).
ShownRequest = Annotated[dict[str, Any], AfterValidator(mask_secrets)]


# A path parameter naming an object people name: its id or its slug.
Reference = Annotated[
    str, Path(min_length=1, max_length=100, description="The object's id or its slug.")
]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")]
# Names a JavaScript object keeps for itself: a form's value of that name could never be
# filled in the console (its form library drops it).
_OBJECT_NAMES = frozenset({"__proto__", "constructor", "prototype"})


def _not_an_object_name(name: str) -> str:
    if name in _OBJECT_NAMES:
        raise PydanticCustomError(
            "reserved_name",
            "{name} is a name JavaScript objects keep for themselves, so no form could fill "
            "it: choose another",
            {"name": name},
        )
    return name


Identifier = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,63}$"),
    AfterValidator(_not_an_object_name),
]
GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]
HumanRole = Literal["viewer", "operator", "admin"]
AllowedRoles = Annotated[
    list[HumanRole], Field(max_length=3, description="Roles that may run it (empty: any operator).")
]
AllowedGroups = Annotated[
    list[GroupName], Field(max_length=50, description="Groups that may run it, besides the roles.")
]

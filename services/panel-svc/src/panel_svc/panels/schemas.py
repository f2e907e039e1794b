from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from idp_common.events import ApprovalPolicy
from idp_common.schemas import (
    DISTINCT_VALUES,
    EXACT_NUMBER,
    AllowedGroups,
    AllowedRoles,
    Identifier,
    OptionIn,
    PatchModel,
    ResponseModel,
    Slug,
    StrictModel,
    distinct,
    exact_as_a_float,
)
from idp_common.values import MAX_TEXT_LENGTH
from panel_svc.fields.types import (
    CHOICE_TYPES,
    NUMBER_TYPES,
    TEXT_TYPES,
    FieldRules,
    FieldType,
    Invalid,
)

# The constraints a value of these types is checked against (allowed_values: every type's).
CONSTRAINED_TYPES = {
    "min_value": NUMBER_TYPES,
    "max_value": NUMBER_TYPES,
    "min_length": TEXT_TYPES,
    "max_length": TEXT_TYPES,
    "pattern": TEXT_TYPES,
}


def refused(attribute: str, message: str, *index: int) -> PydanticCustomError:
    """A field's attribute (or one item of it) refused: the 422 names
    fields.N.<attribute>[.<index>]."""
    return PydanticCustomError(
        "invalid_field", "{message}", {"message": message, "path": [attribute, *index]}
    )


class FieldIn(StrictModel):
    name: Identifier
    label: Annotated[str, Field(min_length=1, max_length=200)]
    help_text: Annotated[str, Field(max_length=2000)] = ""
    field_type: FieldType = "text"
    is_required: bool = True
    default: Annotated[Any, EXACT_NUMBER] = None
    options: (
        Annotated[list[OptionIn], Field(min_length=1, max_length=1000), DISTINCT_VALUES] | None
    ) = None
    # A slug first, sent to datasource-svc as written, which tries it as an id too: read as
    # an id here, a slug of 32 hex digits was sent as another id and not found.
    data_source: (
        Annotated[
            Slug | uuid.UUID,
            Field(
                union_mode="left_to_right",
                description="The data source's id or its slug; kept as its id.",
            ),
        ]
        | None
    ) = None
    depends_on: Annotated[list[Identifier], Field(max_length=20)] = []
    min_value: Annotated[float, EXACT_NUMBER] | None = None
    max_value: Annotated[float, EXACT_NUMBER] | None = None
    min_length: Annotated[int, Field(ge=0, le=MAX_TEXT_LENGTH)] | None = None
    max_length: Annotated[int, Field(ge=1, le=MAX_TEXT_LENGTH)] | None = None
    pattern: Annotated[str, Field(max_length=1000)] | None = None
    allowed_values: (
        Annotated[list[Annotated[str, Field(max_length=500)]], Field(min_length=1, max_length=1000)]
        | None
    ) = None

    @model_validator(mode="after")
    def _workable(self) -> FieldIn:
        """Refuse a definition that cannot work, naming why."""
        if self.field_type == "secret" and (
            self.default is not None or self.allowed_values is not None
        ):
            raise ValueError(
                "a secret field takes no default nor allowed_values (they would be kept in "
                "plain text)"
            )
        if self.field_type in CHOICE_TYPES:
            if (self.options is None) == (self.data_source is None):
                raise ValueError(f"a {self.field_type} field needs options or a data_source (one)")
        elif self.options is not None or self.data_source is not None:
            raise ValueError("only select and multiselect fields take options or a data_source")
        if self.depends_on and self.data_source is None:
            raise ValueError("depends_on feeds a data_source; this field has none")
        if self.name in self.depends_on:
            raise ValueError("a field cannot depend on itself")
        for low, high in (("min_value", "max_value"), ("min_length", "max_length")):
            least, most = getattr(self, low), getattr(self, high)
            if least is not None and most is not None and least > most:
                raise refused(high, f"a maximum is below its minimum ({low} {least:g})")
        for attribute, types in CONSTRAINED_TYPES.items():
            if getattr(self, attribute) is not None and self.field_type not in types:
                raise refused(attribute, f"does not apply to a {self.field_type} field")
        rules = self.rules()
        for attribute, check in (
            ("pattern", rules.compiled_pattern),
            ("allowed_values", rules.allowed),
        ):
            try:
                check()
            except Invalid as exc:
                raise refused(attribute, str(exc)) from None
        _refuse_unfillable(rules)
        if self.default is not None:
            # Kept as the field's type, as a submitted value is ("5" is 5 on an integer
            # field): the form pre-fills it, and one of another JSON type never validates.
            try:
                self.default = exact_as_a_float(rules.check(self.default))
            except (Invalid, PydanticCustomError) as exc:
                raise refused("default", str(exc)) from None
        return self

    def rules(self) -> FieldRules:
        return FieldRules.of(
            self, [option.value for option in self.options] if self.options else None
        )


def _refuse_unfillable(rules: FieldRules) -> None:
    """Each allowed value passes the field's other constraints (an option the field lacks
    aside), and a select offers at least one option they allow, each passing them too: a value
    the form offers is one the submission takes, and a required field can be filled."""
    allowed = rules.allowed()
    unlisted = dataclasses.replace(rules, options=None)
    _each_passes(unlisted, "allowed_values", enumerate(allowed or []))
    if rules.options is None:
        return
    offered = [value for value in rules.options if allowed is None or value in allowed]
    if not offered:
        raise refused("allowed_values", "allows none of the field's options")
    _each_passes(rules, "options", ((i, v) for i, v in enumerate(rules.options) if v in offered))


def _each_passes(rules: FieldRules, attribute: str, values: Iterable[tuple[int, Any]]) -> None:
    for index, value in values:
        try:
            rules.check_one(value)
        except Invalid as exc:
            raise refused(attribute, f"{value!r} is refused by the field: {exc}", index) from None


Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,49}$")]


Fields = Annotated[list[FieldIn], Field(max_length=100), distinct("name", "field")]


class PanelIn(StrictModel):
    slug: Slug
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)] = ""
    operation_template: Slug
    is_active: bool = True
    category: Annotated[str, Field(max_length=100)] = ""
    tags: Annotated[list[Tag], Field(max_length=20)] = []
    allowed_roles: AllowedRoles = []
    allowed_groups: AllowedGroups = []
    approval: ApprovalPolicy | None = Field(
        default=None,
        description="Approval its submissions' runs wait for when the template has none "
        "(a template's own policy always holds).",
    )
    order: Annotated[int, Field(ge=0, le=100_000)] = 0
    fields: Fields = []

    @model_validator(mode="after")
    def _coherent_fields(self) -> PanelIn:
        check_fields(self.fields)
        return self


def check_fields(fields: list[FieldIn]) -> None:
    """Every depends_on names a field of the panel (``Fields``: each name once) that is not
    a secret (its value would be sent to the data source's upstream, in the clear), without
    cycles."""
    graph = {field.name: field.depends_on for field in fields}
    secret = {field.name for field in fields if field.field_type == "secret"}
    for field in fields:
        missing = sorted(set(field.depends_on) - set(graph))
        if missing:
            raise ValueError(f"{field.name} depends on missing field(s) {missing}")
        if fed := sorted(set(field.depends_on) & secret):
            raise ValueError(
                f"{field.name} depends on secret field(s) {fed}: a secret's value is never "
                "sent to a data source"
            )
    if cycle := _find_cycle(graph):
        raise ValueError(f"depends_on forms a cycle: {' -> '.join(cycle)}")


def _find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A dependency cycle as a path (first node repeated at the end), or None."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        if state.get(node) == "open":
            return [*path[path.index(node) :], node]
        if state.get(node) == "done":
            return None
        state[node] = "open"
        for dependency in graph[node]:
            if cycle := visit(dependency, [*path, node]):
                return cycle
        state[node] = "done"
        return None

    for node in graph:
        if cycle := visit(node, []):
            return cycle
    return None


class PanelUpdate(PatchModel):
    """Change a panel: omitted attributes keep their value; ``fields`` replaces them all;
    ``approval: null`` removes the approval policy."""

    clearable = frozenset({"approval"})

    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    operation_template: Slug | None = None
    is_active: bool | None = None
    category: Annotated[str, Field(max_length=100)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None
    allowed_roles: AllowedRoles = []
    allowed_groups: AllowedGroups = []
    approval: ApprovalPolicy | None = None
    order: Annotated[int, Field(ge=0, le=100_000)] | None = None
    fields: Fields | None = None

    @model_validator(mode="after")
    def _coherent_fields(self) -> PanelUpdate:
        if self.fields is not None:
            check_fields(self.fields)
        return self


class FieldOut(ResponseModel):
    name: str
    label: str
    help_text: str
    field_type: str
    is_required: bool
    default: Any
    order: int
    options: list[dict[str, str]] | None
    data_source: uuid.UUID | None
    depends_on: list[str]
    min_value: float | None
    max_value: float | None
    min_length: int | None
    max_length: int | None
    pattern: str | None
    allowed_values: list[str] | None


class PanelOut(ResponseModel):
    id: uuid.UUID
    slug: str
    title: str
    description: str
    is_active: bool
    operation_template: str
    category: str
    tags: list[str]
    allowed_roles: list[str]
    allowed_groups: list[str]
    approval: dict[str, Any] | None
    order: int
    fields: list[FieldOut]
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime


class PanelSchemaOut(ResponseModel):
    json_schema: dict[str, Any] = Field(alias="schema", serialization_alias="schema")
    ui: dict[str, Any]

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from idp_common.events import ApprovalPolicy
from idp_common.outbound import HTTP_URL_SCHEMA
from idp_common.schemas import (
    EXACT_NUMBER,
    AllowedGroups,
    AllowedRoles,
    Identifier,
    JsonBody,
    PatchModel,
    ResponseModel,
    ShownRequest,
    Slug,
    StrictModel,
    distinct,
)
from idp_common.values import MAX_TEXT_LENGTH
from operation_svc.safety.parameters import ParameterSpec, validate_values
from operation_svc.safety.verdict import Refusal


class ParameterIn(StrictModel):
    name: Identifier
    type: Literal["string", "integer", "number", "boolean", "secret"] = "string"
    required: bool = True
    default: Annotated[str | int | float | bool | None, EXACT_NUMBER] = None
    enum: (
        Annotated[
            list[Annotated[str | int | float, EXACT_NUMBER]], Field(min_length=1, max_length=500)
        ]
        | None
    ) = None
    minimum: Annotated[float, EXACT_NUMBER] | None = None
    maximum: Annotated[float, EXACT_NUMBER] | None = None
    min_length: Annotated[int, Field(ge=0, le=MAX_TEXT_LENGTH)] | None = None
    max_length: Annotated[int, Field(ge=1, le=MAX_TEXT_LENGTH)] | None = None
    pattern: Annotated[str, Field(max_length=1000)] | None = None
    allow_leading_dash: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> ParameterIn:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError("minimum must not exceed maximum")
        if (
            self.min_length is not None
            and self.max_length is not None
            and (self.min_length > self.max_length)
        ):
            raise ValueError("min_length must not exceed max_length")
        try:
            spec = ParameterSpec.from_dict(self.model_dump())
            spec.compiled_pattern()
        except Refusal as refusal:
            raise ValueError(refusal.message) from refusal
        unconstrained_choice = replace(spec, enum=None, default=None)
        for value in self.enum or []:
            _, refusals = validate_values([unconstrained_choice], {self.name: value})
            if refusals:
                raise ValueError(f"enum value {value!r} does not fit: {refusals[0].message}")
        if self.default is not None:
            _, refusals = validate_values([spec], {self.name: self.default})
            if refusals:
                raise ValueError(f"default {self.default!r} does not fit: {refusals[0].message}")
        return self


class HttpTemplateIn(StrictModel):
    method: Annotated[str, Field(max_length=10)] = "GET"
    url: Annotated[str, Field(min_length=1, max_length=2000, json_schema_extra=HTTP_URL_SCHEMA)]
    headers: Annotated[dict[str, Annotated[str, Field(max_length=4000)]], Field(max_length=50)] = {}
    body: JsonBody = None


CommandTemplate = Annotated[str, Field(min_length=1, max_length=8192)]
# At least a second (a run's timer is no finer); at most OPERATION_MAX_TIMEOUT_SECONDS.
TimeoutSeconds = Annotated[float, Field(ge=1)]


# Two parameters of one name would leave which one checks a value to chance.
Parameters = Annotated[list[ParameterIn], Field(max_length=50), distinct("name", "parameter")]


class TemplateIn(StrictModel):
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)] = ""
    operation_type: Literal["command", "http"] = "command"
    command_template: CommandTemplate | None = None
    http: HttpTemplateIn | None = None
    parameters: Parameters = []
    timeout_seconds: TimeoutSeconds = 300
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] | None = None
    retry_safe: bool = False
    allowed_roles: AllowedRoles = []
    allowed_groups: AllowedGroups = []
    approval: ApprovalPolicy | None = None

    @model_validator(mode="after")
    def _coherent(self) -> TemplateIn:
        if (self.operation_type == "command") != (self.command_template is not None) or (
            self.operation_type == "http"
        ) != (self.http is not None):
            raise ValueError("a command template needs command_template; an http one needs http")
        return self


class TemplateUpdate(PatchModel):
    """A new version: omitted fields keep their current value; ``max_concurrency: null``
    lifts the limit, ``approval: null`` the approval policy (runs already waiting keep
    theirs)."""

    clearable = frozenset({"max_concurrency", "approval"})

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    description: Annotated[str, Field(max_length=5000)] | None = None
    command_template: CommandTemplate | None = None
    http: HttpTemplateIn | None = None
    parameters: Parameters | None = None
    timeout_seconds: TimeoutSeconds | None = None
    max_concurrency: Annotated[int, Field(ge=1, le=1000)] | None = None
    retry_safe: bool | None = None
    allowed_roles: AllowedRoles = []
    allowed_groups: AllowedGroups = []
    approval: ApprovalPolicy | None = None


class TemplateOut(ResponseModel):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    operation_type: str
    command_template: str | None
    argv: list[str] | None
    http_spec: ShownRequest | None
    parameters: list[dict[str, Any]]
    timeout_seconds: float
    max_concurrency: int | None
    retry_safe: bool
    allowed_roles: list[str]
    allowed_groups: list[str]
    approval: dict[str, Any] | None
    version: int
    created_by: str
    updated_by: str
    created_at: datetime
    updated_at: datetime


class PreviewIn(StrictModel):
    parameters: Annotated[dict[str, Any], Field(max_length=50)] = {}


class PreviewOut(ResponseModel):
    allowed: bool
    argv: list[str] | None
    http: ShownRequest | None
    env: dict[str, str] | None
    refusals: list[dict[str, str | None]]
    template_version: int

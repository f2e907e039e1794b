from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, field_validator

from idp_common.launchers import unsafe_variable
from idp_common.schemas import ResponseModel, Slug, StrictModel

RESERVED_ENV = frozenset({"HOME", "LANG", "SHELL", "USER", "PWD"})


class SecretIn(StrictModel):
    slug: Slug
    provider: Literal["env", "file", "aws-secretsmanager"]
    key: Annotated[str, Field(min_length=1, max_length=500, description="Where the value is.")]
    description: Annotated[str, Field(max_length=2000)] = ""


class SecretOut(ResponseModel):
    id: uuid.UUID
    slug: str
    provider: str
    key: str
    description: str
    created_by: str
    created_at: datetime


class MappingIn(StrictModel):
    secret_id: Annotated[
        str, Field(min_length=1, max_length=100, description="The secret's id or its slug.")
    ]
    env_var: Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,99}$")]

    @field_validator("env_var")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_ENV or value.startswith("IDP_PARAM_"):
            raise ValueError(f"{value} is reserved")
        if unsafe_variable(value):
            raise ValueError(f"{value} may not be set from a secret: it changes what code runs")
        return value


class MappingOut(ResponseModel):
    id: uuid.UUID
    template_id: uuid.UUID
    secret_id: uuid.UUID
    env_var: str

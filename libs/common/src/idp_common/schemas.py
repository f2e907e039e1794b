"""Request-model conventions: unknown fields are refused, slugs and names have one shape."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]{0,63}$")]
GroupName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")]
HumanRole = Literal["viewer", "operator", "admin"]
AllowedRoles = Annotated[
    list[HumanRole], Field(max_length=3, description="Roles that may run it (empty: any operator).")
]
AllowedGroups = Annotated[
    list[GroupName], Field(max_length=50, description="Groups that may run it, besides the roles.")
]

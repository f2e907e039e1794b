from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from idp_common.db import utcnow
from idp_common.schemas import GroupName, HumanRole, ResponseModel, StrictModel, UtcTimestamp


class ApiKeyIn(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    roles: Annotated[list[HumanRole], Field(min_length=1)]
    groups: Annotated[list[GroupName], Field(max_length=100)] = []
    expires_at: UtcTimestamp | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= utcnow():
            raise ValueError("must be in the future")
        return value


class ApiKeyOut(ResponseModel):
    id: uuid.UUID
    name: str
    prefix: str
    roles: list[str]
    groups: list[str]
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: Annotated[str, Field(description="The key itself: shown now and never again.")]

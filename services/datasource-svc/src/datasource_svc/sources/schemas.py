from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from idp_common.schemas import ResponseModel, Slug, StrictModel


class OptionIn(StrictModel):
    value: Annotated[str, Field(min_length=1, max_length=500)]
    label: Annotated[str, Field(min_length=1, max_length=500)]


class DataSourceIn(StrictModel):
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    source_type: Literal["static"] = "static"
    options: Annotated[list[OptionIn], Field(min_length=1, max_length=1000)]
    ttl_seconds: Annotated[int, Field(ge=0, le=86400)] = 300


class DataSourceOut(ResponseModel):
    id: uuid.UUID
    slug: str
    name: str
    source_type: str
    options: list[dict[str, str]]
    ttl_seconds: int
    created_by: str
    created_at: datetime
    updated_at: datetime

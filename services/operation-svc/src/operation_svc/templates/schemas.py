from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field

from idp_common.schemas import ResponseModel, Slug, StrictModel

MAX_TIMEOUT_SECONDS = 24 * 3600


class TemplateIn(StrictModel):
    slug: Slug
    name: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)] = ""
    command_template: Annotated[str, Field(min_length=1, max_length=8192)]
    timeout_seconds: Annotated[float, Field(gt=0, le=MAX_TIMEOUT_SECONDS)] = 300


class TemplateOut(ResponseModel):
    id: uuid.UUID
    slug: str
    name: str
    description: str
    command_template: str
    argv: list[str]
    parameters: list[str]
    timeout_seconds: float
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from idp_common.schemas import Identifier, ResponseModel, Slug, StrictModel


class FieldIn(StrictModel):
    name: Identifier
    label: Annotated[str, Field(min_length=1, max_length=200)]
    field_type: Literal["text"] = "text"
    is_required: bool = True
    max_length: Annotated[int, Field(ge=1, le=65536)] | None = None


class PanelIn(StrictModel):
    slug: Slug
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=5000)] = ""
    operation_template: Slug
    is_active: bool = True
    fields: Annotated[list[FieldIn], Field(max_length=100)] = []

    @model_validator(mode="after")
    def _unique_field_names(self) -> PanelIn:
        names = [field.name for field in self.fields]
        if len(names) != len(set(names)):
            raise ValueError("field names must be unique within a panel")
        return self


class FieldOut(ResponseModel):
    name: str
    label: str
    field_type: str
    is_required: bool
    max_length: int | None
    order: int


class PanelOut(ResponseModel):
    id: uuid.UUID
    slug: str
    title: str
    description: str
    is_active: bool
    operation_template: str
    fields: list[FieldOut]
    created_by: str
    created_at: datetime
    updated_at: datetime

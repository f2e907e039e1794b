from __future__ import annotations

from typing import Any

from sqlalchemy import Select

from idp_common.repository import TenantRepository
from operation_svc.models import OperationTemplate


class TemplateRepository(TenantRepository[OperationTemplate]):
    """Deleted templates are invisible: not listed, not found, not runnable."""

    model = OperationTemplate

    def scoped(self, *options: Any) -> Select[tuple[OperationTemplate]]:
        return super().scoped(*options).where(OperationTemplate.is_deleted.is_(False))

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from idp_common.repository import TenantRepository
from panel_svc.models import Panel

WITH_FIELDS = selectinload(Panel.fields)


class PanelRepository(TenantRepository[Panel]):
    """Deleted panels are gone for every reader (their submissions stay)."""

    model = Panel

    def scoped(self, *options: Any) -> Select[tuple[Panel]]:
        return super().scoped(*options).where(Panel.deleted_at.is_(None))

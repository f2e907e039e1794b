from __future__ import annotations

from sqlalchemy.orm import selectinload

from idp_common.repository import TenantRepository
from panel_svc.models import Panel

WITH_FIELDS = selectinload(Panel.fields)


class PanelRepository(TenantRepository[Panel]):
    model = Panel

from __future__ import annotations

from idp_common.repository import TenantRepository
from operation_svc.models import OperationTemplate


class TemplateRepository(TenantRepository[OperationTemplate]):
    model = OperationTemplate

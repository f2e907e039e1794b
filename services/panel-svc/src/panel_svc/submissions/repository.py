from __future__ import annotations

from idp_common.repository import TenantRepository
from panel_svc.models import Submission


class SubmissionRepository(TenantRepository[Submission]):
    model = Submission

from __future__ import annotations

from idp_common.idempotency import IdempotentRepository
from panel_svc.models import Submission


class SubmissionRepository(IdempotentRepository[Submission]):
    model = Submission

from __future__ import annotations

from idp_common.repository import TenantRepository
from panel_svc.models import Submission


class SubmissionRepository(TenantRepository[Submission]):
    model = Submission

    async def by_idempotency_key(self, key: str) -> Submission | None:
        stmt = self.scoped().where(Submission.idempotency_key == key)
        return (await self.session.scalars(stmt)).one_or_none()

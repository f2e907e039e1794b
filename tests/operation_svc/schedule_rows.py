"""A panel schedule's row, written without the API (its panel is never called)."""

from __future__ import annotations

import uuid
from typing import Any

from operation_svc.models import Schedule


def panel_schedule(**timing: Any) -> Schedule:
    """Acme's schedule of a panel ``deploy``, owned by alice (an admin); ``timing`` gives
    its ``cron`` or ``interval_seconds``."""
    return Schedule(
        id=uuid.uuid4(),
        tenant="acme",
        panel_id=uuid.uuid4(),
        panel_slug="deploy",
        data={},
        parameters={},
        timezone="UTC",
        overlap_policy="skip",
        misfire_policy="skip",
        owner_subject="alice",
        owner_roles=["admin"],
        owner_groups=[],
        created_by="alice",
        updated_by="alice",
        **timing,
    )

"""The execution state machine, enforced in this one place."""

from __future__ import annotations

import logging

from idp_common.db import utcnow
from idp_common.events import TERMINAL_STATUSES
from operation_svc.models import Execution

logger = logging.getLogger(__name__)

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    # Never queued: pending once approved (then dispatched like any new execution).
    "awaiting_approval": frozenset({"pending", "rejected", "expired", "cancelled"}),
    "pending": frozenset({"running", "cancelled", "rejected"}),
    "running": frozenset({"succeeded", "failed", "timed_out", "cancelled", "lost"}),
}


def transition(execution: Execution, status: str) -> bool:
    """Move ``execution`` to ``status`` if the lifecycle allows it; otherwise log and refuse."""
    if status not in ALLOWED_TRANSITIONS.get(execution.status, frozenset()):
        logger.warning(
            "illegal transition ignored",
            extra={"execution_id": str(execution.id), "from": execution.status, "to": status},
        )
        return False
    now = utcnow()
    execution.status = status
    if status == "running":
        execution.started_at = now
    if status in TERMINAL_STATUSES:
        execution.finished_at = now
    return True


def can_enter(status: str) -> frozenset[str]:
    """The statuses from which ``status`` may be entered (for atomic conditional updates)."""
    return frozenset(source for source, targets in ALLOWED_TRANSITIONS.items() if status in targets)

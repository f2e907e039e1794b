"""Schedules saved with croniter's ``R`` (a random value, drawn again at every reading: each
replica and each next slot picked another time) are paused, saying why, until an admin writes
the value; such a cron is now refused when saved.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RANDOM_FIELD = re.compile(r"r(\(\d+-\d+\))?(/\d+)?", re.IGNORECASE)
REASON = (
    "its cron draws a random time (R), which every replica drew differently: write the value "
    "(PATCH its cron), then resume it"
)


def upgrade() -> None:
    schedules = sa.table(
        "schedules",
        sa.column("id", sa.Uuid()),
        sa.column("cron", sa.String()),
        sa.column("is_paused", sa.Boolean()),
        sa.column("paused_reason", sa.Text()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(schedules.c.id, schedules.c.cron).where(schedules.c.cron.is_not(None))
    )
    random = [row.id for row in rows if any(RANDOM_FIELD.fullmatch(f) for f in row.cron.split())]
    if random:
        connection.execute(
            schedules.update()
            .where(schedules.c.id.in_(random))
            .values(is_paused=True, paused_reason=REASON)
        )


def downgrade() -> None:
    """Nothing to undo: the schedules stay paused until resumed."""

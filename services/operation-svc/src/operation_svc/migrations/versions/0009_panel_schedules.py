"""Panel schedules: a schedule targets a template or a panel (its id and slug at panel-svc,
and the form data submitted at each slot); a panel schedule's run keeps its submission.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.alter_column("template_id", existing_type=sa.Uuid(), nullable=True)
        batch.alter_column("template_slug", existing_type=sa.String(length=100), nullable=True)
        batch.add_column(sa.Column("panel_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("panel_slug", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("data", sa.JSON(), nullable=True))
    with op.batch_alter_table("schedule_runs") as batch:
        batch.add_column(sa.Column("submission_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    # Panel schedules cannot be kept without a template: they are deleted with their runs.
    op.execute(
        "DELETE FROM schedule_runs WHERE schedule_id IN "
        "(SELECT id FROM schedules WHERE template_id IS NULL)"
    )
    op.execute("DELETE FROM schedules WHERE template_id IS NULL")
    with op.batch_alter_table("schedule_runs") as batch:
        batch.drop_column("submission_id")
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("data")
        batch.drop_column("panel_slug")
        batch.drop_column("panel_id")
        batch.alter_column("template_slug", existing_type=sa.String(length=100), nullable=False)
        batch.alter_column("template_id", existing_type=sa.Uuid(), nullable=False)

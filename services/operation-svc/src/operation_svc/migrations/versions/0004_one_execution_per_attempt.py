"""A submission's attempt has one execution: a submission asked for again (its event
redelivered with another id, or re-sent by panel-svc's reconciler) never runs twice. An
execution keeps the trace it was created in (shown to people, who look it up in Jaeger).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("trace_id", sa.String(length=32), nullable=True))
    op.create_index(
        "uq_executions_submission_attempt", "executions", ["submission_id", "attempt"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_executions_submission_attempt", table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("trace_id")

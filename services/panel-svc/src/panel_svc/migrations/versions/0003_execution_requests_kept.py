"""A submission keeps what it asked operation-svc for (its event's data, secret values
sealed), so the reconciler can ask again when the queue lost the message; and the trace it
was created in (shown to people, who look it up in Jaeger).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("submissions", sa.Column("execution_request", sa.JSON(), nullable=True))
    op.add_column("submissions", sa.Column("trace_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("execution_request")
        batch.drop_column("trace_id")

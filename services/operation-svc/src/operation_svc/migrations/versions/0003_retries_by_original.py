"""An execution is retried once (a retry of it is looked up by retry_of on every retry).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_executions_retry_of"), "executions", ["retry_of"])


def downgrade() -> None:
    op.drop_index(op.f("ix_executions_retry_of"), table_name="executions")

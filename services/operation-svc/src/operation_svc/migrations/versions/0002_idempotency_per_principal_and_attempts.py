"""Idempotency keys are scoped per principal (unique per tenant, submitter and key), and
executions count their attempts (a retry's is its original's + 1).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_KEY = "uq_executions_tenant_idempotency_key"
PRINCIPAL_KEY = "uq_executions_tenant_submitted_by_idempotency_key"


def upgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_constraint(TENANT_KEY, type_="unique")
        batch.create_unique_constraint(PRINCIPAL_KEY, ["tenant", "submitted_by", "idempotency_key"])
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("attempt")
        batch.drop_constraint(PRINCIPAL_KEY, type_="unique")
        batch.create_unique_constraint(TENANT_KEY, ["tenant", "idempotency_key"])

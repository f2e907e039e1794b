"""Idempotency keys are scoped per principal (unique per tenant, submitter and key), and a
submission follows its newest attempt, each attempt kept (submission_attempts).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp_common.db import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_KEY = "uq_submissions_tenant_idempotency_key"
PRINCIPAL_KEY = "uq_submissions_tenant_submitted_by_idempotency_key"


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_constraint(TENANT_KEY, type_="unique")
        batch.create_unique_constraint(PRINCIPAL_KEY, ["tenant", "submitted_by", "idempotency_key"])
        batch.add_column(sa.Column("attempt", sa.Integer(), server_default="1", nullable=False))
    op.create_table(
        "submission_attempts",
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_attempts_submission_id_submissions"),
        ),
        sa.PrimaryKeyConstraint("submission_id", "attempt", name=op.f("pk_submission_attempts")),
    )
    # What each submission mirrored so far is its first attempt.
    op.execute(
        "INSERT INTO submission_attempts "
        "(submission_id, attempt, execution_id, status, exit_code, error, updated_at) "
        "SELECT id, 1, execution_id, status, exit_code, error, updated_at FROM submissions"
    )


def downgrade() -> None:
    op.drop_table("submission_attempts")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("attempt")
        batch.drop_constraint(PRINCIPAL_KEY, type_="unique")
        batch.create_unique_constraint(TENANT_KEY, ["tenant", "idempotency_key"])

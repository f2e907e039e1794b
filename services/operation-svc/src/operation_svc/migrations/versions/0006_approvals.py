"""Approvals: a template (and an execution, from its panel or template) may carry an
approval policy; an execution awaiting approval knows until when; each principal's
decision on it is kept.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp_common.db import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("operation_templates", sa.Column("approval", sa.JSON(), nullable=True))
    op.add_column("executions", sa.Column("approval", sa.JSON(), nullable=True))
    op.add_column("executions", sa.Column("approval_expires_at", UTCDateTime(), nullable=True))
    op.create_index(
        op.f("ix_executions_approval_expires_at"), "executions", ["approval_expires_at"]
    )
    op.create_table(
        "execution_approvals",
        sa.Column("execution_id", sa.Uuid(), nullable=False),
        sa.Column("approver", sa.String(length=200), nullable=False),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_execution_approvals_execution_id_executions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_execution_approvals")),
        sa.UniqueConstraint(
            "execution_id", "approver", name=op.f("uq_execution_approvals_execution_id_approver")
        ),
    )
    op.create_index(
        op.f("ix_execution_approvals_execution_id"), "execution_approvals", ["execution_id"]
    )
    op.create_index(op.f("ix_execution_approvals_tenant"), "execution_approvals", ["tenant"])


def downgrade() -> None:
    op.drop_table("execution_approvals")
    op.drop_index(op.f("ix_executions_approval_expires_at"), table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("approval_expires_at")
        batch.drop_column("approval")
    with op.batch_alter_table("operation_templates") as batch:
        batch.drop_column("approval")

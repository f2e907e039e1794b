"""Schedules: a template run at each slot of a cron expression or an interval; one row per
slot handled (unique per schedule and slot), and the executions a schedule fired.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from idp_common.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tenant_record_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("template_slug", sa.String(length=100), nullable=False),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("jitter_seconds", sa.Integer(), nullable=False),
        sa.Column("overlap_policy", sa.String(length=20), nullable=False),
        sa.Column("misfire_policy", sa.String(length=20), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("owner_subject", sa.String(length=200), nullable=False),
        sa.Column("owner_roles", sa.JSON(), nullable=False),
        sa.Column("owner_groups", sa.JSON(), nullable=False),
        sa.Column("next_slot_at", UTCDateTime(), nullable=True),
        sa.Column("queued_slot_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        *_tenant_record_columns(),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["operation_templates.id"],
            name=op.f("fk_schedules_template_id_operation_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    op.create_index("ix_schedules_due", "schedules", ["is_paused", "next_slot_at"])
    op.create_index(op.f("ix_schedules_tenant"), "schedules", ["tenant"])
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("schedule_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("scheduled_for", UTCDateTime(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_executions_schedule_id_schedules"), "schedules", ["schedule_id"], ["id"]
        )
        batch.create_index(
            "uq_executions_schedule_slot", ["schedule_id", "scheduled_for"], unique=True
        )
    op.create_table(
        "schedule_runs",
        sa.Column("schedule_id", sa.Uuid(), nullable=False),
        sa.Column("slot_at", UTCDateTime(), nullable=False),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("execution_id", sa.Uuid(), nullable=True),
        *_tenant_record_columns(),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_schedule_runs_execution_id_executions"),
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["schedules.id"], name=op.f("fk_schedule_runs_schedule_id_schedules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
        sa.UniqueConstraint(
            "schedule_id", "slot_at", name=op.f("uq_schedule_runs_schedule_id_slot_at")
        ),
    )
    op.create_index(op.f("ix_schedule_runs_tenant"), "schedule_runs", ["tenant"])


def downgrade() -> None:
    op.drop_table("schedule_runs")
    with op.batch_alter_table("executions") as batch:
        batch.drop_index("uq_executions_schedule_slot")
        batch.drop_constraint("fk_executions_schedule_id_schedules", type_="foreignkey")
        batch.drop_column("scheduled_for")
        batch.drop_column("schedule_id")
    op.drop_table("schedules")

"""Operation templates and versions, secrets, executions, logs, audit and messaging tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp_common.db import UTCDateTime
from idp_common.migration_steps import (
    create_audit_log_v1,
    create_messaging_tables_v1,
    drop_audit_log_v1,
    drop_messaging_tables_v1,
)

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_messaging_tables_v1()
    create_audit_log_v1()
    op.create_table(
        "operation_templates",
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("operation_type", sa.String(length=20), nullable=False),
        sa.Column("command_template", sa.Text(), nullable=True),
        sa.Column("argv", sa.JSON(), nullable=True),
        sa.Column("http_spec", sa.JSON(), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=True),
        sa.Column("retry_safe", sa.Boolean(), nullable=False),
        sa.Column("allowed_roles", sa.JSON(), nullable=False),
        sa.Column("allowed_groups", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("is_deleted", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operation_templates")),
        sa.UniqueConstraint("tenant", "slug", name=op.f("uq_operation_templates_tenant_slug")),
    )
    with op.batch_alter_table("operation_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_operation_templates_tenant"), ["tenant"], unique=False)

    op.create_table(
        "secret_refs",
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=30), nullable=False),
        sa.Column("key", sa.String(length=500), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_refs")),
        sa.UniqueConstraint("tenant", "slug", name=op.f("uq_secret_refs_tenant_slug")),
    )
    with op.batch_alter_table("secret_refs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secret_refs_tenant"), ["tenant"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_tenant"), ["tenant"], unique=False)

    op.create_table(
        "executions",
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("template_slug", sa.String(length=100), nullable=False),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("submission_id", sa.Uuid(), nullable=True),
        sa.Column("retry_of", sa.Uuid(), nullable=True),
        sa.Column("submitted_by", sa.String(length=200), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("argv", sa.JSON(), nullable=True),
        sa.Column("http_request", sa.JSON(), nullable=True),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("dispatched_at", UTCDateTime(), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=True),
        sa.Column("cancel_requested_at", UTCDateTime(), nullable=True),
        sa.Column("log_lines", sa.Integer(), nullable=True),
        sa.Column("output_bytes", sa.Integer(), nullable=True),
        sa.Column("output_truncated", sa.Boolean(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["retry_of"], ["executions.id"], name=op.f("fk_executions_retry_of_executions")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["operation_templates.id"],
            name=op.f("fk_executions_template_id_operation_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_executions")),
        sa.UniqueConstraint(
            "tenant", "idempotency_key", name=op.f("uq_executions_tenant_idempotency_key")
        ),
    )
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_executions_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_executions_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_executions_submission_id"), ["submission_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_executions_submitted_by"), ["submitted_by"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_executions_template_id"), ["template_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_executions_tenant"), ["tenant"], unique=False)

    op.create_table(
        "secret_mappings",
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("secret_id", sa.Uuid(), nullable=False),
        sa.Column("env_var", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["secret_id"], ["secret_refs.id"], name=op.f("fk_secret_mappings_secret_id_secret_refs")
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["operation_templates.id"],
            name=op.f("fk_secret_mappings_template_id_operation_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secret_mappings")),
        sa.UniqueConstraint(
            "template_id", "env_var", name=op.f("uq_secret_mappings_template_id_env_var")
        ),
    )
    with op.batch_alter_table("secret_mappings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_secret_mappings_tenant"), ["tenant"], unique=False)

    op.create_table(
        "template_versions",
        sa.Column("template_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["operation_templates.id"],
            name=op.f("fk_template_versions_template_id_operation_templates"),
        ),
        sa.PrimaryKeyConstraint("template_id", "version", name=op.f("pk_template_versions")),
    )
    op.create_table(
        "execution_logs",
        sa.Column("execution_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("timestamp", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_execution_logs_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", "seq", name=op.f("pk_execution_logs")),
    )


def downgrade() -> None:
    op.drop_table("execution_logs")
    op.drop_table("template_versions")
    with op.batch_alter_table("secret_mappings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secret_mappings_tenant"))

    op.drop_table("secret_mappings")
    with op.batch_alter_table("executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_executions_tenant"))
        batch_op.drop_index(batch_op.f("ix_executions_template_id"))
        batch_op.drop_index(batch_op.f("ix_executions_submitted_by"))
        batch_op.drop_index(batch_op.f("ix_executions_submission_id"))
        batch_op.drop_index(batch_op.f("ix_executions_status"))
        batch_op.drop_index(batch_op.f("ix_executions_created_at"))

    op.drop_table("executions")
    with op.batch_alter_table("secret_refs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secret_refs_tenant"))

    op.drop_table("secret_refs")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_tenant"))

    op.drop_table("api_keys")
    with op.batch_alter_table("operation_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_operation_templates_tenant"))

    op.drop_table("operation_templates")
    drop_audit_log_v1()
    drop_messaging_tables_v1()

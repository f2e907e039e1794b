"""What another service asked for by event (idp_common.inbound) keeps the request's event
id and the producer's reply queue, where its outcome is sent.

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
    op.add_column(
        "submissions", sa.Column("request_event_id", sa.String(length=200), nullable=True)
    )
    op.add_column("submissions", sa.Column("reply_queue", sa.String(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("request_event_id")
        batch.drop_column("reply_queue")

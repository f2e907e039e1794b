"""A webhook's secret replaced by a rotation keeps signing beside the new one for a while,
so that a receiver can switch secrets without refusing deliveries meanwhile.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from idp_common.db import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.add_column(sa.Column("previous_signing_secret", sa.String(100), nullable=True))
        batch.add_column(sa.Column("previous_secret_until", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_signing_secret")

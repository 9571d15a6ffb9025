"""Token expiry, failed-login throttling, tenant quotas.

Revision ID: 0003
Revises: 0002
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime, nullable=True))
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(320), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("first_at", sa.DateTime, nullable=False),
        sa.Column("locked_until", sa.DateTime, nullable=True),
    )
    op.create_table(
        "quotas",
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("cpu", sa.Integer, nullable=True),
        sa.Column("memory_kib", sa.BigInteger, nullable=True),
        sa.Column("machines", sa.Integer, nullable=True),
        sa.Column("volumes", sa.Integer, nullable=True),
        sa.Column("updated", sa.DateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quotas")
    op.drop_table("login_failures")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("expires_at")

"""Meter samples, taken in the background (metering.py) and read by requests.

Revision ID: 0005
Revises: 0004
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meter_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("meter_uuid", sa.String(36), nullable=False),
        sa.Column("taken", sa.DateTime, nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
    )
    op.create_index("ix_meter_samples_meter_taken", "meter_samples", ["meter_uuid", "taken"])
    op.create_index("ix_meter_samples_taken", "meter_samples", ["taken"])


def downgrade() -> None:
    op.drop_table("meter_samples")

"""The CMDB as siroccod made it before migrations (commit 61b37de, `create_all`).

A CMDB created by that version has these tables and no alembic_version: siroccod.migrating stamps it
with this revision instead of running it, then upgrades it like any other.

Revision ID: 0001
Revises:
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("heartbeat_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(64), nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
    )
    op.create_table(
        "hosts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("uri", sa.String(1024), nullable=True),
        sa.Column("simulated", sa.Boolean, nullable=False),
        sa.Column("cpu", sa.Integer, nullable=False),
        sa.Column("memory_kib", sa.Integer, nullable=False),
        sa.Column("cpu_mhz", sa.Integer, nullable=True),
        sa.Column("arch", sa.String(32), nullable=True),
        sa.Column("power_idle", sa.Float, nullable=True),
        sa.Column("power_max", sa.Float, nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status_message", sa.Text, nullable=True),
        sa.Column("updated", sa.DateTime, nullable=False),
    )
    op.create_table(
        "resources",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("host_id", sa.Integer, sa.ForeignKey("hosts.id"), nullable=True),
        sa.Column("native_id", sa.String(255), nullable=True),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Column("private", sa.JSON, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
        sa.UniqueConstraint("host_id", "native_id", name="uq_resources_host_native"),
    )
    op.create_index("ix_resources_tenant_type", "resources", ["tenant_id", "type"])
    op.create_table(
        "jobs",
        sa.Column("uuid", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.Integer, sa.ForeignKey("tenants.id"), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("target_uuid", sa.String(36), nullable=True),
        sa.Column("target_type", sa.String(40), nullable=True),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("affected", sa.JSON, nullable=False),
        sa.Column("progress", sa.Integer, nullable=False),
        sa.Column("status_message", sa.Text, nullable=True),
        sa.Column("return_code", sa.Integer, nullable=True),
        sa.Column("parent_uuid", sa.String(36), nullable=True),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("updated", sa.DateTime, nullable=False),
        sa.Column("status_changed", sa.DateTime, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("claimed_at", sa.DateTime, nullable=True),
    )
    op.create_index("ix_jobs_state_created", "jobs", ["state", "created"])
    op.create_index("ix_jobs_tenant", "jobs", ["tenant_id"])


def downgrade() -> None:
    for table in ("jobs", "resources", "hosts", "tokens", "users", "tenants", "instances"):
        op.drop_table(table)

"""Relationships as columns: a resource's System (``system_uuid``), a Volume's machine or a Meter's
(``machine_uuid``), filled from where earlier versions kept them: ``private.system``; a Volume's
``doc.attachedTo`` or ``private.attaching``; a Meter's native id, ``<machine uuid>/<aspect>``.

The documents keep their hrefs (what a client reads is unchanged); the columns are what the daemon
queries, written beside them by cmdb.py. ``downgrade`` drops the columns.

Revision ID: 0007
Revises: 0006
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RESOURCES = sa.table("resources", sa.column("uuid", sa.String(36)), sa.column("type", sa.String(40)),
                     sa.column("native_id", sa.String(255)), sa.column("doc", sa.JSON), sa.column("private", sa.JSON),
                     sa.column("system_uuid", sa.String(36)), sa.column("machine_uuid", sa.String(36)))


def _last_part(href):
    return href.rsplit("/", 1)[-1] if isinstance(href, str) and href else None


def _links(kind, native_id, doc, private):
    """(system uuid, machine uuid) of one row as an earlier version recorded them."""
    doc = doc if isinstance(doc, dict) else {}
    private = private if isinstance(private, dict) else {}
    system = private.get("system") if isinstance(private.get("system"), str) else None
    machine = None
    if kind == "Volume":
        attached = doc.get("attachedTo")
        if isinstance(attached, list) and attached and isinstance(attached[0], dict):
            machine = _last_part(attached[0].get("href"))
        machine = machine or (private.get("attaching") if isinstance(private.get("attaching"), str) else None)
    elif kind == "Meter" and isinstance(native_id, str) and "/" in native_id:
        machine = native_id.split("/", 1)[0]
    return system, machine


def upgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.add_column(sa.Column("system_uuid", sa.String(36), nullable=True))
        batch.add_column(sa.Column("machine_uuid", sa.String(36), nullable=True))
        batch.create_index("ix_resources_system_uuid", ["system_uuid"])
        batch.create_index("ix_resources_machine_uuid", ["machine_uuid"])
    connection = op.get_bind()
    rows = connection.execute(sa.select(RESOURCES.c.uuid, RESOURCES.c.type, RESOURCES.c.native_id, RESOURCES.c.doc,
                                        RESOURCES.c.private)
                              .where(RESOURCES.c.type.in_(("Machine", "Volume", "Network", "Meter")))).all()
    for uuid, kind, native_id, doc, private in rows:
        system, machine = _links(kind, native_id, doc, private)
        if system or machine:
            connection.execute(sa.update(RESOURCES).where(RESOURCES.c.uuid == uuid)
                               .values(system_uuid=system, machine_uuid=machine))


def downgrade() -> None:
    with op.batch_alter_table("resources") as batch:
        batch.drop_index("ix_resources_machine_uuid")
        batch.drop_index("ix_resources_system_uuid")
        batch.drop_column("machine_uuid")
        batch.drop_column("system_uuid")

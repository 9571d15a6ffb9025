"""A SystemTemplate's component descriptors in DSP0263 Table 14's shape: each component's template under the
attribute named for its type (``machineTemplate``, ``volumeTemplate``, ``networkTemplate``), no longer under
siroccod's private ``component`` (issue 16).

A data migration: the SystemTemplate documents kept in ``resources`` are rewritten, the schema is unchanged.
``downgrade`` puts the templates back under ``component``. The daemon also reads ``component`` where it makes a
System (model.spec_descriptor), so a row this migration did not see (written by an older process meanwhile)
still works.

Revision ID: 0008
Revises: 0007
Created: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

RESOURCES = sa.table("resources", sa.column("uuid", sa.String(36)), sa.column("type", sa.String(40)),
                     sa.column("doc", sa.JSON))
CIMI = "http://schemas.dmtf.org/cimi/2/"
# the component types siroccod made before Table 14's shape -> the attribute of their template (frozen here)
ATTRIBUTES = {CIMI + "Machine": "machineTemplate", CIMI + "Volume": "volumeTemplate",
              CIMI + "Network": "networkTemplate"}
LEGACY = "component"


def _moved(item, upgrade):
    """A component descriptor with its template moved (to Table 14's attribute, or back); None when unchanged."""
    if not isinstance(item, dict) or item.get("type") not in ATTRIBUTES:
        return None
    old, new = (LEGACY, ATTRIBUTES[item["type"]]) if upgrade else (ATTRIBUTES[item["type"]], LEGACY)
    if old not in item or new in item:
        return None
    return {(new if k == old else k): v for k, v in item.items()}


def _migrate(upgrade):
    connection = op.get_bind()
    rows = connection.execute(sa.select(RESOURCES.c.uuid, RESOURCES.c.doc)
                              .where(RESOURCES.c.type == "SystemTemplate")).all()
    for uuid, doc in rows:
        if not isinstance(doc, dict) or not isinstance(doc.get("componentDescriptors"), list):
            continue
        items = doc["componentDescriptors"]
        moved = [_moved(item, upgrade) for item in items]
        if any(m is not None for m in moved):
            items = [m if m is not None else item for m, item in zip(moved, items, strict=True)]
            connection.execute(sa.update(RESOURCES).where(RESOURCES.c.uuid == uuid)
                               .values(doc=dict(doc, componentDescriptors=items)))


def upgrade() -> None:
    _migrate(True)


def downgrade() -> None:
    _migrate(False)

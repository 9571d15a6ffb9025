"""Credentials name their user ``userName`` (DSP0263 Table 23), as served since issue 13, no longer ``username``.

A data migration: the documents kept in ``resources`` are rewritten, the schema is unchanged. Renamed
wherever a credential is kept: a Credential's document, a credential given by value in a MachineTemplate
(and in a SystemTemplate's machine components), a machine's creation spec (``private.spec.credential_value``,
its password sealed, left as it is). ``downgrade`` renames back. The daemon also reads ``username`` where
it reads a credential, so a row this migration did not see (written by an older process meanwhile) works.

Revision ID: 0006
Revises: 0005
Created: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

RESOURCES = sa.table("resources", sa.column("uuid", sa.String(36)), sa.column("type", sa.String(40)),
                     sa.column("doc", sa.JSON), sa.column("private", sa.JSON))
TYPES = ("Credential", "MachineTemplate", "SystemTemplate", "Machine")


def _renamed(credential, old, new):
    """``credential`` (a dict, else returned as is) with key ``old`` renamed ``new``; None when unchanged."""
    if not isinstance(credential, dict) or old not in credential:
        return None
    out = {(new if k == old else k): v for k, v in credential.items() if not (k == old and new in credential)}
    return out


def _template(doc, old, new):
    """A MachineTemplate document with its credential by value renamed; None when unchanged."""
    if not isinstance(doc, dict):
        return None
    credential = _renamed(doc.get("credential"), old, new)
    return dict(doc, credential=credential) if credential is not None else None


def _rename(old: str, new: str) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(RESOURCES.c.uuid, RESOURCES.c.type, RESOURCES.c.doc, RESOURCES.c.private)
                              .where(RESOURCES.c.type.in_(TYPES))).all()
    for uuid, kind, doc, private in rows:
        changes = {}
        if kind == "Credential":
            renamed = _renamed(doc, old, new)
            if renamed is not None:
                changes["doc"] = renamed
        elif kind == "MachineTemplate":
            renamed = _template(doc, old, new)
            if renamed is not None:
                changes["doc"] = renamed
        elif kind == "SystemTemplate" and isinstance(doc, dict) and isinstance(doc.get("componentDescriptors"), list):
            components, changed = [], False
            for item in doc["componentDescriptors"]:
                renamed = _template(item.get("component"), old, new) if isinstance(item, dict) else None
                changed = changed or renamed is not None
                components.append(dict(item, component=renamed) if renamed is not None else item)
            if changed:
                changes["doc"] = dict(doc, componentDescriptors=components)
        elif kind == "Machine" and isinstance(private, dict) and isinstance(private.get("spec"), dict):
            renamed = _renamed(private["spec"].get("credential_value"), old, new)
            if renamed is not None:
                changes["private"] = dict(private, spec=dict(private["spec"], credential_value=renamed))
        if changes:
            connection.execute(sa.update(RESOURCES).where(RESOURCES.c.uuid == uuid).values(**changes))


def upgrade() -> None:
    _rename("username", "userName")


def downgrade() -> None:
    _rename("userName", "username")

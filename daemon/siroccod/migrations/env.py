"""Alembic's environment for the CMDB: always run from siroccod.migrating, on the connection it passes
(no alembic.ini, no URL of its own), against the tables declared in siroccod.store."""

from __future__ import annotations

from alembic import context

from siroccod.store import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite alters a table by copying it: batch mode does that for every migration
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

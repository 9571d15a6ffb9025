"""The CMDB's schema under Alembic (migrations/): every process that opens a CMDB upgrades it to the newest
revision first (one process at a time: the store's start-up lock), so a CMDB made by any earlier version,
on SQLite or PostgreSQL, is upgraded in place. `siroccod db` shows and applies revisions by hand.

A CMDB made before migrations existed (its tables created directly, no ``alembic_version``) holds exactly
the baseline revision's tables: it is stamped with that revision, then upgraded like any other.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"
# what a CMDB had before migrations: all of these tables and no alembic_version
BASELINE_TABLES = frozenset({"instances", "tenants", "users", "tokens", "hosts", "resources", "jobs"})


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an ini file: the scripts here, the connection given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision of the scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current(connection: Connection) -> str | None:
    """The revision a CMDB is at (None: empty, or made before migrations)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade the CMDB behind ``engine`` to ``revision``; (revision before, revision after)."""
    with engine.begin() as connection:
        config = alembic_config(connection)
        before = current(connection)
        if before is None and BASELINE_TABLES <= set(inspect(connection).get_table_names()):
            command.stamp(config, BASELINE)
            before = BASELINE
        command.upgrade(config, revision)
        return before, current(connection)


def history() -> list[tuple[str, str]]:
    """(revision, first line of its description), oldest first."""
    scripts = reversed(list(ScriptDirectory.from_config(alembic_config()).walk_revisions()))
    return [(script.revision, (script.doc or "").splitlines()[0] if script.doc else "") for script in scripts]

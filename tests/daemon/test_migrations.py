"""The CMDB's schema is Alembic's (daemon/siroccod/migrations): on SQLite and PostgreSQL,

* a new CMDB upgraded to the newest revision has exactly the tables siroccod.store declares (Alembic's
  own comparison finds no difference), so every change of the declaration comes with its migration;
* a CMDB made by the last version before migrations (commit 61b37de, whose daemon created its tables
  directly) is upgraded in place: that version's own code makes it here (from this repository's history,
  in another process), with a user and a machine; today's daemon then starts on it, and the user logs
  in and finds the machine, with the same id, and can still act on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from daemon_helpers import ADMIN_PASSWORD, CIMI, Api, make_app
from sqlalchemy import create_engine

REPO = Path(__file__).resolve().parents[2]
BEFORE_MIGRATIONS = "61b37de"


def test_migrations_make_the_declared_schema(database):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from siroccod import migrating
    from siroccod.store import Base, Store

    store = Store(database)
    try:
        with store.engine.connect() as connection:
            assert migrating.current(connection) == migrating.head()
            differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                           Base.metadata)
        assert differences == [], "siroccod.store declares what no migration makes: %s" % differences
        # opening it again changes nothing
        assert migrating.upgrade(store.engine) == (migrating.head(), migrating.head())
    finally:
        store.dispose()


OLD_DAEMON = textwrap.dedent("""
    # the daemon of commit 61b37de makes its CMDB: a user, a machine started on a simulated host
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from siroccod.app import create_app
    app = create_app(data_dir=sys.argv[2], database=sys.argv[3], admin_password=sys.argv[4],
                     job_poll_interval=0.05, log_level="WARNING")
    try:
        client = app.test_client()
        import base64
        def auth(name, password):
            return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (name, password)).encode()).decode()}
        admin = auth("admin", sys.argv[4])
        r = client.post("/admin/users", json={"name": "olduser", "tenant": "old", "password": "old-user-pw"},
                        headers=admin)
        assert r.status_code == 201, r.json
        user = auth("olduser", "old-user-pw")
        configs = client.get("/cimi/machineConfigs", headers=user).json["machineConfigs"]
        tiny = next(c["id"] for c in configs if c["name"] == "tiny")
        r = client.post("/cimi/machines", headers=user, json={
            "resourceURI": "http://schemas.dmtf.org/cimi/2/MachineCreate", "name": "from-61b37de",
            "machineTemplate": {"machineConfig": {"href": tiny}, "initialState": "STARTED"}})
        assert r.status_code == 202, r.json
        deadline = time.monotonic() + 30
        while client.get(r.headers["CIMI-Job-URI"], headers=user).json["state"] not in ("SUCCESS", "FAILED"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        machine = client.get(r.headers["Location"], headers=user).json
        print(json.dumps({"id": machine["id"], "state": machine["state"]}))
    finally:
        app.extensions["siroccod"].close()
""")


def _old_daemon(tmp_path):
    """The daemon package of the commit before migrations, from this repository's history."""
    out = tmp_path / "old"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", BEFORE_MIGRATIONS, "daemon/siroccod"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.fail("commit %s is not in this clone's history (a shallow clone?): %s"
                    % (BEFORE_MIGRATIONS, archive.stderr.decode()[-500:]), pytrace=False)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    return out / "daemon"


def test_a_cmdb_made_before_migrations_upgrades_in_place(database, tmp_path):
    from siroccod import migrating

    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIROCCOD_")}
    made = subprocess.run([sys.executable, "-c", OLD_DAEMON, str(_old_daemon(tmp_path)), str(data_dir), database,
                           ADMIN_PASSWORD], capture_output=True, text=True, timeout=300, env=env, check=False)
    assert made.returncode == 0, made.stderr[-3000:]
    old_machine = json.loads(made.stdout.strip().splitlines()[-1])
    assert old_machine["state"] == "STARTED"
    engine = create_engine(database)
    with engine.connect() as connection:
        assert migrating.current(connection) is None  # no alembic_version: made before migrations
    engine.dispose()

    app = make_app(data_dir, database=database)
    try:
        with app.extensions["siroccod"].store.engine.connect() as connection:
            assert migrating.current(connection) == migrating.head()
        user = Api(app.test_client(), "olduser", "old-user-pw")
        machines = user.items("machines")
        assert [(m["name"], m["id"].rsplit("/", 1)[1]) for m in machines] == [
            ("from-61b37de", old_machine["id"].rsplit("/", 1)[1])]
        machine = machines[0]
        assert machine["state"] == "STARTED" and machine["resourceURI"] == CIMI + "Machine"
        stopped = user.act(machine, "stop", force=True)
        assert stopped["state"] == "STOPPED"
    finally:
        app.extensions["siroccod"].close()


def test_the_db_commands(tmp_path):
    from realhost_helpers import DAEMON_DIR

    from siroccod import migrating
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIROCCOD_")}
    env.update(SIROCCOD_DATA=str(tmp_path / "data"), PYTHONPATH=str(DAEMON_DIR))

    def db(*args):
        done = subprocess.run([sys.executable, "-m", "siroccod", "db", *args], capture_output=True, text=True,
                              env=env, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout
    assert db("current").splitlines() == ["current: none (empty, or made before migrations)",
                                          "newest:  %s" % migrating.head()]
    assert [line.split()[0] for line in db("history").splitlines()] == [r for r, _doc in migrating.history()]
    assert db("upgrade").strip() == "CMDB at revision %s" % migrating.head()
    assert db("current").splitlines()[0] == "current: %s" % migrating.head()

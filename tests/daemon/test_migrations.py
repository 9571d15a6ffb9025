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
# the last commit before the relationship columns (migration 0007) and the declared private state (issue 15)
BEFORE_LINKS = "3003312"


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


def _old_daemon(tmp_path, commit=BEFORE_MIGRATIONS):
    """The daemon package of an earlier commit, from this repository's history."""
    out = tmp_path / "old"
    out.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit, "daemon/siroccod"],
                             capture_output=True, check=False)
    if archive.returncode != 0:
        pytest.fail("commit %s is not in this clone's history (a shallow clone?): %s"
                    % (commit, archive.stderr.decode()[-500:]), pytrace=False)
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True)
    # with the collection of its commit (the shared CIMI model it validated with), found before today's when the
    # daemon's directory leads sys.path: ansible_collections is a namespace package
    plugins = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar",
                              "--prefix=daemon/ansible_collections/sirocco/cimi/", commit, "plugins"],
                             capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(out)], input=plugins.stdout, check=True)
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


LINKED_DAEMON = textwrap.dedent("""
    # the daemon of the commit before migration 0007 makes its CMDB: a machine with a volume attached and its
    # meters, a system of one machine and one volume
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from siroccod.app import create_app  # the old daemon's, imported first: the helpers then find it loaded
    sys.path.insert(0, sys.argv[5])  # the tests' CIMI client
    from daemon_helpers import CIMI, Api, add_users
    app = create_app(data_dir=sys.argv[2], database=sys.argv[3], admin_password=sys.argv[4],
                     job_poll_interval=0.05, log_level="WARNING")
    try:
        admin = Api(app.test_client(), "admin", sys.argv[4])
        add_users(admin, names=("alice",))
        from daemon_helpers import PASSWORDS
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        machine = alice.create_machine(name="linked", state="STOPPED")
        small = next(c["id"] for c in alice.items("volumeConfigs") if c["name"] == "small")
        r = alice.post(alice.collection("volumes"), {"resourceURI": CIMI + "VolumeCreate", "name": "data",
                       "volumeTemplate": {"volumeConfig": {"href": small}}})
        assert r.status_code == 202, r.json
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        volume = alice.get(r.headers["Location"]).json
        r = alice.post(machine["id"] + "/volumes", {"resourceURI": CIMI + "MachineVolume",
                                                    "volume": {"href": volume["id"]}})
        assert r.status_code == 202, r.json
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        tiny = alice.config_href("tiny")
        r = alice.post(alice.collection("systems"), {"resourceURI": CIMI + "SystemCreate", "name": "pair",
            "systemTemplate": {"componentDescriptors": [
                {"type": CIMI + "Machine", "name": "web", "component": {"machineConfig": {"href": tiny}}},
                {"type": CIMI + "Volume", "name": "disk", "component": {"volumeConfig": {"href": small}}}]}})
        assert r.status_code == 202, r.json
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        system = alice.get(r.headers["Location"]).json
        meters = [m["id"] for m in alice.items("meters")]
        print(json.dumps({"machine": machine["id"], "volume": volume["id"], "system": system["id"],
                          "members": [h["href"] for k in ("machines", "volumes") for h in system[k]],
                          "meters": meters}))
    finally:
        app.extensions["siroccod"].close()
""")


def test_a_cmdb_made_before_the_relationship_columns_upgrades_in_place(database, tmp_path):
    """Migration 0007 (issue 15): a CMDB made by the daemon just before it, with a volume attached, meters and
    a system, gets its relationship columns filled from the documents and private state; today's daemon then
    detaches the volume and deletes the system as before."""
    from sqlalchemy import select

    from siroccod import migrating
    from siroccod.store import Resource

    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIROCCOD_")}
    made = subprocess.run([sys.executable, "-c", LINKED_DAEMON, str(_old_daemon(tmp_path, BEFORE_LINKS)),
                           str(data_dir), database, ADMIN_PASSWORD, str(Path(__file__).resolve().parent)],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert made.returncode == 0, made.stderr[-3000:]
    old = json.loads(made.stdout.strip().splitlines()[-1])
    engine = create_engine(database)
    with engine.connect() as connection:
        assert migrating.current(connection) == "0006"
    engine.dispose()

    def uuid(href):
        return href.rsplit("/", 1)[1]

    app = make_app(data_dir, database=database)
    try:
        store = app.extensions["siroccod"].store
        with store.read() as session:
            rows = {row.uuid: row for row in session.scalars(select(Resource))}
        assert rows[uuid(old["volume"])].machine_uuid == uuid(old["machine"])
        assert {rows[uuid(h)].system_uuid for h in old["members"]} == {uuid(old["system"])}
        assert old["meters"], "the simulated host meters its machines"
        assert all(rows[uuid(m)].machine_uuid in {uuid(old["machine"])} | {uuid(h) for h in old["members"]}
                   for m in old["meters"])
        alice = Api(app.test_client(), "alice", "alice-secret-pw")
        r = alice.delete(old["machine"] + "/volumes/" + uuid(old["volume"]))
        assert r.status_code == 202, r.json
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        assert "attachedTo" not in alice.get(old["volume"]).json
        with store.read() as session:
            assert session.get(Resource, uuid(old["volume"])).machine_uuid is None
        system = alice.get(old["system"]).json
        r = alice.delete(old["system"])
        assert r.status_code == 202, r.json
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        assert alice.get(system["id"]).status_code == 404
        with store.read() as session:
            assert all(session.get(Resource, uuid(h)) is None for h in old["members"])
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

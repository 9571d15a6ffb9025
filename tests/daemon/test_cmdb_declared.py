"""The CMDB's declared parts (issue 15): a resource's private state holds only the keys private_state.py
declares for its type, whoever writes it; the relationship columns are written beside the documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from daemon_helpers import CIMI, PASSWORDS, Api, add_users, make_app

DAEMON = Path(__file__).resolve().parents[2] / "daemon" / "siroccod"


def test_an_undeclared_private_key_is_refused_before_it_reaches_the_cmdb(tmp_path):
    from siroccod import cmdb
    from siroccod.store import Resource, Store

    store = Store("sqlite:///%s" % (tmp_path / "cmdb.sqlite"))
    try:
        with pytest.raises(ValueError, match=r"Machine .*: undeclared private key\(s\) colour"):
            with store.transaction() as session:
                cmdb.new_resource(session, "Machine", None, {"name": "m"}, private={"domain": "d", "colour": "red"})
        with store.read() as session:
            assert session.query(Resource).count() == 0  # nothing of it was written
        with store.transaction() as session:  # declared keys, and a change to one later: fine
            row = cmdb.new_resource(session, "Volume", None, {"name": "v"}, private={"native_name": "v1"})
            uuid = row.uuid
        with pytest.raises(ValueError, match="undeclared private key"):
            with store.transaction() as session:
                row = session.get(Resource, uuid)
                row.private = dict(row.private, attaching_to="someone")  # a typo of a declared key
        with store.read() as session:
            assert session.get(Resource, uuid).private == {"native_name": "v1"}
    finally:
        store.dispose()


def test_every_private_key_the_daemon_writes_or_reads_is_declared():
    """A static look at the daemon's code: each key it names on a ``private`` dict is a declared field."""
    from siroccod import private_state

    declared = set().union(*(private_state._DECLARED.values()))
    patterns = (r"private\.get\(\"(\w+)\"", r"private\[\"(\w+)\"\]", r"dict\(\w+\.private, (\w+)=",
                r"private=\{\"(\w+)\"", r"private=\{[^}]*, \"(\w+)\":")
    used = {}
    for path in DAEMON.rglob("*.py"):
        if "migrations" in path.parts or path.name == "private_state.py":
            continue  # they read what earlier versions wrote; the declarations themselves
        text = path.read_text()
        for pattern in patterns:
            for key in re.findall(pattern, text):
                used.setdefault(key, path.name)
    assert used, "the patterns find the daemon's private keys"
    assert {k: v for k, v in used.items() if k not in declared} == {}


def test_attachments_and_system_membership_are_columns_too(tmp_path):
    from sqlalchemy import select

    from siroccod.store import Resource

    app = make_app(tmp_path)
    try:
        admin = Api(app.test_client(), "admin", "admin-secret-pw")
        add_users(admin, names=("alice",))
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        machine = alice.create_machine(name="m1")
        small = next(c["id"] for c in alice.items("volumeConfigs") if c["name"] == "small")
        r = alice.post(alice.collection("volumes"), {"resourceURI": CIMI + "VolumeCreate", "name": "d1",
                                                     "volumeTemplate": {"volumeConfig": {"href": small}}})
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        volume = alice.get(r.headers["Location"]).json
        r = alice.post(machine["id"] + "/volumes", {"resourceURI": CIMI + "MachineVolume",
                                                    "volume": {"href": volume["id"]}})
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        r = alice.post(alice.collection("systems"), {"resourceURI": CIMI + "SystemCreate", "name": "s1",
                       "systemTemplate": {"componentDescriptors": [
                           {"type": CIMI + "Machine", "quantity": 2,
                            "machineTemplate": {"machineConfig": {"href": alice.config_href("tiny")}}}]}})
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        system = alice.get(r.headers["Location"]).json
        store = app.extensions["siroccod"].store
        with store.read() as session:
            rows = {row.uuid: row for row in session.scalars(select(Resource))}
        uuid = volume["id"].rsplit("/", 1)[1]
        assert rows[uuid].machine_uuid == machine["id"].rsplit("/", 1)[1]
        members = [h["id"].rsplit("/", 1)[1] for h in alice.members(system, "machines")]
        assert len(members) == 2 and {rows[m].system_uuid for m in members} == {system["id"].rsplit("/", 1)[1]}
        meters = [row for row in rows.values() if row.type == "Meter"]
        assert meters and all(m.machine_uuid in rows and rows[m.machine_uuid].type == "Machine" for m in meters)
        r = alice.delete(machine["id"] + "/volumes/" + uuid)
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        with store.read() as session:
            assert session.get(Resource, uuid).machine_uuid is None
        # a machine made with a volume in its template: attached by its creation
        r = alice.post(alice.collection("volumes"), {"resourceURI": CIMI + "VolumeCreate", "name": "d2",
                                                     "volumeTemplate": {"volumeConfig": {"href": small}}})
        assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        second = alice.get(r.headers["Location"]).json
        made = alice.create_machine(name="m2", volumes=[{"volume": {"href": second["id"]}}])
        assert [e["volume"]["href"] for e in alice.members(made, "volumes")] == [second["id"]]
        assert alice.get(second["id"]).json["attachedTo"] == [{"href": made["id"]}]
        with store.read() as session:
            assert session.get(Resource, second["id"].rsplit("/", 1)[1]).machine_uuid == made["id"].rsplit("/", 1)[1]
    finally:
        app.extensions["siroccod"].close()

"""Restart safety: simulated hosts restored from the CMDB, interrupted jobs, reconciliation,
the admin password of the first start."""

from __future__ import annotations

import os
import stat

from daemon_helpers import ADMIN_PASSWORD, CIMI, PASSWORDS, Api, action, add_users, assert_cimi_error, make_app
from sqlalchemy import select


def test_restart_restores_machines_as_they_were(tmp_path):
    app = make_app(tmp_path)
    admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
    add_users(admin, ("alice",))
    alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
    image = alice.items("machineImages", "?$filter=name='tiny-linux.qcow2'")[0]["id"]
    made = {
        "stopped": alice.create_machine("stopped", "STOPPED"),
        "started": alice.create_machine("started", "STARTED", machineImage={"href": image}),
        "paused": alice.act(alice.create_machine("paused", "STARTED"), "pause"),
        "suspended": alice.act(alice.create_machine("suspended", "STARTED"), "suspend"),
    }
    r = alice.post(alice.collection("volumes"), {"name": "keep", "properties": {"sirocco.host": "sim1"},
                                                 "volumeTemplate": {"volumeConfig": {"capacity": 4096}}})
    alice.wait(r.headers["CIMI-Job-URI"])
    volume = r.headers["Location"]
    holder = alice.create_machine("holder", "STOPPED", properties={"sirocco.host": "sim1"})
    r = alice.post(holder["volumes"]["href"], {"volume": {"href": volume}})
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    before = {d["id"]: (d["name"], d["state"], d["cpu"], d["volumes"].get("locatedVolumes"))
              for d in alice.items("machines", "?$expand=volumes")}
    app.extensions["siroccod"].close()

    app2 = make_app(tmp_path)  # the test driver kept nothing: everything comes back from the CMDB
    try:
        alice2 = Api(app2.test_client(), "alice", PASSWORDS["alice"])
        after = {d["id"]: (d["name"], d["state"], d["cpu"], d["volumes"].get("locatedVolumes"))
                 for d in alice2.items("machines", "?$expand=volumes")}
        assert after == before
        assert {v[1] for v in after.values()} == {"STOPPED", "STARTED", "PAUSED", "SUSPENDED"}
        # and they are real domains again: every advertised action works
        m = alice2.act(alice2.get(made["started"]["id"]).json, "stop", force=True)
        assert m["state"] == "STOPPED" and alice2.members(m, "disks")
        m = alice2.act(alice2.get(made["paused"]["id"]).json, "start")
        assert m["state"] == "STARTED"
        m = alice2.act(alice2.get(made["suspended"]["id"]).json, "start")
        assert m["state"] == "STARTED"
        assert alice2.get(volume).json["attachedTo"] == [{"href": holder["id"]}]
        entry = alice2.members(holder, "volumes")[0]
        r = alice2.delete(entry["id"])
        assert alice2.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        for doc in alice2.items("machines"):
            alice2.remove(doc)
        assert alice2.items("machines") == []
    finally:
        app2.extensions["siroccod"].close()


def test_queued_jobs_resume_and_running_ones_end_failed(tmp_path):
    from siroccod.store import Job
    app = make_app(tmp_path)
    admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
    one = admin.create_machine("one", "STOPPED")
    two = admin.create_machine("two", "STOPPED")
    daemon = app.extensions["siroccod"]
    daemon.runner.stop()  # from now on jobs stay queued, as when the process dies
    r1 = admin.post(admin.ops(one)["start"], action("start"))
    r2 = admin.post(admin.ops(two)["start"], action("start"))
    assert admin.get(one["id"]).json["state"] == "STARTING"
    job2 = r2.headers["CIMI-Job-URI"].rsplit("/", 1)[1]
    with daemon.store.transaction() as session:  # job two was running in a process that died
        job = session.get(Job, job2)
        job.state, job.claimed_by = "RUNNING", "dead-process-1"
    daemon.close()

    app2 = make_app(tmp_path)
    try:
        admin2 = Api(app2.test_client(), "admin", ADMIN_PASSWORD)
        assert admin2.wait(r1.headers["CIMI-Job-URI"])["state"] == "SUCCESS"  # resumed
        assert admin2.get(one["id"]).json["state"] == "STARTED"
        failed = admin2.wait(r2.headers["CIMI-Job-URI"])
        assert failed["state"] == "FAILED" and "interrupted" in failed["statusMessage"]
        assert admin2.get(two["id"]).json["state"] == "STOPPED"  # back where it was, actions offered again
        assert "start" in admin2.ops(admin2.get(two["id"]).json)
        with app2.extensions["siroccod"].store.read() as session:
            assert session.scalars(select(Job).where(Job.state.in_(("QUEUED", "RUNNING")))).all() == []
    finally:
        app2.extensions["siroccod"].close()


def test_reconcile_adopts_outside_domains_and_marks_vanished_ones(admin, alice, app):
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
    daemon = app.extensions["siroccod"]
    sim2 = daemon.pool.by_name("sim2")
    sim2.create_machine(MachineSpec(name="made-by-hand", config=MachineConfiguration(cpu=1, memory=65536)))
    victim = alice.create_machine("victim", "STARTED", properties={"sirocco.host": "sim2"})
    with daemon.store.read() as session:
        from siroccod.store import Resource
        native = session.get(Resource, victim["id"].rsplit("/", 1)[1]).native_id
    sim2.delete_machine(native)

    report = admin.post("/admin/reconcile").json
    assert report["adopted"] >= 1 and report["gone"] >= 1
    adopted = admin.items("machines", "?$filter=name='made-by-hand'")
    assert len(adopted) == 1 and adopted[0]["state"] == "STOPPED"
    assert adopted[0]["properties"]["sirocco.adopted"]
    assert alice.items("machines", "?$filter=name='made-by-hand'") == []  # admin tenant only
    gone = alice.get(victim["id"]).json
    assert gone["state"] == "FAILED" and "sirocco.gone" in gone["properties"]
    assert set(alice.ops(gone)) == {"delete"}
    alice.remove(gone)
    admin.remove(adopted[0])
    assert sim2.find_machine("made-by-hand") is None
    assert admin.post("/admin/reconcile").json == {"updated": 0, "gone": 0, "adopted": 0, "failed": 0}


def test_first_start_creates_admin_with_a_password_shown_once(tmp_path, capfd, monkeypatch):
    monkeypatch.delenv("SIROCCOD_ADMIN_PASSWORD", raising=False)
    app = make_app(tmp_path, admin_password=None)
    try:
        err = capfd.readouterr().err
        path = tmp_path / "admin-password"
        password = path.read_text().strip()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o700
        assert err.count(password) == 1
        admin = Api(app.test_client(), "admin", password)
        assert admin.get("/admin/hosts").status_code == 200
        assert password not in admin.get("/admin/users").get_data(as_text=True)
        assert_cimi_error(Api(app.test_client(), "admin", ADMIN_PASSWORD).get("/cimi/machines"), 401)
    finally:
        app.extensions["siroccod"].close()
    app = make_app(tmp_path, admin_password=None)  # second start: nothing new, nothing printed
    try:
        assert password not in capfd.readouterr().err
        assert Api(app.test_client(), "admin", password).get("/cimi/cloudEntryPoint").json["resourceURI"] == (
            CIMI + "CloudEntryPoint")
    finally:
        app.extensions["siroccod"].close()

"""Consolidation with real live migrations between two libvirt hosts on this machine.

Host ``kvm`` is the system libvirtd (qemu:///system, tests/standins/start-libvirtd.sh); host ``peer``
is a session libvirtd run as the user sirocco-peer with its own host UUID
(tests/standins/libvirt-peer/start.sh): libvirt takes it for another host. Machines are diskless TCG
domains; a started one moves by live migration (QEMU to QEMU over TCP on 127.0.0.1), a stopped one by
an offline migration. The daemon (in-process, SQLite, its job workers running) plans and carries out
both directions; afterwards the CMDB and both libvirtd's agree, and reconciling changes nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from daemon_helpers import ADMIN_PASSWORD, PASSWORDS, Api, add_users, make_app
from realhost_helpers import qemu_host

PEER_START = Path(__file__).resolve().parents[1] / "standins" / "libvirt-peer" / "start.sh"
URL = "/admin/consolidation"
RUNNING, SHUTOFF, MIGRATED = 1, 5, 2  # virDomainState, VIR_DOMAIN_RUNNING_MIGRATED


@pytest.fixture(scope="module")
def hosts():
    """(system host config, peer host config, {name: libvirt connection})."""
    done = subprocess.run(["bash", str(PEER_START)], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        pytest.fail("the libvirt peer did not start (`make libvirt-peer` as root):\n%s" % done.stderr[-2000:],
                    pytrace=False)
    peer_uri = done.stdout.strip().splitlines()[-1]
    with qemu_host() as system:
        import libvirt
        peer = libvirt.open(peer_uri)
        kvm = dict(system.host_config("kvm"), power_idle=90, power_max=300)
        kvm["options"] = dict(kvm["options"], migration_address="127.0.0.1")
        other = dict(kvm, name="peer", uri=peer_uri, power_idle=40, power_max=120)
        try:
            yield kvm, other, {"kvm": system.conn, "peer": peer}
        finally:
            for dom in peer.listAllDomains(0):
                if dom.name().startswith(system.prefix):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
            peer.close()


def _domains(conns, prefix):
    """name -> (host, UUID, state, reason) of this run's domains on both hosts; each once."""
    out = {}
    for host, conn in conns.items():
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(prefix):
                assert dom.name() not in out, "domain %s on two hosts" % dom.name()
                out[dom.name()] = (host, dom.UUIDString(),) + tuple(dom.state())
    return out


def _recorded(app):
    """domain name -> (host, native id, state) of every placed machine; one record per domain."""
    from siroccod.store import Resource
    with app.extensions["siroccod"].store.read() as session:
        rows = session.query(Resource).filter(Resource.type == "Machine", Resource.host_id.is_not(None)).all()
        out = {r.private["domain"]: (r.host.name, r.native_id, r.state) for r in rows}
        assert len(out) == len(rows), "a domain recorded twice: %s" % [r.private for r in rows]
        return out


def _agree(app, conns, prefix):
    recorded, found = _recorded(app), _domains(conns, prefix)
    assert set(recorded) == set(found)
    for name, (host, native, state) in recorded.items():
        assert found[name][:2] == (host, native), (name, recorded[name], found[name])
        assert found[name][2] == (RUNNING if state == "STARTED" else SHUTOFF), (name, state, found[name])
    return found


def _consolidate(admin, **body):
    r = admin.post(URL, dict(body, dryRun=False, timeLimit=3))
    assert r.status_code == 202, r.json
    job = admin.wait(r.json["job"]["href"], timeout=120)
    assert job["state"] == "SUCCESS", job
    return r.json, job


def test_live_migration_both_ways(tmp_path, hosts):
    kvm, peer, conns = hosts
    prefix = kvm["name_prefix"]
    app = make_app(tmp_path / "data", hosts=[kvm, peer])
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        add_users(admin, ("alice",))
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        assert {h["name"]: h["state"] for h in admin.get("/admin/hosts").json["hosts"]} == {"kvm": "UP", "peer": "UP"}
        made = [alice.create_machine("run-kvm", "STARTED", properties={"sirocco.host": "kvm"}),
                alice.create_machine("off-kvm", "STOPPED", properties={"sirocco.host": "kvm"}),
                alice.create_machine("run-peer", "STARTED", properties={"sirocco.host": "peer"})]
        _agree(app, conns, prefix)

        # the peer draws less: kvm is emptied, one live and one offline migration
        plan = admin.post(URL, {"dryRun": True, "timeLimit": 3}).json
        assert plan["hostsOff"] == ["kvm"] and plan["activeHostsAfter"] == 1, plan
        assert sorted((m["name"], m["from"], m["to"], m["mode"]) for m in plan["migrations"]) == [
            ("off-kvm", "kvm", "peer", "offline"), ("run-kvm", "kvm", "peer", "live")]
        plan, job = _consolidate(admin)
        assert "kvm" in job["statusMessage"]
        nested = [admin.get(n["href"]).json for n in job["nestedJobs"]]
        assert {n["statusMessage"] for n in nested} == {"moved from kvm to peer (live migration)",
                                                        "moved from kvm to peer (offline migration)"}, nested
        found = _agree(app, conns, prefix)
        assert {host for host, *_rest in found.values()} == {"peer"}
        run_kvm = next(v for v in found.values() if v[1] == _native(app, made[0]))
        assert run_kvm[2:] == (RUNNING, MIGRATED), run_kvm  # running on the peer because it was migrated there
        assert admin.get("/admin/hosts/kvm").json["machines"] == 0

        # banned from the peer: all three go back to kvm, the two running ones live
        ids = [m["id"] for m in made]
        plan, job = _consolidate(admin, constraints=[{"type": "ban", "vms": ids, "hosts": ["peer"]}])
        assert plan["hostsOff"] == ["peer"] and len(plan["migrations"]) == 3, plan
        found = _agree(app, conns, prefix)
        assert {host for host, *_rest in found.values()} == {"kvm"}
        running = sorted(v[2:] for v in found.values() if v[2] == RUNNING)
        assert running == [(RUNNING, MIGRATED)] * 2 and len(found) == 3, found

        # the CMDB and the hosts agree: reconciling changes nothing; the owner still drives its machines
        assert admin.post("/admin/reconcile").json == {"updated": 0, "gone": 0, "adopted": 0, "failed": 0}
        m = alice.act(alice.get(made[0]["id"]).json, "stop", force=True)
        assert m["state"] == "STOPPED"
        _agree(app, conns, prefix)
        for m in made:
            alice.remove(alice.get(m["id"]).json)
        assert _domains(conns, prefix) == {}
    finally:
        app.extensions["siroccod"].close()


def _native(app, machine):
    from siroccod.store import Resource
    with app.extensions["siroccod"].store.read() as session:
        return session.get(Resource, machine["id"].rsplit("/", 1)[1]).native_id


def test_a_move_interrupted_after_the_hosts_made_it_is_recorded_at_restart(tmp_path, hosts):
    """The daemon dies after libvirt migrated the machine but before the CMDB said so: the state a crash
    leaves (the move marked begun, its nested job RUNNING, the domain on the peer) is made here with the
    daemon's own code (``consolidation.begin``) and a real migration, then the daemon stops and starts
    again on the same CMDB: the machine is recorded on the peer, neither gone nor adopted."""
    from siroccod import consolidation
    from siroccod.store import Job
    kvm, peer, conns = hosts
    prefix = kvm["name_prefix"]
    data = tmp_path / "data"
    app = make_app(data, hosts=[kvm, peer], start_workers=False)
    d = app.extensions["siroccod"]
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        add_users(admin, ("alice",))
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        r = alice.post(alice.collection("machines"), {
            "resourceURI": "http://schemas.dmtf.org/cimi/2/MachineCreate", "name": "crash",
            "properties": {"sirocco.host": "kvm"},
            "machineTemplate": {"machineConfig": {"href": alice.config_href("tiny")}, "initialState": "STARTED"}})
        d.runner.run_pending()
        machine = r.headers["Location"]
        r = admin.post(URL, {"dryRun": False, "timeLimit": 3})
        assert r.status_code == 202 and len(r.json["migrations"]) == 1, r.json
        job_uuid = d.runner.claim()  # this process runs the job ...
        move = {"vm": machine.rsplit("/", 1)[1], "from": "kvm", "to": "peer"}
        child, native, _state, mode = consolidation.begin(d.worker, job_uuid, move)
        assert mode == "live"
        src, dst = d.pool.by_name("kvm"), d.pool.by_name("peer")
        src.connector().migrate_machine(native, dst.connector())  # ... the hosts move the machine ...
    finally:
        d.close()  # ... and the process is gone before recording it
    found = _domains(conns, prefix)
    assert [v[:1] + v[2:] for v in found.values()] == [("peer", RUNNING, MIGRATED)]

    app = make_app(data, hosts=[kvm, peer], start_workers=False)
    d = app.extensions["siroccod"]
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        with d.store.read() as session:
            jobs = {j.uuid: j.state for j in session.query(Job)}
        assert jobs[job_uuid] == jobs[child] == "FAILED"
        _agree(app, conns, prefix)  # recorded on the peer, STARTED
        assert _recorded(app)[next(iter(found))][0] == "peer"
        assert admin.post("/admin/reconcile").json == {"updated": 0, "gone": 0, "adopted": 0, "failed": 0}
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        assert len(alice.items("machines")) == 1 and alice.get(machine).json["state"] == "STARTED"
        assert "sirocco.gone" not in (alice.get(machine).json.get("properties") or {})
        r = alice.delete(machine)
        assert r.status_code == 202
        d.runner.run_pending()
        assert _domains(conns, prefix) == {}
    finally:
        d.close()

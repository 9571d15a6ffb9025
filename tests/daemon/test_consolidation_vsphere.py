"""Consolidation on vSphere: three hosts of one vCenter (govmomi's vcsim, tests/standins/vcsim), each a
daemon host (the vsphere connector with option ``host``), machines moved by RelocateVM_Task.

vcsim's vCenter model runs two VMs on hosts of its cluster (adopted by the daemon at start); a user
adds one on the third host. The plan empties two hosts; the job relocates the machines (vMotion of
running VMs, as vcsim simulates it); afterwards each host's listing holds exactly the machines the
CMDB records on it, and reconciling changes nothing."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from daemon_helpers import ADMIN_PASSWORD, PASSWORDS, Api, add_users, make_app

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry

STANDINS = Path(__file__).resolve().parents[1] / "standins"
ESX = {"esx1": ("DC0_C0_H0", 100, 300), "esx2": ("DC0_C0_H1", 110, 320), "esx3": ("DC0_C0_H2", 60, 200)}


@pytest.fixture(scope="module")
def vcenter():
    spec = importlib.util.spec_from_file_location("sirocco_vcsim_standin_consolidation",
                                                  STANDINS / "vcsim" / "standin.py")
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    try:
        sim = helper.Vcsim("vc").start()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the vcsim stand-in cannot start: %s\nrun `bash scripts/setup-system.sh` as root" % exc,
                    pytrace=False)
    try:
        yield sim
    finally:
        sim.stop()


def _host_configs(sim):
    return [{"name": name, "provider": "vsphere", "uri": sim.url, "username": sim.username,
             "password": sim.password, "validate_certs": False, "cpu": 16, "memory_mib": 16384,
             "power_idle": idle, "power_max": peak, "options": {"host": esx}}
            for name, (esx, idle, peak) in ESX.items()]


def _listed(sim):
    """daemon host name -> {machine id} that vCenter host runs, through connectors scoped to each."""
    out = {}
    for name, (esx, _idle, _peak) in ESX.items():
        conn = registry.connect("vsphere", options={"host": esx}, **sim.params)
        try:
            out[name] = {m.id for m in conn.list_machines().items}
        finally:
            conn.close()
    return out


def _recorded(app):
    from siroccod.store import Resource
    with app.extensions["siroccod"].store.read() as session:
        out = {name: set() for name in ESX}
        for r in session.query(Resource).filter(Resource.type == "Machine", Resource.host_id.is_not(None)):
            out[r.host.name].add(r.native_id)
        return out


def test_relocation_empties_hosts(tmp_path, vcenter):
    app = make_app(tmp_path / "data", hosts=_host_configs(vcenter))
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        add_users(admin, ("alice",))
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        assert {h["name"]: h["state"] for h in admin.get("/admin/hosts").json["hosts"]} == dict.fromkeys(ESX, "UP")
        alice.create_machine("mine", "STARTED", properties={"sirocco.host": "esx3"})
        before = _listed(vcenter)
        assert _recorded(app) == before and all(len(ids) == 1 for ids in before.values()), before

        r = admin.post("/admin/consolidation", {"dryRun": False, "timeLimit": 3})
        assert r.status_code == 202, r.json
        plan = r.json
        assert plan["status"] != "infeasible" and plan["staying"] == [], plan
        assert sorted(plan["hostsOff"]) == ["esx1", "esx2"] and plan["activeHostsAfter"] == 1
        assert sorted((m["from"], m["to"], m["mode"]) for m in plan["migrations"]) == [
            ("esx1", "esx3", "live"), ("esx2", "esx3", "live")]
        job = admin.wait(plan["job"]["href"], timeout=60)
        assert job["state"] == "SUCCESS", job
        nested = [admin.get(n["href"]).json for n in job["nestedJobs"]]
        assert [n["state"] for n in nested] == ["SUCCESS", "SUCCESS"], nested

        after = _listed(vcenter)
        assert after == _recorded(app)
        assert after["esx1"] == after["esx2"] == set() and after["esx3"] == set().union(*before.values())
        assert admin.post("/admin/reconcile").json == {"updated": 0, "gone": 0, "adopted": 0, "failed": 0}
        for name in ("esx1", "esx2"):
            assert admin.get("/admin/hosts/" + name).json["powerEstimate"] == 0.0
        mine = alice.items("machines")[0]
        assert alice.act(mine, "stop", force=True)["state"] == "STOPPED"  # on its new host
    finally:
        app.extensions["siroccod"].close()

"""XenServer and ESX hosts in the daemon, through the shared connectors: the XAPI wire-protocol
stand-in (tests/standins/xapi) and govmomi's vcsim in ESX mode (tests/standins/vcsim), each the
only host of a daemon driven through its CIMI API (app.test_client(), SQLite CMDB)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from daemon_helpers import ADMIN_PASSWORD, Api, make_app

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec

STANDINS = Path(__file__).resolve().parents[1] / "standins"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def xenserver():
    """(host config, a seed image name): a one-host pool."""
    control = _load("sirocco_xapi_control_daemon", STANDINS / "xapi" / "control.py")
    standin = control.start(hosts=1)
    try:
        yield {"name": "xen1", "provider": "xenserver", "uri": standin.url, "username": standin.username,
               "password": standin.password, "power_idle": 80, "power_max": 260}, "tiny-linux"
    finally:
        standin.stop()


@pytest.fixture(scope="module")
def esx():
    """(host config, a seed image name): a standalone ESX host."""
    helper = _load("sirocco_vcsim_standin_daemon", STANDINS / "vcsim" / "standin.py")
    try:
        sim = helper.Vcsim("esx").start()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the vcsim stand-in cannot start: %s\nrun `bash scripts/setup-system.sh` as root" % exc,
                    pytrace=False)
    try:
        yield {"name": "esx1", "provider": "vsphere", "uri": sim.url, "username": sim.username,
               "password": sim.password, "validate_certs": False, "power_idle": 90,
               "power_max": 300}, "image0"
    finally:
        sim.stop()


def _connector(cfg):
    return registry.connect(cfg["provider"], uri=cfg["uri"], username=cfg["username"], password=cfg["password"],
                            validate_certs=cfg.get("validate_certs", True))


@pytest.mark.parametrize("kind", ["xenserver", "esx"])
def test_machine_lifecycle_on_a_real_provider_host(kind, request, tmp_path):
    cfg, seed = request.getfixturevalue(kind)
    app = make_app(tmp_path, hosts=[cfg])
    try:
        _lifecycle(app, cfg, seed)
    finally:
        app.extensions["siroccod"].close()


def _lifecycle(app, cfg, seed):
    admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
    host = admin.get("/admin/hosts/" + cfg["name"]).json
    assert host["state"] == "UP", host
    assert seed in {i["name"] for i in admin.items("machineImages")}
    provider = _connector(cfg)
    try:
        # what the host ran before the daemon came: adopted at start (vcsim's ESX runs two VMs)
        caps = provider.capabilities()  # capacity: its CPU threads x cpu_allocation_ratio (4), its memory
        assert (host["cpu"], host["memoryMiB"], host["cpuMHz"]) == (
            caps.cpu.maximum * 4, caps.memory_mib.maximum, caps.cpu_mhz.maximum)
        found = {m.name: m.state for m in provider.iter_machines()}
        before = {m["name"]: m["state"] for m in admin.items("machines")}
        assert before == found
        assert all(m["properties"]["sirocco.adopted"] for m in admin.items("machines"))

        # a machine from the stock configuration, no image: created, started, stopped, deleted
        m = admin.create_machine("plain", "STOPPED")
        assert m["state"] == "STOPPED" and m["cpu"] == 1
        name = _domain(app, m)
        native = provider.find_machine(name)
        assert native is not None and native.state == "STOPPED"
        m = admin.act(m, "start")
        assert m["state"] == "STARTED" and provider.get_machine(native.id).state == "STARTED"
        m = admin.act(m, "stop", force=True)
        assert m["state"] == "STOPPED" and provider.get_machine(native.id).state == "STOPPED"
        admin.remove(m)
        assert provider.find_machine(name) is None
        assert admin.get(m["id"]).status_code == 404

        # from the host's seed image, started at once
        image = admin.items("machineImages", "?$filter=name='%s'" % seed)[0]
        m = admin.create_machine("imaged", "STARTED", machineImage={"href": image["id"]})
        assert m["state"] == "STARTED"
        assert provider.get_machine(provider.find_machine(_domain(app, m)).id).state == "STARTED"

        # reconcile: a VM made behind the daemon's back shows up, one deleted there is marked gone
        outside = provider.create_machine(MachineSpec(name="made-outside", config=MachineConfiguration(
            cpu=1, memory=131072)))
        provider.delete_machine(provider.find_machine(_domain(app, m)).id)
        report = admin.post("/admin/reconcile").json
        assert report["adopted"] == 1 and report["gone"] == 1, report
        adopted = admin.items("machines", "?$filter=name='made-outside'")
        assert len(adopted) == 1 and adopted[0]["state"] == "STOPPED", adopted
        gone = admin.get(m["id"]).json
        assert gone["state"] == "FAILED" and "sirocco.gone" in gone["properties"]
        admin.remove(gone)
        adopted = admin.act(adopted[0], "start")
        assert provider.get_machine(outside.id).state == "STARTED"
        admin.remove(adopted)  # deletes the adopted VM on its host
        assert provider.find_machine("made-outside") is None
        assert admin.post("/admin/reconcile").json == {"updated": 0, "gone": 0, "adopted": 0, "failed": 0}
        assert {m["name"]: m["state"] for m in admin.items("machines")} == before
    finally:
        provider.close()


def _domain(app, machine):
    from siroccod.store import Resource
    with app.extensions["siroccod"].store.read() as session:
        return session.get(Resource, machine["id"].rsplit("/", 1)[1]).private["domain"]

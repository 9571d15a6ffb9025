"""The XAPI stand-in speaks XAPI's wire protocol: the unmodified XenAPI package and raw XML-RPC agree."""

import importlib.util
import time
import xmlrpc.client
from pathlib import Path

import pytest
import XenAPI

CONTROL = Path(__file__).resolve().parents[2] / "standins" / "xapi" / "control.py"


@pytest.fixture(scope="module")
def server():
    spec = importlib.util.spec_from_file_location("sirocco_xapi_standin_control", CONTROL)
    control = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(control)
    standin = control.start(password="s3cret", async_delay=0.5)
    yield standin
    standin.stop()


@pytest.fixture
def api(server):
    session = XenAPI.Session(server.url)
    session.xenapi.login_with_password("root", "s3cret", "2.21", "unit-test")
    yield session.xenapi
    session.xenapi.session.logout()


def failure(call, *args):
    with pytest.raises(XenAPI.Failure) as err:
        call(*args)
    return err.value.details


def test_envelopes_and_login(server):
    raw = xmlrpc.client.ServerProxy(server.url)
    bad = raw.session.login_with_password("root", "wrong", "2.21", "x")
    assert bad == {"Status": "Failure", "ErrorDescription": ["SESSION_AUTHENTICATION_FAILED", "root",
                                                             "Authentication failure"]}
    ok = raw.session.login_with_password("root", "s3cret", "2.21", "x")
    assert ok["Status"] == "Success" and ok["Value"].startswith("OpaqueRef:")
    assert raw.VM.get_all(ok["Value"])["Status"] == "Success"
    assert raw.session.logout(ok["Value"]) == {"Status": "Success", "Value": ""}
    assert raw.VM.get_all(ok["Value"])["ErrorDescription"] == ["SESSION_INVALID", ok["Value"]]
    assert raw.VM.frob("x")["ErrorDescription"] == ["SESSION_INVALID", "x"]


def test_records_use_xapi_types(api):
    host = api.host.get_all()[0]
    record = api.host.get_record(host)
    metrics = api.host_metrics.get_record(record["metrics"])
    assert isinstance(metrics["memory_total"], str) and int(metrics["memory_free"]) < int(metrics["memory_total"])
    assert len(record["host_CPUs"]) == int(record["cpu_info"]["cpu_count"])
    templates = [r for r in api.VM.get_all_records().values() if r["is_a_template"]]
    assert {"Debian Bookworm 12", "tiny-linux"} <= {t["name_label"] for t in templates}
    assert all(isinstance(t["VCPUs_max"], str) and t["power_state"] == "Halted" for t in templates)


def test_lifecycle_and_power_state_errors(api):
    template = api.VM.get_by_name_label("tiny-linux")[0]
    assert failure(api.VM.start, template, False, False) == ["VM_IS_TEMPLATE", template, "start"]
    vm = api.VM.clone(template, "unit-vm")
    api.VM.provision(vm)
    assert api.VM.get_is_a_template(vm) is False
    assert failure(api.VM.pause, vm) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    api.VM.start(vm, False, False)
    assert api.VM.get_power_state(vm) == "Running"
    assert failure(api.VM.destroy, vm) == ["VM_BAD_POWER_STATE", vm, "halted, suspended", "running"]
    api.VM.suspend(vm)
    assert failure(api.VM.clean_shutdown, vm) == ["VM_BAD_POWER_STATE", vm, "running", "suspended"]
    api.VM.resume(vm, True, False)
    assert api.VM.get_power_state(vm) == "Paused"
    api.VM.unpause(vm)
    api.VM.hard_reboot(vm)
    api.VM.clean_shutdown(vm)
    assert failure(api.VM.set_VCPUs_at_startup, vm, "2")[0] == "INVALID_VALUE"
    api.VM.set_VCPUs_max(vm, "2")
    api.VM.set_VCPUs_at_startup(vm, "2")
    assert failure(api.VM.set_memory_limits, vm, "2", "1", "1", "1")[0] == "MEMORY_CONSTRAINT_VIOLATION"
    api.VM.destroy(vm)
    assert failure(api.VM.get_record, vm) == ["HANDLE_INVALID", "VM", vm]
    assert failure(api.VM.get_by_uuid, "nope") == ["UUID_INVALID", "VM", "nope"]
    assert failure(api.VM.start, vm)[0] == "MESSAGE_PARAMETER_COUNT_MISMATCH"


def test_async_tasks_and_events(api):
    template = api.VM.get_by_name_label("tiny-linux")[0]
    token = getattr(api.event, "from")(["vm"], "", 0.0)["token"]
    task = api.Async.VM.clone(template, "unit-async")
    assert api.task.get_status(task) == "pending"  # for async_delay (0.5 s)
    while api.task.get_status(task) == "pending":
        time.sleep(0.01)
    record = api.task.get_record(task)
    assert record["status"] == "success" and record["result"].startswith("<value>OpaqueRef:")
    vm = xmlrpc.client.loads("<methodResponse><params><param>%s</param></params></methodResponse>"
                             % record["result"])[0][0]
    events = getattr(api.event, "from")(["vm"], token, 1.0)
    assert any(e["ref"] == vm and e["operation"] == "add" for e in events["events"])
    failed = api.Async.VM.start(template, False, False)
    while api.task.get_status(failed) == "pending":
        time.sleep(0.01)
    assert api.task.get_error_info(failed) == ["VM_IS_TEMPLATE", template, "start"]
    api.task.destroy(failed)
    api.VM.destroy(vm)


def test_volumes_through_vdis_and_vbds(api):
    pool = api.pool.get_all()[0]
    sr = api.pool.get_default_SR(pool)
    vdi = api.VDI.create({"name_label": "unit-vol", "name_description": "", "SR": sr, "virtual_size": str(2 ** 30),
                          "type": "user", "sharable": False, "read_only": False, "other_config": {}})
    vm = api.VM.clone(api.VM.get_by_name_label("tiny-linux")[0], "unit-attach")
    api.VM.provision(vm)
    vbd = api.VBD.create({"VM": vm, "VDI": vdi, "userdevice": "autodetect", "bootable": False, "mode": "RW",
                          "type": "Disk", "empty": False, "other_config": {}, "qos_algorithm_type": "",
                          "qos_algorithm_params": {}})
    assert api.VBD.get_userdevice(vbd) == "1"
    assert failure(api.VBD.plug, vbd) == ["VM_BAD_POWER_STATE", vm, "running", "halted"]
    api.VM.start(vm, False, False)
    assert api.VBD.get_currently_attached(vbd) is True
    assert failure(api.VDI.destroy, vdi) == ["VDI_IN_USE", vdi, "destroy"]
    assert failure(api.VBD.plug, vbd) == ["DEVICE_ALREADY_ATTACHED", vbd]
    assert failure(api.VBD.destroy, vbd)[0] == "OPERATION_NOT_ALLOWED"
    api.VBD.unplug(vbd)
    assert failure(api.VBD.unplug, vbd) == ["DEVICE_ALREADY_DETACHED", vbd]
    api.VBD.destroy(vbd)
    api.VDI.destroy(vdi)
    api.VM.hard_shutdown(vm)
    api.VM.destroy(vm)


def test_data_sources_only_while_running(api):
    vm = api.VM.clone(api.VM.get_by_name_label("tiny-linux")[0], "unit-rrd")
    api.VM.provision(vm)
    assert api.VM.get_data_sources(vm) == []
    assert failure(api.VM.query_data_source, vm, "cpu0")[0] == "VM_BAD_POWER_STATE"
    api.VM.start(vm, False, False)
    names = {ds["name_label"] for ds in api.VM.get_data_sources(vm)}
    assert {"cpu0", "memory", "memory_internal_free"} <= names
    assert 0.0 <= api.VM.query_data_source(vm, "cpu0") <= 1.0
    api.VM.hard_shutdown(vm)
    api.VM.destroy(vm)


def test_connector_errors_have_one_shape(server):
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
        AuthError,
        NotFound,
        ProviderUnavailable,
    )
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.registry import connect

    with pytest.raises(AuthError) as err:
        connect("xenserver", uri=server.url, username="root", password="wrong").list_machines()
    assert "wrong" not in str(err.value)
    with pytest.raises(ProviderUnavailable):
        connect("xenserver", uri="http://127.0.0.1:9/", password="x", timeout=2).list_networks()
    with connect("xenserver", uri=server.url, password="s3cret") as conn:
        with pytest.raises(NotFound):
            conn.get_machine("not-a-uuid")
        with pytest.raises(NotFound):  # a template is an image, not a machine
            conn.get_machine(conn.get_machine_image("tiny-linux").id)
        assert conn.capabilities().locations == ("xs-host-1", "xs-host-2")


def test_location_pins_the_host(server, api):
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.registry import connect

    with connect("xenserver", uri=server.url, password="s3cret") as conn:
        spec = MachineSpec(name="unit-located", config=conn.get_machine_config("tiny"), location="xs-host-2",
                           initial_state="STARTED")
        machine = conn.create_machine(spec)
        vm = api.VM.get_by_uuid(machine.id)
        assert api.host.get_name_label(api.VM.get_resident_on(vm)) == "xs-host-2"
        assert api.host.get_name_label(api.VM.get_affinity(vm)) == "xs-host-2"
        conn.delete_machine(machine.id)

"""Resize and meters over a window on the hypervisors, read back through the provider's own API: pyvmomi on vcsim,
XenAPI on the XAPI stand-in (test_contract_resize.py covers what every connector shares).

vSphere: a running machine grows live only with hot add enabled (set here as an administrator would, through
pyvmomi), never shrinks live; a CPU count must fill its sockets; a volume grows through ExtendVirtualDisk_Task or,
attached, through its disk device. XenServer: a running machine changes its VCPUs within VCPUs_max
(VM.set_VCPUs_number_live) and nothing else; a plugged volume grows only on an SR whose driver resizes online
(the stand-in's ``Local storage``, an LVM SR). Meters: the samples of a window lie in it (vSphere's QueryPerf, the
rows of XAPI's ``/rrd_updates``).

The tests run on every stand-in of the suite and skip, saying why, on the others.
"""

from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

import pytest
import XenAPI

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.xenserver import XenServerConnector

MIB_KIB = 1024
ONLINE_SR = "Local storage"  # the XAPI stand-in's SR whose driver (LVM) declares VDI_RESIZE_ONLINE


@pytest.fixture
def vsphere(standin):
    """pyvmomi's ServiceContent of the vcsim stand-in."""
    if not standin.id.startswith("vsphere"):
        pytest.skip("%s: reads vSphere back through pyvmomi" % standin.id)
    from pyVim.connect import Disconnect, SmartConnect

    parts = urlsplit(standin.sim.url)
    si = SmartConnect(host=parts.hostname, port=parts.port, user=standin.sim.username, pwd=standin.sim.password,
                      disableSslCertValidation=True)
    try:
        yield si.RetrieveContent()
    finally:
        Disconnect(si)


@pytest.fixture
def xapi(standin):
    """A XenAPI session on the XAPI stand-in."""
    if not standin.id.startswith("xenserver"):
        pytest.skip("%s: reads XenServer back through XenAPI" % standin.id)
    session = XenAPI.Session(standin.server.url)
    session.xenapi.login_with_password(standin.server.username, standin.server.password, "2.21", "contract-resize")
    try:
        yield session.xenapi
    finally:
        session.xenapi.session.logout()


def _vm(content, machine_id):
    return content.searchIndex.FindByUuid(None, machine_id, True, True)


def _reconfigure(content, machine_id, **fields):
    """ReconfigVM_Task through pyvmomi, waited for: what an administrator sets outside Sirocco."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    WaitForTask(_vm(content, machine_id).ReconfigVM_Task(spec=vim.vm.ConfigSpec(**fields)))


# -- vSphere ----------------------------------------------------------------------------------------------------

def test_grows_live_only_with_hot_add(vsphere, connector, machine):
    m = machine(states.STARTED)
    bigger = MachineConfiguration(cpu=m.cpu, memory=m.memory * 2)
    assert connector.resize_needs_stop(m, bigger)
    with pytest.raises(Conflict, match="memory hot add is not enabled.*stop it first"):
        connector.resize_machine(m.id, bigger)
    assert _vm(vsphere, m.id).config.hardware.memoryMB == m.memory // MIB_KIB
    connector.machine_action(m.id, "stop", force=True)
    _reconfigure(vsphere, m.id, cpuHotAddEnabled=True, memoryHotAddEnabled=True)
    connector.machine_action(m.id, "start")
    m = connector.wait_for_machine(m.id, states.STARTED)
    assert not connector.resize_needs_stop(m, bigger)
    connector.resize_machine(m.id, bigger)
    vm = _vm(vsphere, m.id)
    assert vm.config.hardware.memoryMB == bigger.memory // MIB_KIB and vm.runtime.powerState == "poweredOn"
    smaller = MachineConfiguration(cpu=m.cpu, memory=m.memory)
    with pytest.raises(Conflict, match="takes no memory away from a running machine"):
        connector.resize_machine(m.id, smaller)
    assert _vm(vsphere, m.id).config.hardware.memoryMB == bigger.memory // MIB_KIB


def test_cpus_fill_whole_sockets(vsphere, connector, machine):
    m = machine(states.STOPPED)
    _reconfigure(vsphere, m.id, numCPUs=2, numCoresPerSocket=2)
    with pytest.raises(InvalidInput) as caught:
        connector.resize_machine(m.id, MachineConfiguration(cpu=1, memory=m.memory))
    assert caught.value.attribute == "machineConfig.cpu"
    assert _vm(vsphere, m.id).config.hardware.numCPU == 2


def _file_kb(content, path):
    """The size of a datastore file as the datastore browser lists it (vcsim: the disk's capacity)."""
    from pyVim.task import WaitForTask
    from pyVmomi import vim

    datastore, name = path[1:].split("] ", 1)
    folder, file_name = name.rsplit("/", 1)
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.Datastore], True)
    try:
        ds = next(d for d in view.view if d.name == datastore)
    finally:
        view.Destroy()
    spec = vim.host.DatastoreBrowser.SearchSpec(matchPattern=[file_name],
                                                details=vim.host.DatastoreBrowser.FileInfo.Details(fileSize=True))
    task = ds.browser.SearchDatastore_Task(datastorePath="[%s] %s" % (datastore, folder), searchSpec=spec)
    WaitForTask(task)
    return task.info.result.file[0].fileSize // 1024


def test_disk_file_grows_detached_and_attached(vsphere, connector, standin, machine):
    vol = connector.create_volume(standin.name("v"), 1024)
    connector.resize_volume(vol.id, 2048)  # VirtualDiskManager.ExtendVirtualDisk_Task
    assert _file_kb(vsphere, vol.id) == 2048
    m = machine(states.STARTED)
    connector.attach_volume(m.id, vol.id)
    connector.resize_volume(vol.id, 4096)  # the running machine's disk device, edited
    from pyVmomi import vim

    disks = [d for d in _vm(vsphere, m.id).config.hardware.device
             if isinstance(d, vim.vm.device.VirtualDisk) and d.backing.fileName == vol.id]
    assert [d.capacityInKB for d in disks] == [4096]
    assert _file_kb(vsphere, vol.id) == 4096
    assert connector.get_machine(m.id).state == states.STARTED


def test_perf_samples_over_a_window(vsphere, connector, machine):
    m = machine(states.STARTED)
    end = datetime.now(UTC)
    start = end - timedelta(minutes=3)
    for meter in connector.list_meters(m.id, start=start, end=end):
        stamps = [datetime.fromisoformat(s.timestamp) for s in meter.samples]
        assert len(stamps) >= 9 and stamps == sorted(stamps)  # 20 s real-time samples over 3 minutes
        assert all(start <= stamp <= end for stamp in stamps)
    future = connector.list_meters(m.id, start=end + timedelta(hours=1))
    assert all(meter.samples is None for meter in future)
    with pytest.raises(InvalidInput) as caught:
        connector.list_meters(m.id, start=end, end=start)
    assert caught.value.attribute == "start"
    with pytest.raises(InvalidInput):
        connector.list_meters(m.id, start=datetime.now())  # no time zone


# -- XenServer --------------------------------------------------------------------------------------------------

def test_vcpus_live_within_vcpus_max(xapi, connector, machine):
    m = machine(states.STOPPED)
    vm, tiny = xapi.VM.get_by_uuid(m.id), m.memory
    halted = MachineConfiguration(cpu=1, memory=tiny * 2)
    connector.resize_machine(m.id, halted)
    record = xapi.VM.get_record(vm)
    assert (record["VCPUs_max"], record["VCPUs_at_startup"]) == ("1", "1")
    assert {record[k] for k in ("memory_static_max", "memory_dynamic_max", "memory_dynamic_min")} \
        == {str(halted.memory * 1024)}
    xapi.VM.set_VCPUs_max(vm, "2")  # room to grow live, as an administrator would leave it
    connector.machine_action(m.id, "start")
    m = connector.wait_for_machine(m.id, states.STARTED)
    two = MachineConfiguration(cpu=2, memory=halted.memory)
    assert not connector.resize_needs_stop(m, two)
    connector.resize_machine(m.id, two)
    assert xapi.VM.get_VCPUs_at_startup(vm) == "2"
    assert xapi.VM_metrics.get_VCPUs_number(xapi.VM.get_metrics(vm)) == "2"
    for refused in (MachineConfiguration(cpu=3, memory=halted.memory), MachineConfiguration(cpu=2, memory=tiny)):
        assert connector.resize_needs_stop(connector.get_machine(m.id), refused)
        with pytest.raises(Conflict, match="stop it first"):
            connector.resize_machine(m.id, refused)
    record = xapi.VM.get_record(vm)
    assert (record["VCPUs_at_startup"], record["memory_static_max"], record["power_state"]) \
        == ("2", str(halted.memory * 1024), "Running")


def test_plugged_vdi_grows_where_the_sr_resizes_online(xapi, connector, standin, machine):
    m = machine(states.STARTED)
    online = XenServerConnector(uri=standin.server.url, username=standin.server.username,
                                password=standin.server.password, options={"sr": ONLINE_SR})
    try:
        for conn, grows in ((connector, False), (online, True)):
            vol = conn.create_volume(standin.name("v"), 1024)
            conn.attach_volume(m.id, vol.id)
            vdi = xapi.VDI.get_by_uuid(vol.id)
            assert ("resize_online" in xapi.VDI.get_allowed_operations(vdi)) is grows
            if grows:
                conn.resize_volume(vol.id, 4096)
            else:
                with pytest.raises(Conflict, match="detach it or stop the machine"):
                    conn.resize_volume(vol.id, 4096)
            assert xapi.VDI.get_virtual_size(vdi) == str((4096 if grows else 1024) * 1024)
    finally:
        online.close()


def test_rrd_rows_over_a_window(xapi, connector, standin, machine):
    """A window's samples are the rows XAPI's /rrd_updates has for the VM (read here with urllib), 5 s apart,
    none before it started; the disk aspect, which no RRD keeps, is the current sample."""
    m = machine(states.STARTED)
    started = datetime.strptime(xapi.VM_metrics.get_start_time(xapi.VM.get_metrics(xapi.VM.get_by_uuid(m.id))).value,
                                "%Y%m%dT%H:%M:%SZ").replace(tzinfo=UTC)
    time.sleep(max(0.0, -(-started.timestamp() // 5) * 5 - time.time()) + 0.2)  # its first 5-second row
    end = datetime.now(UTC)
    meters = {meter.name: meter for meter in connector.list_meters(m.id, start=end - timedelta(minutes=2), end=end)}
    stamps = [datetime.fromisoformat(s.timestamp) for s in meters["cpu"].samples]
    assert stamps and stamps == sorted(stamps) and all(started <= t <= end for t in stamps)
    assert {(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)} <= {5.0}
    query = urlencode({"session_id": connector.session.handle, "start": int(stamps[-1].timestamp()), "interval": 5,
                       "cf": "AVERAGE", "vm_uuid": m.id})
    with urllib.request.urlopen(standin.server.url.rstrip("/") + "/rrd_updates?" + query, timeout=10) as reply:
        root = ElementTree.fromstring(reply.read())
    legend = [e.text.rsplit(":", 1)[1] for e in root.iter("entry")]
    row = next(r for r in root.iter("row") if int(r.findtext("t")) == int(stamps[-1].timestamp()))
    cpus = [float(v.text) for name, v in zip(legend, row.findall("v"), strict=True) if name.startswith("cpu")]
    assert float(meters["cpu"].samples[-1].value) == pytest.approx(sum(cpus) / len(cpus) * 100, abs=0.01)
    assert len(meters["disk"].samples) == 1
    before = connector.list_meters(m.id, start=started - timedelta(hours=1), end=started - timedelta(minutes=1))
    assert all(meter.samples is None for meter in before)  # it did not run then


def test_xapi_standin_resize_calls(xapi, connector, standin, machine):
    """The stand-in answers as xapi does: the SR's driver decides, a plugged VDI takes no offline resize, the
    drivers refuse a shrink, VCPUs change live only on a running VM within VCPUs_max."""
    m = machine(states.STARTED)
    vol = connector.create_volume(standin.name("v"), 1024)
    connector.attach_volume(m.id, vol.id)
    vdi, vm = xapi.VDI.get_by_uuid(vol.id), xapi.VM.get_by_uuid(m.id)
    for call, size, code in ((xapi.VDI.resize, "2097152", "VDI_IN_USE"),
                             (xapi.VDI.resize_online, "2097152", "SR_OPERATION_NOT_SUPPORTED")):
        with pytest.raises(XenAPI.Failure) as caught:
            call(vdi, size)
        assert caught.value.details[0] == code
    connector.detach_volume(m.id, vol.id)
    with pytest.raises(XenAPI.Failure) as caught:
        xapi.VDI.resize(vdi, "1024")
    assert caught.value.details[:3] == ["SR_BACKEND_FAILURE_79", "", "VDI Invalid size [opterr=shrinking not allowed]"]
    with pytest.raises(XenAPI.Failure) as caught:
        xapi.VM.set_VCPUs_number_live(vm, str(int(xapi.VM.get_VCPUs_max(vm)) + 1))
    assert caught.value.details[0] == "INVALID_VALUE"
    xapi.VM.hard_shutdown(vm)
    with pytest.raises(XenAPI.Failure) as caught:
        xapi.VM.set_VCPUs_number_live(vm, "1")
    assert caught.value.details[0] == "VM_BAD_POWER_STATE"

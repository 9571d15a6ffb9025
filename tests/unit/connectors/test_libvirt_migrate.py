"""libvirt connector, machine.migrate between two test-driver hosts (each its own node XML file).

The test driver cannot migrate, so the connector redefines a diskless domain on the target (started
there if it ran) and removes it from the source; anything else is refused before a change."""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt as lv
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.vsphere import VSphereConnector

pytest.importorskip("libvirt")
NODE = """<node><cpu><mhz>2000</mhz><model>x86_64</model><active>4</active><nodes>1</nodes><sockets>1</sockets>
<cores>4</cores><threads>1</threads></cpu><memory>4194304</memory>
<pool type='dir'><name>default</name><uuid>%s</uuid><target><path>/%s-pool</path></target></pool></node>"""


@pytest.fixture()
def pair(tmp_path):
    hosts = []
    for name, uuid in (("a", "3c1f3f64-3e0b-4a59-9d0b-000000000001"), ("b", "3c1f3f64-3e0b-4a59-9d0b-000000000002")):
        path = tmp_path / ("%s.xml" % name)
        path.write_text(NODE % (uuid, name))
        hosts.append(lv.LibvirtConnector(uri="test://%s" % path, options={"network": "none"}))
    yield hosts
    for host in hosts:
        host.close()


def _make(host, name, state):
    config = MachineConfiguration(cpu=1, memory=65536)
    return host.create_machine(MachineSpec(name=name, config=config, initial_state=state))


def _with_disk(host, name):
    """A domain with a disk file, defined as another tool would."""
    dom = host.conn.defineXML(
        "<domain type='test'><name>%s</name><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
        "<devices><disk type='file' device='disk'><source file='/a-pool/%s.qcow2'/><target dev='vda'/></disk>"
        "</devices></domain>" % (name, name))
    return host.get_machine(dom.UUIDString())


@pytest.mark.parametrize("state", [states.STARTED, states.STOPPED, states.PAUSED])
def test_a_diskless_machine_moves_in_its_state(pair, state):
    a, b = pair
    m = _make(a, "mover", states.STARTED if state == states.PAUSED else state)
    if state == states.PAUSED:
        a.pause_machine(m.id)
    moved = a.migrate_machine(m.id, b)
    assert (moved.id, moved.name, moved.state) == (m.id, "mover", state)
    assert b.get_machine(m.id).state == state
    assert a.find_machine("mover") is None and b.find_machine("mover").id == m.id


def test_refusals_change_nothing(pair):
    a, b = pair
    with_disk = _with_disk(a, "disked")
    with pytest.raises(Conflict, match="disks"):
        a.migrate_machine(with_disk.id, b)
    real = lv.LibvirtConnector(uri="qemu:///system")  # never connected: refused before that
    with pytest.raises(InvalidInput, match="simulated"):
        a.migrate_machine(with_disk.id, real)
    with pytest.raises(InvalidInput, match="libvirt"):
        a.migrate_machine(with_disk.id, VSphereConnector(uri="https://vc.invalid/sdk"))
    assert a.get_machine(with_disk.id).state == states.STOPPED
    assert b.find_machine("disked") is None


def test_machine_migrate_is_advertised(pair):
    assert pair[0].capabilities().supports("machine.migrate")

"""libvirt connector, issue 14: cidr rules, network XML with addresses, live vCPU growth within a domain's
maximum, meters over a window, MACs and seed network configuration (libvirt's test driver, no daemon)."""

from __future__ import annotations

import json
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt as lv
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt_guest

libvirt = pytest.importorskip("libvirt")


@pytest.mark.parametrize("cidr", ["10.1.2.0/24", "172.16.0.0/12", "192.168.7.0/30", "198.18.4.0/23"])
def test_private_cidrs_accepted(cidr):
    assert str(lv.parse_cidr(cidr)) == cidr


@pytest.mark.parametrize("cidr, words", [
    ("10.1.2.3/24", "host bits"), ("10.1.2.0/31", "too small"), ("10.1.2.0", "IPv4 network"),
    ("8.8.8.0/24", "private"), ("127.0.0.0/8", "private"), ("169.254.0.0/16", "private"),
    ("fd00::/64", "IPv4"), (None, "IPv4 network"),
])
def test_bad_cidrs_refused(cidr, words):
    with pytest.raises(InvalidInput, match=words) as caught:
        lv.parse_cidr(cidr)
    assert caught.value.attribute == "cidr"


def test_network_xml_with_addresses_stays_isolated():
    root = ET.fromstring(lv.build_network_xml("n", cidr=lv.parse_cidr("10.9.0.0/16"), dhcp=True, bridge="sir-x"))
    assert root.find("forward") is None and root.find("dns").get("enable") == "no"
    ip = root.find("ip")
    assert (ip.get("address"), ip.get("netmask")) == ("10.9.0.1", "255.255.0.0")
    assert root.find("ip/dhcp/range").attrib == {"start": "10.9.0.2", "end": "10.9.255.254"}
    assert lv.network_addresses(root) == ("10.9.0.0/16", True)
    plain = ET.fromstring(lv.build_network_xml("n", cidr=lv.parse_cidr("10.9.0.0/30")))
    assert plain.find("ip/dhcp") is None and lv.network_addresses(plain) == ("10.9.0.0/30", False)
    assert lv.network_addresses(ET.fromstring(lv.build_network_xml("n"))) == (None, None)


def test_bridge_names_differ_by_salt():
    names = {lv.bridge_name("net", salt) for salt in range(16)}
    assert len(names) == 16 and all(len(n) <= 15 for n in names)


HOST_XML = """<node><cpu><mhz>2400</mhz><model>i686</model><active>4</active><nodes>1</nodes><sockets>1</sockets>
<cores>4</cores><threads>1</threads></cpu><memory>4194304</memory></node>"""


@pytest.fixture
def conn(tmp_path):
    """A connector on a test-driver host of its own (its state lives in the connection)."""
    (tmp_path / "host.xml").write_text(HOST_XML)
    connector = lv.LibvirtConnector(uri="test://%s" % (tmp_path / "host.xml"), options={"network": "none"})
    yield connector
    connector.close()


def _domain(connector, current, maximum, memory_kib=131072):
    name = "resize-%s" % uuid.uuid4().hex[:8]
    dom = connector.conn.defineXML(
        "<domain type='test'><name>%s</name><memory unit='KiB'>%d</memory><vcpu current='%d'>%d</vcpu>"
        "<os><type arch='i686'>hvm</type></os></domain>" % (name, memory_kib, current, maximum))
    dom.create()
    return connector.get_machine(dom.UUIDString())


def test_running_machine_grows_vcpus_up_to_its_maximum(conn):
    m = _domain(conn, current=1, maximum=3)
    assert m.cpu == 1 and m.state == states.STARTED
    up = MachineConfiguration(cpu=3, memory=m.memory)
    assert not conn.resize_needs_stop(m, up)
    assert conn.resize_machine(m.id, up).cpu == 3
    assert conn.get_machine(m.id).cpu == 3 and conn.get_machine(m.id).state == states.STARTED
    down = MachineConfiguration(cpu=2, memory=m.memory)  # taking a vCPU away needs the guest: refused live
    assert conn.resize_needs_stop(conn.get_machine(m.id), down)
    with pytest.raises(Conflict, match="stop it first"):
        conn.resize_machine(m.id, down)
    conn.stop_machine(m.id, force=True)
    assert conn.resize_machine(m.id, down).cpu == 2  # stopped: the definition is rewritten


def test_resize_keeps_the_architecture(conn):
    m = _domain(conn, current=1, maximum=1)
    with pytest.raises(InvalidInput) as caught:
        conn.resize_machine(m.id, MachineConfiguration(cpu=1, memory=m.memory, cpuArch="aarch64"))
    assert caught.value.attribute == "machineConfig.cpuArch"


def test_meters_over_a_window(conn):
    m = _domain(conn, current=1, maximum=1)
    now = datetime.now(UTC)
    inside = conn.list_meters(m.id, start=now - timedelta(hours=1), end=now + timedelta(hours=1))
    assert inside and all(len(x.samples) == 1 for x in inside)
    past = conn.list_meters(m.id, start=now - timedelta(days=2), end=now - timedelta(days=1))
    assert {x.aspect for x in past} == set(lv.METERS) and all(x.samples == [] for x in past)
    assert all(x.samples == [] for x in conn.list_meters(m.id, start=now + timedelta(hours=1)))
    for start, end, attribute in ((datetime(2020, 1, 1), None, "start"), (None, "tomorrow", "end"),
                                  (now, now - timedelta(seconds=1), "start")):
        with pytest.raises(InvalidInput) as caught:
            conn.list_meters(m.id, start=start, end=end)
        assert caught.value.attribute == attribute


def test_volume_types_and_test_driver_resize_refused(conn):
    with pytest.raises(InvalidInput) as caught:
        conn.create_volume("typed", 1024, volume_type="ssd")
    assert caught.value.attribute == "type"
    assert "volume.resize" not in conn.capabilities().operations
    assert "machine.resize" in conn.capabilities().operations


def test_seed_network_config_matches_each_nic():
    nics = [{"user": True, "forward": {"address": "127.0.0.1", "port": 42200, "mac": "52:54:00:00:00:01"}},
            {"network": "lab", "mac": "52:54:00:00:00:02"}]
    config = json.loads(libvirt_guest.network_config(nics))
    assert config["version"] == 2
    assert list(config["ethernets"].values()) == [
        {"match": {"macaddress": "52:54:00:00:00:01"}, "set-name": "snic0", "dhcp4": True, "optional": False},
        {"match": {"macaddress": "52:54:00:00:00:02"}, "set-name": "snic1", "dhcp4": True, "optional": True}]


def test_networks_on_a_machine_that_does_not_boot(conn):
    net = conn.create_network("lab-%s" % uuid.uuid4().hex[:6], cidr="10.77.0.0/24", dhcp=True)
    assert (net.cidr, net.dhcp) == ("10.77.0.0/24", True)
    with pytest.raises(Conflict, match="overlaps"):
        conn.create_network("other", cidr="10.77.0.128/25")
    interfaces = conn._interfaces(_spec([net.id]), "i686", str(uuid.uuid4()))
    assert [nic["network"] for nic in interfaces] == [net.name] and interfaces[0]["mac"].startswith("52:54:00:")


def _spec(networks):
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
    return MachineSpec(name="x", config=MachineConfiguration(cpu=1, memory=65536), networks=networks)

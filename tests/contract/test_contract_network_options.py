"""Network options: an IPv4 ``cidr`` and ``dhcp`` at creation.

A connector either sets them (and reports them back in the Network's ``cidr`` and ``dhcp``, read from what the
provider keeps) or refuses with InvalidInput naming the attribute, creating nothing.
A malformed cidr is refused by every connector that creates networks, before anything is created.

Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking: routed nowhere), a random /24 per test so that
parallel runs on one host do not meet. No test sends traffic to them.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import random
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, NotFound
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt_guest

BAD_CIDRS = ("nonsense", "198.18.0.300/24", "198.18.7.1/24", "198.18.7.0/33", "fd00:18::/64", "198.18.7.0/", 24)


def _random_cidr():
    return "198.%d.%d.0/24" % (18 + random.randint(0, 1), random.randint(0, 255))


@pytest.fixture
def creates_networks(caps):
    if not caps.supports("network.create"):
        pytest.skip("%s creates no networks (test_contract_networks checks the refusal)" % caps.provider)


def _names(connector):
    return {n.name for n in connector.list_networks()}


def _create_or_refused(connector, name, **options):
    """The network created with ``options``, or None when the connector refused one of them as InvalidInput
    naming it (and created nothing)."""
    try:
        return connector.create_network(name, **options)
    except InvalidInput as exc:
        assert exc.attribute in [key for key, value in options.items() if value is not None], exc
        assert name not in _names(connector)
        return None


@pytest.mark.parametrize("dhcp", [True, False])
def test_network_with_cidr(connector, standin, creates_networks, dhcp):
    name, cidr = standin.name("n"), _random_cidr()
    net = _create_or_refused(connector, name, cidr=cidr, dhcp=dhcp)
    if net is None:
        pytest.skip("%s refuses cidr/dhcp as InvalidInput" % standin.id)
    for seen in (net, connector.get_network(name)):
        assert seen.id == net.id and seen.state == "STARTED"
        assert seen.cidr == cidr and seen.dhcp is dhcp
    connector.delete_network(net.id)
    with pytest.raises(NotFound):
        connector.get_network(net.id)


def test_dhcp_without_cidr(connector, standin, creates_networks):
    name = standin.name("n")
    net = _create_or_refused(connector, name, dhcp=True)
    if net is not None:  # the provider picks the addresses itself
        assert connector.get_network(name).dhcp in (True, None)
        connector.delete_network(net.id)


@pytest.mark.parametrize("cidr", BAD_CIDRS, ids=str)
def test_bad_cidr_refused_before_anything(connector, standin, creates_networks, cidr):
    before = _names(connector)
    name = standin.name("n")
    for dhcp in (None, True):
        with pytest.raises(InvalidInput) as caught:
            connector.create_network(name, cidr=cidr, dhcp=dhcp)
        assert caught.value.attribute == "cidr"
    assert _names(connector) == before


# -- libvirt: what the network is, read back through libvirt itself ---------------------------------------

@pytest.fixture
def libvirt_conn(standin, connector):
    if not standin.id.startswith("libvirt"):
        pytest.skip("reads libvirt's own network XML")
    return connector.conn  # the test driver's state lives in its connection: read through the same one


def test_isolated_bridge_with_its_addresses(connector, standin, libvirt_conn):
    name, cidr = standin.name("n"), _random_cidr()
    connector.create_network(name, cidr=cidr, dhcp=True)
    root = ET.fromstring(libvirt_conn.networkLookupByName(name).XMLDesc(0))
    assert root.find("forward") is None  # isolated: never routed or NATed to the outside
    network = ipaddress.ip_network(cidr)
    ip = root.find("ip")
    assert ipaddress.ip_interface("%s/%s" % (ip.get("address"), ip.get("netmask") or ip.get("prefix"))) \
        == ipaddress.ip_interface("%s/%d" % (next(network.hosts()), network.prefixlen))
    dhcp_range = ip.find("dhcp/range")
    assert ipaddress.ip_address(dhcp_range.get("start")) in network
    assert ipaddress.ip_address(dhcp_range.get("end")) in network
    bridge = root.find("bridge").get("name")
    if standin.id == "libvirt-qemu":
        assert os.path.isdir("/sys/class/net/%s" % bridge)  # the bridge libvirt made on this host
    other = standin.name("n")
    with pytest.raises(Conflict):  # the host would route one subnet to two bridges
        connector.create_network(other, cidr=cidr)
    assert other not in _names(connector)


def test_addresses_without_dhcp_range(connector, standin, libvirt_conn):
    name = standin.name("n")
    connector.create_network(name, cidr=_random_cidr(), dhcp=False)
    root = ET.fromstring(libvirt_conn.networkLookupByName(name).XMLDesc(0))
    assert root.find("ip") is not None and root.find("ip/dhcp") is None and root.find("forward") is None


def _seed_file(conn, dom, name):
    """A file of the NoCloud seed attached to ``dom``, downloaded through libvirt and read with pycdlib."""
    import libvirt
    import pycdlib

    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    vol = conn.storageVolLookupByPath(root.find("devices/disk[@device='cdrom']/source").get("file"))
    stream, chunks = conn.newStream(0), []
    vol.download(stream, 0, 0, 0)
    stream.recvAll(lambda _s, data, out: out.append(data), chunks)
    stream.finish()
    iso, out = pycdlib.PyCdlib(), io.BytesIO()
    iso.open_fp(io.BytesIO(b"".join(chunks)))
    try:
        iso.get_file_from_iso_fp(out, rr_path="/" + name)
    finally:
        iso.close()
    return out.getvalue().decode("utf-8")


def test_booting_guest_keeps_its_forward_beside_a_network(connector, standin, libvirt_conn, make_spec):
    """A guest that boots (an image, hence a seed) on a given network keeps its forwarded SSH (how the
    controller reaches it), and its seed tells cloud-init to bring up both NICs, matched by MAC."""
    import libvirt

    if standin.id != "libvirt-qemu":
        pytest.skip("only QEMU guests get a seed and a forwarded SSH port")
    net = connector.create_network(standin.name("n"), cidr=_random_cidr(), dhcp=True)
    m = connector.create_machine(make_spec(image=standin.image, networks=[net.id]))
    dom = libvirt_conn.lookupByUUIDString(m.id)
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    forward = libvirt_guest.forward_of(root)
    nics = root.findall("devices/interface")
    assert forward is not None and [n.find("source").get("network") for n in nics] == [net.name]
    assert [i.network["href"] for i in m.interfaces if i.network] == [net.id]
    assert any(a.get("sshPort") == forward["port"] for i in m.interfaces for a in i.addresses or [])
    config = json.loads(_seed_file(libvirt_conn, dom, "network-config"))
    matched = [(e["match"]["macaddress"], e["dhcp4"], e["optional"]) for e in config["ethernets"].values()]
    assert matched == [(forward["mac"], True, False), (nics[0].find("mac").get("address"), True, True)]

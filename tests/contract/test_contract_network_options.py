"""Network options: an IPv4 ``cidr`` and ``dhcp`` at creation.

A connector either sets them (and reports them back in the Network's ``cidr`` and ``dhcp``, read from what the
provider keeps) or refuses with InvalidInput naming the attribute, creating nothing.
A malformed cidr is refused by every connector that creates networks, before anything is created.

Addresses come from 198.18.0.0/15 (RFC 2544, benchmarking: routed nowhere), a random /24 per test so that
parallel runs on one host do not meet. No test sends traffic to them.
"""

from __future__ import annotations

import ipaddress
import os
import random
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, NotFound

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

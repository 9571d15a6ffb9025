"""sirocco.cimi.network and network_info (module_utils/networks.py), against libvirt's test driver.

The test driver (``test:///default``, in-process) defines networks for real, with the cidr and DHCP range the
libvirt connector writes and reads back; it starts no bridge and no dnsmasq (the integration target on the real
libvirtd does). The module runs through ``networks.run`` with the stand-in of SiroccoModule of test_volumes.
"""

from __future__ import annotations

import pytest
from test_volumes import Module

from ansible_collections.sirocco.cimi.plugins.module_utils import networks
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector

DEFAULTS = dict(state="present", cidr=None, dhcp=None, description=None, properties=None, filter=None, wait=True,
                wait_timeout=30)


@pytest.fixture
def conn():
    connector = LibvirtConnector(uri="test:///default")
    yield connector
    connector.close()


def run(conn, check_mode=False, **params):
    module = Module(conn, check_mode=check_mode, defaults=DEFAULTS, **params)
    return networks.run(module), module


def listed(conn):
    return {n.name: n for n in conn.list_networks()}


def test_created_with_cidr_and_dhcp_in_check_mode_then_for_real_then_nothing_to_do(conn):
    predicted, _warnings = run(conn, check_mode=True, name="back", cidr="10.254.7.0/24", dhcp=True,
                               description="db side")
    assert predicted["actions"] == ["create"] and "back" not in listed(conn)
    assert predicted["network"] == {"resourceURI": "http://schemas.dmtf.org/cimi/2/Network", "name": "back",
                                    "description": "db side", "state": "STARTED", "cidr": "10.254.7.0/24",
                                    "dhcp": True}
    made, _warnings = run(conn, name="back", cidr="10.254.7.0/24", dhcp=True, description="db side")
    assert made["changed"] and made["network"]["cidr"] == "10.254.7.0/24" and made["network"]["dhcp"] is True
    assert made["network"]["networkType"] == "PRIVATE" and listed(conn)["back"].id == made["network"]["id"]
    again, module = run(conn, name="back", cidr="10.254.7.0/24", dhcp=True, description="db side")
    assert not again["changed"] and module.warnings == [] and again["diff"]["before"] == again["diff"]["after"]
    gone, _warnings = run(conn, name="back", state="absent")
    assert gone["actions"] == ["delete"] and "back" not in listed(conn)
    assert not run(conn, name="back", state="absent")[0]["changed"]


def test_another_cidr_or_dhcp_on_an_existing_network_fails_naming_the_option(conn):
    run(conn, name="fixed", cidr="10.254.8.0/24", dhcp=False)
    for option, value in (("cidr", "10.254.9.0/24"), ("dhcp", True)):
        with pytest.raises(InvalidInput) as info:
            run(conn, name="fixed", **{option: value})
        assert info.value.attribute == option and "not changed in place" in info.value.message
    assert listed(conn)["fixed"].to_json()["cidr"] == "10.254.8.0/24"


def test_a_description_that_differs_is_kept_with_a_warning(conn):
    run(conn, name="described", description="one")
    again, module = run(conn, name="described", description="two")
    assert not again["changed"] and len(module.warnings) == 1 and "description" in module.warnings[0]


def test_a_bad_cidr_is_refused_before_anything_is_created(conn):
    for bad in ("10.254.1.1/24", "not-a-network", "fd00::/64", "10.254.1.0/33"):
        with pytest.raises(InvalidInput) as info:
            run(conn, name="bad", cidr=bad)
        assert info.value.attribute == "cidr" and info.value.message.startswith("cidr: ")
    assert "bad" not in listed(conn)


def test_dhcp_without_cidr_is_the_connector_s_refusal_naming_dhcp(conn):
    with pytest.raises(InvalidInput) as info:
        run(conn, name="nodhcp", dhcp=True)
    assert networks.ATTRIBUTE_OPTIONS[info.value.attribute] == "dhcp"
    assert "nodhcp" not in listed(conn)


def test_info_by_name_and_filter(conn):
    run(conn, name="a-net", cidr="10.254.10.0/24")
    run(conn, name="b-net", cidr="10.254.11.0/24")
    found = networks.run_info(Module(conn, defaults=DEFAULTS, name=None, filter="cidr='10.254.11.0/24'"))
    assert [n["name"] for n in found["networks"]] == ["b-net"]
    assert [n["name"] for n in networks.run_info(Module(conn, defaults=DEFAULTS, name="a-net"))["networks"]] == [
        "a-net"]

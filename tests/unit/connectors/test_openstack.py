"""openstack connector: its tables and pure helpers, option checks, error mapping, catalog-driven capabilities."""

from __future__ import annotations

import socket

import keystoneauth1.exceptions
import openstack.exceptions
import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import openstack as osc
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import OPERATIONS


def test_server_states_one_table():
    assert osc.cimi_state("ACTIVE") == states.STARTED
    assert osc.cimi_state("SHUTOFF") == states.STOPPED
    assert osc.cimi_state("BUILD") == states.CREATING
    assert osc.cimi_state("PAUSED") == states.PAUSED
    assert osc.cimi_state("SUSPENDED") == states.SUSPENDED
    assert osc.cimi_state("SHELVED") == osc.cimi_state("SHELVED_OFFLOADED") == states.STOPPED
    assert osc.cimi_state("REBOOT") == osc.cimi_state("HARD_REBOOT") == states.STARTING
    assert osc.cimi_state("ERROR") == states.ERROR
    assert osc.cimi_state("DELETED") is None and osc.cimi_state("SOFT_DELETED") is None
    assert osc.cimi_state("SOMETHING_NEW") == states.ERROR  # unknown is never silently fine
    assert set(osc.SERVER_STATES.values()) - {None} <= set(states.MACHINE_STATES)
    assert set(osc.TASK_STATES.values()) <= set(states.MACHINE_STATES)


def test_task_state_wins_while_an_action_runs():
    assert osc.cimi_state("ACTIVE", "powering-off") == states.STOPPING
    assert osc.cimi_state("SHUTOFF", "powering-on") == states.STARTING
    assert osc.cimi_state("ACTIVE", "pausing") == states.PAUSING
    assert osc.cimi_state("ACTIVE", "suspending") == states.SUSPENDING
    assert osc.cimi_state("ACTIVE", "image_uploading") == states.CAPTURING
    assert osc.cimi_state("ACTIVE", "deleting") == states.DELETING
    assert osc.cimi_state("ACTIVE", "resize_prep") == states.STARTED  # not a power change
    assert osc.cimi_state("DELETED", "deleting") is None


class _Flavor:
    def __init__(self, fid, name, vcpus, ram, disk, description=None):
        self.id, self.name, self.vcpus, self.ram, self.disk, self.description = fid, name, vcpus, ram, disk, description


def test_flavor_config_and_pick():
    flavors = (_Flavor("1", "tiny", 1, 64, 1), _Flavor("2", "small", 1, 128, 1),
               _Flavor("3", "medium", 2, 256, 2), _Flavor("4", "nodisk", 2, 256, 0))
    configs = [osc.flavor_config(f) for f in flavors]
    tiny = configs[0]
    assert (tiny.id, tiny.name, tiny.cpu, tiny.memory) == ("1", "tiny", 1, 64 * 1024)
    assert tiny.disks[0].capacity == 1024 * 1024
    assert configs[3].disks is None
    assert osc.pick_flavor(configs, 1, 64 * 1024).name == "tiny"  # exact
    assert osc.pick_flavor(configs, 1, 100 * 1024).name == "small"  # smallest that fits
    assert osc.pick_flavor(configs, 2, 256 * 1024).name == "nodisk"  # exact, smaller disk first
    assert osc.pick_flavor(configs, 2, 256 * 1024, disk_kib=2 * 1024 * 1024).name == "medium"
    assert osc.pick_flavor(configs, 3, 64 * 1024) is None


def test_properties_are_nova_metadata():
    osc.check_properties({"team": "sirocco"})
    osc.check_properties(None)
    for bad in ({"k": 1}, {1: "v"}, {"": "v"}, {"k" * 256: "v"}, {"k": "v" * 256}):
        with pytest.raises(InvalidInput):
            osc.check_properties(bad)


def test_network_properties_are_tags():
    tags = osc.network_tags({"purpose": "test", "cidr": "10.9.0.0/24"})
    assert tags == ["cidr=10.9.0.0/24", "purpose=test"]
    assert osc.tag_properties(tags + ["plain-tag"]) == {"purpose": "test", "cidr": "10.9.0.0/24"}
    assert osc.tag_properties([]) == {}
    for bad in ({"a=b": "c"}, {"k": "x,y"}, {"k": "v" * 254}, {"k": 1}):
        with pytest.raises(InvalidInput) as info:
            osc.network_tags(bad)
        assert info.value.attribute == "properties"


def test_free_cidr_skips_overlaps():
    assert osc.free_cidr([]) == "10.0.0.0/24"
    assert osc.free_cidr(["10.0.0.0/24", "10.0.2.0/23", "192.168.0.0/16", "fd00::/64"]) == "10.0.1.0/24"
    assert osc.free_cidr(["10.0.0.0/16"]) == "10.1.0.0/24"
    assert osc.free_cidr(["10.0.0.0/8"]) is None


def test_timestamps():
    assert osc.iso("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05Z"
    assert osc.iso("2026-01-02T03:04:05+00:00") == "2026-01-02T03:04:05Z"
    assert osc.iso("2026-01-02T03:04:05") == "2026-01-02T03:04:05Z"
    assert osc.iso(None) is None


def test_interfaces_from_addresses():
    addresses = {"private": [{"addr": "10.0.0.5", "version": 4, "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
                              "OS-EXT-IPS:type": "fixed"},
                             {"addr": "172.24.4.9", "version": 4, "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
                              "OS-EXT-IPS:type": "floating"}]}
    (nic,) = osc.interfaces_of(addresses, {"private": "net-1"})
    assert nic.network == {"href": "net-1"} and nic.macAddress == "fa:16:3e:00:00:01"
    assert [a["allocation"] for a in nic.addresses] == ["dynamic", "static"]
    assert osc.interfaces_of({}, {}) == []


def test_meters_from_diagnostics():
    diag = {"cpu_details": [{"id": 0, "utilisation": 10}, {"id": 1, "utilisation": 30}],
            "memory_details": {"maximum": 512, "used": 128},
            "disk_details": [{"read_bytes": 100, "write_bytes": 50}],
            "nic_details": [{"rx_octets": 7, "tx_octets": 3}, {"rx_octets": 1, "tx_octets": 1}]}
    values = osc.diagnostics_values(diag)
    assert values["cpu"] == ("percent", 20.0)
    assert values["memory"] == ("KiB", 128 * 1024)
    assert values["disk"][1] == 150
    assert values["inputBandwidth"][1] == 8 and values["outputBandwidth"][1] == 4
    assert {osc.ASPECT + a for a in values} == set(osc.METERS)
    assert all(v == 0 for _u, v in osc.diagnostics_values({}).values())  # a stopped server


def test_regex_escape_for_nova_name_filter():
    assert osc._regex_escape("web.1 (a)") == "web\\.1 \\(a\\)"
    assert osc._regex_escape("sirocco-ct-m1") == "sirocco-ct-m1"


def _http(cls, status):
    return cls(message="boom", http_status=status)


@pytest.mark.parametrize("exc, expected", [
    (_http(openstack.exceptions.NotFoundException, 404), NotFound),
    (_http(openstack.exceptions.ConflictException, 409), Conflict),
    (_http(openstack.exceptions.BadRequestException, 400), InvalidInput),
    (_http(openstack.exceptions.HttpException, 401), AuthError),
    (_http(openstack.exceptions.ForbiddenException, 403), Forbidden),
    (_http(openstack.exceptions.HttpException, 413), Conflict),
    (_http(openstack.exceptions.HttpException, 503), ProviderUnavailable),
    (openstack.exceptions.ResourceTimeout("slow"), OperationTimeout),
    (openstack.exceptions.ConfigException("no such cloud"), InvalidInput),
    (keystoneauth1.exceptions.Unauthorized("bad password"), AuthError),
    (keystoneauth1.exceptions.ConnectFailure("refused"), ProviderUnavailable),
    (keystoneauth1.exceptions.EndpointNotFound("no compute"), ProviderUnavailable),
])
def test_errors_map_in_one_place(exc, expected):
    error = osc.translate(exc, "machine.get", "machine 'x'")
    assert error.__class__ is expected  # exactly this class, not a parent
    assert "machine 'x'" in str(error) and "machine.get" in str(error)


def test_options_are_checked():
    with pytest.raises(InvalidInput):
        osc.OpenStackConnector(uri="http://127.0.0.1:1/v3", options={"no_such_option": 1})
    with pytest.raises(InvalidInput):
        osc.OpenStackConnector()  # neither uri nor cloud
    with pytest.raises(InvalidInput):
        osc.OpenStackConnector(uri="http://127.0.0.1:1/v3", options={"shelve": "yes"})
    with pytest.raises(InvalidInput):
        osc.OpenStackConnector(uri="http://127.0.0.1:1/v3", options={"interface": "secret"})
    with pytest.raises(InvalidInput):
        osc.OpenStackConnector(options={"cloud": "nowhere", "clouds_yaml": "/nonexistent/clouds.yaml"})


def test_password_never_in_repr():
    conn = osc.OpenStackConnector(uri="http://127.0.0.1:1/v3", username="u", password="s3cret",
                                  options={"project": "p"})
    assert "s3cret" not in repr(conn) and "s3cret" not in repr(vars(conn).get("options"))


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_keystone_is_provider_unavailable():
    conn = osc.OpenStackConnector(uri="http://127.0.0.1:%d/v3" % _closed_port(), username="u", password="p",
                                  options={"project": "p"}, timeout=5)
    with pytest.raises(ProviderUnavailable):
        conn.get_machine("0b8c8a8e-0000-0000-0000-000000000000")


def test_capabilities_follow_the_catalog():
    conn = osc.OpenStackConnector(uri="http://127.0.0.1:1/v3", username="u", password="p")
    conn._catalog = frozenset({"identity", "compute"})  # no image, network or block-storage service
    ops = conn.implemented_operations()
    assert {"machine.create", "machine.list", "meter.list", "machine_config.list"} <= ops
    assert not ops & {"machine.capture", "machine_image.list", "network.list", "volume.create", "volume.attach"}
    for operation in ("volume.create", "volume.attach", "network.list", "machine_image.list"):
        with pytest.raises(Unsupported) as info:
            conn._need(operation)
        assert "openstack" in str(info.value) and operation in str(info.value)
    with pytest.raises(Unsupported):
        conn.create_volume("v", 1024)
    conn._catalog = frozenset({"identity", "compute", "image", "network", "volumev3"})
    assert {"volume.create", "volume.attach", "network.list", "machine.capture"} <= conn.implemented_operations()
    assert conn.implemented_operations() <= set(OPERATIONS)
    assert {"network.create", "network.delete"} <= conn.implemented_operations()
    conn._catalog = frozenset({"identity", "compute"})
    with pytest.raises(Unsupported):
        conn.create_network("n")

"""Pure helpers of the vSphere connector: no vSphere endpoint needed (pyvmomi only builds fault objects)."""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry, vsphere
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.vsphere import (
    STATES,
    VSphereConnector,
    extra_config_items,
    free_unit,
    machine_state,
    memory_mb,
    parse_uri,
    properties_from_extra_config,
    split_ds_path,
)

pyvmomi = pytest.importorskip("pyVmomi")
vim, vmodl = pyvmomi.vim, pyvmomi.vmodl


@pytest.mark.parametrize("uri, expected", [
    ("https://vc.example.com/sdk", ("https", "vc.example.com", 443, "/sdk")),
    ("https://127.0.0.1:8989/sdk/", ("https", "127.0.0.1", 8989, "/sdk")),
    ("esx1.example.com", ("https", "esx1.example.com", 443, "/sdk")),
    ("esx1:9443", ("https", "esx1", 9443, "/sdk")),
    ("http://127.0.0.1:80", ("http", "127.0.0.1", 80, "/sdk")),
])
def test_parse_uri(uri, expected):
    assert parse_uri(uri) == expected


@pytest.mark.parametrize("uri", [None, "", "ftp://host/sdk", "https://", "https://host:port/sdk"])
def test_parse_uri_refuses(uri):
    with pytest.raises(InvalidInput):
        parse_uri(uri)


def test_state_table():
    assert machine_state("poweredOn") == states.STARTED
    assert machine_state("poweredOff", "connected") == states.STOPPED
    assert machine_state("suspended") == states.SUSPENDED
    for broken in ("disconnected", "inaccessible", "invalid", "orphaned"):
        assert machine_state("poweredOn", broken) == states.ERROR
    assert machine_state("somethingNew") == states.ERROR
    assert set(STATES.values()) <= set(states.MACHINE_STATES)


@pytest.mark.parametrize("kib, mb", [(1, 4), (64 * 1024, 64), (65 * 1024, 68), (65 * 1024 + 1, 68), (4096, 4)])
def test_memory_mb_rounds_up_to_a_multiple_of_4(kib, mb):
    assert memory_mb(kib) == mb


def test_split_ds_path():
    assert split_ds_path("[LocalDS_0] sirocco-volumes/a.vmdk") == ("LocalDS_0", "sirocco-volumes/a.vmdk")
    assert split_ds_path("[ds 1] x/y.vmx") == ("ds 1", "x/y.vmx")
    assert split_ds_path("no-brackets.vmdk") is None
    assert split_ds_path(None) is None


def test_properties_round_trip_through_extra_config():
    items = extra_config_items({"team": "sirocco", "tier": "test"}, user_data="#cloud-config\n")
    assert ("sirocco.team", "sirocco") in items and ("guestinfo.userdata.encoding", "base64") in items
    options = [vim.option.OptionValue(key=k, value=v) for k, v in items]
    options += [vim.option.OptionValue(key="govcsim", value="TRUE"),
                vim.option.OptionValue(key="sirocco.tier", value="prod"),  # a later value wins
                vim.option.OptionValue(key="sirocco.team", value="")]  # an empty one unsets
    assert properties_from_extra_config(options) == {"tier": "prod"}
    with pytest.raises(InvalidInput):
        extra_config_items({"bad key": "x"})


def test_free_unit_skips_the_controller_slot():
    assert free_unit(set()) == 0
    assert free_unit({0, 1, 2, 3, 4, 5, 6}) == 8
    assert free_unit(set(range(16)) - {7}) is None


@pytest.mark.parametrize("fault, error", [
    (vim.fault.InvalidLogin(), AuthError),
    (vim.fault.NotAuthenticated(), AuthError),
    (vim.fault.NoPermission(), Forbidden),
    (vmodl.fault.ManagedObjectNotFound(), NotFound),
    (vim.fault.FileNotFound(), NotFound),
    (vim.fault.InvalidPowerState(existingState="poweredOff"), Conflict),
    (vim.fault.InvalidState(), Conflict),
    (vim.fault.ToolsUnavailable(), Conflict),
    (vim.fault.DuplicateName(), Conflict),
    (vim.fault.FileAlreadyExists(), Conflict),
    (vmodl.fault.NotSupported(), Unsupported),
    (vmodl.fault.MethodNotFound(), Unsupported),
    (vmodl.fault.InvalidArgument(), InvalidInput),
    (vim.fault.InvalidDeviceSpec(), InvalidInput),
    (vmodl.fault.SystemError(), ProviderUnavailable),
    (ConnectionRefusedError(111, "refused"), ProviderUnavailable),
    (RuntimeError("anything else"), ProviderUnavailable),
])
def test_faults_map_to_one_hierarchy(fault, error):
    conn = VSphereConnector(uri="https://vc.example.com/sdk", username="admin", password="s3cret")
    got = conn._translate(fault, "machine.stop", "machine 'm1'")
    assert got.__class__ is error
    assert "machine.stop" in str(got) and "s3cret" not in str(got)
    if error is Unsupported:
        assert got.provider == "vsphere" and got.operation == "machine.stop"


def test_faults_context_keeps_sirocco_errors():
    conn = VSphereConnector(uri="https://vc.example.com/sdk")
    with pytest.raises(NotFound), conn._faults("machine.get"):
        raise NotFound("as is")
    with pytest.raises(Conflict, match="poweredOn"), conn._faults("machine.start"):
        raise vim.fault.InvalidPowerState(existingState="poweredOn")


def test_construction_checks_options_and_hides_the_password():
    with pytest.raises(InvalidInput):
        VSphereConnector(uri="https://vc/sdk", options={"no_such_option": 1})
    conn = VSphereConnector(uri="https://vc/sdk", username="admin", password="s3cret",
                            options={"datacenter": "DC0", "volume_folder": "/vols/"})
    assert "s3cret" not in repr(conn) and conn.volume_folder == "vols"
    assert conn._in_folder("[ds] vols/a.vmdk", "vols") and not conn._in_folder("[ds] vols/sub/a.vmdk", "vols")


def test_registered_and_pause_not_advertised():
    assert registry.connector_class("vsphere") is VSphereConnector
    assert "machine.pause" not in VSphereConnector.implemented_operations(VSphereConnector(uri="vc"))
    assert vsphere.METERS and all(meter[0].startswith(vsphere.ASPECT) for meter in vsphere.METERS)


def test_fault_text_is_one_line():
    assert vsphere._fault_text(vim.fault.FileNotFound(file="[ds] x.vmdk")) == "FileNotFound: [ds] x.vmdk"
    assert vsphere._fault_text(vim.fault.NotAuthenticated()) == "NotAuthenticated"
    assert "\n" not in vsphere._fault_text(vim.fault.InvalidPowerState(existingState="poweredOn"))

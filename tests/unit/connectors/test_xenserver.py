"""Pure helpers of the xenserver connector: state table, failure mapping, task results, properties."""

import xmlrpc.client

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    InvalidInput,
    NotFound,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import xenserver as xs


def test_power_states_map_onto_stable_cimi_states():
    assert {p: xs.cimi_state(p) for p in ("Halted", "Running", "Paused", "Suspended")} == {
        "Halted": states.STOPPED, "Running": states.STARTED, "Paused": states.PAUSED,
        "Suspended": states.SUSPENDED}
    assert set(xs.POWER_STATES.values()) <= set(states.STABLE_MACHINE_STATES)
    assert xs.cimi_state("Crashed") == states.ERROR  # an unknown power state is never guessed


def test_a_running_operation_shows_a_transient_state():
    assert xs.cimi_state("Running", {"OpaqueRef:t1": "clean_shutdown"}) == states.STOPPING
    assert xs.cimi_state("Halted", {"OpaqueRef:t1": "start"}) == states.STARTING
    assert xs.cimi_state("Running", {"OpaqueRef:t1": "snapshot"}) == states.CAPTURING
    assert xs.cimi_state("Running", {"OpaqueRef:t1": "send_sysrq"}) == states.STARTED
    assert set(xs.OPERATION_STATES.values()) <= set(states.MACHINE_STATES)


@pytest.mark.parametrize("details, cls", [
    (["HANDLE_INVALID", "VM", "OpaqueRef:x"], NotFound),
    (["UUID_INVALID", "VM", "x"], NotFound),
    (["VM_BAD_POWER_STATE", "OpaqueRef:x", "halted", "running"], Conflict),
    (["VDI_IN_USE", "OpaqueRef:v", "destroy"], Conflict),
    (["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"], AuthError),
    (["MEMORY_CONSTRAINT_VIOLATION", "x"], InvalidInput),
    (["SOMETHING_NEW", "x"], ProviderUnavailable),
    ([], ProviderUnavailable),
])
def test_failures_map_to_one_error_each(details, cls):
    err = xs.failure_error(details, "machine.start", "machine 'web'")
    assert isinstance(err, cls)
    assert "machine 'web'" in str(err) or cls is ProviderUnavailable and not details


def test_failure_messages_are_written_for_people():
    err = xs.failure_error(["VM_BAD_POWER_STATE", "OpaqueRef:x", "halted", "running"], "machine.start", "machine 'web'")
    assert "the VM is running (XAPI wants it halted)" in str(err)
    unsupported = xs.failure_error(["MESSAGE_METHOD_UNKNOWN", "VM.frob"], "machine.pause", "machine 'web'")
    assert isinstance(unsupported, Unsupported) and unsupported.operation == "machine.pause"
    auth = xs.failure_error(["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"], "login", "pool")
    assert "root" in str(auth) and "Authentication failure" not in str(auth)


def test_task_results_decode_like_xapi_writes_them():
    assert xs.task_value("") is None
    assert xs.task_value("<value>OpaqueRef:abc</value>") == "OpaqueRef:abc"
    assert xs.task_value("<value><string>OpaqueRef:abc</string></value>") == "OpaqueRef:abc"
    encoded = xmlrpc.client.dumps(({"a": ["1", "2"]},))
    inner = encoded[encoded.index("<value>"):encoded.rindex("</value>") + len("</value>")]
    assert xs.task_value(inner) == {"a": ["1", "2"]}


def test_iso_time():
    assert xs.iso_time(xmlrpc.client.DateTime("20240131T10:20:30Z")) == "2024-01-31T10:20:30Z"
    assert xs.iso_time("20240131T10:20:30Z") == "2024-01-31T10:20:30Z"
    assert xs.iso_time(xmlrpc.client.DateTime("19700101T00:00:00Z")) is None
    assert xs.iso_time("") is None


def test_properties_live_under_a_prefix_in_other_config():
    other = {"install-methods": "cdrom", "sirocco:team": "a", "sirocco:tier": "b"}
    assert xs.properties_of(other) == {"team": "a", "tier": "b"}
    assert xs.with_properties(other, {"team": "c"}) == {"install-methods": "cdrom", "sirocco:team": "c"}
    with pytest.raises(InvalidInput):
        xs.with_properties({}, {"n": 1})


def test_userdevice_positions():
    assert xs.userdevice(None, {"0", "1"}) == "2"
    assert xs.userdevice("xvdc", {"0"}) == "2"
    assert xs.userdevice("3", set()) == "3"
    with pytest.raises(Conflict):
        xs.userdevice("xvda", {"0"})
    with pytest.raises(InvalidInput):
        xs.userdevice("../disk", set())


def test_vcpu_setters_keep_the_invariant():
    for current, wanted in ((1, 4), (4, 1), (2, 2)):
        at_startup, vcpus_max = current, current
        for method, value in xs.vcpu_steps(current, wanted):
            if method.endswith("max"):
                vcpus_max = value
            else:
                at_startup = value
            assert 0 < at_startup <= vcpus_max
        assert at_startup == vcpus_max == wanted


def test_uri_must_be_a_url():
    with pytest.raises(InvalidInput):
        xs.XenServerConnector(uri="xenserver.example.org", password="x")
    conn = xs.XenServerConnector(uri="https://xs.example.org", password="secret")
    assert "secret" not in repr(conn)
    assert conn.capabilities  # nothing contacted before the first call

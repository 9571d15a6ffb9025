"""Pure logic of sirocco.cimi.machine: planning, options -> MachineSpec, diffs.

Real behaviour against a provider is proved by tests/integration/targets/machine.
"""

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils import machines as mod
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import Machine, MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import Capabilities

STABLE = (states.STARTED, states.STOPPED, states.PAUSED, states.SUSPENDED)
CONFIG_URI = "http://schemas.dmtf.org/cimi/2/MachineConfiguration"
MODULE_STATES = ("present", "absent", "started", "stopped", "paused", "suspended", "restarted")


@pytest.mark.parametrize("current, state, expected", [
    (None, "absent", (None, ())),
    (states.STARTED, "absent", (None, ("delete",))),
    (None, "present", (states.STOPPED, ("create",))),
    (None, "stopped", (states.STOPPED, ("create",))),
    (None, "started", (states.STARTED, ("create",))),
    (None, "restarted", (states.STARTED, ("create",))),
    (None, "paused", (states.STARTED, ("create", "pause"))),
    (None, "suspended", (states.STARTED, ("create", "suspend"))),
    (states.PAUSED, "present", (None, ())),
    (states.STARTED, "stopped", (None, ("stop",))),
    (states.SUSPENDED, "paused", (None, ("start", "pause"))),
    (states.STARTED, "restarted", (None, ("restart",))),
    (states.STOPPED, "restarted", (None, ("start",))),
    (states.PAUSED, "restarted", (None, ("stop", "start"))),
    (states.SUSPENDED, "restarted", (None, ("stop", "start"))),
    (states.ERROR, "started", (None, ("start",))),
])
def test_plan(current, state, expected):
    assert mod.plan(current, state) == expected


def test_plan_creates_stopped_then_starts_when_provider_cannot_create_started():
    assert mod.plan(None, "started", initial_states=(states.STOPPED,)) == (states.STOPPED, ("create", "start"))


def test_plan_creates_started_then_stops_when_provider_cannot_create_stopped():
    assert mod.plan(None, "stopped", initial_states=(states.STARTED,)) == (states.STARTED, ("create", "stop"))


def test_plan_refuses_what_no_operation_reaches():
    with pytest.raises(Conflict, match="FAILED"):
        mod.plan(states.FAILED, "started")


@pytest.mark.parametrize("state", MODULE_STATES)
@pytest.mark.parametrize("current", (None,) + STABLE)
def test_second_run_plans_nothing(current, state):
    """Idempotency: planning again from the state the first plan reaches finds nothing to do."""
    initial, operations = mod.plan(current, state)
    reached = mod.predicted_state(current, initial, operations)
    again = mod.plan(reached, state)[1]
    if state == "restarted":
        assert again == ("restart",)
    else:
        assert again == ()
    wanted = {"absent": None, "restarted": states.STARTED, "present": current or states.STOPPED}.get(
        state, mod.POWER_STATES.get(state))
    assert reached == wanted


@pytest.mark.parametrize("current", STABLE)
@pytest.mark.parametrize("state", ("started", "stopped", "paused", "suspended", "restarted"))
def test_every_planned_operation_is_allowed_where_it_runs(current, state):
    """Each operation of a plan is allowed in the state the previous one leaves."""
    initial, operations = mod.plan(current, state)
    here = current
    for op in operations:
        states.check_allowed(here, op)
        here = states.result_state(here, op)


def test_config_by_value():
    config = mod.config_by_value(dict(cpu=2, memory_mib=96, disk_gib=3, cpu_arch="x86_64"))
    assert config.to_json() == {"resourceURI": CONFIG_URI, "cpu": 2, "memory": 96 * 1024, "cpuArch": "x86_64",
                                "disks": [{"capacity": 3 * 1024 * 1024}]}


def test_config_by_value_accepts_digit_strings_from_templates():
    config = mod.config_by_value(dict(cpu="1", memory_mib="64"))
    assert config.to_json() == {"resourceURI": CONFIG_URI, "cpu": 1, "memory": 65536}


@pytest.mark.parametrize("config, words", [
    (dict(cpu=1), "machine_config.memory_mib is required"),
    (dict(cpu=0, memory_mib=64), "machine_config.cpu: expected an integer of at least 1"),
    (dict(cpu=True, memory_mib=64), "machine_config.cpu"),
    (dict(cpu=1, memory_mib="lots"), "machine_config.memory_mib"),
    (dict(cpu=1, memory_mib=64, disk_gib=-1), "machine_config.disk_gib"),
    (dict(cpu=1, memory_mib=64, cpu_arch="z80"), "machine_config.cpu_arch: 'z80' is not one of"),
    (dict(cpu=1, memory_mib=64, memory=5), "machine_config: unknown key(s) memory (known: cpu, memory_mib"),
])
def test_config_by_value_errors_name_the_option(config, words):
    with pytest.raises(InvalidInput) as err:
        mod.config_by_value(config)
    assert words in str(err.value)
    assert err.value.attribute == "machineConfig"


def test_machine_spec_from_options():
    params = dict(name="web-1", description="front", properties={"role": "web", "replicas": 2, "on": True})
    config = MachineConfiguration(cpu=1, memory=65536)
    spec = mod.machine_spec(params, config, "img-1", states.STARTED)
    assert (spec.name, spec.config, spec.image, spec.initial_state, spec.description) == (
        "web-1", config, "img-1", states.STARTED, "front")
    assert spec.properties == {"role": "web", "replicas": "2", "on": "true"}


def test_machine_spec_without_properties_or_image():
    spec = mod.machine_spec(dict(name="m"), MachineConfiguration(cpu=1, memory=1024), None, states.STOPPED)
    assert spec.properties == {} and spec.image is None and spec.description is None


def test_machine_spec_refuses_nested_properties():
    with pytest.raises(InvalidInput, match=r"properties\.tags: expected a string"):
        mod.machine_spec(dict(name="m", properties={"tags": ["a"]}), MachineConfiguration(cpu=1, memory=1), None,
                         states.STOPPED)


def test_differences_lists_what_the_existing_machine_has_otherwise():
    doc = Machine(name="m", cpu=1, memory=65536, description="old", properties={"a": "1"}).to_json()
    assert mod.differences(doc) == []
    assert mod.differences(doc, {"cpu": 1, "memory": 65536}, "old", {"a": "1"}) == []
    # cpu and memory are resized, not warned about; the architecture, description, properties are not
    assert mod.differences(doc, {"cpu": 2, "memory": 131072, "cpuArch": "aarch64"}, "new", {"a": "2", "b": "x"}) == [
        "cpuArch is None, machine_config asks aarch64",
        "description differs",
        "properties.a differs",
        "properties.b differs",
    ]


def test_differences_names_networks_the_machine_is_not_plugged_into():
    doc = Machine(name="m", interfaces=[{"network": {"href": "net-a"}}]).to_json()
    assert mod.differences(doc, networks=["net-a"]) == []
    assert mod.differences(doc, networks=["net-a", "net-b"]) == ["networks: not plugged into net-b"]


SMALL = MachineConfiguration(id="small", name="small", cpu=1, memory=128 * 1024)
SIZES = [MachineConfiguration(id="t.micro", cpu=1, memory=1024 * 1024),
         MachineConfiguration(id="t.small", cpu=2, memory=2048 * 1024)]


@pytest.mark.parametrize("machine, config, sizes, expected", [
    (Machine(cpu=1, memory=128 * 1024), SMALL, (), False),
    (Machine(cpu=1, memory=64 * 1024), SMALL, (), True),
    (Machine(cpu=2, memory=128 * 1024), SMALL, (), True),
    # by value, rounded up by the provider to its smallest fitting size: what the machine has
    (Machine(cpu=1, memory=1024 * 1024), MachineConfiguration(cpu=1, memory=512 * 1024), SIZES, False),
    (Machine(cpu=2, memory=2048 * 1024), MachineConfiguration(cpu=1, memory=512 * 1024), SIZES, True),
    # by value on a provider that creates exactly what is asked
    (Machine(cpu=1, memory=64 * 1024), MachineConfiguration(cpu=1, memory=96 * 1024), (), True),
    (Machine(cpu=None, memory=None), SMALL, (), False),
])
def test_needs_resize(machine, config, sizes, expected):
    assert mod.needs_resize(machine, config, sizes) is expected


@pytest.mark.parametrize("current, operations, needs_stop, allow, expected", [
    # live resize, or a stopped machine: at once
    (states.STARTED, (), False, False, ("resize",)),
    (states.STOPPED, ("start",), False, False, ("resize", "start")),
    # the plan stops it anyway: resized while stopped, no consent needed
    (states.STARTED, ("stop",), True, False, ("stop", "resize")),
    (states.STARTED, ("restart",), True, False, ("stop", "resize", "start")),
    # a stop only with allow_restart, then back to the state the plan ends in
    (states.STARTED, (), True, True, ("stop", "resize", "start")),
    (states.PAUSED, (), True, True, ("stop", "resize", "start", "pause")),
    (states.STARTED, ("pause",), True, True, ("stop", "resize", "start", "pause")),
])
def test_with_resize(current, operations, needs_stop, allow, expected):
    assert mod.with_resize(current, operations, needs_stop, allow, "m") == expected
    assert mod.predicted_state(current, None, expected) == mod.predicted_state(current, None, operations)


def test_with_resize_refuses_a_stop_without_consent():
    with pytest.raises(Conflict) as err:
        mod.with_resize(states.STARTED, (), True, False, "web")
    assert "allow_restart: true" in err.value.message
    assert "'web' is STARTED" in err.value.message


def test_predicted_machine_shows_the_new_hardware():
    machine = Machine(id="x", name="m", state=states.STOPPED, cpu=1, memory=65536)
    doc = mod.predicted_machine(machine, None, states.STARTED, SMALL)
    assert (doc["cpu"], doc["memory"], doc["state"]) == (1, 128 * 1024, states.STARTED)


def test_predicted_machine_for_a_new_machine():
    spec = mod.machine_spec(dict(name="m", properties={"k": "v"}),
                            MachineConfiguration(cpu=1, memory=65536, cpuArch="x86_64"), None, states.STARTED)
    assert mod.predicted_machine(None, spec, states.PAUSED) == {
        "resourceURI": "http://schemas.dmtf.org/cimi/2/Machine", "name": "m", "properties": {"k": "v"},
        "state": states.PAUSED, "cpu": 1, "memory": 65536, "cpuArch": "x86_64"}


def test_predicted_machine_for_an_existing_machine_changes_only_its_state():
    existing = Machine(id="42", name="m", state=states.STARTED, cpu=1, memory=65536)
    predicted = mod.predicted_machine(existing, None, states.STOPPED)
    assert predicted == dict(existing.to_json(), state=states.STOPPED)
    assert existing.state == states.STARTED


# -- credential and user_data: checked against what the provider takes, before anything is created ------
GUEST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP/espv2CVbTs1bchWKsGXfSB/D+ZXQtBqMYrgSITfUa me@host"


def _caps(inputs):
    return Capabilities(provider="p", operations=frozenset(), guest_inputs=frozenset(inputs))


def _params(**extra):
    return dict(dict(name="g-1", description=None, properties=None, user_data=None, credential=None), **extra)


def test_credential_becomes_the_spec_user_left_to_the_provider():
    spec = mod.machine_spec(_params(credential={"public_key": GUEST_KEY, "user_name": None}, user_data="#!/bin/sh"),
                            MachineConfiguration(cpu=1, memory=1024), None, states.STOPPED,
                            _caps({"userData", "credential"}))
    assert spec.credential == {"username": None, "key": GUEST_KEY} and spec.user_data == "#!/bin/sh"


@pytest.mark.parametrize("params, inputs, option", [
    (dict(credential={"public_key": "not a key", "user_name": "ops"}), {"credential"}, "credential.public_key"),
    (dict(credential={"public_key": GUEST_KEY, "user_name": "Bad Name"}), {"credential"}, "credential.user_name"),
    (dict(credential={"public_key": GUEST_KEY, "user_name": None}), {"userData"}, "credential"),
    (dict(user_data="#!/bin/sh"), {"credential"}, "user_data"),
])
def test_guest_inputs_refused_naming_the_option(params, inputs, option):
    with pytest.raises(InvalidInput) as info:
        mod.machine_spec(_params(**params), MachineConfiguration(cpu=1, memory=1024), None, states.STOPPED,
                         _caps(inputs))
    assert option in str(info.value)

"""Machines: create, read, list with paging, every state pair, refused actions, delete."""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import ACTION_OPERATIONS, OPERATIONS

STABLE = (states.STOPPED, states.STARTED, states.PAUSED, states.SUSPENDED)
# A walk through the four stable states that takes every ordered pair once (an Euler circuit of K4).
WALK = (states.STOPPED, states.STARTED, states.PAUSED, states.SUSPENDED, states.STOPPED, states.PAUSED,
        states.STARTED, states.SUSPENDED, states.STARTED, states.STOPPED, states.SUSPENDED, states.PAUSED,
        states.STOPPED)


def test_walk_covers_every_pair():
    pairs = set(zip(WALK, WALK[1:], strict=False))
    assert pairs == {(a, b) for a in STABLE for b in STABLE if a != b}


def test_create_get_list_delete(connector, make_spec, caps):
    if not caps.supports("machine.create"):
        with pytest.raises(Unsupported):
            connector.create_machine(make_spec())
        return
    spec = make_spec(description="contract machine", properties={"team": "sirocco", "tier": "test"})
    m = connector.create_machine(spec)
    assert m.id and m.name == spec.name and m.state == states.STOPPED
    got = connector.get_machine(m.id)
    assert got.name == spec.name
    assert got.description == "contract machine"
    assert got.properties == {"team": "sirocco", "tier": "test"}
    assert got.cpu == spec.config.cpu and got.memory == spec.config.memory
    assert got.to_json()["resourceURI"].endswith("/Machine")
    assert m.id in {x.id for x in connector.iter_machines()}
    assert connector.find_machine(spec.name).id == m.id

    connector.delete_machine(m.id)
    with pytest.raises(NotFound):
        connector.get_machine(m.id)
    assert m.id not in {x.id for x in connector.iter_machines()}
    assert connector.find_machine(spec.name) is None


def test_create_started(machine):
    assert machine(states.STARTED).state == states.STARTED


# the stand-ins whose hypervisor says its CPU clock (DSP0263 7.1 lists cpuSpeed among a Machine's minimal
# attributes): libvirt's getInfo, vSphere's HostSystem summary, XAPI's host_cpu, siroccod's hosts (libvirt's
# test driver)
CPU_SPEED_KNOWN = ("libvirt-test", "libvirt-qemu", "vsphere-esx", "vsphere-vc", "xenserver-xapi", "siroccod")


def test_cpu_speed_where_the_hypervisor_knows_it(connector, machine, standin):
    if standin.id not in CPU_SPEED_KNOWN:
        pytest.skip("%s: the provider does not say its CPU clock" % standin.id)
    m = machine(states.STARTED)  # running on a host (a halted XenServer VM has none in a mixed pool)
    for seen in (m, connector.get_machine(m.id), next(x for x in connector.list_machines().items if x.id == m.id)):
        assert isinstance(seen.cpuSpeed, int) and seen.cpuSpeed > 0, seen.cpuSpeed


def test_duplicate_name_conflict(connector, make_spec):
    first = connector.create_machine(make_spec())
    before = len(list(connector.iter_machines()))
    with pytest.raises(Conflict):
        connector.create_machine(make_spec(name=first.name))
    assert len(list(connector.iter_machines())) == before


def test_unknown_machine_not_found(connector):
    for ref in (str(uuid.uuid4()), "no-such-machine"):
        with pytest.raises(NotFound):
            connector.get_machine(ref)
        with pytest.raises(NotFound):
            connector.machine_action(ref, "start")
        with pytest.raises(NotFound):
            connector.delete_machine(ref)


def test_bad_input_creates_nothing(connector, make_spec, caps):
    before = {m.id for m in connector.iter_machines()}
    bad = [make_spec(name=""),
           make_spec(config=MachineConfiguration(cpu=0, memory=65536)),
           make_spec(initial_state=states.PAUSED)]
    if caps.memory_mib.maximum:
        bad.append(make_spec(config=MachineConfiguration(cpu=1, memory=(caps.memory_mib.maximum + 1) * 1024)))
    if caps.cpu.maximum:
        bad.append(make_spec(config=MachineConfiguration(cpu=caps.cpu.maximum + 1, memory=65536)))
    for spec in bad:
        with pytest.raises(InvalidInput):
            connector.create_machine(spec)
    with pytest.raises(InvalidInput):
        connector.machine_action(next(iter(before), str(uuid.uuid4())), "fly")
    assert {m.id for m in connector.iter_machines()} == before


def test_list_pages(connector, make_spec):
    made = {connector.create_machine(make_spec()).id for _attempt in range(5)}
    everything = [m.id for m in connector.list_machines().items]
    seen, marker, pages = [], None, 0
    while True:
        page = connector.list_machines(limit=2, marker=marker)
        assert len(page.items) <= 2
        seen += [m.id for m in page.items]
        pages += 1
        if page.marker is None:
            break
        marker = page.marker
    assert pages >= 3
    assert seen == everything  # same stable order, nothing twice, nothing missed
    assert made <= set(seen)
    with pytest.raises(InvalidInput):
        connector.list_machines(limit=0)


def test_every_state_pair(connector, machine, caps):
    """Walk every ordered pair of stable states through machine_action, checking each arrival."""
    m = machine(states.STOPPED)
    for there in WALK[1:]:
        for op in states.path_to(m.state, there):
            if not caps.supports(ACTION_OPERATIONS[op]):
                with pytest.raises(Unsupported):
                    connector.machine_action(m.id, op, force=True)
                return
            connector.machine_action(m.id, op, force=True)
            m = connector.wait_for_machine(m.id, states.result_state(m.state, op), timeout=60)
        assert m.state == there


@pytest.mark.parametrize("state", STABLE)
def test_refused_actions_then_delete(connector, machine, caps, state):
    """In each stable state: every action it does not allow is refused with Conflict (by machine_action
    and by the method itself) and leaves the state alone; delete then works."""
    needed = {ACTION_OPERATIONS[op] for op in states.path_to(states.STOPPED, state)}
    if not needed <= caps.operations:
        with pytest.raises(Unsupported):
            machine(state)
        return
    m = machine(state)
    for action in (*states.MACHINE_ACTIONS, states.DELETE):
        if states.is_allowed(state, action):
            continue
        operation = ACTION_OPERATIONS[action]
        expected = Conflict if caps.supports(operation) else Unsupported
        with pytest.raises(expected):
            connector.machine_action(m.id, action, force=True)
        if expected is Conflict:
            method = getattr(connector, OPERATIONS[operation])
            with pytest.raises(Conflict):
                method(m.id, "refused-capture") if action == states.CAPTURE else method(m.id)
        assert connector.get_machine(m.id).state == state, "refused %s changed the state" % action
    if caps.supports("machine.delete"):
        connector.machine_action(m.id, "delete")
        with pytest.raises(NotFound):
            connector.get_machine(m.id)


def test_graceful_stop_and_restarts(connector, machine, goto):
    m = machine(states.STARTED)
    connector.machine_action(m.id, "restart", force=False)
    assert connector.wait_for_machine(m.id, states.STARTED).state == states.STARTED
    connector.machine_action(m.id, "restart", force=True)
    assert connector.wait_for_machine(m.id, states.STARTED).state == states.STARTED
    connector.machine_action(m.id, "stop", force=False)
    # A guest without an OS may ignore the power button (QEMU); a simulated one stops.
    state = connector.get_machine(m.id).state
    assert state in (states.STOPPED, states.STOPPING, states.STARTED)
    if state != states.STOPPED:
        connector.machine_action(m.id, "stop", force=True)
    assert connector.wait_for_machine(m.id, states.STOPPED).state == states.STOPPED
    connector.machine_action(m.id, "restart")  # restarting a stopped machine starts it
    assert connector.wait_for_machine(m.id, states.STARTED).state == states.STARTED

"""Resizing: machine.resize (cpu and memory, stopped or live) and volume.resize (grow only).

Expectations come from the connector itself: ``capabilities()`` says whether it resizes at all and within which
ranges, ``resize_needs_stop`` says whether a running machine can take a configuration live. What a resize did
is read back through ``get_machine`` / ``list_volumes``, never from the value the call returned alone.
"""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import KIB_PER_MIB

CAPACITY_KB = 1024


def _fitting_configs(connector, caps):
    """The provider's configurations that fit its own ranges, smallest first, one per (cpu, memory)."""
    found = {}
    for config in connector.list_machine_configs():
        if not caps.fits(cpu=config.cpu, memory_mib=-(-config.memory // KIB_PER_MIB), arch=config.cpuArch):
            found.setdefault((config.cpu, config.memory), config)
    return [found[key] for key in sorted(found)]


def _size(machine):
    return machine.cpu, machine.memory


def _resize_or_skip(connector, caps, machine):
    """Skip unless machine.resize is advertised; where it is not, check that it is refused."""
    if not caps.supports("machine.resize"):
        m = machine(states.STOPPED)
        with pytest.raises(Unsupported):
            connector.resize_machine(m.id, MachineConfiguration(cpu=m.cpu, memory=m.memory))
        pytest.skip("%s does not advertise machine.resize (and refuses it)" % caps.provider)


def test_resize_stopped_machine(connector, standin, machine, make_spec, caps):
    _resize_or_skip(connector, caps, machine)
    configs = _fitting_configs(connector, caps)
    base = connector.get_machine_config(standin.size)
    bigger = [c for c in configs if c.cpu >= base.cpu and c.memory >= base.memory and _size(c) != _size(base)]
    if not bigger:
        pytest.skip("%s offers no configuration larger than %s" % (caps.provider, standin.size))
    # prefer a target that changes both figures, so that both are seen to change
    target = next((c for c in bigger if c.cpu != base.cpu and c.memory != base.memory), bigger[0])
    m = machine(states.STOPPED)
    assert not connector.resize_needs_stop(m, target)  # a stopped machine never needs a stop
    returned = connector.resize_machine(m.id, target)
    assert _size(returned) == (target.cpu, target.memory)
    got = connector.get_machine(m.id)
    assert _size(got) == (target.cpu, target.memory) and got.state == states.STOPPED
    again = connector.resize_machine(m.id, target)  # the same size again changes nothing
    assert _size(again) == (target.cpu, target.memory)
    connector.machine_action(m.id, "start")
    started = connector.wait_for_machine(m.id, states.STARTED, timeout=60)
    assert _size(started) == (target.cpu, target.memory)  # it boots with its new size


def test_resize_running_machine(connector, standin, machine, make_spec, caps):
    """One smaller and one larger configuration than the running machine's: each is done live where
    resize_needs_stop says it can be, refused with Conflict (machine unchanged and still running) where not."""
    _resize_or_skip(connector, caps, machine)
    configs = _fitting_configs(connector, caps)
    if len(configs) < 2:
        pytest.skip("%s offers a single configuration" % caps.provider)
    middle = configs[1] if len(configs) > 2 else configs[0]
    m = connector.create_machine(make_spec(config=middle, initial_state=states.STARTED))
    m = connector.wait_for_machine(m.id, states.STARTED, timeout=60)
    position = configs.index(middle)
    targets = [c for c in (configs[position - 1] if position else None,
                           configs[position + 1] if position + 1 < len(configs) else None) if c is not None]
    for target in targets:
        before = connector.get_machine(m.id)
        if connector.resize_needs_stop(before, target):
            with pytest.raises(Conflict) as caught:
                connector.resize_machine(m.id, target)
            assert "stop" in str(caught.value).lower()  # the message says what to do
            after = connector.get_machine(m.id)
            assert _size(after) == _size(before) and after.state == states.STARTED
        else:
            connector.resize_machine(m.id, target)
            after = connector.get_machine(m.id)
            assert _size(after) == (target.cpu, target.memory) and after.state == states.STARTED


def test_resize_outside_capabilities_refused(connector, machine, caps):
    _resize_or_skip(connector, caps, machine)
    m = machine(states.STOPPED)
    too_big = []
    if caps.cpu.maximum is not None:
        too_big.append(MachineConfiguration(cpu=caps.cpu.maximum + 1, memory=m.memory))
    if caps.memory_mib.maximum is not None:
        too_big.append(MachineConfiguration(cpu=m.cpu, memory=(caps.memory_mib.maximum + 1) * KIB_PER_MIB))
    if not too_big:
        pytest.skip("%s advertises no upper bound on cpu or memory" % caps.provider)
    for config in too_big:
        with pytest.raises(InvalidInput) as caught:
            connector.resize_machine(m.id, config)
        assert (caught.value.attribute or "").startswith("machineConfig")
    with pytest.raises(InvalidInput):
        connector.resize_machine(m.id, MachineConfiguration(cpu=0, memory=m.memory))
    got = connector.get_machine(m.id)
    assert _size(got) == _size(m) and got.state == states.STOPPED  # nothing changed


# -- volumes ------------------------------------------------------------------------------------------

def _capacity(connector, volume_id):
    return next(v.capacity for v in connector.list_volumes() if v.id == volume_id)


def _resizable_volume(connector, standin, caps):
    """A new volume, or a skip (after checking the refusal) where volume.resize is not advertised."""
    if not caps.supports("volume.create"):
        pytest.skip("%s offers no volumes" % caps.provider)
    vol = connector.create_volume(standin.name("v"), CAPACITY_KB)
    if not caps.supports("volume.resize"):
        with pytest.raises(Unsupported):
            connector.resize_volume(vol.id, vol.capacity * 2)
        assert _capacity(connector, vol.id) == vol.capacity
        pytest.skip("%s does not advertise volume.resize (and refuses it)" % caps.provider)
    return vol


def test_volume_grows_never_shrinks(connector, standin, caps):
    vol = _resizable_volume(connector, standin, caps)
    wanted = vol.capacity * 2
    grown = connector.resize_volume(vol.id, wanted)
    assert grown.id == vol.id and grown.capacity >= wanted
    assert _capacity(connector, vol.id) >= wanted
    now = _capacity(connector, vol.id)
    assert connector.resize_volume(vol.id, now).capacity == now  # the same size: nothing to do
    for smaller in (now - 1, now // 2, 0, -1):
        with pytest.raises(InvalidInput) as caught:
            connector.resize_volume(vol.id, smaller)
        assert caught.value.attribute == "capacity"
    with pytest.raises(InvalidInput):
        connector.resize_volume(vol.id, "big")
    assert _capacity(connector, vol.id) == now


def test_attached_volume_grows(connector, standin, machine, caps):
    """Grown while attached to a running machine (stopped where volumes do not attach live): done, or
    refused with Conflict leaving the volume as it was."""
    vol = _resizable_volume(connector, standin, caps)
    m = machine(states.STARTED if standin.live_attach else states.STOPPED)
    connector.attach_volume(m.id, vol.id)
    wanted = vol.capacity * 2
    try:
        connector.resize_volume(vol.id, wanted)
    except Conflict:
        assert _capacity(connector, vol.id) == vol.capacity
    else:
        assert _capacity(connector, vol.id) >= wanted
        assert connector.get_machine(m.id).state == m.state

"""Volumes: create, attach, detach, delete; delete while attached is refused."""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unsupported,
)

CAPACITY_KB = 1024


def _attached(connector, volume_id):
    return [ref["href"] for ref in connector.get_volume(volume_id).attachedTo or []]


def _machine_volumes(connector, machine_id):
    return [v.volume["href"] for v in connector.get_machine(machine_id).volumes or []]


def _need_volumes(caps):
    if not caps.supports("volume.create"):
        pytest.skip("%s offers no volumes (test_volume_lifecycle checks they are refused)" % caps.provider)


def test_volume_lifecycle(connector, standin, machine, caps):
    if not caps.supports("volume.create"):
        with pytest.raises(Unsupported):
            connector.create_volume(standin.name("v"), CAPACITY_KB)
        return
    name = standin.name("v")
    vol = connector.create_volume(name, CAPACITY_KB)
    assert vol.name == name and vol.state == "AVAILABLE" and vol.capacity >= CAPACITY_KB
    assert connector.get_volume(name).id == vol.id
    assert not _attached(connector, vol.id)
    with pytest.raises(Conflict):
        connector.create_volume(name, CAPACITY_KB)

    m = machine(states.STOPPED)
    connector.attach_volume(m.id, vol.id)
    assert _attached(connector, vol.id) == [m.id]
    assert _machine_volumes(connector, m.id) == [vol.id]
    with pytest.raises(Conflict):  # attached twice
        connector.attach_volume(m.id, vol.id)
    with pytest.raises(Conflict):  # in use
        connector.delete_volume(vol.id)
    assert connector.get_volume(vol.id).id == vol.id

    connector.detach_volume(m.id, vol.id)
    assert not _attached(connector, vol.id)
    assert not _machine_volumes(connector, m.id)
    with pytest.raises(Conflict):
        connector.detach_volume(m.id, vol.id)

    connector.delete_volume(vol.id)
    with pytest.raises(NotFound):
        connector.get_volume(vol.id)
    with pytest.raises(NotFound):
        connector.delete_volume(vol.id)


def test_attached_volume_outlives_its_machine(connector, standin, machine, make_spec, caps):
    _need_volumes(caps)
    vol = connector.create_volume(standin.name("v"), CAPACITY_KB)
    m = connector.create_machine(make_spec(volumes=[vol.id]))
    assert _machine_volumes(connector, m.id) == [vol.id]
    connector.delete_machine(m.id)
    assert not _attached(connector, vol.id)  # still there, free again
    connector.delete_volume(vol.id)


def test_attach_to_running_machine(connector, standin, machine, caps):
    _need_volumes(caps)
    vol = connector.create_volume(standin.name("v"), CAPACITY_KB)
    m = machine(states.STARTED)
    if standin.live_attach:
        connector.attach_volume(m.id, vol.id)
        assert _attached(connector, vol.id) == [m.id]
        assert connector.get_machine(m.id).state == states.STARTED
    else:  # refused cleanly, nothing changed
        with pytest.raises(Conflict):
            connector.attach_volume(m.id, vol.id)
        assert not _attached(connector, vol.id)


def test_bad_volume_requests(connector, standin, machine, caps):
    _need_volumes(caps)
    for capacity in (0, -5, "big"):
        with pytest.raises(InvalidInput):
            connector.create_volume(standin.name("v"), capacity)
    m = machine(states.STOPPED)
    with pytest.raises(NotFound):
        connector.attach_volume(m.id, "no-such-volume")
    vol = connector.create_volume(standin.name("v"), CAPACITY_KB)
    with pytest.raises(NotFound):
        connector.attach_volume("no-such-machine", vol.id)

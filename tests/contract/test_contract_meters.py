"""Meters: what capabilities advertise is what a machine reports."""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import NotFound, Unsupported


def test_meters(connector, machine, caps):
    m = machine(states.STARTED)
    if not caps.supports("meter.list"):
        assert not caps.metering
        with pytest.raises(Unsupported):
            connector.list_meters(m.id)
        return
    meters = connector.list_meters(m.id)
    assert {x.aspect for x in meters} == set(caps.meters)
    for meter in meters:
        assert meter.targetResource == {"href": m.id} and meter.units
        assert len(meter.samples) == 1
        float(meter.samples[0].value)
        assert meter.to_json()["samples"][0]["timestamp"]
    with pytest.raises(NotFound):
        connector.list_meters(str(uuid.uuid4()))
    connector.machine_action(m.id, "stop", force=True)
    assert {x.aspect for x in connector.list_meters(m.id)} == set(caps.meters)  # stopped: still answers

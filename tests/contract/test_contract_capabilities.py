"""Capabilities are honest: what is not advertised raises Unsupported naming provider and operation."""

from __future__ import annotations

import inspect
import uuid

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, Unsupported
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import CPU_ARCHS
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import OPERATIONS, MachineSpec


def test_capabilities_shape(connector, caps):
    assert caps.provider == connector.name
    assert caps.operations <= set(OPERATIONS)
    assert caps.cpu.minimum is None or caps.cpu.minimum >= 1
    assert set(caps.archs) <= set(CPU_ARCHS)
    assert all(a.startswith("http://schemas.dmtf.org/cimi/2/aspect/") or "://" in a for a in caps.meters)
    assert caps.locations and isinstance(caps.stop_force_default, bool)
    assert caps.to_json()["provider"] == connector.name


def _dummy_args(method):
    """Arguments of the right kinds for any contract method: ids that exist nowhere."""
    args = []
    for p in list(inspect.signature(method).parameters.values()):
        if p.default is not inspect.Parameter.empty:
            continue
        args.append({"spec": MachineSpec(name="x", config=None), "capacity_kb": 1}.get(p.name, str(uuid.uuid4())))
    return args


def test_unadvertised_operations_raise_unsupported(connector, caps):
    for operation, method_name in OPERATIONS.items():
        if caps.supports(operation):
            continue
        method = getattr(connector, method_name)
        with pytest.raises(Unsupported) as info:
            method(*_dummy_args(method))
        assert info.value.provider == connector.name and info.value.operation == operation
        assert connector.name in str(info.value) and operation in str(info.value)


def test_advertised_listings_work(connector, caps):
    for operation in sorted(caps.operations):
        if operation.endswith(".list") and operation != "meter.list":
            getattr(connector, OPERATIONS[operation])()


def test_unknown_option_refused(connector):
    with pytest.raises(InvalidInput):
        type(connector)(uri=connector.uri, options={"no_such_option": 1})

"""The contract's own mechanics: capabilities derive from what a connector overrides."""

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import Machine, MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import base, registry


class TwoOperations(base.Connector):
    """A connector implementing only listing and start: the base must advertise exactly that."""

    name = "two"
    option_names = ("colour",)

    def __init__(self, machines, **kw):
        super().__init__(**kw)
        self.machines = machines

    def list_machines(self, limit=None, marker=None):
        ordered = sorted(self.machines, key=lambda m: m.id)
        start = 0 if marker is None else [m.id for m in ordered].index(marker) + 1
        items = ordered[start:start + (limit or len(ordered))]
        more = start + len(items) < len(ordered)
        return base.Page(items, items[-1].id if more and items else None)

    def get_machine(self, machine_id):
        for machine in self.machines:
            if machine.id == machine_id:
                return machine
        raise NotFound(machine_id)

    def start_machine(self, machine_id):
        self.get_machine(machine_id).state = "STARTED"


def machines(n, state="STOPPED"):
    return [Machine(id="%03d" % i, name="vm%d" % (i % 5), state=state) for i in range(n)]


def test_capabilities_are_what_is_implemented():
    conn = TwoOperations([])
    caps = conn.capabilities()
    assert caps.operations == {"machine.list", "machine.get", "machine.start"}
    with pytest.raises(Unsupported) as err:
        caps.require("machine.stop")
    assert "two" in str(err.value) and "machine.stop" in str(err.value)
    with pytest.raises(Unsupported):
        conn.stop_machine("x")


def test_every_contract_method_exists_and_refuses_by_default():
    conn = base.Connector()
    for operation, method in base.OPERATIONS.items():
        assert callable(getattr(conn, method))
        assert operation not in conn.capabilities().operations


def test_iter_machines_pages_through_everything():
    conn = TwoOperations(machines(23))
    assert [m.id for m in conn.iter_machines(page_size=5)] == ["%03d" % i for i in range(23)]


def test_find_machine_by_name_is_strict():
    conn = TwoOperations(machines(7))
    with pytest.raises(Conflict):
        conn.find_machine("vm1")  # machines 001 and 006 are both named vm1
    assert conn.find_machine("vm4").id == "004"
    assert conn.find_machine("nope") is None


def test_machine_action_checks_support_then_state():
    conn = TwoOperations(machines(1))
    conn.machine_action("000", "start")
    assert conn.get_machine("000").state == "STARTED"
    with pytest.raises(Conflict):
        conn.machine_action("000", "start")
    with pytest.raises(Unsupported):
        conn.machine_action("000", "stop")
    with pytest.raises(InvalidInput):
        conn.machine_action("000", "fly")


def test_unknown_options_and_providers_are_named():
    with pytest.raises(InvalidInput) as err:
        TwoOperations([], options={"colour": "red", "flavour": "x"})
    assert "flavour" in str(err.value) and err.value.attribute == "provider_options"
    with pytest.raises(InvalidInput) as err:
        registry.connector_class("nimbus")
    assert "nimbus" in str(err.value) and "libvirt" in str(err.value)


def test_capabilities_fit_reports_reasons():
    caps = base.Capabilities("p", frozenset(), cpu=base.Range(1, 4), memory_mib=base.Range(64, 1024), archs=("x86_64",))
    assert caps.fits(cpu=2, memory_mib=128, arch="x86_64") == []
    reasons = caps.fits(cpu=8, memory_mib=4096, arch="ARM")
    assert len(reasons) == 3 and "cpu 8" in reasons[0]


def test_default_sizes_and_bad_sizes():
    configs = base.sizes_from_options()
    tiny = configs[0]
    assert isinstance(tiny, MachineConfiguration) and tiny.name == "tiny" and tiny.memory == 64 * 1024
    with pytest.raises(InvalidInput):
        base.sizes_from_options([{"name": "x"}])


def test_secrets_do_not_show_in_repr():
    conn = TwoOperations([], uri="x://h", username="u", password="hunter2")
    assert "hunter2" not in repr(conn) and "hunter2" not in repr(vars(conn).get("password"))

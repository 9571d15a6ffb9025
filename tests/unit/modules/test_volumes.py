"""sirocco.cimi.volume and volume_info (module_utils/volumes.py), against libvirt's test driver.

The test driver (``test:///default``, in-process) keeps a storage pool and machines for the connection: volumes
are created, attached (to a stopped machine: the driver does not hot-plug), detached and deleted for real. It
cannot resize a volume, so a grow there is the clear Unsupported failure; growing for real is proved by the
integration targets (real libvirtd, the daemon over QEMU). The module runs through ``volumes.run`` with a small
stand-in of SiroccoModule (options, check mode, warnings).
"""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils import volumes
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, Unsupported
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector
from ansible_collections.sirocco.cimi.plugins.module_utils.module import Deadline

GIB = volumes.KB_PER_GIB
DEFAULTS = dict(state="present", size=None, type=None, description=None, properties=None, attached_to=None,
                device=None, filter=None, wait=True, wait_timeout=30)


class Module:
    """What the module_utils handlers use of a SiroccoModule."""

    def __init__(self, connector, check_mode=False, defaults=None, **params):
        self.connector = connector
        self.check_mode = check_mode
        self.diff_mode = True
        self.params = dict(defaults or DEFAULTS, **params)
        self.deadline = Deadline(self.params.get("wait_timeout") or 30)
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


@pytest.fixture
def conn():
    connector = LibvirtConnector(uri="test:///default", options={"image_pool": "default-pool"})
    yield connector
    connector.close()


@pytest.fixture
def machine(conn):
    return conn.create_machine(MachineSpec(name="vol-host", config=MachineConfiguration(cpu=1, memory=65536)))


def run(conn, check_mode=False, **params):
    module = Module(conn, check_mode=check_mode, **params)
    return volumes.run(module), module


def listed(conn):
    return {v.name: v for v in conn.list_volumes()}


def test_created_in_check_mode_then_for_real_then_nothing_to_do(conn):
    predicted, _warnings = run(conn, check_mode=True, name="data", size=1)
    assert predicted["changed"] and predicted["actions"] == ["create"] and "data" not in listed(conn)
    assert predicted["volume"]["capacity"] == GIB and "id" not in predicted["volume"]
    assert predicted["diff"] == {"before": {}, "after": {"name": "data", "state": "AVAILABLE", "capacity": GIB}}
    made, _warnings = run(conn, name="data", size=1)
    assert made["changed"] and made["volume"]["id"] == listed(conn)["data"].id
    assert listed(conn)["data"].capacity == GIB
    again, module = run(conn, name="data", size=1)
    assert not again["changed"] and again["actions"] == [] and module.warnings == []
    assert again["diff"]["before"] == again["diff"]["after"]


def test_a_smaller_size_fails_naming_size_and_changes_nothing(conn):
    run(conn, name="big", size=2)
    with pytest.raises(InvalidInput) as info:
        run(conn, name="big", size=1)
    assert info.value.attribute == "size" and "never shrinks" in info.value.message and "2 GiB" in info.value.message
    assert listed(conn)["big"].capacity == 2 * GIB


def test_a_larger_size_where_the_provider_cannot_resize_fails_before_anything_changes(conn, machine):
    run(conn, name="grow", size=1)
    assert "volume.resize" not in conn.capabilities().operations  # the test driver lacks virStorageVolResize
    with pytest.raises(Unsupported) as info:  # the grow is refused before the attach that comes with it
        run(conn, name="grow", size=2, attached_to="vol-host")
    assert "volume.resize" in info.value.message and "libvirt" in info.value.message
    assert listed(conn)["grow"].capacity == GIB and listed(conn)["grow"].attachedTo in (None, [])


def test_size_is_required_to_create_and_checked(conn):
    with pytest.raises(InvalidInput) as info:
        run(conn, name="nosize")
    assert info.value.attribute == "size" and "required" in info.value.message
    for bad in (0, -1, True):
        with pytest.raises(InvalidInput) as info:
            run(conn, name="badsize", size=bad)
        assert info.value.attribute == "size"
    assert "nosize" not in listed(conn) and "badsize" not in listed(conn)


def test_a_type_on_a_provider_without_types_fails_naming_type_and_creates_nothing(conn):
    with pytest.raises(InvalidInput) as info:
        run(conn, name="typed", size=1, type="gp3")
    assert volumes.ATTRIBUTE_OPTIONS[info.value.attribute] == "type"
    assert "typed" not in listed(conn)


def test_attach_detach_and_absent(conn, machine):
    predicted, _warnings = run(conn, check_mode=True, name="disk", size=1, attached_to="vol-host", device="vdc")
    assert predicted["actions"] == ["create", "attach"]
    assert predicted["volume"]["attachedTo"] == [{"href": machine.id}]
    made, _warnings = run(conn, name="disk", size=1, attached_to="vol-host", device="vdc")
    assert made["actions"] == ["create", "attach"] and made["volume"]["attachedTo"] == [{"href": machine.id}]
    assert conn.get_machine(machine.id).to_json()["volumes"] == [
        {"initialLocation": "vdc", "volume": {"href": made["volume"]["id"]}}]
    assert not run(conn, name="disk", attached_to=machine.id)[0]["changed"]  # by id: the same machine
    left, _warnings = run(conn, name="disk", attached_to="")
    assert left["actions"] == ["detach"] and not left["volume"].get("attachedTo")
    assert not run(conn, name="disk", attached_to="")[0]["changed"]
    run(conn, name="disk", attached_to="vol-host")
    gone, _warnings = run(conn, name="disk", state="absent")
    assert gone["actions"] == ["detach", "delete"] and "volume" not in gone and "disk" not in listed(conn)
    assert not run(conn, name="disk", state="absent")[0]["changed"]


def test_a_running_machine_where_the_provider_does_not_hot_plug_fails_before_the_volume_is_made(conn, machine):
    conn.start_machine(machine.id)
    assert not conn.capabilities().hot_plug
    with pytest.raises(Conflict) as info:
        run(conn, name="hot", size=1, attached_to="vol-host")
    assert "stop it first" in info.value.message and "vol-host" in info.value.message
    assert "hot" not in listed(conn)


def test_an_unknown_machine_fails_naming_attached_to(conn):
    with pytest.raises(InvalidInput) as info:
        run(conn, name="orphan", size=1, attached_to="no-such-machine")
    assert info.value.attribute == "attached_to" and "no-such-machine" in info.value.message
    assert "orphan" not in listed(conn)


def test_device_without_attached_to_is_refused(conn):
    with pytest.raises(InvalidInput) as info:
        run(conn, name="dev", size=1, device="vdb")
    assert info.value.attribute == "device"


def test_info_by_name_and_filter(conn):
    run(conn, name="small-1", size=1)
    run(conn, name="large-1", size=3)
    info = volumes.run_info(Module(conn, name=None, filter="capacity>=%d" % (2 * GIB)))
    assert [v["name"] for v in info["volumes"]] == ["large-1"] and not info["changed"]
    assert [v["name"] for v in volumes.run_info(Module(conn, name="small-1"))["volumes"]] == ["small-1"]
    with pytest.raises(InvalidInput) as bad:
        volumes.run_info(Module(conn, filter="capacity >>= 1"))
    assert bad.value.attribute == "$filter"


def test_attached_to_another_machine_moves_the_volume(conn, machine):
    other = conn.create_machine(MachineSpec(name="vol-host-2", config=MachineConfiguration(cpu=1, memory=65536)))
    run(conn, name="moved", size=1, attached_to="vol-host")
    predicted, _warnings = run(conn, check_mode=True, name="moved", attached_to="vol-host-2")
    assert predicted["actions"] == ["detach", "attach"] and predicted["volume"]["attachedTo"] == [{"href": other.id}]
    assert listed(conn)["moved"].attachedTo == [{"href": machine.id}]  # check mode changed nothing
    moved, _warnings = run(conn, name="moved", attached_to="vol-host-2")
    assert moved["actions"] == ["detach", "attach"] and listed(conn)["moved"].attachedTo == [{"href": other.id}]


def test_a_type_asked_of_an_existing_volume_without_one_is_kept_with_a_warning(conn):
    run(conn, name="untyped", size=1)
    again, module = run(conn, name="untyped", size=1, type="gp3")
    assert not again["changed"] and len(module.warnings) == 1 and "reports no type" in module.warnings[0]

"""The contract suite: every connector, against its stand-in, through the same tests.

Adding a provider = a module in ``standins/`` exposing ``STANDINS`` and one
import line below. Tests derive what to expect from ``capabilities()``: an
operation a connector does not advertise must raise Unsupported, one it does
advertise must work. Nothing here mocks a Python call.
"""

from __future__ import annotations

import pytest
from standins import ec2 as ec2_standins
from standins import libcloud_ec2 as libcloud_ec2_standins
from standins import libvirt as libvirt_standins
from standins import openstack as openstack_standins
from standins import siroccod as siroccod_standins
from standins import vcsim as vcsim_standins
from standins import xenserver as xenserver_standins

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import DiskImage, MachineSpec

STANDINS = [*libvirt_standins.STANDINS, *vcsim_standins.STANDINS, *xenserver_standins.STANDINS,
            *ec2_standins.STANDINS, *libcloud_ec2_standins.STANDINS, *siroccod_standins.STANDINS,
            *openstack_standins.STANDINS]


def pytest_configure(config):
    config.addinivalue_line("markers", "contract: the connector contract suite (needs the providers' stand-ins)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/contract/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.contract)


@pytest.fixture(scope="session", params=STANDINS, ids=lambda s: s.id)
def standin(request, tmp_path_factory):
    """A started stand-in; pytest groups the tests by it, so each starts once per session."""
    stand_in = request.param
    stand_in.start(tmp_path_factory.mktemp(stand_in.id))
    yield stand_in
    stand_in.stop()


@pytest.fixture
def connector(standin):
    """A fresh connector; whatever the test created is removed afterwards, even when it failed."""
    conn = standin.connect()
    try:
        yield conn
    finally:
        conn.close()
        standin.clean()


@pytest.fixture
def caps(connector):
    return connector.capabilities()


@pytest.fixture
def make_spec(standin, connector):
    """MachineSpec factory using the stand-in's small size; keywords override the spec's fields."""
    def make(name=None, config=None, **kw):
        config = config or connector.get_machine_config(standin.size)
        config = MachineConfiguration(cpu=config.cpu, memory=config.memory, cpuArch=config.cpuArch)
        return MachineSpec(name=standin.name() if name is None else name, config=config, **kw)
    return make


@pytest.fixture
def machine(connector, make_spec, caps):
    """Factory: create a machine in ``state`` (a stable state) and return it."""
    def make(state=states.STOPPED, **kw):
        initial = states.STARTED if state != states.STOPPED else states.STOPPED
        m = connector.create_machine(make_spec(initial_state=initial, **kw))
        return bring(connector, m, state)
    return make


@pytest.fixture
def goto(connector):
    """``goto(machine, state)``: bring a machine to a stable state through machine_action."""
    return lambda m, state: bring(connector, m, state)


def bring(connector, m, state, timeout=60):
    """Bring machine ``m`` to stable ``state`` through machine_action; the machine as it then is."""
    m = connector.wait_for_machine(m.id, states.STABLE_MACHINE_STATES, timeout=timeout)
    for op in states.path_to(m.state, state):
        connector.machine_action(m.id, op, force=True)
        m = connector.wait_for_machine(m.id, states.result_state(m.state, op), timeout=timeout)
    assert m.state == state
    return m


TINY_IMAGE_BYTES = 8 * 1024 * 1024


@pytest.fixture(scope="session")
def tiny_disks(tmp_path_factory):
    """An 8 MiB raw disk with a known pattern (a partition table's boot signature, data in its first MiB)
    and its conversions by qemu-img: {format: path}. vmdk is streamOptimized (what an OVA carries), vhd
    fixed to the raw size (qemu-img's force_size: no rounding to a disk geometry)."""
    import hashlib
    import subprocess

    root = tmp_path_factory.mktemp("tiny-image")
    raw = root / "tiny.raw"
    with open(raw, "wb") as handle:
        handle.truncate(TINY_IMAGE_BYTES)
        handle.seek(0)
        handle.write(hashlib.sha256(b"sirocco tiny image").digest() * (1024 * 1024 // 32))
        handle.seek(510)
        handle.write(b"\x55\xaa")
    files = {"raw": raw}
    for fmt, options in (("qcow2", []), ("vmdk", ["-o", "subformat=streamOptimized"]),
                         ("vhd", ["-o", "subformat=fixed,force_size=on"])):
        out = root / ("tiny." + fmt)
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc" if fmt == "vhd" else fmt, *options,
                        str(raw), str(out)], check=True, capture_output=True)
        files[fmt] = out
    return files


@pytest.fixture
def disk_image(tiny_disks):
    """Factory: a DiskImage of the tiny disk named ``name``, in ``formats`` (default: all of them)."""
    def make(name, generic_name=None, formats=None):
        files = {fmt: str(path) for fmt, path in tiny_disks.items() if formats is None or fmt in formats}
        return DiskImage(name=name, files=files, virtual_size=TINY_IMAGE_BYTES, generic_name=generic_name,
                         description="a tiny test image")
    return make


@pytest.fixture
def make_spec_for():
    """MachineSpec factory for a connector and stand-in outside the parametrized suite (beyond-contract tests)."""
    def make(connector, standin, **kw):
        config = connector.get_machine_config(standin.size)
        config = MachineConfiguration(cpu=config.cpu, memory=config.memory, cpuArch=config.cpuArch)
        return MachineSpec(name=standin.name(), config=config, **kw)
    return make

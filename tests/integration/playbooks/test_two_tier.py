"""playbooks/two-tier.yml as written, on the real libvirtd: a system made client-side from a template.

The playbook makes the two-tier system (a private network with a cidr, a data volume, two web machines and a db
machine, all from the template of playbooks/two-tier/templates.yaml) and starts it; a second run changes
nothing. What libvirtd then holds is read through libvirt itself, not through Sirocco: three running domains on
the network, the volume a disk of db, the network's address from the cidr. The playbook's removal
(``two_tier_state=absent``) leaves no domain, volume, network or pool, and a second removal changes nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import libvirt
import pytest

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "two-tier.yml"
BIN = Path(sys.executable).parent
URI = "qemu:///system"
NAME = "sirocco-two-tier"
POOL = "sirocco-two-tier"
MACHINES = ("sirocco-two-tier-web-1", "sirocco-two-tier-web-2", "sirocco-two-tier-db")
NETWORK = "sirocco-two-tier-private"
TIMEOUT = 600


def _play(*args, check=True):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    argv = [str(BIN / "ansible-playbook"), str(PLAYBOOK)] + list(args)
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT, cwd=REPO, check=False)
    if check and proc.returncode != 0:
        pytest.fail("%s failed (%d):\n%s\n%s" % (" ".join(argv), proc.returncode, proc.stdout[-6000:],
                                                 proc.stderr[-3000:]), pytrace=False)
    return proc


def _changed(proc):
    found = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", proc.stdout)
    assert found, proc.stdout[-3000:]
    return int(found.group(1))


@pytest.fixture(scope="module")
def conn():
    connection = libvirt.open(URI)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def made(conn):
    """Two runs of the playbook (after removing what an interrupted run may have left); its removal afterwards,
    whatever happened."""
    if any(_ours(conn).values()):
        _play("-e", "two_tier_state=absent", check=False)
    runs = [_play(), _play()]
    yield runs
    if any(_ours(conn).values()):  # test_removal_leaves_nothing did not get there
        _play("-e", "two_tier_state=absent", check=False)


def _ours(conn):
    return {
        "domains": sorted(d.name() for d in conn.listAllDomains(0) if d.name().startswith(NAME + "-")),
        "networks": sorted(n.name() for n in conn.listAllNetworks(0) if n.name().startswith(NAME + "-")),
        "pools": sorted(p.name() for p in conn.listAllStoragePools(0) if p.name() == POOL),
    }


def test_runs_then_changes_nothing(made):
    first, second = made
    assert _changed(first) >= 2, first.stdout[-3000:]  # the pool and the system
    assert "attach volume sirocco-two-tier-data to machine sirocco-two-tier-db" in first.stdout
    assert _changed(second) == 0, second.stdout[-3000:]


def test_members_on_libvirtd(made, conn):
    assert _ours(conn) == {"domains": sorted(MACHINES), "networks": [NETWORK], "pools": [POOL]}
    for name in MACHINES:
        dom = conn.lookupByName(name)
        assert dom.state(0)[0] == libvirt.VIR_DOMAIN_RUNNING, name
        root = ET.fromstring(dom.XMLDesc(0))
        assert [i.get("network") for i in root.findall("devices/interface/source")] == [NETWORK], name
        disks = [s.get("file") for s in root.findall("devices/disk/source")]
        volume = conn.storagePoolLookupByName(POOL).storageVolLookupByName("vol-sirocco-two-tier-data").path()
        assert disks == ([volume] if name.endswith("-db") else []), name
    net = ET.fromstring(conn.networkLookupByName(NETWORK).XMLDesc(0))
    assert net.find("forward") is None  # isolated
    assert [ip.get("address") for ip in net.findall("ip")] == ["10.252.10.1"]


def test_removal_leaves_nothing(made, conn):
    gone = _play("-e", "two_tier_state=absent")
    assert "delete volume sirocco-two-tier-data" in gone.stdout
    assert _ours(conn) == {"domains": [], "networks": [], "pools": []}
    again = _play("-e", "two_tier_state=absent")
    assert _changed(again) == 0, again.stdout[-3000:]

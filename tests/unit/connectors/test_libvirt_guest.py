"""libvirt_guest: the forwarded SSH port of a user-mode guest, its allocation and the guest's host key."""

from __future__ import annotations

import socket
import subprocess
import threading
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt as lv
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt_guest as guest
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import public_key


def domain(uuid, port, mac="52:54:00:aa:bb:cc"):
    nic = {"user": True, "forward": {"address": "127.0.0.1", "port": port, "mac": mac}}
    return lv.build_domain_xml("m-%s" % uuid[:4], uuid, "qemu", "x86_64", 1, 1024, interfaces=[nic],
                               seed="/p/m-seed-12345678.iso", guest={"user": "debian", "hostKey": "ssh-ed25519 AAAA"})


def test_forward_round_trips_through_the_domain_xml():
    xml = domain("0b7e5c1a-0000-4000-8000-000000000001", 42211)
    root = ET.fromstring(xml)
    assert guest.forward_of(root) == {"address": "127.0.0.1", "port": 42211, "mac": "52:54:00:aa:bb:cc"}
    facts = lv.parse_domain_xml(xml)
    assert facts["forward"]["port"] == 42211 and facts["interfaces"] == []
    assert facts["meta"]["guest"] == {"user": "debian", "hostKey": "ssh-ed25519 AAAA"}
    # the seed is a read-only CD-ROM on the IDE bus of the i440fx machine; the agent's channel is there
    cdrom = root.find("devices/disk[@device='cdrom']")
    assert cdrom.find("source").get("file") == "/p/m-seed-12345678.iso" and cdrom.find("readonly") is not None
    assert root.find("devices/channel/target").get("name") == "org.qemu.guest_agent.0"
    assert 'xmlns:qemu="%s"' % guest.QEMU_NS in xml


def test_claimed_ports_and_picking_skip_what_domains_hold():
    docs = [domain("0b7e5c1a-0000-4000-8000-00000000000%d" % i, 42200 + i) for i in range(3)]
    claimed = guest.claimed_ports(docs)
    assert sorted(claimed) == [42200, 42201, 42202]
    assert guest.pick_port(claimed, (42200, 42210), "127.0.0.1", local=False) == 42203
    assert guest.pick_port(claimed, (42200, 42210), "127.0.0.1", local=False, avoid={42203}) == 42204
    with pytest.raises(Conflict, match="no free port left in 42200-42202"):
        guest.pick_port(claimed, (42200, 42202), "127.0.0.1", local=False)


def test_a_port_something_listens_on_is_not_picked():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        assert not guest.port_is_free("127.0.0.1", busy)
        assert guest.pick_port({}, (busy, busy + 1), "127.0.0.1", local=True) == busy + 1


@pytest.mark.parametrize("value, expected", [(None, guest.DEFAULT_PORTS), ("2200-2299", (2200, 2299)),
                                             ([3000, 3001], (3000, 3001))])
def test_port_range_option(value, expected):
    assert guest.port_range(value) == expected


@pytest.mark.parametrize("value", ["22-80", "5000", "x-y", "3000-2000", [1, 2, 3]])
def test_bad_port_range_names_the_option(value):
    with pytest.raises(InvalidInput, match="ssh_forward_ports"):
        guest.port_range(value)


def test_allocation_lock_serialises_threads_of_two_connectors():
    inside, overlaps = [], []

    def worker():
        with guest.allocation_lock("qemu:///system-unit-test"):
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(1)
            threading.Event().wait(0.05)
            inside.pop()

    threads = [threading.Thread(target=worker) for _n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not overlaps


def test_host_key_is_an_openssh_key_pair(tmp_path):
    private, public = guest.host_key()
    assert public_key(public) == public and public.startswith("ssh-ed25519 ")
    path = tmp_path / "key"
    path.write_text(private)
    path.chmod(0o600)
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], capture_output=True, text=True, check=True)
    assert derived.stdout.split()[:2] == public.split()[:2]


def test_guest_mac_is_stable_and_local():
    mac = guest.guest_mac("0b7e5c1a-0000-4000-8000-000000000001")
    assert mac == guest.guest_mac("0b7e5c1a-0000-4000-8000-000000000001") and mac.startswith("52:54:00:")
    assert mac != guest.guest_mac("0b7e5c1a-0000-4000-8000-000000000002")

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a libvirt guest is reached from the controller: user-mode networking with its SSH port forwarded.

A guest on QEMU's user-mode network has no address the host can route to; QEMU itself listens on a port
of the host (``hostfwd``) and forwards it to the guest's port 22. Debian 12's libvirt (9.0) has no
element for that with the slirp backend (``<portForward>`` needs passt, which it refuses), so the
network device is given on QEMU's command line (``<qemu:commandline>``), which libvirt keeps in the
persistent definition: the forward is re-applied at every start and survives any client restart.

Forwarded ports are allocated from a range, never one that another domain of the connection claims
(the definitions are the record), serialised by a lock file between processes of this host, and
checked again after the domain is defined, so two controllers racing for one port leave it to the
domain with the smaller UUID.

The guest's SSH host key is made here, before the guest exists, and handed to cloud-init in the seed:
so the controller knows the key the guest will present and can check it (known_hosts) although each
new guest at a reused port has a new key.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import random
import re
import socket
import tempfile
import xml.etree.ElementTree as ET

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    HAS_CRYPTOGRAPHY = True
except ImportError:  # Ansible's sanity import test runs without third-party libraries
    HAS_CRYPTOGRAPHY = False

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
ET.register_namespace("qemu", QEMU_NS)
NETDEV_ID = "sirocconet"
# a PCI slot libvirt does not hand out by itself on the i440fx bus, so the device never clashes
PCI_SLOT = "bus=pci.0,addr=0x1e"
DEFAULT_PORTS = (42200, 42999)
DEFAULT_ADDRESS = "127.0.0.1"
HOSTFWD_RE = re.compile(r"hostfwd=tcp:(?P<address>[0-9.]*):(?P<port>\d+)-:22\b")
MAC_RE = re.compile(r"\bmac=(?P<mac>[0-9a-fA-F:]{17})\b")
FORWARD_ARCHS = ("x86_64", "i686")


def port_range(value) -> tuple[int, int]:
    """Option ``ssh_forward_ports`` ("42200-42999" or [42200, 42999]) as (first, last)."""
    if value is None:
        return DEFAULT_PORTS
    try:
        low, high = (value.split("-", 1) if isinstance(value, str) else value)
        low, high = int(low), int(high)
    except (TypeError, ValueError):
        raise InvalidInput("provider_options.ssh_forward_ports: expected 'FIRST-LAST', got %r" % (value,),
                           attribute="ssh_forward_ports") from None
    if not 1024 <= low <= high <= 65535:
        raise InvalidInput("provider_options.ssh_forward_ports: %d-%d is not a range of unprivileged ports"
                           % (low, high), attribute="ssh_forward_ports")
    return low, high


def guest_mac(machine_uuid: str) -> str:
    """A stable locally administered MAC in QEMU's 52:54:00 prefix, derived from the machine's UUID."""
    digest = hashlib.sha256(machine_uuid.encode("ascii")).digest()
    return "52:54:00:%02x:%02x:%02x" % tuple(digest[:3])


def commandline_element(address: str, port: int, mac: str) -> ET.Element:
    """<qemu:commandline>: a user-mode netdev forwarding ``address:port`` to the guest's SSH, on a virtio NIC."""
    element = ET.Element("{%s}commandline" % QEMU_NS)
    netdev = "user,id=%s,hostfwd=tcp:%s:%d-:22" % (NETDEV_ID, address, port)
    device = "virtio-net-pci,netdev=%s,mac=%s,%s" % (NETDEV_ID, mac, PCI_SLOT)
    for value in ("-netdev", netdev, "-device", device):
        ET.SubElement(element, "{%s}arg" % QEMU_NS, value=value)
    return element


def forward_of(root: ET.Element) -> dict | None:
    """The forward a domain definition carries: {"address", "port", "mac"}, or None."""
    element = root.find("{%s}commandline" % QEMU_NS)
    if element is None:
        return None
    args = [arg.get("value") or "" for arg in element.findall("{%s}arg" % QEMU_NS)]
    forward = mac = None
    for value in args:
        forward = forward or HOSTFWD_RE.search(value)
        mac = mac or MAC_RE.search(value)
    if forward is None:
        return None
    return {"address": forward.group("address") or "0.0.0.0", "port": int(forward.group("port")),
            "mac": mac.group("mac").lower() if mac else None}


def claimed_ports(definitions) -> dict:
    """{port: domain UUID} over domain XML documents (persistent definitions)."""
    claimed = {}
    for text in definitions:
        root = ET.fromstring(text)
        forward = forward_of(root)
        if forward is not None:
            claimed.setdefault(forward["port"], []).append(root.findtext("uuid"))
    return claimed


def port_is_free(address: str, port: int) -> bool:
    """Whether nothing on this host listens on address:port now (a bind succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def pick_port(claimed, ports: tuple[int, int], address: str, local: bool, avoid=(), spread: bool = False) -> int:
    """The first port of the range no domain claims (and, on a local host, nothing listens on); with
    ``spread``, one at random among the free ones."""
    low, high = ports
    candidates = list(range(low, high + 1))
    if spread:
        random.shuffle(candidates)
    for port in candidates:
        if port in claimed or port in avoid:
            continue
        if local and not port_is_free(address, port):
            continue
        return port
    raise Conflict("no free port left in %d-%d to forward a guest's SSH to (provider option ssh_forward_ports)"
                   % (low, high))


@contextlib.contextmanager
def allocation_lock(uri: str):
    """An exclusive lock for port allocation on one libvirt URI among this host's processes."""
    name = "sirocco-libvirt-ports-%s.lock" % hashlib.sha256(uri.encode("utf-8")).hexdigest()[:16]
    path = os.path.join(tempfile.gettempdir(), name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o666)  # another user's controller on this host takes the same lock
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def host_key() -> tuple[str, str]:
    """A new Ed25519 SSH host key: (private key in OpenSSH format, public key line)."""
    if not HAS_CRYPTOGRAPHY:
        raise InvalidInput("the libvirt provider needs the Python package cryptography to give a guest its SSH "
                           "host key: pip install -r requirements/libvirt.txt", attribute="credential")
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode("ascii")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode("ascii")
    return private, public


def network_config(interfaces) -> str:
    """cloud-init's network configuration (version 2; JSON is YAML) for a guest with several NICs: each one,
    matched by its MAC and named by ``set-name`` (cloud-init's ifupdown renderer configures names, not MACs),
    configured by DHCP. Without it cloud-init brings up a single NIC, the first by name, not the one the
    controller reaches the guest through; that one (the first here) is required, the others optional, so that
    the boot does not wait for a network without DHCP."""
    ethernets = {}
    for index, nic in enumerate(interfaces):
        mac = nic.get("mac") or (nic.get("forward") or {}).get("mac")
        if mac:
            name = "snic%d" % index
            ethernets[name] = {"match": {"macaddress": mac}, "set-name": name, "dhcp4": True,
                               "optional": index > 0}
    return json.dumps({"version": 2, "ethernets": ethernets}, indent=2) + "\n"

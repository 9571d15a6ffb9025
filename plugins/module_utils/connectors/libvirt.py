# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""libvirt connector: KVM/QEMU, Xen and libvirt's test driver through libvirt-python.

Mapping (native id in brackets):

* Machine = domain [UUID]. ``description`` is the domain's ``<description>``;
  ``properties``, the creation time and the disks the connector created for
  the machine live in ``<metadata>`` under the ``urn:sirocco:cimi:libvirt:1``
  namespace, so they survive any client restart.
* MachineImage = storage volume of the pool named by option ``image_pool``
  (default ``default``) [volume key, i.e. its path for file pools].
* Volume = storage volume of option ``volume_pool`` (default: the image pool)
  [volume key]. When both options name one pool, a volume whose libvirt name
  starts with ``vol-`` is a Volume (shown without the prefix), anything else is
  an image. Disks made for a machine are named ``<machine>-disk<N>-<uuid8>.qcow2``
  and are neither.
* Network = libvirt network [UUID]; ``create_network`` makes an isolated one (no forward), with the
  host's address and optionally DHCP on a private ``cidr``. A machine given networks whose guest boots
  keeps its default interface beside them (the controller's way in).
* MachineConfiguration = named size (option ``sizes``, else base.DEFAULT_SIZES).
  A machine created without an image is diskless; with one, its disk is a qcow2
  overlay on the image (a full copy on pools without backing files).

Options: ``sizes``, ``image_pool``, ``volume_pool``, ``domain_type`` (qemu, kvm,
xen, test; default from the URI scheme, qemu otherwise) and ``network`` (the
libvirt network new machines plug into; ``user`` for QEMU user-mode networking,
``none`` for no interface; default: the active network ``default`` if any,
else user-mode), ``migration_address`` (where this host's QEMU receives live
migrations, e.g. an address of a dedicated network; default: libvirt's choice, the
host name). An absent default pool means no images or volumes; a pool named in the
options must exist.

No libvirtError leaves this module: ``_op`` (the table ``ERRORS``) turns each into the one error
hierarchy of ``cimi.errors``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
    Disk,
    Machine,
    MachineConfiguration,
    MachineImage,
    MachineVolume,
    Meter,
    Network,
    NetworkInterface,
    Sample,
    Volume,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import cloudinit
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt_guest as guest_access
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    DEFAULT_GUEST_USER,
    HOST_KEY_PROPERTY,
    IMAGE_ARCH_PROPERTY,
    IMAGE_FORMAT_PROPERTY,
    IMAGE_NAME_PROPERTY,
    IMAGE_SIZE_PROPERTY,
    KIB_PER_MIB,
    USER_PROPERTY,
    Capabilities,
    Connector,
    ErrorTable,
    Page,
    Range,
    check_guest_inputs,
    missing_sdk,
    now_in_window,
    resize_figures,
    sizes_from_options,
)

try:
    import libvirt
    HAS_LIBVIRT = True
    LIBVIRT_IMPORT_ERROR = None
except ImportError as exc:  # Ansible's sanity import test runs without third-party libraries
    LIBVIRT_IMPORT_ERROR = exc
    libvirt = None
    HAS_LIBVIRT = False

if HAS_LIBVIRT:
    # libvirt's default handler prints every error on stderr, even the ones we
    # catch and translate; errors still raise libvirtError with this no-op.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

NS = "urn:sirocco:cimi:libvirt:1"
ET.register_namespace("sirocco", NS)
ASPECT = "http://schemas.dmtf.org/cimi/2/aspect/"
METER_UNITS = {"cpu": "percent", "memory": "KiB", "disk": "KiB", "inputBandwidth": "bytes received since start",
               "outputBandwidth": "bytes sent since start"}
METERS = tuple(ASPECT + a for a in METER_UNITS)
VOLUME_PREFIX = "vol-"
# An imported image's volume is named <name>@<generic name>@<arch>: storage volumes keep no metadata,
# so the pool's naming is where those live (the format and the size are the volume's own).
GENERIC_SEPARATOR = "@"
UPLOAD_CHUNK = 4 * 1024 * 1024
# a machine's own storage: its disks (-disk<N>-) and its cloud-init seed (-seed-), deleted with it
DISK_NAME_RE = re.compile(r"^(?P<machine>.+)-(?:disk(?P<index>\d+)|seed)-[0-9a-f]{8}\.(?:qcow2|iso)$")
# what create_machine puts into a guest that boots (QEMU/KVM): a NoCloud seed read by cloud-init
GUEST_INPUTS = frozenset({"userData", "credential"})
SEED_DOMAIN_TYPES = ("qemu", "kvm")
MAX_SEED_USER_DATA = 1024 * 1024  # bytes: a seed ISO holds more, but userData is a script, not a payload
DOMAIN_TYPES = ("qemu", "kvm", "xen", "test")
BACKING_POOL_TYPES = ("dir", "fs", "netfs")  # file pools: a qcow2 overlay can point at the image

# -- native states ---------------------------------------------------------
# virDomainState values (stable ABI numbers, so this table needs no libvirt import).
NOSTATE, RUNNING, BLOCKED, PAUSED, SHUTDOWN, SHUTOFF, CRASHED, PMSUSPENDED = range(8)
STATE_TABLE = {
    NOSTATE: states.ERROR,
    RUNNING: states.STARTED,
    BLOCKED: states.STARTED,  # running, waiting on a resource
    PAUSED: states.PAUSED,
    SHUTDOWN: states.STOPPING,  # being shut down
    SHUTOFF: states.STOPPED,  # SUSPENDED instead when a managed save image exists
    CRASHED: states.ERROR,
    PMSUSPENDED: states.SUSPENDED,  # guest-initiated suspend to RAM
}
# virDomainPausedReason values that mean the pause is only a step of something else.
PAUSED_REASONS = {3: states.SUSPENDING, 4: states.CAPTURING, 5: states.ERROR, 8: states.STOPPING,
                  10: states.ERROR, 11: states.STARTING}  # save, dump, I/O error, shutting down, crashed, starting


def cimi_state(native, reason=0, managed_save=False):
    """CIMI state of a domain from virDomainGetState's (state, reason) and its managed save flag."""
    if native == SHUTOFF and managed_save:
        return states.SUSPENDED
    if native == PAUSED and reason in PAUSED_REASONS:
        return PAUSED_REASONS[reason]
    return STATE_TABLE.get(native, states.ERROR)


# libvirt architecture names -> CIMI cpuArch values (Table 16).
ARCHS = {
    "i686": "x86", "i386": "x86", "x86_64": "x86_64", "aarch64": "aarch64", "armv7l": "ARM",
    "armv6l": "ARM", "ppc": "PowerPC", "ppc64": "PowerPC", "ppc64le": "PowerPC", "s390x": "z/Architecture",
    "mips": "MIPS", "mipsel": "MIPS", "mips64": "MIPS", "mips64el": "MIPS", "sparc": "SPARC",
    "sparc64": "SPARC", "alpha": "Alpha", "m68k": "68000", "parisc": "PA_RISC", "ia64": "Itanium",
}


def cimi_arch(arch):
    return ARCHS.get(arch, arch) if arch else None


# -- errors: the one place libvirtError is translated ------------------------
_ERRORS = (
    (NotFound, ("NO_DOMAIN", "NO_NETWORK", "NO_STORAGE_POOL", "NO_STORAGE_VOL", "NO_DOMAIN_SNAPSHOT",
                "NO_NODE_DEVICE", "NO_INTERFACE", "NO_SECRET", "NO_DOMAIN_METADATA", "DEVICE_MISSING")),
    (Conflict, ("OPERATION_INVALID", "DOM_EXIST", "STORAGE_VOL_EXIST", "NETWORK_EXIST", "STORAGE_POOL_BUILT",
                "MIGRATE_UNSAFE")),
    (InvalidInput, ("INVALID_ARG", "XML_ERROR", "XML_DETAIL", "CONFIG_UNSUPPORTED", "INVALID_MAC",
                    "INVALID_NETWORK", "INVALID_STORAGE_VOL")),
    (Unsupported, ("NO_SUPPORT", "OPERATION_UNSUPPORTED", "ARGUMENT_UNSUPPORTED")),
    (AuthError, ("AUTH_FAILED", "AUTH_CANCELLED", "AUTH_UNAVAILABLE")),
    (Forbidden, ("ACCESS_DENIED", "OPERATION_DENIED")),
    (OperationTimeout, ("OPERATION_TIMEOUT", "AGENT_UNRESPONSIVE")),
)
ERROR_CLASSES = {getattr(libvirt, "VIR_ERR_" + name): cls
                 for cls, names in _ERRORS for name in names if hasattr(libvirt, "VIR_ERR_" + name)}


def error_class(code):
    """Sirocco error class for a libvirt error code; the rest means the provider failed."""
    return ERROR_CLASSES.get(code, ProviderUnavailable)


ERRORS = ErrorTable(
    codes=ERROR_CLASSES, code=lambda exc: exc.get_error_code(),
    catch=lambda: libvirt.libvirtError if HAS_LIBVIRT else (),
    detail=lambda exc: (exc.get_error_message() or str(exc)).strip(),
    unsupported="provider '%(provider)s' (%(uri)s) cannot %(operation)s for %(subject)s: %(detail)s")


# -- XML: building and reading, free of any connection ---------------------------

def _sub(parent, tag, text=None, **attrib):
    el = ET.SubElement(parent, tag, {k.rstrip("_"): str(v) for k, v in attrib.items() if v is not None})
    if text is not None:
        el.text = str(text)
    return el


def _meta_element(tag, created=None, properties=None, description=None, disks=(), guest=None):
    """The sirocco metadata element: creation time, properties, owned disks, what reaches the guest
    (``guest``: {"user", "hostKey"}: the credential's user name, the public SSH host key it was given)."""
    root = ET.Element("{%s}%s" % (NS, tag))
    if created:
        root.set("created", created)
    if description is not None:
        _sub(root, "{%s}description" % NS, description)
    for key, value in sorted((properties or {}).items()):
        _sub(root, "{%s}property" % NS, value, name=key)
    for key in disks:
        _sub(root, "{%s}disk" % NS, key)
    for key, value in sorted((guest or {}).items()):
        if value:
            _sub(root, "{%s}guest" % NS, value, name=key)
    return root


def _read_meta(root, tag):
    meta = root.find("metadata/{%s}%s" % (NS, tag))
    if meta is None:
        return {"created": None, "properties": {}, "disks": [], "description": None, "guest": {}}
    desc = meta.find("{%s}description" % NS)
    return {"created": meta.get("created"),
            "properties": {p.get("name"): p.text or "" for p in meta.findall("{%s}property" % NS)},
            "disks": [d.text for d in meta.findall("{%s}disk" % NS) if d.text],
            "description": desc.text or "" if desc is not None else None,
            "guest": {g.get("name"): g.text or "" for g in meta.findall("{%s}guest" % NS)}}


def disk_element(path, fmt, dev, bus):
    disk = ET.Element("disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type=fmt or "raw")
    _sub(disk, "source", file=path)
    _sub(disk, "target", dev=dev, bus=bus)
    return disk


def build_domain_xml(name, uuid, domain_type, arch, vcpus, memory_kib, description=None, properties=None,
                     created=None, disks=(), owned_disks=(), interfaces=(), seed=None, guest=None):
    """Domain XML for a new machine.

    ``disks``: dicts path, format, dev, bus. ``interfaces``: dicts with
    ``network`` (a libvirt network name) or ``user`` (user-mode networking), the latter with
    ``forward`` ({"address", "port", "mac"}: the guest's SSH forwarded there, see libvirt_guest).
    ``seed``: path of a NoCloud seed ISO, attached as a CD-ROM; ``guest``: see _meta_element.
    """
    dom = ET.Element("domain", type=domain_type)
    _sub(dom, "name", name)
    _sub(dom, "uuid", uuid)
    if description:
        _sub(dom, "description", description)
    _sub(dom, "metadata").append(_meta_element("machine", created, properties, disks=owned_disks, guest=guest))
    _sub(dom, "memory", memory_kib, unit="KiB")
    _sub(dom, "vcpu", vcpus)
    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch=arch)
    _sub(os_, "boot", dev="hd")
    if arch in ("x86_64", "i686", "i386"):
        # ACPI gives the guest a hotplug-capable PCI bus (live volume attach) and a power button.
        features = _sub(dom, "features")
        _sub(features, "acpi")
        _sub(features, "apic")
    devices = _sub(dom, "devices")
    for d in disks:
        devices.append(disk_element(d["path"], d.get("format"), d["dev"], d["bus"]))
    if seed:
        cdrom = disk_element(seed, "raw", "hdc" if arch in guest_access.FORWARD_ARCHS else "sdc",
                             "ide" if arch in guest_access.FORWARD_ARCHS else "scsi")
        cdrom.set("device", "cdrom")
        _sub(cdrom, "readonly")
        devices.append(cdrom)
    if seed and domain_type in SEED_DOMAIN_TYPES:  # a guest that boots: qemu-guest-agent's channel (addresses)
        channel = _sub(devices, "channel", type="unix")
        _sub(channel, "target", type="virtio", name="org.qemu.guest_agent.0")
    for nic in interfaces:
        if nic.get("forward"):
            forward = nic["forward"]
            dom.append(guest_access.commandline_element(forward["address"], forward["port"], forward["mac"]))
            continue
        if nic.get("network"):
            iface = _sub(devices, "interface", type="network")
            if nic.get("mac"):
                _sub(iface, "mac", address=nic["mac"])
            _sub(iface, "source", network=nic["network"])
        else:
            iface = _sub(devices, "interface", type="user")
        if domain_type != "xen":
            _sub(iface, "model", type="virtio")
    return ET.tostring(dom, encoding="unicode")


def parse_domain_xml(text):
    """The facts a Machine needs from a domain XML document."""
    root = ET.fromstring(text)
    ostype = root.find("os/type")
    vcpu = root.find("vcpu")
    max_vcpus = int(vcpu.text) if vcpu is not None and vcpu.text else None
    max_memory = _kib(root.find("memory"))
    disks = []
    for disk in root.findall("devices/disk"):
        source, target, driver = disk.find("source"), disk.find("target"), disk.find("driver")
        path = None
        if source is not None:
            path = source.get("file") or source.get("dev") or source.get("name")
        disks.append({"device": disk.get("device", "disk"), "path": path,
                      "dev": target.get("dev") if target is not None else None,
                      "bus": target.get("bus") if target is not None else None,
                      "format": driver.get("type") if driver is not None else None,
                      "pool": source.get("pool") if source is not None else None,
                      "volume": source.get("volume") if source is not None else None})
    interfaces = []
    for iface in root.findall("devices/interface"):
        source, mac, target = iface.find("source"), iface.find("mac"), iface.find("target")
        interfaces.append({"type": iface.get("type"),
                           "network": source.get("network") if source is not None else None,
                           "mac": mac.get("address") if mac is not None else None,
                           "target": target.get("dev") if target is not None else None})
    return {"name": root.findtext("name"), "uuid": root.findtext("uuid"),
            "type": root.get("type"), "description": root.findtext("description"),
            "arch": ostype.get("arch") if ostype is not None else None,
            # what the guest has now (current), and the most it can have without a restart (max)
            "vcpus": int(vcpu.get("current")) if vcpu is not None and vcpu.get("current") else max_vcpus,
            "max_vcpus": max_vcpus, "max_memory_kib": max_memory,
            "memory_kib": _kib(root.find("currentMemory")) or max_memory, "disks": disks, "interfaces": interfaces,
            "forward": guest_access.forward_of(root), "meta": _read_meta(root, "machine")}


_UNITS = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024 ** 2, "mib": 1024 ** 2,
          "mb": 1000 ** 2, "g": 1024 ** 3, "gib": 1024 ** 3, "gb": 1000 ** 3, "t": 1024 ** 4, "tib": 1024 ** 4}


def _kib(el):
    if el is None or not el.text:
        return None
    return int(el.text) * _UNITS.get(el.get("unit", "KiB").lower(), 1024) // 1024


def build_volume_xml(name, capacity_bytes, fmt, backing=None):
    """Storage volume XML; ``backing`` = (path, format) makes a copy-on-write overlay."""
    vol = ET.Element("volume")
    _sub(vol, "name", name)
    _sub(vol, "capacity", capacity_bytes, unit="bytes")
    _sub(_sub(vol, "target"), "format", type=fmt)
    if backing:
        store = _sub(vol, "backingStore")
        _sub(store, "path", backing[0])
        _sub(store, "format", type=backing[1])
    return ET.tostring(vol, encoding="unicode")


def parse_volume_xml(text):
    root = ET.fromstring(text)
    fmt = root.find("target/format")
    return {"name": root.findtext("name"), "key": root.findtext("key"), "path": root.findtext("target/path"),
            "format": fmt.get("type") if fmt is not None else None,
            "capacity_kib": _kib(root.find("capacity")), "allocation_kib": _kib(root.find("allocation")),
            "backing": root.findtext("backingStore/path")}


def bridge_name(network_name, salt=0):
    """A Linux bridge name (at most 15 characters, safe characters only) derived from a network name;
    another ``salt`` gives another name, for the rare clash with a bridge that exists already."""
    seed = "sirocco-network:" + network_name + ("#%d" % salt if salt else "")
    return "sir-" + uuidlib.uuid5(uuidlib.NAMESPACE_URL, seed).hex[:10]


def parse_cidr(cidr):
    """``cidr`` as an IPv4Network fit for an isolated network, or InvalidInput(attribute="cidr"): a private
    range (the host routes it to the network's bridge: a public one would hide real addresses from it)
    with room for the host's address and a guest."""
    if not isinstance(cidr, str) or "/" not in cidr:
        raise InvalidInput("cidr %r is not an IPv4 network such as 10.20.0.0/24" % (cidr,), attribute="cidr")
    try:
        net = ipaddress.IPv4Network(cidr)  # strict: an address with host bits set is not a network
    except ValueError as exc:
        raise InvalidInput("cidr '%s' is not an IPv4 network such as 10.20.0.0/24: %s" % (cidr, exc),
                           attribute="cidr") from None
    if net.prefixlen > 30:
        raise InvalidInput("cidr '%s' is too small: a /30 at least (the host's address and a guest's)" % cidr,
                           attribute="cidr")
    if not net.is_private or net.is_loopback or net.is_link_local or net.is_multicast or net.is_reserved:
        raise InvalidInput("cidr '%s' is not a private IPv4 range (10/8, 172.16/12, 192.168/16, 198.18/15): the "
                           "host would route it to an isolated network" % cidr, attribute="cidr")
    return net


def build_network_xml(name, description=None, properties=None, created=None, cidr=None, dhcp=False, bridge=None):
    """An isolated network: no <forward>, so never routed or NATed anywhere. With ``cidr`` (an IPv4Network)
    the host takes its first address on the bridge and, with ``dhcp``, leases the rest to guests; libvirt's
    DNS stays off (its dnsmasq would forward guests' queries to the host's resolvers)."""
    net = ET.Element("network")
    _sub(net, "name", name)
    _sub(net, "metadata").append(_meta_element("network", created, properties, description))
    _sub(net, "bridge", name=bridge or bridge_name(name), stp="on", delay="0")
    if cidr is not None:
        _sub(net, "dns", enable="no")
        first, last = cidr.network_address + 1, cidr.broadcast_address - 1
        ip = _sub(net, "ip", address=first, netmask=cidr.netmask)
        if dhcp:
            _sub(_sub(ip, "dhcp"), "range", start=first + 1, end=last)
    return ET.tostring(net, encoding="unicode")


def network_addresses(root):
    """(cidr, dhcp) of a network XML's IPv4 addresses as libvirt keeps them; (None, None) without any."""
    for ip in root.findall("ip"):
        if ip.get("family", "ipv4") != "ipv4" or not ip.get("address"):
            continue
        mask = ip.get("netmask") or ip.get("prefix") or "32"
        return str(ipaddress.ip_interface("%s/%s" % (ip.get("address"), mask)).network), ip.find("dhcp") is not None
    return None, None


def volume_role(name, pool, image_pool, volume_pool):
    """'disk', 'image', 'volume' or None: what a storage volume is to Sirocco (see the module doc)."""
    if DISK_NAME_RE.match(name):
        return "disk"
    if image_pool == volume_pool:
        if pool != image_pool:
            return None
        return "volume" if name.startswith(VOLUME_PREFIX) else "image"
    return {image_pool: "image", volume_pool: "volume"}.get(pool)


def next_device(used, prefix):
    """First free target device name (vda, vdb, ...) not in ``used``."""
    for letter in "abcdefghijklmnopqrstuvwxyz":
        if prefix + letter not in used:
            return prefix + letter
    raise Conflict("no free %s* device name left" % prefix)


def redact_uri(uri):
    """The URI without any password in its user part, fit for messages."""
    return re.sub(r"(//[^/:@]*):[^/@]*@", r"\1:***@", uri or "")


def _now():
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the connector ---------------------------------------------------------------

class LibvirtConnector(Connector):
    name = "libvirt"
    option_names = ("sizes", "image_pool", "volume_pool", "network", "domain_type", "migration_address",
                    "ssh_forward_ports", "ssh_forward_address")
    image_formats = ("qcow2", "raw")
    user_data_limit = MAX_SEED_USER_DATA

    def __init__(self, uri=None, username=None, password=None, region=None, validate_certs=True,
                 timeout=60, options=None):
        super().__init__(uri=uri or "qemu:///system", username=username, password=password, region=region,
                         validate_certs=validate_certs, timeout=timeout, options=options)
        if not HAS_LIBVIRT:
            raise missing_sdk("libvirt", "libvirt-python", LIBVIRT_IMPORT_ERROR)
        self._conn = None
        self._host = None
        self.shown_uri = redact_uri(self.uri)
        default_type = "test" if self.uri.startswith("test") else "xen" if self.uri.startswith("xen") else "qemu"
        self.domain_type = self.options.get("domain_type") or default_type
        if self.domain_type not in DOMAIN_TYPES:
            raise InvalidInput("provider_options.domain_type: '%s' is not one of %s"
                               % (self.domain_type, ", ".join(DOMAIN_TYPES)), attribute="domain_type")
        self.image_pool = self.options.get("image_pool") or "default"
        self.volume_pool = self.options.get("volume_pool") or self.image_pool
        self.configs = sizes_from_options(self.options.get("sizes"))
        # only a guest that boots reads a seed: the test driver and Xen guests get neither input
        self.guest_inputs = GUEST_INPUTS if self.domain_type in SEED_DOMAIN_TYPES else frozenset()
        self.forward_ports = guest_access.port_range(self.options.get("ssh_forward_ports"))
        self.forward_address = self.options.get("ssh_forward_address") or guest_access.DEFAULT_ADDRESS

    def __repr__(self):
        return "<libvirt connector uri=%r>" % self.shown_uri

    # -- connection ------------------------------------------------------------
    @property
    def conn(self):
        """The libvirt connection, opened on first use."""
        if self._conn is None:
            try:
                if self.username or self._password:
                    self._conn = libvirt.openAuth(self.uri, [[libvirt.VIR_CRED_AUTHNAME, libvirt.VIR_CRED_PASSPHRASE],
                                                             self._auth, None], 0)
                else:
                    self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                cls = error_class(exc.get_error_code())
                cls = cls if cls in (AuthError, Forbidden) else ProviderUnavailable
                raise cls("cannot connect to libvirt at %s: %s" % (self.shown_uri, exc.get_error_message())) from None
        return self._conn

    def _auth(self, credentials, _data):
        for cred in credentials:
            if cred[0] == libvirt.VIR_CRED_AUTHNAME:
                cred[4] = self.username
            elif cred[0] == libvirt.VIR_CRED_PASSPHRASE:
                cred[4] = self._password
        return 0

    def close(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except libvirt.libvirtError:
                pass  # closing a dead connection: nothing left to release
            self._conn = None

    def _op(self, operation, subject):
        """Run libvirt calls, their libvirtError raised as the Sirocco error naming operation and subject."""
        return ERRORS.translating(operation, subject, self.name, uri=self.shown_uri)

    # -- host facts ----------------------------------------------------------------
    def host(self):
        """Facts about the hypervisor host, read once per connection."""
        if self._host is None:
            with self._op("capabilities", "host %s" % self.shown_uri):
                conn = self.conn
                info = conn.getInfo()  # [arch, memory MiB, cpus, MHz, nodes, sockets, cores, threads]
                caps = ET.fromstring(conn.getCapabilities())
                archs = []
                for guest in caps.findall("guest"):
                    arch = guest.find("arch")
                    types = {d.get("type") for d in arch.findall("domain")} if arch is not None else set()
                    if arch is not None and self.domain_type in types and arch.get("name") not in archs:
                        archs.append(arch.get("name"))
                try:
                    max_vcpus = conn.getMaxVcpus(self.domain_type)
                except libvirt.libvirtError:
                    max_vcpus = info[2]  # the driver does not say: the host's count is a safe bound
                self._host = {"hostname": conn.getHostname(), "memory_mib": info[1], "cpus": info[2],
                              "mhz": info[3], "host_arch": caps.findtext("host/cpu/arch"),
                              "archs": archs, "max_vcpus": max_vcpus}
        return self._host

    def implemented_operations(self):
        operations = super().implemented_operations()
        if self.uri.startswith("test"):
            operations -= {"volume.resize"}  # the test driver has no virStorageVolResize
        return operations

    def capabilities(self):
        host = self.host()
        archs = tuple(dict.fromkeys(cimi_arch(a) for a in host["archs"]))
        return Capabilities(
            provider=self.name, operations=self.implemented_operations(),
            cpu=Range(1, host["max_vcpus"]), cpu_mhz=Range(1, host["mhz"] or None),
            memory_mib=Range(1, host["memory_mib"]), archs=archs, meters=METERS,
            locations=(host["hostname"],), stop_force_default=False,
            **self.guest_fields(), image_formats=self.import_formats(),
            hot_plug=self.domain_type != "test",  # the test driver has no device hot-plug
            extras={"hostCpus": host["cpus"], "domainType": self.domain_type})

    # -- lookups -------------------------------------------------------------------
    def _domain(self, machine_id):
        try:
            uuidlib.UUID(str(machine_id))
        except ValueError:
            raise NotFound("machine '%s' not found on provider libvirt (%s): ids are domain UUIDs"
                           % (machine_id, self.shown_uri)) from None
        try:
            return self.conn.lookupByUUIDString(str(machine_id))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise NotFound("machine '%s' not found on provider libvirt (%s)"
                               % (machine_id, self.shown_uri)) from None
            raise

    def _pool(self, name, option, required=True):
        """An active storage pool; None when not ``required`` and the unset option's default pool is absent."""
        try:
            pool = self.conn.storagePoolLookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_STORAGE_POOL:
                if not required and option not in self.options:
                    return None  # a host without the default pool simply has no images or volumes
                raise NotFound("storage pool '%s' (option %s) not found on %s"
                               % (name, option, self.shown_uri)) from None
            raise
        if not pool.isActive():
            raise Conflict("storage pool '%s' (option %s) is not active on %s" % (name, option, self.shown_uri))
        return pool

    def _pool_type(self, pool):
        return ET.fromstring(pool.XMLDesc(0)).get("type")

    def _volumes_of(self, role):
        """(volume, facts) pairs of every storage volume playing ``role``, sorted by name."""
        pool_name = self.image_pool if role == "image" else self.volume_pool
        pool = self._pool(pool_name, "image_pool" if role == "image" else "volume_pool", required=False)
        out = []
        for vol in pool.listAllVolumes(0) if pool else ():
            if volume_role(vol.name(), pool_name, self.image_pool, self.volume_pool) == role:
                out.append((vol, parse_volume_xml(vol.XMLDesc(0))))
        return sorted(out, key=lambda pair: pair[1]["name"])

    def _find_volume(self, ref, role):
        """A storage volume by key (its id) or by its Sirocco name, within the pool of ``role``."""
        what = "machine image" if role == "image" else "volume"
        for vol, facts in self._volumes_of(role):
            if ref in (facts["key"], self._display_name(facts["name"], role)):
                return vol, facts
        raise NotFound("%s '%s' not found on provider libvirt (%s)" % (what, ref, self.shown_uri))

    def _display_name(self, native_name, role):
        if role == "volume" and self.image_pool == self.volume_pool:
            return native_name[len(VOLUME_PREFIX):]
        if role == "image":
            return native_name.partition(GENERIC_SEPARATOR)[0]
        return native_name

    def _domain_facts(self, dom):
        """Parsed persistent and live XML of a domain: what is defined and what is plugged in now."""
        facts = parse_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        if dom.isActive():
            live = parse_domain_xml(dom.XMLDesc(0))
            known = {d["path"] for d in facts["disks"]}
            facts["disks"] += [d for d in live["disks"] if d["path"] not in known]
            facts["interfaces"] = live["interfaces"]
        return facts

    def _state(self, dom):
        native, reason = dom.state(0)
        managed = native == SHUTOFF and bool(dom.hasManagedSaveImage(0))
        return cimi_state(native, reason, managed)

    # -- machines --------------------------------------------------------------------
    def _machine(self, dom, networks=None):
        facts = self._domain_facts(dom)
        meta = facts["meta"]
        owned = set(meta["disks"])
        if networks is None:
            networks = {n.name(): n.UUIDString() for n in self.conn.listAllNetworks(0)}
        disks, volumes = [], []
        for d in facts["disks"]:
            if d["device"] != "disk" or not d["path"]:
                continue
            vol = self._volume_by_path(d["path"])
            if vol is not None and vol.key() not in owned and self._role(vol) == "volume":
                volumes.append(MachineVolume(volume={"href": vol.key()}, initialLocation=d["dev"]))
            else:
                disks.append(Disk(capacity=self._capacity_kib(dom, vol, d), format=d["format"],
                                  initialLocation=d["dev"]))
        interfaces = []
        if facts["forward"]:
            forward = facts["forward"]
            interfaces.append(NetworkInterface(macAddress=forward["mac"], networkType="user", addresses=[
                {"ip": forward["address"], "sshPort": forward["port"], "allocation": "forwarded",
                 "protocol": "IPv4"}]))
        active = None
        for nic in facts["interfaces"]:
            iface = NetworkInterface(macAddress=nic["mac"])
            if nic["network"] in networks:
                iface.network = {"href": networks[nic["network"]]}
            if active is None:
                active = bool(dom.isActive())
            if active and nic["mac"] and nic["type"] == "network":
                iface.addresses = self._guest_addresses(dom, nic["mac"]) or None
            interfaces.append(iface)
        properties = dict(meta["properties"])
        guest = meta["guest"]
        if guest.get("user"):
            properties[USER_PROPERTY] = guest["user"]
        if guest.get("hostKey"):
            properties[HOST_KEY_PROPERTY] = guest["hostKey"]
        return Machine(id=dom.UUIDString(), name=dom.name(), description=facts["description"],
                       created=meta["created"], properties=properties, state=self._state(dom),
                       cpu=facts["vcpus"], memory=facts["memory_kib"], cpuArch=cimi_arch(facts["arch"]),
                       cpuSpeed=self.host()["mhz"] or None,  # a guest's vCPUs run at the host's clock
                       disks=disks, volumes=volumes, interfaces=interfaces)

    def _guest_addresses(self, dom, mac):
        """A running guest's IP addresses on a libvirt network, the way libvirt knows them: the network's
        DHCP lease, else the guest agent, else the host's ARP table."""
        if self.domain_type == "test":
            return []  # the test driver's interfaceAddresses crashes the client on a running domain; no guest anyway
        sources = (libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
                   libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP)
        for source in sources:
            try:
                found = dom.interfaceAddresses(source, 0)
            except libvirt.libvirtError:
                continue  # no agent in the guest, or a driver without this source
            for iface in (found or {}).values():
                if (iface.get("hwaddr") or "").lower() == mac.lower() and iface.get("addrs"):
                    return [{"ip": a["addr"], "protocol": "IPv4" if a["type"] == libvirt.VIR_IP_ADDR_TYPE_IPV4
                             else "IPv6", "allocation": "dynamic"}
                            for a in iface["addrs"]]
        return []

    def _volume_by_path(self, path):
        try:
            return self.conn.storageVolLookupByPath(path)
        except libvirt.libvirtError:
            return None  # a disk outside any storage pool

    def _role(self, vol):
        return volume_role(vol.name(), vol.storagePoolLookupByVolume().name(), self.image_pool, self.volume_pool)

    def _capacity_kib(self, dom, vol, disk):
        if vol is not None:
            return vol.info()[1] // 1024
        try:
            return dom.blockInfo(disk["dev"] or disk["path"], 0)[0] // 1024
        except libvirt.libvirtError:
            return 0  # size unknown (e.g. a missing file): report no capacity rather than fail the listing

    def list_machines(self, limit=None, marker=None):
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a positive integer", attribute="limit")
        with self._op("machine.list", "machines of %s" % self.shown_uri):
            # Ordered by UUID: a stable order in which a marker still works after its machine is deleted.
            domains = sorted(self.conn.listAllDomains(0), key=lambda d: d.UUIDString())
            if marker is not None:
                domains = [d for d in domains if d.UUIDString() > str(marker)]
            page = domains if limit is None else domains[:limit]
            networks = {n.name(): n.UUIDString() for n in self.conn.listAllNetworks(0)}
            items = []
            for dom in page:
                try:
                    items.append(self._machine(dom, networks))
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                        raise
                    # deleted while we listed: simply not part of the page
            more = limit is not None and len(domains) > limit
            return Page(items=items, marker=page[-1].UUIDString() if more and page else None)

    def get_machine(self, machine_id):
        with self._op("machine.get", "machine '%s'" % machine_id):
            return self._machine(self._domain(machine_id))

    def create_machine(self, spec):
        spec.validate()
        check_guest_inputs(spec, self.name, self.guest_inputs, user_data_limit=self.user_data_limit)
        with self._op("machine.create", "machine '%s'" % spec.name):
            self._check_fit(spec)
            try:
                self.conn.lookupByName(spec.name)
                raise Conflict("a machine named '%s' already exists on %s" % (spec.name, self.shown_uri))
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
            arch = self._guest_arch(spec.config.cpuArch)
            machine_uuid = str(uuidlib.uuid4())
            bus, prefix = ("xen", "xvd") if self.domain_type == "xen" else ("virtio", "vd")
            created, dom = [], None
            try:
                disks = self._create_disks(spec, machine_uuid, created)
                for vol_ref in spec.volumes:
                    vol, facts = self._free_volume(vol_ref)
                    disks.append({"path": facts["path"], "format": facts["format"]})
                for i, d in enumerate(disks):
                    d.update(dev=prefix + "abcdefghijklmnopqrstuvwxyz"[i], bus=bus)
                interfaces = self._interfaces(spec, arch, machine_uuid)
                seed, guest = None, {}
                if self._gets_seed(spec):
                    seed, guest = self._create_seed(spec, machine_uuid, created, interfaces)

                def define():
                    return self.conn.defineXML(build_domain_xml(
                        spec.name, machine_uuid, self.domain_type, arch, spec.config.cpu, spec.config.memory,
                        spec.description, spec.properties, _now(), disks, [v.key() for v in created], interfaces,
                        seed=seed, guest=guest))
                dom = self._define_forwarded(define, interfaces, machine_uuid)
                if spec.initial_state == states.STARTED:
                    dom.create()
            except BaseException:
                self._rollback(dom, created)
                raise
            return self._machine(dom)

    def _check_fit(self, spec):
        location = self.host()["hostname"]
        if spec.location and spec.location != location:
            raise InvalidInput("location '%s' is not this libvirt host (%s)" % (spec.location, location),
                               attribute="location")
        reasons = self.capabilities().fits(cpu=spec.config.cpu, memory_mib=-(-spec.config.memory // KIB_PER_MIB),
                                           arch=spec.config.cpuArch)
        if reasons:
            raise InvalidInput("machine '%s' does not fit libvirt host %s: %s"
                               % (spec.name, location, "; ".join(reasons)), attribute="machineConfig")

    def _guest_arch(self, wanted):
        host = self.host()
        if wanted:
            for arch in host["archs"]:
                if cimi_arch(arch) == wanted:
                    return arch
        if host["host_arch"] in host["archs"]:
            return host["host_arch"]
        if not host["archs"]:
            raise InvalidInput("libvirt at %s offers no guest for domain type '%s'"
                               % (self.shown_uri, self.domain_type), attribute="domain_type")
        return host["archs"][0]

    def _create_disks(self, spec, machine_uuid, created):
        """The boot disk of a new machine: a copy-on-write clone of its image, as large as its config asks."""
        if not spec.image:
            return []  # diskless: the machine boots nothing, which is fine for a hypervisor
        img_vol, img = self._find_volume(spec.image, "image")
        pool = self._pool(self.volume_pool, "volume_pool")
        wanted_kib = max([d.get("capacity") or 0 for d in spec.config.disks or []] or [0])
        size = max(wanted_kib * 1024, img_vol.info()[1])
        name = "%s-disk0-%s.qcow2" % (spec.name, machine_uuid[:8])
        if self._pool_type(pool) in BACKING_POOL_TYPES and img["format"] in ("qcow2", "raw"):
            vol = pool.createXML(build_volume_xml(name, size, "qcow2", (img["path"], img["format"])), 0)
        else:  # no copy-on-write on this pool: a full copy of the image
            vol = pool.createXMLFrom(build_volume_xml(name, size, "qcow2"), img_vol, 0)
        created.append(vol)
        return [{"path": vol.path(), "format": "qcow2"}]

    def _gets_seed(self, spec):
        """Whether the machine's guest boots and reads a NoCloud seed (see _create_seed)."""
        return self.domain_type in SEED_DOMAIN_TYPES and bool(spec.image or spec.user_data or spec.credential)

    def _interfaces(self, spec, arch, machine_uuid):
        """The machine's NICs: one on each of ``spec.networks``, else the default one (option ``network``).
        A guest that boots keeps its default NIC first, beside the given networks: it is how the controller
        reaches the guest (its forwarded SSH port, or its lease on the default network). Every NIC on a libvirt
        network gets a MAC derived from the machine's UUID, for the seed's network configuration."""
        given = [self._network(ref).name() for ref in spec.networks]
        nics = [] if given and not self._gets_seed(spec) else self._default_interfaces(arch, machine_uuid)
        nics += [{"network": name} for name in given if name not in {n.get("network") for n in nics}]
        for index, nic in enumerate(nics):
            if nic.get("network"):
                nic["mac"] = guest_access.guest_mac("%s/nic%d" % (machine_uuid, index))
        return nics

    def _default_interfaces(self, arch, machine_uuid):
        choice = self.options.get("network")
        if choice == "none":
            return []
        if choice and choice != "user":
            return [{"network": self._network(choice).name()}]
        if choice is None and "default" in self.conn.listNetworks():  # active networks only
            return [{"network": "default"}]
        if self.domain_type == "xen":
            return []
        if self.domain_type in SEED_DOMAIN_TYPES and arch in guest_access.FORWARD_ARCHS:
            # user-mode networking: unreachable from the host but through a forwarded port (libvirt_guest)
            return [{"user": True, "forward": {"address": self.forward_address, "port": None,
                                               "mac": guest_access.guest_mac(machine_uuid)}}]
        return [{"user": True}]

    def _is_local(self):
        """Whether libvirtd runs on this host (its forwarded ports can be probed here)."""
        host = re.match(r"^[a-z+]+://(?:[^@/]*@)?([^/:?]*)", self.uri)
        return not host or host.group(1) in ("", "localhost", "127.0.0.1", "::1")

    def _define_forwarded(self, define, interfaces, machine_uuid):
        """Define the domain (``define()``), first giving its forwarded interface a port no other domain
        claims; when a controller on another host defined a domain on the same port meanwhile, this one
        moves to another port, chosen at random after a clash so that two movers part (see libvirt_guest)."""
        forward = next((nic["forward"] for nic in interfaces if nic.get("forward")), None)
        if forward is None:
            return define()
        taken = set()
        with guest_access.allocation_lock(self.uri):
            for attempt in range(16):
                claimed = guest_access.claimed_ports(
                    d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) for d in self.conn.listAllDomains(0)
                    if d.UUIDString() != machine_uuid)
                forward["port"] = guest_access.pick_port(claimed, self.forward_ports, forward["address"],
                                                         self._is_local(), avoid=taken, spread=attempt > 0)
                dom = define()
                claimed = guest_access.claimed_ports(
                    d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE) for d in self.conn.listAllDomains(0))
                if not [u for u in claimed.get(forward["port"], []) if u != machine_uuid]:
                    return dom
                taken.add(forward["port"])
        raise Conflict("could not settle a forwarded port for machine %s: other controllers keep taking them"
                       % machine_uuid)

    def _create_seed(self, spec, machine_uuid, created, interfaces):
        """The machine's NoCloud seed (cloud-init's meta-data and user-data on an ISO labelled cidata, and a
        network-config bringing up each NIC when it has several), a volume of the volume pool owned by the
        machine; and what the metadata records of it."""
        credential = spec.credential or {}
        user = credential.get("username") or (DEFAULT_GUEST_USER if credential.get("key") else None)
        private_key, public_key = guest_access.host_key()
        keys = [credential["key"]] if credential.get("key") else []
        iso = cloudinit.nocloud_iso(
            cloudinit.nocloud_meta_data(machine_uuid, spec.name, keys),
            cloudinit.guest_user_data(spec.user_data, dict(credential, username=user) if keys else None,
                                      host_keys={"ed25519_private": private_key, "ed25519_public": public_key}),
            guest_access.network_config(interfaces) if len(interfaces) > 1 else None)
        pool = self._pool(self.volume_pool, "volume_pool")
        vol = pool.createXML(build_volume_xml("%s-seed-%s.iso" % (spec.name, machine_uuid[:8]), len(iso), "raw"), 0)
        created.append(vol)
        self._upload_bytes(vol, iso)
        return vol.path(), {"user": user, "hostKey": public_key}

    def _rollback(self, dom, volumes):
        """Best-effort undo of a half-made machine; the original error is what the caller sees."""
        steps = [dom.destroy, lambda: self._undefine(dom)] if dom is not None else []
        for step in steps + [lambda v=v: v.delete(0) for v in volumes]:
            try:
                step()
            except libvirt.libvirtError:
                pass  # e.g. destroy of a domain that never started

    def _undefine(self, dom):
        flags = (libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                 | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        try:
            dom.undefineFlags(flags)
        except libvirt.libvirtError as exc:
            # Some drivers (e.g. test) refuse the NVRAM flag: nothing to keep there anyway.
            if exc.get_error_code() not in (libvirt.VIR_ERR_INVALID_ARG, libvirt.VIR_ERR_NO_SUPPORT):
                raise
            dom.undefineFlags(flags & ~libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)

    def _act(self, machine_id, action):
        """Look up the machine and refuse the action unless its current state allows it."""
        dom = self._domain(machine_id)
        state = self._state(dom)
        states.check_allowed(state, action, "machine '%s'" % dom.name())
        return dom, state

    def start_machine(self, machine_id):
        with self._op("machine.start", "machine '%s'" % machine_id):
            dom, state = self._act(machine_id, states.START)
            native = dom.state(0)[0]
            if native == PAUSED:
                dom.resume()
            elif native == PMSUSPENDED:
                dom.pMWakeup(0)
            else:
                if dom.isActive():  # ERROR: a crashed domain that is still there
                    dom.destroy()
                dom.create()  # from a managed save image, create() restores it
            return self._machine(dom)

    def stop_machine(self, machine_id, force=False):
        with self._op("machine.stop", "machine '%s'" % machine_id):
            dom, state = self._act(machine_id, states.STOP)
            if state == states.SUSPENDED and not dom.isActive():
                dom.managedSaveRemove(0)  # stopping a saved machine discards its memory image
            elif force or state != states.STARTED:
                dom.destroy()  # a paused or failed guest cannot react to a power button
            else:
                dom.shutdown()  # asks the guest; without a guest OS QEMU keeps running
            return self._machine(dom)

    def restart_machine(self, machine_id, force=False):
        with self._op("machine.restart", "machine '%s'" % machine_id):
            dom, state = self._act(machine_id, states.RESTART)
            if state == states.STOPPED:
                dom.create()
            elif not force:
                dom.reboot(0)
            else:
                try:
                    dom.reset(0)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                        raise
                    dom.destroy()
                    dom.create()
            return self._machine(dom)

    def pause_machine(self, machine_id):
        with self._op("machine.pause", "machine '%s'" % machine_id):
            dom, _state = self._act(machine_id, states.PAUSE)
            dom.suspend()
            return self._machine(dom)

    def suspend_machine(self, machine_id):
        with self._op("machine.suspend", "machine '%s'" % machine_id):
            dom, _state = self._act(machine_id, states.SUSPEND)
            dom.managedSave(0)
            return self._machine(dom)

    def delete_machine(self, machine_id):
        with self._op("machine.delete", "machine '%s'" % machine_id):
            dom, _state = self._act(machine_id, states.DELETE)
            owned = parse_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["meta"]["disks"]
            if dom.isActive():
                dom.destroy()
            self._undefine(dom)
            for key in owned:  # only disks made for this machine; attached volumes stay
                try:
                    self.conn.storageVolLookupByKey(key).delete(0)
                except libvirt.libvirtError as exc:
                    if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                        raise

    def migrate_machine(self, machine_id, target):
        """Move a domain to the libvirt host ``target`` serves, keeping its UUID and name.

        Real hosts: a live migration when it runs or is paused (``VIR_MIGRATE_LIVE``), an offline one
        when it is shut off (``VIR_MIGRATE_OFFLINE``), both persistent on the target and undefined on
        this host; the migration stream goes to ``tcp://<migration_address>`` of the target when that
        option is set (else libvirt uses the target's host name). Disks must be on storage both hosts
        see at the same path. A suspended machine (managed save image) is refused: start or stop it.
        Test-driver hosts simulate hosts and cannot migrate: the domain is *redefined* on the target
        (started again if it ran) and removed here, and only diskless machines can move that way.
        """
        if not isinstance(target, LibvirtConnector):
            raise InvalidInput("a libvirt machine can only move to another libvirt host", attribute="target")
        with self._op("machine.migrate", "machine '%s'" % machine_id):
            dom = self._domain(machine_id)
            state = self._state(dom)
            if state not in (states.STARTED, states.STOPPED, states.PAUSED):
                raise Conflict("machine '%s' is %s: only a started, paused or stopped machine moves"
                               % (dom.name(), state))
            if (self.domain_type == "test") != (target.domain_type == "test"):
                raise InvalidInput("a simulated (test driver) host and a real one cannot exchange machines",
                                   attribute="target")
            if self.domain_type == "test":
                return self._redefine_on(dom, target)
            flags = libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
            flags |= libvirt.VIR_MIGRATE_OFFLINE if state == states.STOPPED else libvirt.VIR_MIGRATE_LIVE
            params = {}
            address = target.options.get("migration_address")
            if address and state != states.STOPPED:
                params[libvirt.VIR_MIGRATE_PARAM_URI] = "tcp://%s" % address
            moved = dom.migrate3(target.conn, params, flags)
            return target._machine(moved)

    def _redefine_on(self, dom, target):
        """The test driver's stand-in for a migration: same XML defined on the target, started there if
        it ran, then removed here. Disks would stay behind, so only diskless domains move."""
        xml = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        facts = parse_domain_xml(xml)
        if any(d["device"] == "disk" for d in facts["disks"]):
            raise Conflict("machine '%s' has disks: a simulated (test driver) host cannot carry them to "
                           "another host" % dom.name())
        running, paused = dom.isActive(), self._state(dom) == states.PAUSED
        with target._op("machine.migrate", "machine '%s' on the target" % dom.name()):
            moved = target.conn.defineXML(xml)
            try:
                if running:
                    moved.create()
                if paused:
                    moved.suspend()
            except libvirt.libvirtError:
                target._undefine(moved)  # leave the machine where it was
                raise
        if running:
            dom.destroy()
        self._undefine(dom)
        return target._machine(moved)

    # -- resizing ----------------------------------------------------------------------
    def _check_resize(self, config, dom):
        """InvalidInput unless ``config`` is a cpu count and a memory size (KiB) this host offers, for the
        machine's own architecture; (cpu, memory KiB)."""
        cpu, memory = resize_figures(config)
        reasons = self.capabilities().fits(cpu=cpu, memory_mib=-(-memory // KIB_PER_MIB))
        if reasons:
            raise InvalidInput("machine '%s' cannot be resized beyond libvirt host %s: %s"
                               % (dom.name(), self.host()["hostname"], "; ".join(reasons)), attribute="machineConfig")
        arch = cimi_arch(parse_domain_xml(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))["arch"])
        if getattr(config, "cpuArch", None) and config.cpuArch != arch:
            raise InvalidInput("machine '%s' is %s: a resize keeps the architecture (asked for %s)"
                               % (dom.name(), arch, config.cpuArch), attribute="machineConfig.cpuArch")
        return cpu, memory

    def _live_misfits(self, dom, cpu, memory):
        """Why the running domain cannot take ``cpu``/``memory`` (KiB) live: empty when it can. Live, vCPUs
        are only added up to the domain's maximum (taking one away needs the guest's consent) and memory is
        set by the balloon up to the domain's maximum memory."""
        live = parse_domain_xml(dom.XMLDesc(0))
        reasons = []
        if cpu != live["vcpus"] and not live["vcpus"] < cpu <= (live["max_vcpus"] or 0):
            reasons.append("%d vCPU(s) from %d (live: up to its maximum %s, never fewer)"
                           % (cpu, live["vcpus"], live["max_vcpus"]))
        if memory > (live["max_memory_kib"] or 0):
            reasons.append("%d KiB of memory beyond its maximum %s KiB" % (memory, live["max_memory_kib"]))
        return reasons

    def _resize_refusal(self, dom, cpu, memory):
        """None when ``dom`` can be resized now (stopped, or running within its maximums), else the reason."""
        state = self._state(dom)
        if state == states.STOPPED:
            return None
        if state != states.STARTED:
            return "machine '%s' is %s: stop it (or start it) before a resize" % (dom.name(), state)
        misfits = self._live_misfits(dom, cpu, memory)
        if misfits:
            return ("machine '%s' is running and cannot take %s: stop it first, then resize"
                    % (dom.name(), "; ".join(misfits)))
        return None

    def resize_needs_stop(self, machine, config):
        """Whether the machine must be stopped first: not when stopped, nor when running and ``config``
        fits its maximums (see _live_misfits)."""
        with self._op("machine.resize", "machine '%s'" % machine.id):
            dom = self._domain(machine.id)
            cpu, memory = self._check_resize(config, dom)
            return self._resize_refusal(dom, cpu, memory) is not None

    def resize_machine(self, machine_id, config):
        """``config``'s cpu and memory: a stopped machine's definition is rewritten (vcpu, memory and
        currentMemory), a running one is changed live and in its definition, within its maximums."""
        with self._op("machine.resize", "machine '%s'" % machine_id) as op:
            dom = self._domain(machine_id)
            op.subject = "machine '%s'" % dom.name()
            cpu, memory = self._check_resize(config, dom)
            refusal = self._resize_refusal(dom, cpu, memory)
            if refusal:
                raise Conflict(refusal)
            if dom.isActive():
                self._resize_live(dom, cpu, memory)
            else:
                self._resize_definition(dom, cpu, memory)
            return self._machine(dom)

    @staticmethod
    def _resize_live(dom, cpu, memory):
        """Live first (what may fail), then the definition, so the next boot keeps the size. One flag per
        call: the test driver refuses LIVE and CONFIG together for memory."""
        live = parse_domain_xml(dom.XMLDesc(0))
        if cpu != live["vcpus"]:
            dom.setVcpusFlags(cpu, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        if memory != live["memory_kib"]:
            dom.setMemoryFlags(memory, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        dom.setVcpusFlags(cpu, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        dom.setMemoryFlags(memory, libvirt.VIR_DOMAIN_AFFECT_CONFIG)

    def _resize_definition(self, dom, cpu, memory):
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        vcpu = root.find("vcpu")
        vcpu.attrib.pop("current", None)
        vcpu.text = str(cpu)
        for tag in ("memory", "currentMemory"):
            element = root.find(tag)
            if element is None:
                element = ET.Element(tag)
                root.insert(list(root).index(root.find("memory")) + 1, element)
            element.attrib.clear()
            element.set("unit", "KiB")
            element.text = str(memory)
        self.conn.defineXML(ET.tostring(root, encoding="unicode"))

    def capture_machine(self, machine_id, name=None, description=None):
        """Copy the machine's first disk into a new image; ``name`` defaults to <machine>-<UTC time>."""
        if description:
            raise InvalidInput("libvirt storage volumes cannot keep a description", attribute="description")
        if name is not None:
            self._check_new_name(name, "image")
        with self._op("machine.capture", "machine '%s'" % machine_id) as op:
            dom, _state = self._act(machine_id, states.CAPTURE)
            op.subject = "machine '%s'" % dom.name()
            name = name or "%s-%s" % (dom.name(), datetime.now(UTC).strftime("%Y%m%d%H%M%S"))
            facts = self._domain_facts(dom)
            disk = next((d for d in facts["disks"] if d["device"] == "disk" and d["path"]), None)
            if disk is None:
                raise Conflict("machine '%s' has no disk to capture" % dom.name())
            source = self._volume_by_path(disk["path"])
            if source is None:
                raise Conflict("machine '%s': disk %s is not a storage volume libvirt can copy"
                               % (dom.name(), disk["path"]))
            pool = self._pool(self.image_pool, "image_pool")
            if name in pool.listVolumes():
                raise Conflict("a machine image named '%s' already exists in pool '%s'" % (name, self.image_pool))
            xml = build_volume_xml(name, source.info()[1], "qcow2")
            if dom.isActive():
                vol = self._live_copy(dom, disk, pool, xml) or pool.createXMLFrom(xml, source, 0)
            else:
                vol = pool.createXMLFrom(xml, source, 0)  # qemu-img convert: flattens any backing chain
            return self._image(vol, parse_volume_xml(vol.XMLDesc(0)))

    def _live_copy(self, dom, disk, pool, xml):
        """Copy a running machine's disk with a block-copy job (QEMU holds a write lock on the file).

        Returns None when the driver has no block jobs; the caller then copies the volume directly."""
        vol = pool.createXML(xml, 0)
        dest = "<disk type='file'><source file='%s'/><driver type='qcow2'/></disk>" % vol.path()
        try:
            dom.blockCopy(disk["dev"], dest, None,
                          libvirt.VIR_DOMAIN_BLOCK_COPY_REUSE_EXT | libvirt.VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB)
        except libvirt.libvirtError as exc:
            vol.delete(0)
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                return None
            raise
        copied = False
        try:
            deadline = time.monotonic() + self.timeout
            while not copied:  # the mirror is a consistent copy once it has caught up (cur == end)
                info = dom.blockJobInfo(disk["dev"], 0)
                copied = bool(info and info.get("end") and info["cur"] == info["end"])
                if not copied and time.monotonic() > deadline:
                    raise OperationTimeout("copying the disk of machine '%s' took more than %ss"
                                           % (dom.name(), self.timeout))
                time.sleep(0 if copied else 0.05)
        finally:
            dom.blockJobAbort(disk["dev"], 0)  # ends the mirror, leaves the copy and the machine as they are
            if not copied:
                vol.delete(0)
        return vol

    def _check_new_name(self, name, role):
        if not name or not isinstance(name, str) or "/" in name:
            raise InvalidInput("%s name must be a non-empty string without '/'" % role, attribute="name")
        if DISK_NAME_RE.match(name) or (self.image_pool == self.volume_pool and role == "image"
                                        and name.startswith(VOLUME_PREFIX)):
            raise InvalidInput("%s name '%s' is reserved by the libvirt connector's naming of disks and volumes"
                               % (role, name), attribute="name")

    # -- configurations and images ---------------------------------------------------
    def list_machine_configs(self):
        """The sizes (option ``sizes``), each with the host's CPU speed: what a machine of it runs at here."""
        mhz = self.host()["mhz"]
        if not mhz:
            return list(self.configs)
        configs = []
        for config in self.configs:
            doc = config.to_json()
            doc.pop("resourceURI", None)
            configs.append(MachineConfiguration(**dict(doc, cpuSpeed=mhz)))
        return configs

    def _image(self, vol, facts):
        name, _sep, rest = facts["name"].partition(GENERIC_SEPARATOR)
        generic, _sep, arch = rest.partition(GENERIC_SEPARATOR)
        props = {IMAGE_FORMAT_PROPERTY: facts["format"] or "raw", IMAGE_ARCH_PROPERTY: arch or self._host_arch()}
        if facts["capacity_kib"] is not None:
            props[IMAGE_SIZE_PROPERTY] = str(facts["capacity_kib"] * 1024)
        if generic:
            props[IMAGE_NAME_PROPERTY] = generic
        return MachineImage(id=facts["key"], name=name, state="AVAILABLE", type="IMAGE",
                            imageLocation=facts["path"], properties=props,
                            relatedImage={"href": facts["backing"]} if facts["backing"] else None)

    def _host_arch(self):
        arch = self.host()["host_arch"]
        return cimi_arch(arch) if arch else "x86_64"

    def import_machine_image(self, image):
        """A volume of the image pool named <name>@<generic name>@<arch>, the image's bytes uploaded into it with
        the stream API. libvirt's test driver has no upload: there the volume is made with the image's
        size and format, and holds no bytes (its machines are diskless shells anyway)."""
        fmt, path = image.validate(self.image_formats)
        self._check_new_name(image.name, "image")
        for part, what in ((image.name, "name"), (image.generic_name or "", "generic_name"), (image.arch, "arch")):
            if GENERIC_SEPARATOR in part:
                raise InvalidInput("image %s must not contain '%s' (the libvirt connector's naming)"
                                   % (what, GENERIC_SEPARATOR), attribute=what)
        with self._op("machine_image.import", "machine image '%s'" % image.name):
            pool = self._pool(self.image_pool, "image_pool")
            if any(f["name"].partition(GENERIC_SEPARATOR)[0] == image.name for _v, f in self._volumes_of("image")):
                raise Conflict("a machine image named '%s' already exists in pool '%s'" % (image.name, self.image_pool))
            native = GENERIC_SEPARATOR.join((image.name, image.generic_name or "", image.arch))
            vol = pool.createXML(build_volume_xml(native, image.virtual_size, fmt), 0)
            try:
                self._upload(vol, path)
            except BaseException:
                vol.delete(0)
                raise
            return self._image(vol, parse_volume_xml(vol.XMLDesc(0)))

    def _upload_bytes(self, vol, data):
        """``data`` into the volume, through a temporary file (the stream API reads from a handle)."""
        with tempfile.NamedTemporaryFile(prefix="sirocco-seed-") as handle:
            handle.write(data)
            handle.flush()
            self._upload(vol, handle.name)

    def _upload(self, vol, path):
        """The file's bytes into the volume (virStorageVolUpload); nothing where the driver cannot."""
        size = os.path.getsize(path)
        stream = self.conn.newStream(0)
        try:
            vol.upload(stream, 0, size, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
                return  # the test driver: a record of the image, without its bytes
            raise
        try:
            with open(path, "rb") as handle:
                stream.sendAll(lambda _stream, nbytes, source: source.read(min(nbytes, UPLOAD_CHUNK)), handle)
            stream.finish()
        except BaseException:
            stream.abort()
            raise

    def list_machine_images(self):
        with self._op("machine_image.list", "images of pool '%s'" % self.image_pool):
            pool = self._pool(self.image_pool, "image_pool", required=False)
            if pool:
                pool.refresh(0)  # pick up image files copied into the pool's directory
            return [self._image(vol, facts) for vol, facts in self._volumes_of("image")]

    def delete_machine_image(self, image_id):
        with self._op("machine_image.delete", "machine image '%s'" % image_id):
            vol, facts = self._find_volume(image_id, "image")
            # In use: as the backing file of a machine's copy-on-write disk, or as a disk itself.
            users = {v.name() for pool in self.conn.listAllStoragePools(libvirt.VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE)
                     for v in pool.listAllVolumes(0) if parse_volume_xml(v.XMLDesc(0))["backing"] == facts["path"]}
            users |= {"of machine '%s'" % d.name() for d, _target in self._attachments().get(facts["path"], [])}
            if users:
                raise Conflict("machine image '%s' is in use by disk(s) %s; delete those machines first"
                               % (facts["name"], ", ".join(sorted(users))))
            vol.delete(0)

    # -- volumes -----------------------------------------------------------------------
    def _attachments(self):
        """Volume path -> [(domain, target dev)] over every domain's defined and live disks."""
        found = {}
        for dom in self.conn.listAllDomains(0):
            try:
                disks = self._domain_facts(dom)["disks"]
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                continue  # undefined by someone else since the listing: it holds no volume any more
            for d in disks:
                if d["path"]:
                    found.setdefault(d["path"], []).append((dom, d["dev"]))
        return found

    def _volume(self, facts, attachments):
        return Volume(id=facts["key"], name=self._display_name(facts["name"], "volume"), state="AVAILABLE",
                      capacity=facts["capacity_kib"], bootable=False,
                      attachedTo=[{"href": dom.UUIDString()} for dom, _target in attachments.get(facts["path"], [])])

    def list_volumes(self):
        with self._op("volume.list", "volumes of pool '%s'" % self.volume_pool):
            attachments = self._attachments()
            return [self._volume(facts, attachments) for _name, facts in self._volumes_of("volume")]

    def create_volume(self, name, capacity_kb, description=None, properties=None, volume_type=None):
        if volume_type is not None:
            raise InvalidInput("libvirt storage pools have no volume types (asked for '%s')" % volume_type,
                               attribute="type")
        if description or properties:
            raise InvalidInput("libvirt storage volumes cannot keep a description or properties",
                               attribute="description" if description else "properties")
        self._check_new_name(name, "volume")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        with self._op("volume.create", "volume '%s'" % name):
            pool = self._pool(self.volume_pool, "volume_pool")
            native = (VOLUME_PREFIX + name) if self.image_pool == self.volume_pool else name
            if native in pool.listVolumes():
                raise Conflict("a volume named '%s' already exists in pool '%s'" % (name, self.volume_pool))
            fmt = "qcow2" if self._pool_type(pool) in BACKING_POOL_TYPES else "raw"
            vol = pool.createXML(build_volume_xml(native, capacity_kb * 1024, fmt), 0)
            return self._volume(parse_volume_xml(vol.XMLDesc(0)), {})

    def resize_volume(self, volume_id, capacity_kb):
        """Grow a volume to ``capacity_kb`` KiB; the same size is a no-op. Attached to a running machine,
        QEMU grows it (block_resize: the guest sees the new size, and QEMU holds the file's write lock);
        else libvirt grows the file."""
        if "volume.resize" not in self.implemented_operations():
            raise Unsupported(self.name, "volume.resize", "provider 'libvirt' (%s) does not support operation "
                              "'volume.resize': the test driver cannot resize storage volumes" % self.shown_uri)
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        with self._op("volume.resize", "volume '%s'" % volume_id) as op:
            vol, facts = self._find_volume(volume_id, "volume")
            name = self._display_name(facts["name"], "volume")
            op.subject = "volume '%s'" % name
            if capacity_kb < facts["capacity_kib"]:
                raise InvalidInput("volume '%s' has %d KB: volumes only grow (asked for %d KB)"
                                   % (name, facts["capacity_kib"], capacity_kb), attribute="capacity")
            if capacity_kb > facts["capacity_kib"]:
                running = [(dom, dev) for dom, dev in self._attachments().get(facts["path"], []) if dom.isActive()]
                if running:
                    dom, dev = running[0]
                    dom.blockResize(dev, capacity_kb * 1024, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
                else:
                    vol.resize(capacity_kb * 1024, 0)
            return self._volume(parse_volume_xml(vol.XMLDesc(0)), self._attachments())

    def _free_volume(self, ref, dom=None):
        """A Volume no machine uses: two guests writing one image file would corrupt it."""
        vol, facts = self._find_volume(ref, "volume")
        users = sorted({d.name() for d, _target in self._attachments().get(facts["path"], [])})
        if users:
            name = self._display_name(facts["name"], "volume")
            if dom is not None and dom.name() in users:
                raise Conflict("volume '%s' is already attached to machine '%s'" % (name, dom.name()))
            raise Conflict("volume '%s' is attached to machine(s) %s; detach it first" % (name, ", ".join(users)))
        return vol, facts

    def delete_volume(self, volume_id):
        with self._op("volume.delete", "volume '%s'" % volume_id):
            vol, _facts = self._free_volume(volume_id)
            vol.delete(0)

    def attach_volume(self, machine_id, volume_id, initial_location=None):
        with self._op("volume.attach", "machine '%s'" % machine_id) as op:
            dom = self._domain(machine_id)
            op.subject = "machine '%s'" % dom.name()
            vol, facts = self._free_volume(volume_id, dom)
            state = self._state(dom)
            if state not in (states.STOPPED, states.STARTED, states.PAUSED):
                raise Conflict("cannot attach a volume to machine '%s' in state %s" % (dom.name(), state))
            info = self._domain_facts(dom)
            bus, prefix = ("xen", "xvd") if self.domain_type == "xen" else ("virtio", "vd")
            used = {d["dev"] for d in info["disks"]}
            dev = initial_location or next_device(used, prefix)
            if not re.match(r"^(vd|sd|hd|xvd)[a-z]+$", dev) or dev in used:
                raise InvalidInput("initialLocation '%s' is not a free disk device name like %sb" % (dev, prefix),
                                   attribute="initialLocation")
            element = disk_element(facts["path"], facts["format"], dev, bus)
            self._change_disks(dom, element, attach=True)
            return self._machine(dom)

    def detach_volume(self, machine_id, volume_id):
        with self._op("volume.detach", "machine '%s'" % machine_id) as op:
            dom = self._domain(machine_id)
            op.subject = "machine '%s'" % dom.name()
            vol, facts = self._find_volume(volume_id, "volume")
            state = self._state(dom)
            if state not in (states.STOPPED, states.STARTED, states.PAUSED):
                raise Conflict("cannot detach a volume from machine '%s' in state %s" % (dom.name(), state))
            disk = next((d for d in self._domain_facts(dom)["disks"] if d["path"] == facts["path"]), None)
            if disk is None:
                raise Conflict("volume '%s' is not attached to machine '%s'"
                               % (self._display_name(facts["name"], "volume"), dom.name()))
            element = disk_element(facts["path"], disk["format"], disk["dev"], disk["bus"] or "virtio")
            self._change_disks(dom, element, attach=False)
            return self._machine(dom)

    def _change_disks(self, dom, element, attach):
        """Plug or unplug a disk: live + persistent when running, else by editing the definition."""
        if dom.isActive():
            xml = ET.tostring(element, encoding="unicode")
            flags = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG
            try:
                (dom.attachDeviceFlags if attach else dom.detachDeviceFlags)(xml, flags)
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_SUPPORT:
                    raise
                raise Conflict("libvirt driver of %s cannot hot-plug disks: stop machine '%s' first"
                               % (self.shown_uri, dom.name())) from None
            return
        # Redefining works with every driver, including those without device hot-plug.
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE))
        devices = root.find("devices")
        if attach:
            devices.append(element)
        else:
            path = element.find("source").get("file")
            for disk in devices.findall("disk"):
                source = disk.find("source")
                if source is not None and source.get("file") == path:
                    devices.remove(disk)
        self.conn.defineXML(ET.tostring(root, encoding="unicode"))

    # -- networks ----------------------------------------------------------------------
    def _network(self, ref):
        for net in self.conn.listAllNetworks(0):
            if ref in (net.UUIDString(), net.name()):
                return net
        raise NotFound("network '%s' not found on provider libvirt (%s)" % (ref, self.shown_uri))

    def _net(self, net):
        root = ET.fromstring(net.XMLDesc(0))
        meta = _read_meta(root, "network")
        mtu = root.find("mtu")
        cidr, dhcp = network_addresses(root)
        return Network(id=net.UUIDString(), name=net.name(), description=meta["description"],
                       created=meta["created"], properties=meta["properties"],
                       state=states.STARTED if net.isActive() else states.STOPPED,
                       networkType="PRIVATE" if root.find("forward") is None else "PUBLIC",
                       mtu=int(mtu.get("size")) if mtu is not None else None, cidr=cidr, dhcp=dhcp)

    def list_networks(self):
        with self._op("network.list", "networks of %s" % self.shown_uri):
            return [self._net(n) for n in sorted(self.conn.listAllNetworks(0), key=lambda n: n.name())]

    def create_network(self, name, description=None, properties=None, cidr=None, dhcp=None):
        """An isolated network (see build_network_xml); ``cidr`` a private IPv4 range no other network of
        this host uses, ``dhcp`` only with a cidr."""
        if not name or not isinstance(name, str):
            raise InvalidInput("network name must be a non-empty string", attribute="name")
        subnet = parse_cidr(cidr) if cidr is not None else None
        if dhcp is not None and not isinstance(dhcp, bool):
            raise InvalidInput("dhcp must be true or false", attribute="dhcp")
        if dhcp and subnet is None:
            raise InvalidInput("dhcp needs a cidr: the addresses it leases", attribute="dhcp")
        with self._op("network.create", "network '%s'" % name):
            existing = self.conn.listAllNetworks(0)
            if any(n.name() == name for n in existing):
                raise Conflict("a network named '%s' already exists on %s" % (name, self.shown_uri))
            roots = {n.name(): ET.fromstring(n.XMLDesc(0)) for n in existing}
            if subnet is not None:
                self._check_subnet_free(subnet, roots)
            xml = build_network_xml(name, description, properties, _now(), subnet, bool(dhcp),
                                    self._free_bridge(name, roots))
            net = self.conn.networkDefineXML(xml)
            try:
                self._start_network(net, subnet)
                net.setAutostart(1)
            except BaseException:
                try:
                    if net.isActive():
                        net.destroy()
                    net.undefine()
                except libvirt.libvirtError:
                    pass  # keep the original error
                raise
            return self._net(net)

    @staticmethod
    def _check_subnet_free(subnet, roots):
        """Conflict when another network of this host has addresses in ``subnet``: the host would route
        one range to two bridges."""
        for other, root in sorted(roots.items()):
            used, _dhcp = network_addresses(root)
            if used and ipaddress.ip_network(used).overlaps(subnet):
                raise Conflict("cidr %s overlaps %s of network '%s': give another range" % (subnet, used, other))

    def _free_bridge(self, name, roots):
        """The network's bridge name, one no other network and (on a local host) no interface uses:
        libvirt would otherwise refuse the definition or, for an existing device, the start."""
        taken = {root.find("bridge").get("name") for root in roots.values() if root.find("bridge") is not None}
        if self._is_local() and os.path.isdir("/sys/class/net"):
            taken |= set(os.listdir("/sys/class/net"))
        for salt in range(16):
            bridge = bridge_name(name, salt)
            if bridge not in taken:
                return bridge
        raise Conflict("no free bridge name for network '%s'" % name)

    def _start_network(self, net, subnet):
        """Start a defined network; libvirt's refusal of a range the host already routes (one of its own
        interfaces) is a Conflict, not a provider failure."""
        try:
            net.create()
        except libvirt.libvirtError as exc:
            message = exc.get_error_message() or ""
            if subnet is not None and "already in use" in message:
                raise Conflict("cidr %s: %s" % (subnet, message)) from None
            raise

    def delete_network(self, network_id):
        with self._op("network.delete", "network '%s'" % network_id):
            net = self._network(network_id)
            users = sorted(dom.name() for dom in self.conn.listAllDomains(0)
                           if any(i["network"] == net.name() for i in self._domain_facts(dom)["interfaces"]))
            if users:
                raise Conflict("network '%s' is used by machine(s) %s" % (net.name(), ", ".join(users)))
            if net.isActive():
                net.destroy()
            net.undefine()

    # -- meters --------------------------------------------------------------------------
    def list_meters(self, machine_id, start=None, end=None):
        """Each meter with its current sample; libvirt keeps no history, so with a window (``start``,
        ``end``) the current sample only when now is inside it, else no sample."""
        sampled = now_in_window(start, end)
        with self._op("meter.list", "machine '%s'" % machine_id):
            dom = self._domain(machine_id)
            values = self._meter_values(dom) if sampled else {}
            now = _now()
            return [Meter(id="%s:%s" % (dom.UUIDString(), aspect), name=aspect,
                          targetResource={"href": dom.UUIDString()}, aspect=ASPECT + aspect, units=units,
                          timeScope="Point", isContinuous=aspect in ("cpu", "memory"),
                          samples=[Sample(timestamp=now, value=str(round(values[aspect], 2)))] if sampled else [])
                    for aspect, units in METER_UNITS.items()]

    def _meter_values(self, dom):
        """{aspect: value} of a domain now (see METER_UNITS)."""
        facts = self._domain_facts(dom)
        active = bool(dom.isActive())
        rx = tx = 0
        if active:
            for nic in facts["interfaces"]:
                if nic["target"]:
                    stats = dom.interfaceStats(nic["target"])
                    rx, tx = rx + stats[0], tx + stats[4]
        used_disk = 0
        for d in facts["disks"]:
            vol = self._volume_by_path(d["path"]) if d["path"] and d["device"] == "disk" else None
            used_disk += vol.info()[2] // 1024 if vol is not None else 0
        return {"cpu": self._cpu_percent(dom, facts["vcpus"] or 1) if active else 0.0,
                "memory": self._memory_used(dom) if active else 0, "disk": used_disk,
                "inputBandwidth": rx, "outputBandwidth": tx}

    @staticmethod
    def _cpu_percent(dom, vcpus, window=0.1):
        """CPU use over a short window: libvirt only gives cumulative CPU time."""
        first, t0 = dom.getCPUStats(True)[0]["cpu_time"], time.monotonic()
        time.sleep(window)
        second, t1 = dom.getCPUStats(True)[0]["cpu_time"], time.monotonic()
        percent = (second - first) / ((t1 - t0) * 1e9 * vcpus) * 100
        return min(max(percent, 0.0), 100.0)

    @staticmethod
    def _memory_used(dom):
        stats = dom.memoryStats()
        if "available" in stats and "unused" in stats:  # the guest's own view, via the balloon driver
            return stats["available"] - stats["unused"]
        return stats.get("rss") or dom.info()[2]

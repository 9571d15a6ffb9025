# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""vSphere connector: one ESX host, or a vCenter, through pyvmomi.

One connector serves both; ``capabilities().extras["apiType"]`` says which
(``HostAgent`` for ESX, ``VirtualCenter`` for vCenter). Native ids in brackets.

* Machine = VirtualMachine that is not a template [``config.instanceUuid``, else
  ``config.uuid``]. Power states map to CIMI in ``STATES``. ``description`` is the VM
  annotation; ``properties`` live in ``config.extraConfig`` under the ``sirocco.`` prefix;
  ``userData`` goes to ``guestinfo.userdata`` (base64), where cloud-init's VMware
  datasource (DataSourceVMware) reads it, and a ``credential``'s SSH key to
  ``guestinfo.metadata`` (base64 JSON: ``instance-id``, ``local-hostname``,
  ``public-keys-data``: the image's default user's key). A credential naming another user
  makes the user-data a MIME multipart (``cloudinit.guest_user_data``): a ``#cloud-config``
  part creating that user with the key, then the caller's userData. The user a guest is
  reached as is the property ``sirocco.user`` (base.USER_PROPERTY). userData is refused
  before anything is made when its base64 form passes ``GUESTINFO_LIMIT``; a template made
  by capture keeps none of these keys. The image a machine was made from is kept in extraConfig too
  (``ORIGIN_KEY``): an image stays "in use" (delete refused) while machines made from it
  exist.
* MachineConfiguration = named size (option ``sizes``, else base.DEFAULT_SIZES).
* MachineImage: on vCenter a template (a VM with ``config.template``) [its uuid]; a
  machine is a clone of it with the size's CPUs and memory, and capture clones the
  machine into a new template. An ESX host can neither clone nor keep templates: there
  an image is a virtual disk file ``[datastore] sirocco-images/NAME.vmdk`` (option
  ``image_folder``) [that datastore path]; a machine is created blank (CreateVM_Task) and
  gets a copy of the image as its first disk, and capture copies the machine's first disk
  into the folder (through a snapshot when the machine runs). Capturing a machine that
  has no disk is refused (Conflict): there would be nothing to boot from.
  ``import`` (vCenter only: an ESX host keeps no templates, so there the operation is absent
  from the capabilities and refused, Unsupported) takes a streamOptimized vmdk
  (``image_formats``) the way ovftool and govc import an OVA: an OVF descriptor of one machine
  with that disk on a paravirtual SCSI controller (``ovf_descriptor``: guest type by
  architecture, ``IMPORT_GUESTS``; firmware bios or efi; no network, a machine made from it gets
  its own) goes to ``OvfManager.CreateImportSpec``; the import spec gets the description as
  annotation, the firmware, the guest type and the image's properties (the ``sirocco.*`` facts
  among them) in ``config.extraConfig`` (under the prefix, as a machine's:
  ``sirocco.sirocco.image``); ``ResourcePool.ImportVApp`` makes the machine and an HttpNfcLease;
  once the lease is ready the vmdk is POSTed to its device URL (host ``*``: the connector's
  endpoint) with the session cookie, the lease told of the progress, then completed; the machine
  is marked as a template. Everything (file format and header, virtual size, checksum, name,
  architecture, property keys) is checked, and the name checked free, before anything is made; a
  failed or interrupted import aborts the lease and destroys the machine. A template's
  ``properties`` are read back from its extraConfig like a machine's, and a machine made from it
  does not inherit them. vcsim (govmomi 0.24) runs the whole protocol but discards the uploaded
  bytes: tests there check the flow and the resulting template, not the disk's content.
* stop: ``force`` -> PowerOffVM_Task; otherwise ShutdownGuest, which asks VMware Tools in
  the guest and returns at once (the machine reads STOPPED once the guest is down).
  Without Tools running vSphere refuses (ToolsUnavailable) and so do we: Conflict, stop
  with force. A suspended machine is always powered off. vcsim simulates no Tools: its
  ShutdownGuest powers the VM off at once.
* restart: ``force`` -> ResetVM_Task; otherwise RebootGuest (needs Tools, as above); an
  endpoint that does not implement RebootGuest at all (vcsim) gets a guest shutdown then a
  power-on. A stopped machine is powered on.
* pause: vSphere has none; left unimplemented (Unsupported, absent from capabilities).
* Volume = virtual disk file ``[datastore] sirocco-volumes/NAME.vmdk`` (option
  ``volume_folder``) [that datastore path], made by VirtualDiskManager, attached as a disk
  device by ReconfigVM_Task and detached without deleting its file. A plain disk file has
  no room for a description or properties: they are not kept. Deleting a machine detaches
  its volumes first, so they outlive it.
* Network = network or (distributed) port group [managed object id]. ``create`` makes, on a
  vCenter, a distributed port group (AddDVPortgroup_Task) on the datacenter's first
  distributed switch, its ``description`` kept in the port group's config; on an ESX host a
  standard port group (HostNetworkSystem.AddPortGroup) on the host's first vSwitch, which has
  no room for a description. Neither keeps ``properties`` (a network's properties say its
  ``type``). ``delete`` is refused (Conflict) while machines or templates use the network.
* Meter = PerformanceManager counter (``METERS``): its latest real-time sample; over a window
  (``start``/``end``), QueryPerf's samples in it, at the real-time interval (20 s) for the last
  hour and at the finest of vCenter's historical intervals keeping older ones (an ESX host keeps
  none); never samples from the future. vcsim simulates the counters (values cycle through its
  recorded data), so tests there check the read path, not the figures.
* resize: ReconfigVM_Task with ``numCPUs``/``memoryMB`` (only what changes), checked against the
  capabilities and the CPU topology (a count that does not fill sockets of ``numCoresPerSocket``
  is InvalidInput) first. A stopped machine takes any size; a running one only grows, and only what
  ``cpuHotAddEnabled``/``memoryHotAddEnabled`` allow (memory within ``hotPlugMemoryLimit``), else
  Conflict "stop it first" (``resize_needs_stop`` says the same beforehand). Nothing is removed live
  (CPU hot remove is left aside). vcsim applies any reconfiguration whatever the power state: the
  connector refuses first.
* Volume resize: grow only (InvalidInput ``capacity``). A free volume's file grows through
  VirtualDiskManager.ExtendVirtualDisk_Task; an attached one through its machine's disk device
  (ReconfigVM_Task editing ``capacityInKB``: vSphere extends a disk in use, live too), refused
  (Conflict) while that machine is suspended. No volume types (InvalidInput ``type``); networks
  carry no address range nor DHCP (``cidr``/``dhcp``: InvalidInput before anything is made).

Placement: options ``datacenter``, ``cluster`` or ``host``, ``resource_pool``, ``folder``
(a path under the datacenter's VM folder), ``datastore``; a MachineSpec's ``location``
names a cluster or host (see ``capabilities().locations``). Otherwise the first of each.
With option ``host`` the connector serves that one host of a vCenter: its listing holds
the machines that host runs (so several connectors, one per host, share a vCenter), and
``migrate_machine`` relocates a machine between such hosts (RelocateVM_Task).

Listings go through the PropertyCollector over container views and retrieve only the
properties they need. Every vSphere fault becomes an error of ``cimi.errors`` in one place,
``_translate`` (table ``FAULTS``, rows ``_fault_table``). The password is never logged nor part of a message.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import ssl
import struct
import time
import uuid as uuidlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse
from xml.sax.saxutils import escape, quoteattr

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    SiroccoError,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
    Disk,
    Machine,
    MachineImage,
    MachineVolume,
    Meter,
    Network,
    NetworkInterface,
    Sample,
    Volume,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import cloudinit
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    KIB_PER_MIB,
    USER_PROPERTY,
    Capabilities,
    Connector,
    ErrorRule,
    ErrorTable,
    Page,
    Range,
    check_guest_inputs,
    meter_window,
    missing_sdk,
    resize_figures,
    sizes_from_options,
)

try:
    from pyVim.connect import Disconnect, SmartConnect
    from pyVmomi import vim, vmodl
except ImportError as exc:  # the connector reports it when used, not when imported
    vim = vmodl = SmartConnect = Disconnect = None
    PYVMOMI_IMPORT_ERROR = exc
else:
    PYVMOMI_IMPORT_ERROR = None

# The one table of native states. A connection state saying the VM cannot be managed
# (runtime.connectionState) wins over its power state (runtime.powerState).
STATES = {
    "poweredOn": states.STARTED,
    "poweredOff": states.STOPPED,
    "suspended": states.SUSPENDED,
    "disconnected": states.ERROR,
    "inaccessible": states.ERROR,
    "invalid": states.ERROR,
    "orphaned": states.ERROR,
}

# Metered aspects: (CIMI aspect, vSphere counter "group.name.rollup", units, scale of the raw value).
ASPECT = "http://schemas.dmtf.org/cimi/2/aspect/"
METERS = (
    (ASPECT + "cpu", "cpu.usage.average", "%", 0.01),
    (ASPECT + "memory", "mem.usage.average", "%", 0.01),
    (ASPECT + "disk", "disk.usage.average", "KBps", 1),
    (ASPECT + "inputBandwidth", "net.received.average", "KBps", 1),
    (ASPECT + "outputBandwidth", "net.transmitted.average", "KBps", 1),
)
REALTIME_INTERVAL = 20  # seconds: the real-time statistics interval of ESX
REALTIME_KEPT = 3600  # seconds of real-time samples a host keeps; older ones live in vCenter's historical intervals
MAX_SAMPLES = 1000  # per counter and query: a window this wide at its interval is cut to its newest samples
# What a resize reads besides VM_PROPS: whether the VM takes CPUs and memory while it runs (hot add), and its
# CPU topology (a CPU count must be a multiple of the cores per socket).
RESIZE_PROPS = ("config.cpuHotAddEnabled", "config.memoryHotAddEnabled", "config.hotPlugMemoryLimit",
                "config.hardware.numCoresPerSocket")
SESSION_CHECK_AFTER = 300  # seconds idle after which a session is checked (vCenter expires idle ones)

# Properties retrieved for a machine, an image, a host.
VM_PROPS = (
    "name", "config.template", "config.instanceUuid", "config.uuid", "config.annotation", "config.extraConfig",
    "config.hardware.numCPU", "config.hardware.memoryMB", "config.hardware.device", "config.createDate",
    "config.files.vmPathName", "runtime.powerState", "runtime.connectionState", "runtime.host",
    "guest.net",  # the guest's addresses per NIC, as VMware Tools in the guest report them
)
HOST_PROPS = ("name", "summary.hardware.numCpuThreads", "summary.hardware.memorySize", "summary.hardware.cpuMhz",
              "capability.maxSupportedVcpus", "runtime.connectionState")

DEFAULT_VOLUME_FOLDER = "sirocco-volumes"
DEFAULT_IMAGE_FOLDER = "sirocco-images"
ORIGIN_KEY = "sirocco-origin.image"  # extraConfig: the image a machine was made from (not a property)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.:-]+$")
_DS_PATH = re.compile(r"^\[(?P<datastore>[^\]]+)\] ?(?P<path>.*)$")
PROPERTY_PREFIX = "sirocco."
# cloud-init's VMware datasource reads these extraConfig keys through VMware Tools (``guestinfo.*``);
# a template made by capture keeps none of them, a clone gets its own.
GUESTINFO_KEYS = ("guestinfo.userdata", "guestinfo.userdata.encoding", "guestinfo.metadata",
                  "guestinfo.metadata.encoding")
# The largest base64 value of guestinfo.userdata taken: a conservative choice, as no limit of guestinfo keys
# set through extraConfig is documented that we found. The guest reads them over VMware Tools' RPC channel,
# whose messages the VMX caps at 64 KiB in the guest-to-host direction (open-vm-tools' GUESTMSG_MAX_IN_SIZE);
# vSphere's own cloud-init customization (7.0U3 and later) takes 512 KiB of user-data; OpenStack Nova takes
# 64 KiB of base64 too. Refusing early beats a guest that reads a truncated user-data, or none.
GUESTINFO_LIMIT = 64 * 1024
GUEST_ID = "otherGuest64"
MAX_DISK_UNIT = 16  # units per SCSI controller; unit 7 is the controller's own
# machine_image.import: an OVF of one streamOptimized disk, imported through an HttpNfcLease.
# CIMI cpuArch -> (vSphere guestId, CIM operating system id of the OVF's OperatingSystemSection)
IMPORT_GUESTS = {"x86_64": ("otherLinux64Guest", 101), "x86": ("otherLinuxGuest", 36)}
FIRMWARES = {"bios": "bios", "uefi": "efi"}  # DiskImage.boot -> config.firmware
OVF_HARDWARE = "vmx-13"  # ESXi 6.5 and later
OVF_CPUS, OVF_MEMORY_MB = 1, 512  # the template's own; a machine made from it gets its size's
STREAM_VMDK = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
STREAM_VMDK_TYPE = "application/x-vnd.vmware-streamVmdk"
UPLOAD_CHUNK = 1024 * 1024
PROGRESS_EVERY = 10  # seconds between two HttpNfcLeaseProgress (a lease without news expires after minutes)
SECTOR = 512
_VMDK_HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")  # SparseExtentHeader, up to compressAlgorithm
_VMDK_COMPRESSED, _VMDK_MARKERS = 1 << 16, 1 << 17


def parse_uri(uri):
    """(protocol, host, port, path) of ``https://host[:port][/sdk]`` or a bare host name."""
    if not uri or not isinstance(uri, str):
        raise InvalidInput("provider 'vsphere' needs a uri such as https://vcenter.example.com/sdk", attribute="uri")
    parsed = urlparse(uri if "://" in uri else "https://" + uri)
    if parsed.scheme not in ("https", "http") or not parsed.hostname:
        raise InvalidInput("uri: expected https://HOST[:PORT]/sdk, got '%s'" % uri, attribute="uri")
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError:
        raise InvalidInput("uri: bad port in '%s'" % uri, attribute="uri") from None
    return parsed.scheme, parsed.hostname, port, parsed.path.rstrip("/") or "/sdk"


def machine_state(power_state, connection_state=None):
    """CIMI state of a VM from its native power and connection states."""
    if connection_state in STATES and STATES[connection_state] == states.ERROR:
        return states.ERROR
    return STATES.get(power_state, states.ERROR)


def memory_mb(memory_kib):
    """vSphere memory size in MB (a multiple of 4) holding ``memory_kib`` KiB."""
    mib = -(-int(memory_kib) // KIB_PER_MIB)
    return max(4, -(-mib // 4) * 4)


def refuse_addressing(cidr, dhcp):
    """A port group is a layer-2 segment: vSphere neither hands out nor records addresses on it."""
    for value, name in ((cidr, "cidr"), (dhcp, "dhcp")):
        if value is not None:
            raise InvalidInput("provider 'vsphere' does not manage IP addressing: a port group carries no address "
                               "range nor DHCP service (%s refused; run a DHCP server on the network instead)"
                               % name, attribute=name)


def live_refusal(state, props, hot, change):
    """Why a machine in ``state`` cannot take ``change`` (ConfigSpec fields numCPUs, memoryMB) now, None when it
    can: a stopped machine takes any size, a running one only grows, and only what hot add is enabled for."""
    if not change or state == states.STOPPED:
        return None
    if state != states.STARTED:
        return "it is %s" % state
    reasons = []
    cpus, mb = props.get("config.hardware.numCPU") or 0, props.get("config.hardware.memoryMB") or 0
    if change.get("numCPUs", cpus) < cpus:
        reasons.append("vSphere takes no CPU away from a running machine")
    elif "numCPUs" in change and not hot.get("config.cpuHotAddEnabled"):
        reasons.append("CPU hot add is not enabled on it")
    limit = hot.get("config.hotPlugMemoryLimit")
    if change.get("memoryMB", mb) < mb:
        reasons.append("vSphere takes no memory away from a running machine")
    elif "memoryMB" in change and not hot.get("config.memoryHotAddEnabled"):
        reasons.append("memory hot add is not enabled on it")
    elif "memoryMB" in change and limit and change["memoryMB"] > limit:
        reasons.append("its memory hot-plug limit is %d MB" % limit)
    return "; ".join(reasons) or None


def split_ds_path(path):
    """(datastore, path inside it) of ``[datastore] path``, or None."""
    match = _DS_PATH.match(path or "")
    return (match.group("datastore"), match.group("path")) if match else None


def properties_from_extra_config(options):
    """CIMI properties from extraConfig OptionValues: ``sirocco.KEY`` entries, last one wins, empty is unset."""
    props = {}
    for opt in options or ():
        key = getattr(opt, "key", "") or ""
        if key.startswith(PROPERTY_PREFIX):
            value = "" if opt.value is None else str(opt.value)
            if value:
                props[key[len(PROPERTY_PREFIX):]] = value
            else:
                props.pop(key[len(PROPERTY_PREFIX):], None)
    return props


def extra_config_items(properties=None, user_data=None, metadata=None):
    """(key, value) pairs of extraConfig for CIMI properties, user data and cloud-init metadata (both
    base64, for cloud-init's VMware datasource); bad keys are refused."""
    items = []
    for key, value in sorted((properties or {}).items()):
        if not isinstance(key, str) or not _SAFE_KEY.match(key):
            raise InvalidInput("properties: key '%s' must use only letters, digits and . _ : -" % key,
                               attribute="properties")
        items.append((PROPERTY_PREFIX + key, "" if value is None else str(value)))
    if user_data:
        encoded = base64.b64encode(user_data.encode("utf-8")).decode("ascii")
        items += [("guestinfo.userdata", encoded), ("guestinfo.userdata.encoding", "base64")]
    if metadata:
        encoded = base64.b64encode(metadata.encode("utf-8")).decode("ascii")
        items += [("guestinfo.metadata", encoded), ("guestinfo.metadata.encoding", "base64")]
    return items


def guest_metadata(instance_id, name, key=None):
    """cloud-init's VMware datasource metadata (JSON): the instance id, the host name and the default user's
    SSH key (``public-keys-data``)."""
    metadata = {"instance-id": instance_id, "local-hostname": cloudinit.host_name(name)}
    if key:
        metadata["public-keys-data"] = key
    return json.dumps(metadata, sort_keys=True)


def guest_items(spec, instance_id):
    """(properties, user data, metadata) a new machine's extraConfig carries for its guest: the spec's
    properties with the credential's user (USER_PROPERTY), the user-data (the caller's, or a multipart with
    the credential's user), the metadata with its key; InvalidInput (userData) when the user-data's base64
    form passes GUESTINFO_LIMIT. Call after check_guest_inputs."""
    properties = dict(spec.properties or {})
    credential = spec.credential or None
    user = cloudinit.credential_user(credential)
    if user:
        properties[USER_PROPERTY] = user
    user_data = cloudinit.guest_user_data(spec.user_data, credential)
    if user_data and 4 * -(-len(user_data.encode("utf-8")) // 3) > GUESTINFO_LIMIT:
        raise InvalidInput("userData with the credential's cloud-config part is %d bytes once base64-encoded; "
                           "provider 'vsphere' takes at most %d in guestinfo.userdata"
                           % (4 * -(-len(user_data.encode("utf-8")) // 3), GUESTINFO_LIMIT), attribute="userData")
    metadata = guest_metadata(instance_id, spec.name, (credential or {}).get("key")) if credential else None
    return properties, user_data, metadata


def free_unit(used):
    """The first free unit number on a SCSI controller (unit 7 is the controller's), or None."""
    for unit in range(MAX_DISK_UNIT):
        if unit != 7 and unit not in used:
            return unit
    return None


def vmdk_facts(path):
    """(virtual size in bytes, file size, sha256 hex) of a streamOptimized vmdk (what an OVA carries and an
    HttpNfcLease takes), read once; InvalidInput when the file is anything else (another vmdk subformat
    included: ESX would refuse it after the lease was taken)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            head = handle.read(SECTOR)
            if len(head) < _VMDK_HEADER.size or head[:4] != b"KDMV":
                raise InvalidInput("image file %s is not a vmdk (sparse extent) image" % path, attribute="files")
            (_magic, version, flags, capacity, _grain, desc_offset, desc_size, _gtes, _rgd, _gd, _overhead,
             _unclean, _eol, compress) = _VMDK_HEADER.unpack(head[:_VMDK_HEADER.size])
            handle.seek(desc_offset * SECTOR)
            descriptor = handle.read(min(desc_size, 2048) * SECTOR).split(b"\0", 1)[0].decode("latin-1")
            handle.seek(0)
            for data in iter(lambda: handle.read(UPLOAD_CHUNK), b""):
                digest.update(data)
            size = handle.tell()
    except OSError as exc:
        raise InvalidInput("image file %s cannot be read: %s" % (path, exc.strerror or exc),
                           attribute="files") from None
    create_type = re.search(r'^\s*createType\s*=\s*"([^"]*)"', descriptor, re.MULTILINE)
    stream = (version == 3 and flags & (_VMDK_COMPRESSED | _VMDK_MARKERS) == _VMDK_COMPRESSED | _VMDK_MARKERS
              and compress == 1 and create_type and create_type.group(1) == "streamOptimized")
    if not stream:
        raise InvalidInput("vmdk image %s is not streamOptimized (createType %s): convert it with qemu-img "
                           "convert -O vmdk -o subformat=streamOptimized"
                           % (path, create_type.group(1) if create_type else "unknown"), attribute="files")
    return capacity * SECTOR, size, digest.hexdigest()


def ovf_descriptor(name, disk_file, file_size, capacity, guest_id, os_id, firmware, cpus=OVF_CPUS,
                   memory_mb=OVF_MEMORY_MB):
    """The OVF 1.0 descriptor of a virtual machine with one disk, ``disk_file`` (a streamOptimized vmdk of
    ``file_size`` bytes holding a disk of ``capacity`` bytes) on a paravirtual SCSI controller, no network
    (a machine made from it gets its own), the guest type and the firmware (``bios`` or ``efi``).
    RASD elements come in the schema's (alphabetical) order: vCenter's parser insists."""
    def item(instance, resource_type, name, *extra):
        fields = sorted(extra + (("ElementName", escape(name)), ("InstanceID", str(instance)),
                                 ("ResourceType", str(resource_type))))
        lines = "".join("        <rasd:%s>%s</rasd:%s>\n" % (k, v, k) for k, v in fields)
        return "      <Item>\n%s      </Item>\n" % lines
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"'
        ' xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"'
        ' xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"'
        ' xmlns:vmw="http://www.vmware.com/schema/ovf">\n'
        '  <References>\n'
        '    <File ovf:href=%s ovf:id="file1" ovf:size="%d"/>\n'
        '  </References>\n'
        '  <DiskSection>\n'
        '    <Info>Virtual disk information</Info>\n'
        '    <Disk ovf:capacity="%d" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1"'
        ' ovf:format="%s"/>\n'
        '  </DiskSection>\n'
        '  <VirtualSystem ovf:id=%s>\n'
        '    <Info>A virtual machine</Info>\n'
        '    <Name>%s</Name>\n'
        '    <OperatingSystemSection ovf:id="%d" vmw:osType=%s>\n'
        '      <Info>The guest operating system</Info>\n'
        '    </OperatingSystemSection>\n'
        '    <VirtualHardwareSection>\n'
        '      <Info>Virtual hardware requirements</Info>\n'
        '      <System>\n'
        '        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n'
        '        <vssd:InstanceID>0</vssd:InstanceID>\n'
        '        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>\n'
        '        <vssd:VirtualSystemType>%s</vssd:VirtualSystemType>\n'
        '      </System>\n'
        '%s%s%s%s'
        '      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value=%s/>\n'
        '    </VirtualHardwareSection>\n'
        '  </VirtualSystem>\n'
        '</Envelope>\n'
    ) % (quoteattr(disk_file), file_size, capacity, STREAM_VMDK, quoteattr(name), escape(name), os_id,
         quoteattr(guest_id), escape(name), OVF_HARDWARE,
         item(1, 3, "%d virtual CPU(s)" % cpus, ("AllocationUnits", "hertz * 10^6"),
              ("VirtualQuantity", str(cpus))),
         item(2, 4, "%dMB of memory" % memory_mb, ("AllocationUnits", "byte * 2^20"),
              ("VirtualQuantity", str(memory_mb))),
         item(3, 6, "SCSI controller 0", ("Address", "0"), ("ResourceSubType", "VirtualSCSI")),
         item(4, 17, "Hard disk 1", ("AddressOnParent", "0"), ("HostResource", "ovf:/disk/vmdisk1"),
              ("Parent", "3")),
         quoteattr(firmware))


def nfc_url(device_url, host, port):
    """(scheme, host, port, path) to upload to: an HttpNfcLease's device URL, whose host ``*`` means the
    endpoint the connector talks to (``host``:``port``)."""
    parsed = urlparse(device_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ProviderUnavailable("provider 'vsphere': the import lease gave no usable device URL (%s)" % device_url)
    path = parsed.path + ("?" + parsed.query if parsed.query else "")
    if parsed.hostname == "*":
        return parsed.scheme, host, port, path
    return parsed.scheme, parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80), path


class VSphereConnector(Connector):
    """Machines on an ESX host or a vCenter."""

    name = "vsphere"
    option_names = ("datacenter", "cluster", "host", "resource_pool", "folder", "datastore", "network",
                    "volume_folder", "image_folder", "sizes")
    guest_inputs = frozenset({"userData", "credential"})
    user_data_limit, user_data_encoded = GUESTINFO_LIMIT, True
    image_formats = ("vmdk",)  # streamOptimized, as an OVA carries it

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if PYVMOMI_IMPORT_ERROR is not None:  # before anything reaches for vim or vmodl
            raise missing_sdk("vsphere", "pyvmomi", PYVMOMI_IMPORT_ERROR)
        self._scheme, self._host, self._port, self._path = parse_uri(self.uri)
        self._si = None
        self._content = None
        self._cache = {}
        self._used = 0.0
        self.volume_folder = str(self.options.get("volume_folder") or DEFAULT_VOLUME_FOLDER).strip("/")
        self.image_folder = str(self.options.get("image_folder") or DEFAULT_IMAGE_FOLDER).strip("/")

    def __repr__(self):
        return "<vsphere connector uri=%r user=%r>" % (self.uri, self.username)

    # -- session ---------------------------------------------------------------
    @property
    def content(self):
        """The ServiceContent of a live session: (re)connects when there is none or it expired while idle."""
        now, idle = time.monotonic(), time.monotonic() - self._used
        self._used = now
        if self._content is not None and idle > SESSION_CHECK_AFTER and not self._session_alive():
            self.close()
        if self._content is None:
            self._connect()
        return self._content

    def _session_alive(self):
        try:
            manager = self._content.sessionManager
            return self._props(manager, ["currentSession"]).get("currentSession") is not None
        except Exception:  # noqa: BLE001 - any failure here means: log in again
            return False

    def _connect(self):
        try:
            self._si = SmartConnect(protocol=self._scheme, host=self._host, port=self._port, path=self._path,
                                    user=self.username or "", pwd=self._password or "",
                                    disableSslCertValidation=not self.validate_certs,
                                    httpConnectionTimeout=self.timeout)
            self._content = self._si.RetrieveContent()
        except vim.fault.InvalidLogin:
            raise AuthError("provider 'vsphere': login refused for user '%s' at %s"
                            % (self.username, self.uri)) from None
        except (OSError, http.client.HTTPException, vmodl.MethodFault) as exc:
            raise ProviderUnavailable("provider 'vsphere': cannot connect to %s: %s"
                                      % (self.uri, _fault_text(exc))) from None
        except Exception as exc:  # pyvmomi raises bare Exceptions for non-vSphere endpoints
            raise ProviderUnavailable("provider 'vsphere': %s does not answer as a vSphere endpoint: %s"
                                      % (self.uri, exc)) from None

    def close(self):
        if self._si is not None:
            try:
                Disconnect(self._si)
            except Exception:  # noqa: BLE001 - closing a dead session must not fail the caller
                pass
        self._si = self._content = None
        self._cache.clear()

    @property
    def is_esx(self):
        return self.content.about.apiType == "HostAgent"

    def implemented_operations(self):
        """The contract's operations; machine_image.import only on a vCenter (an ESX host keeps no templates).
        Known once connected: capabilities() connects first."""
        ops = super().implemented_operations()
        if self._content is not None and self.is_esx:
            ops = ops - {"machine_image.import"}
        return ops

    # -- errors: the one place where vSphere faults become Sirocco errors -------
    def _faults(self, operation, subject=""):
        """Context manager: any exception raised inside becomes its Sirocco error (chained, never swallowed)."""
        return FAULTS.translating(operation, subject, self.name, where=_where(operation, subject))

    def _translate(self, exc, operation, subject=""):
        return FAULTS.error(exc, operation, subject, self.name, where=_where(operation, subject))

    # -- property collector --------------------------------------------------------
    def _retrieve(self, vimtype, props, objs=None, root=None):
        """[(object, {property: value})] of every ``vimtype`` under ``root`` (or of ``objs``)."""
        pc = vmodl.query.PropertyCollector
        content = self.content
        view = None
        if objs is None:
            view = content.viewManager.CreateContainerView(root or content.rootFolder, [vimtype], True)
            traversal = pc.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
            object_set = [pc.ObjectSpec(obj=view, skip=True, selectSet=[traversal])]
        else:
            object_set = [pc.ObjectSpec(obj=obj, skip=False) for obj in objs]
        out = []
        try:
            if not object_set:
                return out
            spec = pc.FilterSpec(objectSet=object_set, propSet=[pc.PropertySpec(type=vimtype, pathSet=list(props))])
            result = content.propertyCollector.RetrievePropertiesEx([spec], pc.RetrieveOptions(maxObjects=500))
            while result is not None:
                out += [(o.obj, {p.name: p.val for p in o.propSet}) for o in result.objects]
                if not result.token:
                    break
                result = content.propertyCollector.ContinueRetrievePropertiesEx(result.token)
        finally:
            if view is not None:
                view.Destroy()
        return out

    def _props(self, obj, props):
        found = self._retrieve(type(obj), props, objs=[obj])
        if not found:
            raise NotFound("provider 'vsphere': %s is gone" % obj._moId)
        return found[0][1]

    def _wait(self, task, operation, subject="", timeout=None):
        """Wait for a vSphere task; its result, or its fault raised (and translated by the caller)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        delay = 0.01
        while True:
            # info.state/.result/.error, not all of info (vcsim's info.entity of a disk task is ill-typed)
            info = self._props(task, ["info.state", "info.result", "info.error"])
            if info.get("info.state") == "success":
                return info.get("info.result")
            if info.get("info.state") == "error":
                raise info["info.error"]
            if time.monotonic() >= deadline:
                raise OperationTimeout("provider 'vsphere': %s of %s still running after %ss"
                                       % (operation, subject or "the request", self.timeout))
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    # -- inventory: datacenter, placement --------------------------------------------
    def _datacenter(self):
        """(ref, properties) of the datacenter in scope (option ``datacenter``, else the first)."""
        if "dc" not in self._cache:
            wanted = self.options.get("datacenter")
            dcs = sorted(self._retrieve(vim.Datacenter, ["name", "vmFolder", "hostFolder", "datastoreFolder"]),
                         key=lambda item: item[1]["name"])
            if wanted:
                dcs = [item for item in dcs if item[1]["name"] == wanted]
            if not dcs:
                raise NotFound("provider 'vsphere': datacenter '%s' not found" % (wanted or "(any)"))
            self._cache["dc"] = dcs[0]
        return self._cache["dc"]

    def _compute_resources(self):
        dc = self._datacenter()[1]
        return sorted(self._retrieve(vim.ComputeResource, ["name", "resourcePool", "host", "datastore"],
                                     root=dc["hostFolder"]), key=lambda item: item[1]["name"])

    def _placement(self, location=None):
        """Where a new machine goes: dict(datacenter, folder, pool, host, datastore name)."""
        dc_ref, dc = self._datacenter()
        host = None
        wanted = location or self.options.get("cluster")
        computes = self._compute_resources()
        if not location and self.options.get("host"):
            hosts = [ref for ref, p in self._retrieve(vim.HostSystem, ["name"], root=dc["hostFolder"])
                     if p["name"] == self.options["host"]]
            if not hosts:
                raise NotFound("provider 'vsphere': host '%s' not found" % self.options["host"])
            host = hosts[0]
            computes = [item for item in computes if host in item[1].get("host", [])]
        elif wanted:
            by_name = [item for item in computes if item[1]["name"] == wanted]
            if not by_name:  # a host of a cluster, by its name
                hosts = [ref for ref, p in self._retrieve(vim.HostSystem, ["name"], root=dc["hostFolder"])
                         if p["name"] == wanted]
                if hosts:
                    host = hosts[0]
                    by_name = [item for item in computes if host in item[1].get("host", [])]
            if not by_name:
                raise NotFound("provider 'vsphere': no cluster or host named '%s' in datacenter '%s'"
                               % (wanted, dc["name"]), attribute="location")
            computes = by_name
        if not computes:
            raise NotFound("provider 'vsphere': datacenter '%s' has no hosts" % dc["name"])
        compute = computes[0][1]
        pool = compute["resourcePool"]
        if self.options.get("resource_pool"):
            pools = [ref for ref, p in self._retrieve(vim.ResourcePool, ["name"], root=computes[0][0])
                     if p["name"] == self.options["resource_pool"]]
            if not pools:
                raise NotFound("provider 'vsphere': resource pool '%s' not found in '%s'"
                               % (self.options["resource_pool"], compute["name"]))
            pool = pools[0]
        ds_ref, ds_name = self._datastore_choice(compute.get("datastore", []))
        return dict(datacenter=dc_ref, folder=self._folder(), pool=pool, host=host,
                    datastore=ds_name, datastore_ref=ds_ref)

    def _folder(self):
        dc = self._datacenter()[1]
        folder = dc["vmFolder"]
        for part in [p for p in str(self.options.get("folder") or "").split("/") if p]:
            child = self.content.searchIndex.FindChild(folder, part)
            if child is None:
                raise NotFound("provider 'vsphere': folder '%s' not found" % self.options["folder"])
            folder = child
        return folder

    def _datastores(self):
        """[(ref, props)] of the accessible datastores in scope."""
        dc = self._datacenter()[1]
        found = self._retrieve(vim.Datastore, ["name", "browser", "summary.accessible", "summary.freeSpace"],
                               root=dc["datastoreFolder"])
        wanted = self.options.get("datastore")
        return [(ref, p) for ref, p in found
                if p.get("summary.accessible", True) and (not wanted or p["name"] == wanted)]

    def _datastore_name(self, candidates=()):
        return self._datastore_choice(candidates)[1]

    def _datastore_choice(self, candidates=()):
        """(ref, name) of the datastore with the most free space, among ``candidates`` when any is in scope."""
        datastores = self._datastores()
        if candidates:
            datastores = [item for item in datastores if item[0] in candidates] or datastores
        if not datastores:
            raise NotFound("provider 'vsphere': datastore '%s' not found"
                           % (self.options.get("datastore") or "(any accessible)"))
        ref, props = max(datastores, key=lambda item: item[1].get("summary.freeSpace") or 0)
        return ref, props["name"]

    # -- machines: lookup and conversion ---------------------------------------------------
    def _vm_root(self):
        return self._datacenter()[1]["vmFolder"] if self.options.get("datacenter") else self.content.rootFolder

    def _find_vm(self, uuid, template=False):
        """(ref, properties) of the VM (or template) with this id, else NotFound."""
        what = "machine image" if template else "machine"
        if not isinstance(uuid, str) or not uuid:
            raise NotFound("%s '%s' not found on provider 'vsphere'" % (what, uuid))
        dc = self._datacenter()[0] if self.options.get("datacenter") else None
        index = self.content.searchIndex
        ref = (index.FindByUuid(datacenter=dc, uuid=uuid, vmSearch=True, instanceUuid=True)
               or index.FindByUuid(datacenter=dc, uuid=uuid, vmSearch=True, instanceUuid=False))
        if ref is not None:
            try:
                props = self._props(ref, VM_PROPS)
            except (NotFound, vmodl.fault.ManagedObjectNotFound):
                props = None
            if props is not None and bool(props.get("config.template")) == template:
                return ref, props
        raise NotFound("%s '%s' not found on provider 'vsphere'" % (what, uuid))

    @staticmethod
    def _vm_id(props, ref=None):
        return props.get("config.instanceUuid") or props.get("config.uuid") or (ref._moId if ref else None)

    def _in_folder(self, path, folder):
        """True when a datastore path names a disk file right in ``folder``."""
        parts = split_ds_path(path) if isinstance(path, str) else None
        return bool(parts) and parts[1].rsplit("/", 1)[0] == folder and parts[1].endswith(".vmdk")

    def _is_volume(self, path):
        return self._in_folder(path, self.volume_folder)

    def _own_disks(self, props):
        """The machine's own disk devices (not our volumes), in device order."""
        return [d for d in props.get("config.hardware.device") or []
                if isinstance(d, vim.vm.device.VirtualDisk) and not self._is_volume(_file_name(d))]

    def _to_machine(self, ref, props):
        devices = props.get("config.hardware.device") or []
        controllers = {d.key: d for d in devices if isinstance(d, vim.vm.device.VirtualController)}
        disks, volumes, interfaces = [], [], []
        guest_ips = {(nic.macAddress or "").lower(): list(nic.ipAddress or [])
                     for nic in props.get("guest.net") or [] if nic.macAddress}
        for dev in devices:
            if isinstance(dev, vim.vm.device.VirtualDisk):
                path = _file_name(dev)
                if self._is_volume(path):
                    slot = "scsi%s:%s" % (getattr(controllers.get(dev.controllerKey), "busNumber", 0), dev.unitNumber)
                    volumes.append(MachineVolume(volume={"href": path}, initialLocation=slot))
                else:
                    disks.append(Disk(capacity=int(dev.capacityInKB or 0), format="vmdk"))
            elif isinstance(dev, vim.vm.device.VirtualEthernetCard):
                network = _nic_network(dev.backing)
                connected = bool(dev.connectable and dev.connectable.connected)
                ips = guest_ips.get((dev.macAddress or "").lower(), [])
                interfaces.append(NetworkInterface(
                    network={"href": network} if network else None, macAddress=dev.macAddress or None,
                    state=states.STARTED if connected else states.STOPPED,
                    addresses=[{"ip": ip, "protocol": "IPv6" if ":" in ip else "IPv4", "allocation": "dynamic"}
                               for ip in ips] or None))
        created = props.get("config.createDate")
        return Machine(
            id=self._vm_id(props, ref), name=props.get("name"), description=props.get("config.annotation") or None,
            state=machine_state(props.get("runtime.powerState"), props.get("runtime.connectionState")),
            cpu=props.get("config.hardware.numCPU"),
            memory=(props.get("config.hardware.memoryMB") or 0) * KIB_PER_MIB or None,
            cpuArch="x86_64", cpuSpeed=self._host_mhz(props.get("runtime.host")),
            disks=disks, volumes=volumes, interfaces=interfaces,
            created=created.isoformat() if created else None,
            properties=properties_from_extra_config(props.get("config.extraConfig")) or None)

    def _host_mhz(self, host):
        """The CPU clock (MHz) of the HostSystem ``host``: what its VMs' vCPUs run at; read once per host."""
        if host is None:
            return None
        known = self._cache.setdefault("host_mhz", {})
        if host._moId not in known:
            for _ref, props in self._retrieve(vim.HostSystem, ["summary.hardware.cpuMhz"], objs=[host]):
                known[host._moId] = props.get("summary.hardware.cpuMhz") or None
        return known.get(host._moId)

    def _vm_keys(self, template):
        """Sorted [(id, ref)] of every VM (or template) in scope: the cheap first pass of a listing. With
        option ``host`` (one host of a vCenter) the machines in scope are the ones that host runs."""
        found = self._retrieve(vim.VirtualMachine, ["config.template", "config.instanceUuid", "config.uuid",
                                                    "runtime.host"], root=self._vm_root())
        host = self._scope_host() if not template else None
        return sorted((self._vm_id(p, ref), ref) for ref, p in found if bool(p.get("config.template")) == template
                      and (host is None or p.get("runtime.host") == host))

    def _scope_host(self):
        """The HostSystem of option ``host``, else None."""
        if not self.options.get("host"):
            return None
        if "host" not in self._cache:
            hosts = self._retrieve(vim.HostSystem, ["name"], root=self._datacenter()[1]["hostFolder"])
            found = [ref for ref, p in hosts if p["name"] == self.options["host"]]
            if not found:
                raise NotFound("provider 'vsphere': host '%s' not found" % self.options["host"])
            self._cache["host"] = found[0]
        return self._cache["host"]

    def _vm_names(self):
        return {p.get("name") for _ref, p in self._retrieve(vim.VirtualMachine, ["name"], root=self._vm_root())}

    # -- machines: contract ----------------------------------------------------------------
    def list_machines(self, limit=None, marker=None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a positive integer", attribute="limit")
        with self._faults("machine.list"):
            keys = self._vm_keys(template=False)
            if marker is not None:
                keys = [item for item in keys if item[0] > marker]
            page, rest = (keys, []) if limit is None else (keys[:limit], keys[limit:])
            found = dict(self._retrieve(vim.VirtualMachine, VM_PROPS, objs=[ref for _key, ref in page]))
            items = [self._to_machine(ref, found[ref]) for _key, ref in page
                     if ref in found and not found[ref].get("config.template")]
            return Page(items=items, marker=page[-1][0] if rest and page else None)

    def get_machine(self, machine_id):
        with self._faults("machine.get", "machine '%s'" % machine_id):
            return self._to_machine(*self._find_vm(machine_id))

    def create_machine(self, spec):
        spec.validate()
        check_guest_inputs(spec, self.name, self.guest_inputs, user_data_limit=GUESTINFO_LIMIT,
                           user_data_encoded=True)
        guest = guest_items(spec, str(uuidlib.uuid4()))
        extra_config_items(*guest)  # its keys checked before anything is made
        subject = "machine '%s'" % spec.name
        with self._faults("machine.create", subject):
            caps = self.capabilities()
            misfit = caps.fits(cpu=spec.config.cpu, memory_mib=-(-spec.config.memory // KIB_PER_MIB),
                               arch=spec.config.cpuArch, cpu_mhz=spec.config.cpuSpeed)
            if misfit:
                raise InvalidInput("machine '%s' does not fit provider 'vsphere': %s" % (spec.name, "; ".join(misfit)),
                                   attribute="machineConfig")
            if spec.location and spec.location not in caps.locations:
                raise InvalidInput("location '%s' is none of %s" % (spec.location, ", ".join(caps.locations)),
                                   attribute="location")
            if spec.name in self._vm_names():
                raise Conflict("provider 'vsphere': a machine or image named '%s' exists already" % spec.name)
            image = self.get_machine_image(spec.image) if spec.image else None
            for volume_id in spec.volumes:  # refuse before anything is made
                self._free_volume(volume_id)
            if image is not None and not self.is_esx:
                ref = self._clone_template(spec, image, guest)
            else:
                ref = self._create_blank(spec, image, guest)
            props = self._props(ref, VM_PROPS)
            machine_id = self._vm_id(props, ref)
            try:
                for volume_id in spec.volumes:
                    self.attach_volume(machine_id, volume_id)
                if spec.initial_state == states.STARTED:
                    self._wait(ref.PowerOnVM_Task(), "machine.create", subject)
            except SiroccoError:
                self._destroy(ref, self._props(ref, VM_PROPS), spec.name)
                raise
            return self.get_machine(machine_id)

    def _config_spec(self, spec, image=None, devices=(), clear=(), guest=None):
        """ConfigSpec of a new machine; ``clear``: extraConfig keys to remove (inherited from a template);
        ``guest``: guest_items' (properties, user data, metadata), else the spec's properties and userData."""
        items = extra_config_items(*(guest or (spec.properties, spec.user_data)))
        if image is not None:
            items.append((ORIGIN_KEY, image.id))
        keys = {k for k, _value in items}
        items += [(k, "") for k in sorted(set(clear) - keys)]
        return vim.vm.ConfigSpec(numCPUs=int(spec.config.cpu), memoryMB=memory_mb(spec.config.memory),
                                 annotation=spec.description or "", deviceChange=list(devices),
                                 extraConfig=[vim.option.OptionValue(key=k, value=v) for k, v in items])

    def _create_blank(self, spec, image=None, guest=None):
        """CreateVM_Task with the size's CPUs, memory and disks; on ESX, a copy of ``image`` as first disk."""
        subject = "machine '%s'" % spec.name
        where = self._placement(spec.location)
        scsi = vim.vm.device.ParaVirtualSCSIController(key=-100, busNumber=0, sharedBus="noSharing")
        changes = [_device_add(scsi)]
        unit = 1 if image is not None else 0  # the image's copy goes to unit 0, once the VM folder exists
        for i, disk in enumerate(spec.config.disks or []):
            capacity = disk.get("capacity") if isinstance(disk, dict) else disk.capacity
            if capacity:
                device = _disk_device(-200 - i, -100, unit, int(capacity), "[%s]" % where["datastore"])
                changes.append(_device_add(device, create=True))
                unit = free_unit(set(range(unit + 1)))
        changes += self._nic_changes(spec.networks)
        config = self._config_spec(spec, image, changes, guest=guest)
        config.name, config.guestId = spec.name, GUEST_ID
        config.files = vim.vm.FileInfo(vmPathName="[%s]" % where["datastore"])
        ref = self._wait(where["folder"].CreateVM_Task(config=config, pool=where["pool"], host=where["host"]),
                         "machine.create", subject)
        if image is None:
            return ref
        try:
            props = self._props(ref, VM_PROPS)
            vm_dir = props["config.files.vmPathName"].rsplit("/", 1)[0]
            disk_path = "%s/%s-disk0.vmdk" % (vm_dir, spec.name)
            dc_ref = self._datacenter()[0]
            copy_spec = vim.VirtualDiskManager.VirtualDiskSpec(diskType="thin", adapterType="lsiLogic")
            self._wait(self.content.virtualDiskManager.CopyVirtualDisk_Task(
                sourceName=image.id, sourceDatacenter=dc_ref, destName=disk_path, destDatacenter=dc_ref,
                destSpec=copy_spec), "machine.create", subject)
            ctrl = [d.key for d in props["config.hardware.device"]
                    if isinstance(d, vim.vm.device.VirtualSCSIController)]
            capacity = self._disk_capacity(image.id)
            device = _disk_device(-1, ctrl[0], 0, capacity, disk_path)
            self._wait(ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[_device_add(device)])),
                       "machine.create", subject)
        except BaseException:
            self._destroy(ref, self._props(ref, VM_PROPS), spec.name)
            raise
        return ref

    def _clone_template(self, spec, image, guest=None):
        """CloneVM_Task of a template (vCenter), then what the clone did not apply."""
        subject = "machine '%s'" % spec.name
        template, template_props = self._find_vm(image.id, template=True)
        where = self._placement(spec.location)
        relocate = vim.vm.RelocateSpec(pool=where["pool"], host=where["host"], datastore=where["datastore_ref"])
        inherited = [o.key for o in template_props.get("config.extraConfig") or []
                     if o.key.startswith(PROPERTY_PREFIX) or o.key in GUESTINFO_KEYS]
        wanted = self._config_spec(spec, image, self._nic_changes(spec.networks), clear=inherited, guest=guest)
        clone = vim.vm.CloneSpec(location=relocate, powerOn=False, template=False, config=wanted)
        ref = self._wait(template.CloneVM_Task(folder=where["folder"], name=spec.name, spec=clone),
                         "machine.create", subject)
        # vcsim copies the template's hardware and ignores the rest of the config: apply what is missing.
        got = self._props(ref, VM_PROPS)
        fix, needed = vim.vm.ConfigSpec(), False
        if got.get("config.hardware.numCPU") != wanted.numCPUs:
            fix.numCPUs, needed = wanted.numCPUs, True
        if got.get("config.hardware.memoryMB") != wanted.memoryMB:
            fix.memoryMB, needed = wanted.memoryMB, True
        if (got.get("config.annotation") or "") != wanted.annotation:
            fix.annotation, needed = wanted.annotation, True
        have = {o.key: o.value for o in got.get("config.extraConfig") or []}
        missing = [o for o in wanted.extraConfig if (have.get(o.key) or "") != o.value]
        if missing:
            fix.extraConfig, needed = missing, True
        if needed:
            self._wait(ref.ReconfigVM_Task(spec=fix), "machine.create", subject)
        return ref

    def _nic_changes(self, network_ids):
        ids = list(network_ids or [])
        if not ids and self.options.get("network"):
            ids = [self.get_network(self.options["network"]).id]
        changes = []
        for i, net_id in enumerate(ids):
            net = self._network_ref(net_id)
            if isinstance(net, vim.dvs.DistributedVirtualPortgroup):
                p = self._props(net, ["key", "config.distributedVirtualSwitch"])
                switch = self._props(p["config.distributedVirtualSwitch"], ["uuid"])["uuid"]
                backing = vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(
                    port=vim.dvs.PortConnection(portgroupKey=p["key"], switchUuid=switch))
            else:
                backing = vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(
                    deviceName=self._props(net, ["name"])["name"], network=net)
            nic = vim.vm.device.VirtualVmxnet3(key=-300 - i, backing=backing, addressType="generated",
                                               connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                                                   startConnected=True, allowGuestControl=True))
            changes.append(_device_add(nic))
        return changes

    def _act(self, machine_id, action):
        """(ref, properties, CIMI state) of a machine whose state allows ``action``, else Conflict."""
        ref, props = self._find_vm(machine_id)
        state = machine_state(props.get("runtime.powerState"), props.get("runtime.connectionState"))
        states.check_allowed(state, action, "machine '%s'" % props.get("name"))
        return ref, props, state

    def _power(self, machine_id, action, method):
        operation, subject = "machine." + action, "machine '%s'" % machine_id
        with self._faults(operation, subject):
            ref = self._act(machine_id, action)[0]
            self._wait(getattr(ref, method)(), operation, subject)
            return self.get_machine(machine_id)

    def start_machine(self, machine_id):
        return self._power(machine_id, states.START, "PowerOnVM_Task")

    def suspend_machine(self, machine_id):
        return self._power(machine_id, states.SUSPEND, "SuspendVM_Task")

    def stop_machine(self, machine_id, force=False):
        subject = "machine '%s'" % machine_id
        with self._faults("machine.stop", subject):
            ref, _props, state = self._act(machine_id, states.STOP)
            if force or state != states.STARTED:  # a suspended guest cannot shut itself down
                self._wait(ref.PowerOffVM_Task(), "machine.stop", subject)
            else:
                ref.ShutdownGuest()  # asks VMware Tools; returns before the guest is down
            return self.get_machine(machine_id)

    def restart_machine(self, machine_id, force=False):
        subject = "machine '%s'" % machine_id
        with self._faults("machine.restart", subject):
            ref, _props, state = self._act(machine_id, states.RESTART)
            if state != states.STARTED:
                self._wait(ref.PowerOnVM_Task(), "machine.restart", subject)
            elif force:
                self._wait(ref.ResetVM_Task(), "machine.restart", subject)
            else:
                try:
                    ref.RebootGuest()
                except vmodl.fault.MethodNotFound:  # the endpoint has no guest reboot: shut down, power on
                    ref.ShutdownGuest()
                    self._wait_power(ref, "poweredOff", "machine.restart", subject)
                    self._wait(ref.PowerOnVM_Task(), "machine.restart", subject)
            return self.get_machine(machine_id)

    def _wait_power(self, ref, wanted, operation, subject):
        deadline = time.monotonic() + self.timeout
        while self._props(ref, ["runtime.powerState"])["runtime.powerState"] != wanted:
            if time.monotonic() >= deadline:
                raise OperationTimeout("provider 'vsphere': %s of %s: not %s after %ss"
                                       % (operation, subject, wanted, self.timeout))
            time.sleep(0.2)

    def delete_machine(self, machine_id):
        with self._faults("machine.delete", "machine '%s'" % machine_id):
            ref, props = self._act(machine_id, states.DELETE)[:2]
            self._destroy(ref, props, machine_id)

    def _destroy(self, ref, props, subject):
        """Power off, detach our volumes (so they outlive the machine), destroy with its own disks."""
        subject = "machine '%s'" % subject
        if props.get("runtime.powerState") != "poweredOff":
            self._wait(ref.PowerOffVM_Task(), "machine.delete", subject)
        ours = [d for d in props.get("config.hardware.device") or []
                if isinstance(d, vim.vm.device.VirtualDisk) and self._is_volume(_file_name(d))]
        if ours:
            change = [vim.vm.device.VirtualDeviceSpec(operation="remove", device=d) for d in ours]
            self._wait(ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=change)), "machine.delete", subject)
        self._wait(ref.Destroy_Task(), "machine.delete", subject)

    def migrate_machine(self, machine_id, target):
        """RelocateVM_Task to the host (option ``host``) or cluster (``cluster``) ``target`` is scoped to, on
        the same vCenter: vMotion when the machine runs, a cold migration otherwise. The datastore stays:
        it must be one the target host sees (shared storage). Another endpoint: not supported (that would be
        a cross-vCenter vMotion)."""
        subject = "machine '%s'" % machine_id
        if not isinstance(target, VSphereConnector):
            raise InvalidInput("a vSphere machine can only move to another vSphere host", attribute="target")
        if (target._host, target._port, target._path) != (self._host, self._port, self._path):
            raise Unsupported(self.name, "machine.migrate", "provider 'vsphere': %s cannot move to another "
                              "endpoint (%s): relocation stays within one vCenter" % (subject, target.uri))
        if not (target.options.get("host") or target.options.get("cluster")):
            raise InvalidInput("the target has neither option 'host' nor 'cluster': no place to move to",
                               attribute="target")
        with self._faults("machine.migrate", subject):
            ref, _props = self._find_vm(machine_id)
            where = target._placement()
            spec = vim.vm.RelocateSpec(pool=where["pool"])
            if where["host"] is not None:
                spec.host = where["host"]
            self._wait(ref.RelocateVM_Task(spec=spec), "machine.migrate", subject)
        return target.get_machine(machine_id)

    # -- resize ------------------------------------------------------------------------------------
    def _resize_plan(self, machine_id, config):
        """(ref, name, ConfigSpec fields that change, why the machine cannot take them now or None); the size is
        checked against the capabilities and the machine's CPU topology first."""
        cpu, memory_kib = resize_figures(config)
        misfit = self.capabilities().fits(cpu=cpu, memory_mib=-(-memory_kib // KIB_PER_MIB))
        if misfit:
            raise InvalidInput("machineConfig does not fit provider 'vsphere': %s" % "; ".join(misfit),
                               attribute="machineConfig")
        ref, props = self._find_vm(machine_id)
        hot = self._props(ref, RESIZE_PROPS)
        cores = hot.get("config.hardware.numCoresPerSocket") or 1
        if cpu % cores:
            raise InvalidInput("machineConfig.cpu: %d CPUs do not fill sockets of %d cores (machine '%s')"
                               % (cpu, cores, props.get("name")), attribute="machineConfig.cpu")
        change = {}
        if cpu != props.get("config.hardware.numCPU"):
            change["numCPUs"] = cpu
        if memory_mb(memory_kib) != props.get("config.hardware.memoryMB"):
            change["memoryMB"] = memory_mb(memory_kib)
        state = machine_state(props.get("runtime.powerState"), props.get("runtime.connectionState"))
        return ref, props.get("name"), change, live_refusal(state, props, hot, change)

    def resize_needs_stop(self, machine, config):
        """A stopped machine takes any size; a running one grows live where hot add is enabled for what grows."""
        with self._faults("machine.resize", "machine '%s'" % machine.id):
            return self._resize_plan(machine.id, config)[3] is not None

    def resize_machine(self, machine_id, config):
        """ReconfigVM_Task with the new numCPUs and memoryMB (only what changes)."""
        subject = "machine '%s'" % machine_id
        with self._faults("machine.resize", subject):
            ref, name, change, refusal = self._resize_plan(machine_id, config)
            if refusal:
                wanted = [("%d CPUs" % change["numCPUs"]) if "numCPUs" in change else None,
                          ("%d MB of memory" % change["memoryMB"]) if "memoryMB" in change else None]
                raise Conflict("provider 'vsphere': machine '%s' cannot take %s now (%s): stop it first"
                               % (name, " and ".join(w for w in wanted if w), refusal))
            if change:
                self._wait(ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(**change)), "machine.resize", subject)
            return self.get_machine(machine_id)

    def capture_machine(self, machine_id, name, description=None):
        subject = "machine '%s'" % machine_id
        with self._faults("machine.capture", subject):
            ref, props, state = self._act(machine_id, states.CAPTURE)
            if not isinstance(name, str) or not _SAFE_NAME.match(name):
                raise InvalidInput("image name '%s': 1-80 letters, digits, '.', '_' or '-', starting with a letter "
                                   "or digit" % (name,), attribute="name")
            disks = self._own_disks(props)
            if not disks:
                raise Conflict("provider 'vsphere': machine '%s' has no disk to capture" % props.get("name"))
            if name in {i.name for i in self.list_machine_images()} | self._vm_names():
                raise Conflict("provider 'vsphere': an image or machine named '%s' exists already" % name)
            if self.is_esx:
                return self._capture_disk(ref, props, state, disks[0], name, description)
            # A template keeps the machine's configuration but not its properties nor its origin.
            clear = [o.key for o in props.get("config.extraConfig") or []
                     if o.key.startswith(PROPERTY_PREFIX) or o.key in (ORIGIN_KEY, *GUESTINFO_KEYS)]
            config = vim.vm.ConfigSpec(annotation=description or "",
                                       extraConfig=[vim.option.OptionValue(key=k, value="") for k in clear])
            clone = vim.vm.CloneSpec(location=vim.vm.RelocateSpec(), powerOn=False, template=True, config=config)
            folder = self._props(ref, ["parent"])["parent"]
            image_ref = self._wait(ref.CloneVM_Task(folder=folder, name=name, spec=clone), "machine.capture", subject)
            got = self._props(image_ref, VM_PROPS)
            if description and got.get("config.annotation") != description:  # vcsim drops it on clone
                self._wait(image_ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(annotation=description)),
                           "machine.capture", subject)
                got = self._props(image_ref, VM_PROPS)
            return self._template_image(image_ref, got)

    def _capture_disk(self, ref, props, state, disk, name, description):
        """ESX: copy the machine's first disk into the image folder (from a snapshot while it runs)."""
        subject = "machine '%s'" % props.get("name")
        dc_ref = self._datacenter()[0]
        source = _file_name(disk)
        datastore = split_ds_path(source)[0]
        folder = "[%s] %s" % (datastore, self.image_folder)
        self._mkdir(folder, dc_ref)
        snapshot = None
        if state != states.STOPPED:  # the running disk is locked; a snapshot freezes the base disk for the copy
            snapshot = self._wait(ref.CreateSnapshot_Task(name="sirocco-capture", memory=False, quiesce=False),
                                  "machine.capture", subject)
        try:
            copy_spec = vim.VirtualDiskManager.VirtualDiskSpec(diskType="thin", adapterType="lsiLogic")
            path = "%s/%s.vmdk" % (folder, name)
            self._wait(self.content.virtualDiskManager.CopyVirtualDisk_Task(
                sourceName=source, sourceDatacenter=dc_ref, destName=path, destDatacenter=dc_ref,
                destSpec=copy_spec), "machine.capture", subject)
        finally:
            if snapshot is not None:
                self._wait(snapshot.RemoveSnapshot_Task(removeChildren=False), "machine.capture", subject)
        return self._disk_image(path, int(disk.capacityInKB or 0), description)

    # -- configurations, images ---------------------------------------------------------------
    def list_machine_configs(self):
        return sizes_from_options(self.options.get("sizes"))

    def _template_image(self, ref, props):
        created = props.get("config.createDate")
        return MachineImage(id=self._vm_id(props, ref), name=props.get("name"),
                            description=props.get("config.annotation") or None, state="AVAILABLE", type="IMAGE",
                            imageLocation=props.get("config.files.vmPathName"),
                            created=created.isoformat() if created else None,
                            properties=properties_from_extra_config(props.get("config.extraConfig")) or None)

    def _disk_image(self, path, capacity_kb, description=None):
        name = path.rsplit("/", 1)[-1][:-len(".vmdk")]
        return MachineImage(id=path, name=name, description=description or None, state="AVAILABLE", type="IMAGE",
                            imageLocation=path, properties={"capacity": str(capacity_kb)})

    def list_machine_images(self):
        with self._faults("machine_image.list"):
            if self.is_esx:
                return [self._disk_image(path, capacity) for path, capacity in self._search_disks(self.image_folder)]
            refs = [ref for _key, ref in self._vm_keys(template=True)]
            return [self._template_image(ref, props)
                    for ref, props in self._retrieve(vim.VirtualMachine, VM_PROPS, objs=refs)
                    if props.get("config.template")]

    def delete_machine_image(self, image_id):
        subject = "machine image '%s'" % image_id
        with self._faults("machine_image.delete", subject):
            if self.is_esx:
                if not self._in_folder(image_id, self.image_folder):
                    raise NotFound("machine image '%s' not found on provider 'vsphere'" % image_id)
            else:
                ref = self._find_vm(image_id, template=True)[0]
            users = self._image_users(image_id)
            if users:
                raise Conflict("provider 'vsphere': machine image '%s' is in use by machine(s) %s"
                               % (image_id, ", ".join(users)))
            if self.is_esx:
                self._wait(self.content.virtualDiskManager.DeleteVirtualDisk_Task(
                    name=image_id, datacenter=self._datacenter()[0]), "machine_image.delete", subject)
            else:
                self._wait(ref.Destroy_Task(), "machine_image.delete", subject)

    def import_machine_image(self, image):
        """An OVF import (vCenter): CreateImportSpec of a one-disk descriptor, ResourcePool.ImportVApp, the
        streamOptimized vmdk uploaded (POST) through the HttpNfcLease, HttpNfcLeaseComplete, MarkAsTemplate."""
        with self._faults("machine_image.import"):
            if self.is_esx:
                raise Unsupported(self.name, "machine_image.import", "provider 'vsphere' does not support operation "
                                  "'machine_image.import' on an ESX host (it keeps no templates): import through "
                                  "its vCenter")
        fmt, path = image.validate(self.image_formats)
        if not _SAFE_NAME.match(image.name):
            raise InvalidInput("image name '%s': 1-80 letters, digits, '.', '_' or '-', starting with a letter or "
                               "digit" % image.name, attribute="name")
        if image.arch not in IMPORT_GUESTS:
            raise InvalidInput("image arch %s: provider 'vsphere' takes %s" % (image.arch, ", ".join(IMPORT_GUESTS)),
                               attribute="arch")
        if image.description is not None and not isinstance(image.description, str):
            raise InvalidInput("image description must be a string", attribute="description")
        items = extra_config_items(image.image_properties(fmt))
        capacity, size, sha256 = vmdk_facts(path)
        if capacity != image.virtual_size:
            raise InvalidInput("vmdk image %s is a disk of %d bytes, its virtual_size says %d"
                               % (path, capacity, image.virtual_size), attribute="virtual_size")
        expected = (image.checksums or {}).get(fmt)
        if expected and expected.lower() != sha256:
            raise InvalidInput("vmdk image %s does not match its sha256 checksum" % path, attribute="checksums")
        subject = "machine image '%s'" % image.name
        with self._faults("machine_image.import", subject):
            if image.name in {i.name for i in self.list_machine_images()} | self._vm_names():
                raise Conflict("provider 'vsphere': a machine or image named '%s' exists already" % image.name)
            where = self._placement()
            guest_id, os_id = IMPORT_GUESTS[image.arch]
            disk_file = image.name + "-disk1.vmdk"
            descriptor = ovf_descriptor(image.name, disk_file, size, capacity, guest_id, os_id, FIRMWARES[image.boot])
            params = vim.OvfManager.CreateImportSpecParams(entityName=image.name, diskProvisioning="thin")
            result = self.content.ovfManager.CreateImportSpec(ovfDescriptor=descriptor, resourcePool=where["pool"],
                                                              datastore=where["datastore_ref"], cisp=params)
            if result.error:
                raise InvalidInput("provider 'vsphere': the OVF of %s is refused: %s"
                                   % (subject, "; ".join(_fault_text(e) for e in result.error)), attribute="files")
            items_by_id = {i.deviceId: i for i in result.fileItem or []}
            if [i.path for i in items_by_id.values()] != [disk_file]:
                raise ProviderUnavailable("provider 'vsphere': the import of %s asks for files %s, not the disk %s"
                                          % (subject, sorted(i.path for i in items_by_id.values()), disk_file))
            config = result.importSpec.configSpec  # what the OVF cannot say, or not to every vSphere version
            config.annotation = image.description or ""
            config.firmware = FIRMWARES[image.boot]
            config.guestId = guest_id
            config.extraConfig = list(config.extraConfig or []) + [vim.option.OptionValue(key=k, value=v)
                                                                   for k, v in items]
            lease = where["pool"].ImportVApp(spec=result.importSpec, folder=where["folder"], host=where["host"])
            ref = None
            try:
                info = self._lease_ready(lease, subject)
                ref = info.entity
                urls = [u for u in info.deviceUrl or [] if u.importKey in items_by_id]
                if len(urls) != 1:
                    raise ProviderUnavailable("provider 'vsphere': the import lease of %s offers %d places for "
                                              "its one disk" % (subject, len(urls)))
                self._nfc_upload(lease, urls[0].url, path, size, subject)
                lease.HttpNfcLeaseProgress(percent=100)
                lease.HttpNfcLeaseComplete()
                lease = None
                ref.MarkAsTemplate()
                props = self._props(ref, VM_PROPS)
            except BaseException:  # interrupted too: a failed import leaves no machine behind
                self._undo_import(lease, ref, subject)
                raise
            return self._template_image(ref, props)

    def _lease_ready(self, lease, subject):
        """The HttpNfcLease's info once it is ready (vSphere made the machine and its disk files)."""
        deadline = time.monotonic() + self.timeout
        while True:
            got = self._props(lease, ["state", "error", "info"])
            if got.get("state") == "ready":
                return got["info"]
            if got.get("state") == "error":
                raise got.get("error") or ProviderUnavailable("provider 'vsphere': the import lease of %s failed"
                                                              % subject)
            if time.monotonic() >= deadline:
                raise OperationTimeout("provider 'vsphere': the import lease of %s still %s after %ss"
                                       % (subject, got.get("state"), self.timeout))
            time.sleep(0.2)

    def _nfc_upload(self, lease, device_url, path, size, subject):
        """POST the streamOptimized vmdk to the lease's device URL (as ovftool and govc do), in the session,
        telling the lease how far it got every PROGRESS_EVERY seconds."""
        scheme, host, port, target = nfc_url(device_url, self._host, self._port)
        if scheme == "https":
            context = ssl.create_default_context()
            if not self.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        try:
            conn.putrequest("POST", target, skip_accept_encoding=True)
            conn.putheader("Content-Type", STREAM_VMDK_TYPE)
            conn.putheader("Content-Length", str(size))
            cookie = getattr(getattr(self._si, "_stub", None), "cookie", None)
            if cookie:
                conn.putheader("Cookie", cookie)
            conn.endheaders()
            sent, reported = 0, time.monotonic()
            with open(path, "rb") as handle:
                for data in iter(lambda: handle.read(UPLOAD_CHUNK), b""):
                    conn.send(data)
                    sent += len(data)
                    if time.monotonic() - reported >= PROGRESS_EVERY:
                        lease.HttpNfcLeaseProgress(percent=min(99, sent * 100 // max(size, 1)))
                        reported = time.monotonic()
            response = conn.getresponse()
            body = response.read(2048)
        finally:
            conn.close()
        if sent != size or response.status not in (200, 201, 204):
            raise ProviderUnavailable("provider 'vsphere': the upload of the disk of %s (%d of %d bytes sent) was "
                                      "answered %s %s %s" % (subject, sent, size, response.status, response.reason,
                                                             body.decode("utf-8", "replace")[:200].strip()))

    def _undo_import(self, lease, ref, subject):
        """Abort the lease (vSphere then removes what it made) and destroy the machine if it is still there
        (vcsim leaves it); errors here give way to the one that brought us here."""
        if lease is not None:
            try:
                lease.HttpNfcLeaseAbort()
            except Exception:  # noqa: BLE001 - the lease may be gone already
                pass
        if ref is None:
            return
        try:
            props = self._props(ref, ["config.template", "runtime.powerState"])
            if props.get("runtime.powerState") not in (None, "poweredOff"):
                self._wait(ref.PowerOffVM_Task(), "machine_image.import", subject)
            self._wait(ref.Destroy_Task(), "machine_image.import", subject)
        except Exception:  # noqa: BLE001 - gone already, or nothing more to do about it
            pass

    def _image_users(self, image_id):
        found = self._retrieve(vim.VirtualMachine, ["config.template", "config.extraConfig", "config.instanceUuid",
                                                    "config.uuid"], root=self._vm_root())
        return sorted(self._vm_id(p, ref) for ref, p in found if not p.get("config.template")
                      and any(o.key == ORIGIN_KEY and o.value == image_id for o in p.get("config.extraConfig") or []))

    # -- disk files: volumes (and ESX images) ---------------------------------------------------
    def _mkdir(self, folder, dc_ref):
        try:
            self.content.fileManager.MakeDirectory(name=folder, datacenter=dc_ref, createParentDirectories=True)
        except vim.fault.FileAlreadyExists:
            pass

    def _search_disks(self, folder):
        """Sorted [(datastore path, capacity KiB)] of the disk files right in ``folder`` of every datastore."""
        browser = vim.host.DatastoreBrowser
        query = browser.VmDiskQuery(details=browser.VmDiskQuery.Details(capacityKb=True, diskType=True))
        search = browser.SearchSpec(matchPattern=["*.vmdk"], query=[query],
                                    details=browser.FileInfo.Details(fileSize=True, fileType=True))
        out = []
        for _ref, ds in self._datastores():
            try:
                result = self._wait(ds["browser"].SearchDatastore_Task(
                    datastorePath="[%s] %s" % (ds["name"], folder), searchSpec=search), "disk search")
            except vim.fault.FileNotFound:
                continue
            for info in getattr(result, "file", None) or []:
                if info.path.endswith("-flat.vmdk"):
                    continue
                # Real ESX reports capacityKb; vcsim's files carry the capacity as their size (see its main.go).
                capacity = getattr(info, "capacityKb", None) or (info.fileSize or 0) // 1024
                out.append(("[%s] %s/%s" % (ds["name"], folder, info.path), int(capacity)))
        return sorted(out)

    def _disk_capacity(self, path):
        folder = split_ds_path(path)[1].rsplit("/", 1)[0]
        for found, capacity in self._search_disks(folder):
            if found == path:
                return capacity
        raise NotFound("disk '%s' not found on provider 'vsphere'" % path)

    def _attachments(self):
        """{volume datastore path: [machine ids]} over every VM in scope."""
        found = self._retrieve(vim.VirtualMachine, ["config.hardware.device", "config.instanceUuid", "config.uuid"],
                               root=self._vm_root())
        out = {}
        for ref, props in found:
            for dev in props.get("config.hardware.device") or []:
                if isinstance(dev, vim.vm.device.VirtualDisk) and self._is_volume(_file_name(dev)):
                    out.setdefault(_file_name(dev), []).append(self._vm_id(props, ref))
        return out

    def list_volumes(self):
        with self._faults("volume.list"):
            attached = self._attachments()
            return [self._to_volume(path, capacity, attached.get(path))
                    for path, capacity in self._search_disks(self.volume_folder)]

    def _to_volume(self, path, capacity, attached=None):
        name = path.rsplit("/", 1)[-1][:-len(".vmdk")]
        return Volume(id=path, name=name, state="AVAILABLE", capacity=capacity, bootable=False,
                      attachedTo=[{"href": m} for m in attached or []] or None)

    def _free_volume(self, volume_id):
        """The volume, if it exists and is attached nowhere (NotFound, Conflict otherwise)."""
        if not self._is_volume(volume_id):
            raise NotFound("volume '%s' not found on provider 'vsphere'" % volume_id)
        volume = self.get_volume(volume_id)
        users = [ref["href"] for ref in volume.get("attachedTo") or []]
        if users:
            raise Conflict("provider 'vsphere': volume '%s' is attached to machine(s) %s"
                           % (volume_id, ", ".join(users)))
        return volume

    def create_volume(self, name, capacity_kb, description=None, properties=None, volume_type=None):
        if volume_type is not None:
            raise InvalidInput("provider 'vsphere' has no volume types: a volume is a thin virtual disk file "
                               "(type '%s' refused)" % (volume_type,), attribute="type")
        if not isinstance(name, str) or not _SAFE_NAME.match(name):
            raise InvalidInput("volume name '%s': 1-80 letters, digits, '.', '_' or '-', starting with a letter "
                               "or digit" % (name,), attribute="name")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of kilobytes", attribute="capacity")
        subject = "volume '%s'" % name
        with self._faults("volume.create", subject):
            if any(v.name == name for v in self.list_volumes()):
                raise Conflict("provider 'vsphere': a volume named '%s' exists already" % name)
            dc_ref = self._datacenter()[0]
            folder = "[%s] %s" % (self._datastore_name(), self.volume_folder)
            self._mkdir(folder, dc_ref)
            path = "%s/%s.vmdk" % (folder, name)
            spec = vim.VirtualDiskManager.FileBackedVirtualDiskSpec(capacityKb=capacity_kb, adapterType="lsiLogic",
                                                                    diskType="thin")
            self._wait(self.content.virtualDiskManager.CreateVirtualDisk_Task(name=path, datacenter=dc_ref, spec=spec),
                       "volume.create", subject)
            return self._to_volume(path, capacity_kb)

    def delete_volume(self, volume_id):
        subject = "volume '%s'" % volume_id
        with self._faults("volume.delete", subject):
            self._free_volume(volume_id)
            self._wait(self.content.virtualDiskManager.DeleteVirtualDisk_Task(
                name=volume_id, datacenter=self._datacenter()[0]), "volume.delete", subject)

    def attach_volume(self, machine_id, volume_id, initial_location=None):
        subject = "volume '%s' to machine '%s'" % (volume_id, machine_id)
        with self._faults("volume.attach", subject):
            ref, props = self._find_vm(machine_id)
            volume = self._free_volume(volume_id)
            devices = props.get("config.hardware.device") or []
            changes, ctrl_key, unit = [], None, None
            for ctrl in devices:
                if isinstance(ctrl, vim.vm.device.VirtualSCSIController):
                    unit = free_unit({d.unitNumber for d in devices if d.controllerKey == ctrl.key})
                    if unit is not None:
                        ctrl_key = ctrl.key
                        break
            if ctrl_key is None:  # add a controller on a free bus
                buses = sorted(set(range(4)) - {d.busNumber for d in devices
                                                if isinstance(d, vim.vm.device.VirtualSCSIController)})
                if not buses:
                    raise Conflict("provider 'vsphere': machine '%s' has no free disk slot" % machine_id)
                ctrl_key, unit = -100, 0
                changes.append(_device_add(vim.vm.device.ParaVirtualSCSIController(
                    key=ctrl_key, busNumber=buses[0], sharedBus="noSharing")))
            changes.append(_device_add(_disk_device(-1, ctrl_key, unit, volume.capacity, volume_id)))
            self._wait(ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=changes)), "volume.attach", subject)
            return self.get_machine(machine_id)

    def detach_volume(self, machine_id, volume_id):
        subject = "volume '%s' from machine '%s'" % (volume_id, machine_id)
        with self._faults("volume.detach", subject):
            ref, props = self._find_vm(machine_id)
            if not self._is_volume(volume_id):
                raise NotFound("volume '%s' not found on provider 'vsphere'" % volume_id)
            found = [d for d in props.get("config.hardware.device") or []
                     if isinstance(d, vim.vm.device.VirtualDisk) and _file_name(d) == volume_id]
            if not found:
                self.get_volume(volume_id)  # NotFound when there is no such volume at all
                raise Conflict("provider 'vsphere': volume '%s' is not attached to machine '%s'"
                               % (volume_id, machine_id))
            change = [vim.vm.device.VirtualDeviceSpec(operation="remove", device=d) for d in found]
            self._wait(ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=change)), "volume.detach", subject)
            return self.get_machine(machine_id)

    def resize_volume(self, volume_id, capacity_kb):
        """Grow the disk file: ExtendVirtualDisk_Task while no machine uses it; through the machine's disk
        device (ReconfigVM_Task, an edit of capacityInKB: vSphere extends a disk in use, live too) otherwise."""
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of kilobytes", attribute="capacity")
        subject = "volume '%s'" % volume_id
        with self._faults("volume.resize", subject):
            if not self._is_volume(volume_id):
                raise NotFound("volume '%s' not found on provider 'vsphere'" % volume_id)
            volume = self.get_volume(volume_id)
            if capacity_kb < volume.capacity:
                raise InvalidInput("volume '%s' has %d KB: a volume only grows (%d KB asked)"
                                   % (volume.name, volume.capacity, capacity_kb), attribute="capacity")
            if capacity_kb == volume.capacity:
                return volume
            users = [ref["href"] for ref in volume.get("attachedTo") or []]
            if users:
                self._extend_attached(users[0], volume_id, capacity_kb, subject)
            else:
                self._wait(self.content.virtualDiskManager.ExtendVirtualDisk_Task(
                    name=volume_id, datacenter=self._datacenter()[0], newCapacityKb=capacity_kb, eagerZero=False),
                    "volume.resize", subject)
            return self.get_volume(volume_id)

    def _extend_attached(self, machine_id, volume_id, capacity_kb, subject):
        ref, props = self._find_vm(machine_id)
        state = machine_state(props.get("runtime.powerState"), props.get("runtime.connectionState"))
        if state not in (states.STOPPED, states.STARTED):
            raise Conflict("provider 'vsphere': %s is attached to machine '%s', which is %s: start or stop it "
                           "first" % (subject, props.get("name"), state))
        disk = next(d for d in props.get("config.hardware.device") or []
                    if isinstance(d, vim.vm.device.VirtualDisk) and _file_name(d) == volume_id)
        disk.capacityInKB, disk.capacityInBytes = capacity_kb, capacity_kb * 1024
        change = vim.vm.device.VirtualDeviceSpec(operation="edit", device=disk)
        self._wait(ref.ReconfigVM_Task(spec=vim.vm.ConfigSpec(deviceChange=[change])), "volume.resize", subject)

    # -- networks -------------------------------------------------------------------------------
    def list_networks(self):
        with self._faults("network.list"):
            root = self._datacenter()[0] if self.options.get("datacenter") else None
            found = self._retrieve(vim.Network, ["name", "summary.accessible"], root=root)
            dvpgs = [ref for ref, _props in found if isinstance(ref, vim.dvs.DistributedVirtualPortgroup)]
            dvpg_props = self._retrieve(vim.dvs.DistributedVirtualPortgroup,
                                        ["config.uplink", "tag", "config.description"], objs=dvpgs)
            uplinks = {ref for ref, p in dvpg_props
                       if p.get("config.uplink") or any(t.key == "SYSTEM/DVS.UPLINKPG" for t in p.get("tag") or [])}
            descriptions = {ref: p.get("config.description") or None for ref, p in dvpg_props}
            networks = {}
            for ref, props in found:
                if ref in uplinks:
                    continue
                kind = ("dvportgroup" if isinstance(ref, vim.dvs.DistributedVirtualPortgroup)
                        else "opaque" if isinstance(ref, vim.OpaqueNetwork) else "portgroup")
                networks[ref._moId] = Network(
                    id=ref._moId, name=props.get("name"), description=descriptions.get(ref), properties={"type": kind},
                    state=states.STARTED if props.get("summary.accessible", True) else states.STOPPED)
            return [networks[k] for k in sorted(networks)]

    def create_network(self, name, description=None, properties=None, cidr=None, dhcp=None):
        if not name or not isinstance(name, str):
            raise InvalidInput("network name must be a non-empty string", attribute="name")
        refuse_addressing(cidr, dhcp)
        if description is not None and not isinstance(description, str):
            raise InvalidInput("network description must be a string", attribute="description")
        subject = "network '%s'" % name
        with self._faults("network.create", subject):
            if any(n.name == name for n in self.list_networks()):
                raise Conflict("a network named '%s' already exists on provider 'vsphere'" % name)
            if self.is_esx:
                self._add_standard_portgroup(name)
                wanted = vim.Network
            else:
                self._add_dv_portgroup(name, description, subject)
                wanted = vim.dvs.DistributedVirtualPortgroup
            made = [ref for ref, p in self._retrieve(wanted, ["name"], root=self._datacenter()[0])
                    if p.get("name") == name]
            if not made:
                raise ProviderUnavailable("provider 'vsphere': %s was created but is not listed" % subject)
            return next(n for n in self.list_networks() if n.id == made[0]._moId)

    def _add_standard_portgroup(self, name):
        """A port group on the first vSwitch of the host in scope (ESX: the host)."""
        dc = self._datacenter()[1]
        hosts = sorted(self._retrieve(vim.HostSystem, ["name", "configManager.networkSystem"],
                                      root=dc["hostFolder"]), key=lambda item: item[1]["name"])
        if self.options.get("host"):
            hosts = [item for item in hosts if item[1]["name"] == self.options["host"]]
        if not hosts:
            raise NotFound("provider 'vsphere': host '%s' not found" % (self.options.get("host") or "(any)"))
        system = hosts[0][1]["configManager.networkSystem"]
        switches = self._props(system, ["networkInfo.vswitch"]).get("networkInfo.vswitch") or []
        if not switches:
            raise Conflict("provider 'vsphere': host '%s' has no virtual switch to add a port group to"
                           % hosts[0][1]["name"])
        system.AddPortGroup(portgrp=vim.host.PortGroup.Specification(
            name=name, vlanId=0, vswitchName=switches[0].name, policy=vim.host.NetworkPolicy()))

    def _add_dv_portgroup(self, name, description, subject):
        """A distributed port group (early binding, ports added as needed) on the datacenter's first switch."""
        switches = sorted(self._retrieve(vim.DistributedVirtualSwitch, ["name"], root=self._datacenter()[0]),
                          key=lambda item: item[1]["name"])
        if not switches:
            raise Conflict("provider 'vsphere': datacenter '%s' has no distributed switch to add %s to"
                           % (self._datacenter()[1]["name"], subject))
        spec = vim.dvs.DistributedVirtualPortgroup.ConfigSpec(name=name, description=description or None,
                                                              type="earlyBinding", numPorts=8, autoExpand=True)
        self._wait(switches[0][0].AddDVPortgroup_Task(spec=[spec]), "network.create", subject)

    def delete_network(self, network_id):
        with self._faults("network.delete", "network '%s'" % network_id):
            ref = next((r for r, _p in self._retrieve(vim.Network, ["name"]) if r._moId == network_id), None)
            if ref is None:
                raise NotFound("network '%s' not found on provider 'vsphere'" % network_id)
            name = self._props(ref, ["name"])["name"]
            users = sorted(p.get("name") or r._moId
                           for r, p in self._retrieve(vim.VirtualMachine, ["name", "network"])
                           if any(n._moId == network_id for n in p.get("network") or []))
            if users:
                raise Conflict("network '%s' is used by machine(s) %s" % (name, ", ".join(users)))
            if isinstance(ref, vim.dvs.DistributedVirtualPortgroup):
                self._wait(ref.Destroy_Task(), "network.delete", "network '%s'" % name)
                return
            if isinstance(ref, vim.OpaqueNetwork):
                raise Conflict("network '%s' is an opaque (NSX) network: NSX manages it, not vSphere" % name)
            hosts = self._props(ref, ["host"]).get("host") or []
            if not hosts:  # a network without hosts: ESX keeps port groups on its one host
                hosts = [r for r, _p in self._retrieve(vim.HostSystem, ["name"])]
            for host in hosts:
                system = self._props(host, ["configManager.networkSystem"])["configManager.networkSystem"]
                groups = self._props(system, ["networkInfo.portgroup"]).get("networkInfo.portgroup") or []
                if any(g.spec.name == name for g in groups):
                    system.RemovePortGroup(pgName=name)

    def _network_ref(self, network_id):
        """The managed object of a network, by id or name."""
        found = self._retrieve(vim.Network, ["name"])
        for ref, _props in found:
            if ref._moId == network_id:
                return ref
        wanted = self.get_network(network_id).id  # by name; NotFound or Conflict otherwise
        return next(ref for ref, _props in found if ref._moId == wanted)

    # -- meters --------------------------------------------------------------------------------
    def _counters(self):
        """{counter "group.name.rollup": id} of the PerformanceManager."""
        if "counters" not in self._cache:
            counters = self._props(self.content.perfManager, ["perfCounter"]).get("perfCounter") or []
            self._cache["counters"] = {"%s.%s.%s" % (c.groupInfo.key, c.nameInfo.key, c.rollupType): c.key
                                       for c in counters}
        return self._cache["counters"]

    def _meters(self):
        counters = self._counters()
        return [(aspect, counters[counter], units, scale) for aspect, counter, units, scale in METERS
                if counter in counters]

    def list_meters(self, machine_id, start=None, end=None):
        """Each counter's latest real-time sample; with a window, the samples QueryPerf keeps in it."""
        start, end = meter_window(start, end)
        with self._faults("meter.list", "machine '%s'" % machine_id):
            ref = self._find_vm(machine_id)[0]
            meters = self._meters()
            series = self._query_perf(ref, [counter for _aspect, counter, _units, _scale in meters], start, end)
            out = []
            for aspect, counter, units, scale in meters:
                samples = [Sample(timestamp=stamp.isoformat(), value=_number(value * scale))
                           for stamp, value in series.get(counter, ())]
                out.append(Meter(
                    id="%s/%s" % (machine_id, aspect.rsplit("/", 1)[-1]), name=aspect.rsplit("/", 1)[-1],
                    targetResource={"href": machine_id}, aspect=aspect, units=units,
                    sampleInterval=REALTIME_INTERVAL, timeScope="Point", isContinuous=True,
                    samples=samples or None))
            return out

    def _query_perf(self, ref, counters, start, end):
        """{counter id: [(timestamp, raw value)] oldest first}: the latest sample of each counter without a
        window, else those in [start, end] at the finest interval that still keeps ``start``."""
        if not counters:
            return {}
        metric = vim.PerformanceManager.MetricId
        spec = vim.PerformanceManager.QuerySpec(entity=ref, intervalId=REALTIME_INTERVAL, maxSample=1,
                                                metricId=[metric(counterId=c, instance="") for c in counters])
        now = datetime.now(UTC)
        windowed = start is not None or end is not None
        if windowed:
            until = min(end or now, now)  # nothing is sampled in the future
            since = start or until - timedelta(seconds=REALTIME_KEPT)
            if since > until:
                return {}
            spec.intervalId = self._perf_interval(now - since)
            spec.startTime, spec.endTime = since, until
            spec.maxSample = min(MAX_SAMPLES, int((until - since).total_seconds()) // spec.intervalId + 1)
        found = {}
        for entity in self.content.perfManager.QueryPerf(querySpec=[spec]) or []:
            times = [info.timestamp for info in entity.sampleInfo or []]
            for values in entity.value or []:
                # a powered-off VM has no real-time samples on real vSphere: no values for its times
                values_kept = list(getattr(values, "value", None) or [])
                pairs = sorted(zip(times, values_kept, strict=False), key=lambda pair: pair[0])
                if windowed:
                    pairs = [(t, v) for t, v in pairs if since <= t <= until]
                found[values.id.counterId] = pairs if windowed else pairs[-1:]
        return found

    def _perf_interval(self, age):
        """The sampling period (seconds) that keeps samples ``age`` old: real-time for the last hour, else the
        finest of vCenter's historical intervals long enough (an ESX host keeps none: real-time)."""
        if age.total_seconds() <= REALTIME_KEPT:
            return REALTIME_INTERVAL
        kept = self._props(self.content.perfManager, ["historicalInterval"]).get("historicalInterval") or []
        periods = sorted((i.samplingPeriod, i.length) for i in kept if i.enabled)
        fitting = [period for period, length in periods if length >= age.total_seconds()]
        return fitting[0] if fitting else (periods[-1][0] if periods else REALTIME_INTERVAL)

    # -- capabilities -----------------------------------------------------------------------------
    def capabilities(self):
        if "caps" in self._cache:
            return self._cache["caps"]
        with self._faults("capabilities"):
            dc = self._datacenter()[1]
            hosts = [p for _ref, p in self._retrieve(vim.HostSystem, HOST_PROPS, root=dc["hostFolder"])
                     if p.get("runtime.connectionState", "connected") == "connected"]
            cpus = [min(p.get("summary.hardware.numCpuThreads") or 1, p.get("capability.maxSupportedVcpus") or 4096)
                    for p in hosts]
            mems = [(p.get("summary.hardware.memorySize") or 0) // (1024 * 1024) for p in hosts]
            mhz = [p.get("summary.hardware.cpuMhz") or 0 for p in hosts]
            about = self.content.about
            caps = Capabilities(
                provider=self.name, operations=self.implemented_operations(),
                cpu=Range(1, max(cpus) if cpus else None), memory_mib=Range(4, max(mems) if mems else None),
                cpu_mhz=Range(None, max(mhz) if mhz else None), archs=("x86_64",),
                meters=tuple(meter[0] for meter in self._meters()),
                locations=tuple(p["name"] for _ref, p in self._compute_resources()),
                **self.guest_fields(), image_formats=self.import_formats(),
                extras={"apiType": about.apiType, "apiVersion": about.apiVersion, "product": about.fullName,
                        "images": "disk files" if self.is_esx else "templates"})
            self._cache["caps"] = caps
            return caps


# -- helpers ------------------------------------------------------------------------------------
def _fault_table():
    """vSphere faults -> Sirocco errors, first match wins (a subclass before its base)."""
    return (
        ErrorRule((OSError, http.client.HTTPException), ProviderUnavailable,
                  message="%(where)s: connection failed (%(detail)s)"),
        ((vim.fault.InvalidLogin, vim.fault.NotAuthenticated), AuthError),
        ((vim.fault.NoPermission,), Forbidden),
        ((vmodl.fault.ManagedObjectNotFound, vim.fault.FileNotFound), NotFound),
        ErrorRule(vim.fault.InvalidPowerState, Conflict,
                  detail=lambda exc: "the machine is %s" % (exc.existingState or "in another power state")),
        ErrorRule(vim.fault.ToolsUnavailable, Conflict,
                  detail=lambda exc: "VMware Tools are not running in the guest; use force"),
        ((vim.fault.InvalidState, vim.fault.TaskInProgress, vim.fault.DuplicateName,
          vim.fault.FileAlreadyExists, vim.fault.AlreadyExists, vim.fault.InsufficientResourcesFault), Conflict),
        ((vmodl.fault.NotSupported, vmodl.fault.MethodNotFound), Unsupported),
        ((vmodl.fault.InvalidArgument, vim.fault.InvalidDeviceSpec, vim.fault.InvalidVmConfig,
          vim.fault.InvalidDatastorePath, vim.fault.InvalidName), InvalidInput),
        ErrorRule(Exception, ProviderUnavailable, message="%(where)s: failed (%(detail)s)"),
    )


def _fault_text(exc):
    """A one-line text for an exception: a vSphere fault's name and message (never its whole dump)."""
    name = type(exc).__name__.rsplit(".", 1)[-1]
    if vmodl is not None and isinstance(exc, vmodl.MethodFault):
        msg = (exc.msg or "").strip() or (getattr(exc, "file", None) or getattr(exc, "name", None) or "")
    else:
        msg = str(exc).strip()
    return "%s: %s" % (name, msg) if msg and name not in msg else (msg or name)


FAULTS = ErrorTable(_fault_table, detail=_fault_text, message="%(where)s: %(detail)s",
                    unsupported="%(where)s: not supported by this endpoint (%(detail)s)", keep_cause=True)


def _where(operation, subject):
    return "provider 'vsphere': %s%s" % (operation, " of %s" % subject if subject else "")


def _number(value):
    return ("%.2f" % value).rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _file_name(device):
    return getattr(getattr(device, "backing", None), "fileName", None)


def _nic_network(backing):
    if isinstance(backing, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo) and backing.network is not None:
        return backing.network._moId
    port = getattr(backing, "port", None)
    return getattr(port, "portgroupKey", None)


def _device_add(device, create=False):
    return vim.vm.device.VirtualDeviceSpec(operation="add", device=device, fileOperation="create" if create else None)


def _disk_device(key, controller_key, unit, capacity_kb, file_name, thin=True):
    """A VirtualDisk on ``file_name``: an existing file, or ``[datastore]`` for a new one (fileOperation create)."""
    backing = vim.vm.device.VirtualDisk.FlatVer2BackingInfo(fileName=file_name, diskMode="persistent",
                                                            thinProvisioned=thin)
    return vim.vm.device.VirtualDisk(key=key, controllerKey=controller_key, unitNumber=unit,
                                     capacityInKB=int(capacity_kb), backing=backing)

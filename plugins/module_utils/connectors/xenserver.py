# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""XenServer / XCP-ng connector, through XAPI with the ``XenAPI`` package.

``uri`` is the pool master's URL (``https://xs.example.org`` or ``http://...``),
``username``/``password`` a XAPI account (never logged). Mapping (native id in
brackets):

* Machine = VM that is neither a template, a snapshot nor a control domain
  [VM uuid]. ``description`` is its ``name_description``; ``properties`` live in
  its ``other_config`` under the ``sirocco:`` key prefix; ``created`` is its
  metrics' ``install_time``.
* MachineImage = template or snapshot [VM uuid]; ``capture`` takes a snapshot
  (any power state), which XAPI keeps as a template-like VM that new machines
  are cloned from.
* ``machine_image.import`` (``image_formats``: vhd, raw) = a VDI of type
  ``system`` (``VDI.create`` on the SR of option ``sr``, else the pool's
  default SR) filled through XAPI's HTTP handler ``PUT /import_raw_vdi``
  (``session_id``, ``vdi``, ``format=raw|vhd``, and a ``task_id`` of ours from
  ``task.create``: xapi answers 200 before it reads the body, and only that
  task tells how the import ended, ``VDI_IO_ERROR`` whenever its vhd-tool
  failed), then a template VM holding it (``is_a_template``, HVM, boot order
  ``c``, ``HVM_boot_params:firmware`` ``bios`` or ``uefi`` with
  ``platform:secureboot`` false, one bootable RW VBD at device 0). A dynamic
  VHD is sent as ``format=vhd``; a fixed VHD as ``format=raw`` (its data
  without the footer: vhd-tool reads a VHD stream from its leading footer
  copy, which a fixed VHD lacks); a differencing one is refused. Everything is
  checked before anything is made (format and architecture x86_64, the VHD's
  footers, header, allocation table and blocks, the disk not larger than
  ``virtual_size``, the sha256 checksum, the name free among images); a
  failed import destroys its VM, VDI and task. The ``sirocco.*`` facts
  (generic name, format, size, arch) and the caller's properties go to the
  template's ``other_config`` under the ``sirocco:`` prefix, which
  list/get/find read back as ``properties``; deleting the image destroys the
  template and its VDI (refused while a machine made from it exists); a
  machine made from it gets its own clone of the disk.
* MachineConfiguration = named size (option ``sizes``, else base.DEFAULT_SIZES),
  applied with the VCPUs and memory setters.
* Volume = VDI of type ``user`` [VDI uuid]; disks made for a machine (template
  provisioning, config disks) are of type ``system`` and belong to the machine:
  deleting the machine destroys them, never a volume.
* userData and a credential (``guest_inputs``) reach the guest on a config drive, as
  OpenStack Nova's XenAPI driver and Xen Orchestra give cloud-init its data: a VDI of
  type ``system`` (named ``<machine> config drive``, ``other_config``
  ``sirocco-config-drive`` = the machine's uuid) holding a NoCloud seed, an ISO 9660
  image labelled ``cidata`` (``cloudinit.nocloud_iso``: ``meta-data`` with the
  machine's uuid as instance-id, its name as host name and the credential's key for the
  image's default user; ``user-data`` from ``cloudinit.guest_user_data``), written
  through ``PUT /import_raw_vdi`` (``format=raw``) and attached as a read-only,
  non-bootable Disk VBD (Nova's ``read_only=True``), where cloud-init finds it by its
  label. It is no disk of the machine (listings and meters leave it out, capture ignores
  it) and goes with the machine. The credential's user is the property
  ``sirocco.user`` (base.USER_PROPERTY). userData over ``CONFIG_DRIVE_USER_DATA_LIMIT``
  and a credential without an SSH key are refused before anything is made.
* Network = XAPI network [network uuid]; ``create_network`` makes an internal
  network (no PIF). A XAPI network is a layer-2 bridge: ``cidr`` and ``dhcp`` are refused
  (InvalidInput) before anything is made. No volume types either (InvalidInput ``type``).
* Meters = the VM's RRD data sources (``VM.get_data_sources``) while it runs: their current
  values. Over a window, the rows of its RRDs in it, read from XAPI's HTTP handler ``GET
  /rrd_updates`` (``start``, ``interval``: the finest archive reaching back to the window's start,
  ``cf=AVERAGE``, ``vm_uuid``); the disk aspect (the VDIs' physical utilisation, which no RRD
  keeps), a halted VM and a XAPI without the handler give the current sample when now is in it.
* resize (``VM``): halted, ``VM.set_VCPUs_max``/``set_VCPUs_at_startup`` (in the order that
  keeps at_startup <= max) and ``VM.set_memory_limits`` (static max and dynamic range to the new
  size); running, only the VCPU count, within ``VCPUs_max``, through
  ``VM.set_VCPUs_number_live`` (xapi keeps it as VCPUs_at_startup); anything else is Conflict
  "stop it first" (``resize_needs_stop`` says so beforehand). Checked against the pool's hosts
  first (InvalidInput ``machineConfig``).
* Volume resize: grow only (InvalidInput ``capacity``), ``VDI.resize``; while a running VM has the
  VDI plugged, ``VDI.resize_online`` when the VDI's ``allowed_operations`` offer it (the SR's
  driver declares VDI_RESIZE_ONLINE; xapi removed the call in 7.1 and brought it back in 26.x),
  else Conflict naming what to do (detach it or stop the machine).

No ``XenAPI.Failure`` leaves this module: ``FAILURES`` below maps each code to
the one error hierarchy of ``cimi.errors``.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import re
import socket
import ssl
import struct
import time
import xmlrpc.client
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit
from xml.etree import ElementTree

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
    import XenAPI
    HAS_XENAPI = True
    XENAPI_IMPORT_ERROR = None
except ImportError as exc:  # Ansible's sanity import test runs without third-party libraries
    XENAPI_IMPORT_ERROR = exc
    XenAPI = None
    HAS_XENAPI = False

NULL = "OpaqueRef:NULL"
PROPERTY_PREFIX = "sirocco:"
IMAGE_KEY = "sirocco-image"  # other_config key of a machine: uuid of the image it was made from
CONFIG_DRIVE_KEY = "sirocco-config-drive"  # other_config key of a config drive VDI (and its VBD): its machine
# userData a config drive takes: far above what clouds take (EC2 16 KiB, Nova 64 KiB) so that no real
# cloud-config is refused, while the drive stays a few MiB (cloud-init reads user-data into memory and keeps
# copies of it in /var/lib/cloud)
CONFIG_DRIVE_USER_DATA_LIMIT = 1024 * 1024
API_VERSION = "2.21"
ORIGINATOR = "sirocco"
ASPECT = "http://schemas.dmtf.org/cimi/2/aspect/"
METER_UNITS = {"cpu": "percent", "memory": "KiB", "disk": "KiB", "inputBandwidth": "bytes/s received",
               "outputBandwidth": "bytes/s sent"}
METERS = tuple(ASPECT + a for a in METER_UNITS)
# xcp-rrdd's archives of a VM: (step, seconds it reaches back): 5 s for 10 minutes, a minute for 2 hours, an hour
# for a week, a day for a year; /rrd_updates is asked for the finest one that reaches back to a window's start
RRD_SPANS = ((5, 600), (60, 7200), (3600, 7 * 86400), (86400, 366 * 86400))
SAMPLE_STEP = timedelta(seconds=RRD_SPANS[0][0])
MIB = 1024 * 1024
VHD_FOOTER, VHD_HEADER = 512, 1024
VHD_FIXED, VHD_DYNAMIC, VHD_DIFFERENCING = 2, 3, 4
TEMPLATE_MEMORY = 256 * MIB  # what an imported template holds until create_machine applies a size

# -- native states: the one table ---------------------------------------------
# VM.power_state -> CIMI state, and the state shown while a VM operation runs
# (VM.current_operations), which wins over the power state.
POWER_STATES = {
    "Halted": states.STOPPED,
    "Running": states.STARTED,
    "Paused": states.PAUSED,
    "Suspended": states.SUSPENDED,
}
OPERATION_STATES = {
    "start": states.STARTING, "start_on": states.STARTING, "resume": states.STARTING,
    "resume_on": states.STARTING, "unpause": states.STARTING,
    "clean_shutdown": states.STOPPING, "hard_shutdown": states.STOPPING, "shutdown": states.STOPPING,
    "clean_reboot": states.STOPPING, "hard_reboot": states.STOPPING,
    "pause": states.PAUSING, "suspend": states.SUSPENDING,
    "snapshot": states.CAPTURING, "checkpoint": states.CAPTURING, "clone": states.CAPTURING,
    "copy": states.CAPTURING, "export": states.CAPTURING,
    "destroy": states.DELETING,
}


def cimi_state(power_state, current_operations=None):
    """CIMI state of a VM from its ``power_state`` and ``current_operations`` (task -> operation)."""
    for operation in (current_operations or {}).values():
        if operation in OPERATION_STATES:
            return OPERATION_STATES[operation]
    return POWER_STATES.get(power_state, states.ERROR)


# -- errors: the one place XAPI failures are translated ---------------------------
_FAILURES = (
    (NotFound, ("HANDLE_INVALID", "UUID_INVALID", "SR_NOT_FOUND", "VDI_MISSING")),
    (Conflict, ("VM_BAD_POWER_STATE", "OTHER_OPERATION_IN_PROGRESS", "OPERATION_NOT_ALLOWED", "OPERATION_BLOCKED",
                "VM_IS_TEMPLATE", "VM_IS_SNAPSHOT", "ONLY_PROVISION_TEMPLATE", "VDI_IN_USE", "VDI_READONLY",
                "DEVICE_ALREADY_ATTACHED", "DEVICE_ALREADY_DETACHED", "DEVICE_ALREADY_EXISTS",
                "NETWORK_CONTAINS_VIF", "NETWORK_CONTAINS_PIF", "HOST_NOT_ENOUGH_FREE_MEMORY", "SR_FULL",
                "VM_MISSING_PV_DRIVERS", "VM_LACKS_FEATURE", "VM_HAS_PCI_ATTACHED", "MAP_DUPLICATE_KEY",
                "SR_OPERATION_NOT_SUPPORTED", "TASK_CANCELLED", "VM_REQUIRES_SR", "NO_HOSTS_AVAILABLE")),
    (InvalidInput, ("INVALID_VALUE", "FIELD_TYPE_ERROR", "VALUE_NOT_SUPPORTED", "MEMORY_CONSTRAINT_VIOLATION",
                    "INVALID_DEVICE", "VDI_TOO_SMALL", "VDI_TOO_LARGE",
                    "SR_BACKEND_FAILURE_79")),  # the sm drivers' "VDI Invalid size" (a shrink)
    (Unsupported, ("MESSAGE_METHOD_UNKNOWN", "MESSAGE_REMOVED", "MESSAGE_DEPRECATED")),
    (AuthError, ("SESSION_AUTHENTICATION_FAILED", "SESSION_INVALID", "USER_IS_NOT_LOCAL_SUPERUSER")),
    (Forbidden, ("RBAC_PERMISSION_DENIED", "PERMISSION_DENIED")),
    (ProviderUnavailable, ("HOST_IS_SLAVE", "HOST_OFFLINE", "HOST_STILL_BOOTING", "HOST_HAS_NO_MANAGEMENT_IP",
                           "INTERNAL_ERROR", "HOST_IN_EMERGENCY_MODE", "VDI_IO_ERROR")),
)
FAILURES = {code: cls for cls, codes in _FAILURES for code in codes}


def _failure_text(details):
    """What a XAPI ``ErrorDescription`` says, in words for people where its code is a common one."""
    code, params = details[0], details[1:]
    if code == "VM_BAD_POWER_STATE" and len(params) >= 3:
        return "the VM is %s (XAPI wants it %s)" % (params[2], params[1])
    if code == "SESSION_AUTHENTICATION_FAILED":
        return "authentication failed for user '%s'" % (params[0] if params else "")
    if code == "HOST_IS_SLAVE" and params:
        return "this host is not the pool master; connect to %s instead" % params[0]
    return code + (" (%s)" % ", ".join(params) if params else "")


FAILURE_ERRORS = ErrorTable(codes=FAILURES, code=lambda details: details[0], detail=_failure_text,
                            code_field="xapi_error",
                            unsupported="provider '%(provider)s' cannot %(operation)s for %(subject)s: %(detail)s")


def failure_error(details, operation, subject, provider="xenserver"):
    """The Sirocco error for a XAPI ``ErrorDescription`` ([code, params...]) met during ``operation``."""
    details = [str(d) for d in (details or ["INTERNAL_ERROR", "no error description"])]
    return FAILURE_ERRORS.error(details, operation, subject, provider)


def task_value(result):
    """Decode a task's ``result``: the XML-RPC encoding of the call's value, empty for none."""
    if not result:
        return None
    doc = ("<?xml version='1.0'?><methodResponse><params><param>%s</param></params></methodResponse>" % result)
    return xmlrpc.client.loads(doc)[0][0]


def iso_time(value):
    """An XML-RPC dateTime from XAPI (e.g. ``20240131T10:00:00Z``) as ISO 8601, None for the epoch/unset."""
    text = str(getattr(value, "value", value) or "")
    match = re.match(r"^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})", text)
    if not match:
        return None
    stamp = datetime(*(int(g) for g in match.groups()), tzinfo=UTC)
    if stamp.year <= 1970:
        return None
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def properties_of(other_config):
    """CIMI properties stored in an ``other_config`` map under the ``sirocco:`` prefix."""
    return {k[len(PROPERTY_PREFIX):]: v for k, v in (other_config or {}).items() if k.startswith(PROPERTY_PREFIX)}


def with_properties(other_config, properties):
    """``other_config`` with its ``sirocco:`` keys (and Sirocco's own bookkeeping) replaced by ``properties``."""
    kept = {k: v for k, v in (other_config or {}).items() if not k.startswith(PROPERTY_PREFIX) and k != IMAGE_KEY}
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput("properties must map strings to strings", attribute="properties")
        kept[PROPERTY_PREFIX + key] = value
    return kept


def userdevice(initial_location, used):
    """XAPI ``userdevice`` for a CIMI ``initialLocation`` (``"2"``, ``"xvdc"``), or the first free one."""
    if initial_location in (None, ""):
        return next(str(n) for n in range(64) if str(n) not in used)
    text = str(initial_location)
    match = re.match(r"^(?:xvd|sd|hd|vd)([a-p])$", text)
    number = str("abcdefghijklmnop".index(match.group(1))) if match else text
    if not number.isdigit() or int(number) > 63:
        raise InvalidInput("initialLocation '%s' is not a device position like 2 or xvdc" % text,
                           attribute="initialLocation")
    if number in used:
        raise Conflict("device position %s (initialLocation '%s') is already used" % (number, text))
    return number


def vcpu_steps(current_max, wanted):
    """Order of the VCPU setters so that 0 < VCPUs_at_startup <= VCPUs_max holds after each call."""
    if wanted > current_max:
        return (("VM.set_VCPUs_max", wanted), ("VM.set_VCPUs_at_startup", wanted))
    return (("VM.set_VCPUs_at_startup", wanted), ("VM.set_VCPUs_max", wanted))


def aspect_values(sources):
    """{aspect: value} of the RRD data sources of a VM ({name: value}): CPU as the mean of its VCPUs' usage in
    percent, memory used in KiB (allocated less what the guest reports free), bytes per second over its VIFs."""
    cpus = [v for k, v in sources.items() if re.match(r"^cpu\d+$", k)]
    memory = sources.get("memory", 0.0) / 1024
    free_kib = sources.get("memory_internal_free")
    return {"cpu": sum(cpus) / len(cpus) * 100 if cpus else 0.0,
            "memory": max(memory - free_kib if free_kib is not None else memory, 0.0),
            "inputBandwidth": sum(v for k, v in sources.items() if re.match(r"^vif_.*_rx$", k)),
            "outputBandwidth": sum(v for k, v in sources.items() if re.match(r"^vif_.*_tx$", k))}


def _is_machine(record):
    return not (record["is_a_template"] or record["is_a_snapshot"] or record["is_control_domain"]
                or record.get("other_config", {}).get("is_system_domain") == "true")


def _is_image(record):
    return bool(record["is_a_template"]) and not record["is_control_domain"]


def _is_config_drive(vdi_record):
    return CONFIG_DRIVE_KEY in ((vdi_record or {}).get("other_config") or {})


def _vhd_checksum(raw, at):
    """The VHD checksum of a footer or header: one's complement of its byte sum, the checksum field as zero."""
    return ~(sum(raw) - sum(raw[at:at + 4])) & 0xFFFFFFFF


def _vhd_footer(raw):
    """(current_size, disk_type, data_offset) of a VHD footer (cookie, version and checksum checked), else None."""
    if len(raw) != VHD_FOOTER or raw[:8] != b"conectix" or struct.unpack_from(">I", raw, 12)[0] != 0x00010000:
        return None
    data_offset, = struct.unpack_from(">Q", raw, 16)
    current_size, = struct.unpack_from(">Q", raw, 48)
    disk_type, checksum = struct.unpack_from(">II", raw, 60)
    if checksum != _vhd_checksum(raw, 64):
        return None
    return current_size, disk_type, data_offset


def _bad_vhd(path, why):
    return InvalidInput("image file %s is not a VHD XenServer can import: %s" % (path, why), attribute="files")


def vhd_upload(path):
    """How XAPI takes a VHD file: (format for import_raw_vdi, bytes to send, the disk's virtual size), the whole
    structure checked first (footers, header, block allocation table, every block inside the file): what
    xapi's vhd-tool cannot read fails only after the upload began, as VDI_IO_ERROR.

    A dynamic VHD goes as is (``format=vhd``). vhd-tool reads a VHD stream from its leading footer copy, which
    a fixed VHD does not have; but a fixed VHD's data, all but its trailing footer, is the raw disk: it goes
    as ``format=raw``. A differencing VHD needs its parent: refused."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(VHD_FOOTER)
        handle.seek(max(size - VHD_FOOTER, 0))
        tail = _vhd_footer(handle.read(VHD_FOOTER))
        if tail is None:
            raise _bad_vhd(path, "no valid VHD footer at its end (not a dynamic or fixed VHD)")
        current_size, disk_type, data_offset = tail
        if disk_type == VHD_FIXED:
            if current_size != size - VHD_FOOTER:
                raise _bad_vhd(path, "a fixed VHD of %d bytes holding %d bytes of data"
                               % (current_size, size - VHD_FOOTER))
            return "raw", size - VHD_FOOTER, current_size
        if disk_type == VHD_DIFFERENCING:
            raise _bad_vhd(path, "a differencing VHD needs its parent")
        if disk_type != VHD_DYNAMIC:
            raise _bad_vhd(path, "disk type %d is not a dynamic or fixed VHD" % disk_type)
        if _vhd_footer(head) != tail:
            raise _bad_vhd(path, "no copy of its footer at its start")
        if data_offset % 512 or data_offset + VHD_HEADER > size - VHD_FOOTER:
            raise _bad_vhd(path, "its header offset %d is outside the file" % data_offset)
        handle.seek(data_offset)
        header = handle.read(VHD_HEADER)
        if header[:8] != b"cxsparse" or struct.unpack_from(">I", header, 36)[0] != _vhd_checksum(header, 36):
            raise _bad_vhd(path, "its dynamic disk header is damaged (cookie or checksum)")
        table_offset, = struct.unpack_from(">Q", header, 16)
        entries, block_size = struct.unpack_from(">II", header, 28)
        if block_size < 512 or block_size % 512 or entries * block_size < current_size:
            raise _bad_vhd(path, "%d blocks of %d bytes cannot hold its %d bytes"
                           % (entries, block_size, current_size))
        if table_offset % 512 or table_offset + 4 * entries > size - VHD_FOOTER:
            raise _bad_vhd(path, "its block allocation table is outside the file")
        handle.seek(table_offset)
        bitmap = -(-block_size // 512 // 8 // 512) * 512
        for sector in struct.unpack(">%dI" % entries, handle.read(4 * entries)):
            if sector != 0xFFFFFFFF and sector * 512 + bitmap + block_size > size - VHD_FOOTER:
                raise _bad_vhd(path, "a block at sector %d lies outside the file" % sector)
    return "vhd", size, current_size


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(MIB), b""):
            digest.update(piece)
    return digest.hexdigest()


class _Transport(xmlrpc.client.SafeTransport):
    """HTTP(S) transport with a socket timeout and the TLS verification the caller asked for."""

    def __init__(self, timeout, https, validate_certs):
        context = None
        if https:
            context = ssl.create_default_context()
            if not validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
        super().__init__(context=context)
        self._timeout = timeout
        self._https = https

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        chost, self._extra_headers, _x509 = self.get_host_info(host)
        if self._https:
            conn = http.client.HTTPSConnection(chost, timeout=self._timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(chost, timeout=self._timeout)
        self._connection = host, conn
        return conn


class _Records:
    """Records of one listing: whole classes fetched once (bulk) or one record at a time."""

    def __init__(self, connector, bulk):
        self.connector = connector
        self.bulk = bulk
        self.tables = {}

    def table(self, cls):
        if cls not in self.tables:
            self.tables[cls] = self.connector._call(cls + ".get_all_records")
        return self.tables[cls]

    def get(self, cls, ref):
        if ref in (None, "", NULL):
            return None
        if self.bulk:
            return self.table(cls).get(ref)
        table = self.tables.setdefault(cls, {})
        if ref not in table:
            try:
                table[ref] = self.connector._call(cls + ".get_record", ref)
            except NotFound:
                table[ref] = None  # destroyed while we looked: leave it out
        return table[ref]


# -- the connector ----------------------------------------------------------------

class XenServerConnector(Connector):
    name = "xenserver"
    option_names = ("sizes", "sr", "network")
    image_formats = ("vhd", "raw")
    guest_inputs = frozenset({"userData", "credential"})
    user_data_limit = CONFIG_DRIVE_USER_DATA_LIMIT

    def __init__(self, uri=None, username=None, password=None, region=None, validate_certs=True,
                 timeout=60, options=None):
        super().__init__(uri=uri, username=username or "root", password=password, region=region,
                         validate_certs=validate_certs, timeout=timeout, options=options)
        if not HAS_XENAPI:
            raise missing_sdk("xenserver", "XenAPI", XENAPI_IMPORT_ERROR)
        parts = urlsplit(self.uri or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput("xenserver uri must be the pool master's URL, like https://xenserver.example.org "
                               "(got %r)" % (self.uri,), attribute="uri")
        self.configs = sizes_from_options(self.options.get("sizes"))
        self._session = None
        self._caps = None
        self._mhz = {}  # host ref -> CPU MHz (pool_facts)

    # -- connection ------------------------------------------------------------------
    @property
    def session(self):
        """The logged-in XenAPI session, opened on first use."""
        if self._session is None:
            https = self.uri.startswith("https:")
            session = XenAPI.Session(self.uri, transport=_Transport(self.timeout, https, self.validate_certs))
            try:
                session.xenapi.login_with_password(self.username, self._password or "", API_VERSION, ORIGINATOR)
            except XenAPI.Failure as exc:
                err = failure_error(exc.details, "login", "XenServer at %s" % self.uri, self.name)
                raise (err if isinstance(err, (AuthError, Forbidden)) else
                       ProviderUnavailable("cannot log in to XenServer at %s: %s" % (self.uri, err))) from None
            except (OSError, http.client.HTTPException, xmlrpc.client.Error) as exc:
                raise ProviderUnavailable("cannot reach XenServer at %s: %s" % (self.uri, _reason(exc))) from None
            self._session = session
        return self._session

    def close(self):
        if self._session is not None:
            try:
                self._session.xenapi.session.logout()
            except Exception:  # noqa: BLE001 - closing a dead session: nothing left to release
                pass
            self._session = None

    def _call(self, method, *args, operation=None, subject=None):
        """One XAPI call (``"VM.start"``, ``"Async.VM.clone"``...), its failure mapped to a Sirocco error."""
        target = self.session.xenapi
        for part in method.split("."):
            target = getattr(target, part)
        try:
            return target(*args)
        except XenAPI.Failure as exc:
            raise failure_error(exc.details, operation or method, subject or "XenServer at %s" % self.uri,
                                self.name) from None
        except xmlrpc.client.Fault as exc:
            raise ProviderUnavailable("XenServer at %s failed %s: %s" % (self.uri, method, exc.faultString)) from None
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as exc:
            self._session = None  # the next call logs in again
            raise ProviderUnavailable("XenServer at %s did not answer %s: %s" % (self.uri, method, _reason(exc))) \
                from None

    def _async(self, method, *args, operation=None, subject=None):
        """Run ``Async.<method>`` and wait for its task; returns the decoded result."""
        task = self._call("Async." + method, *args, operation=operation, subject=subject)
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        try:
            while True:
                record = self._call("task.get_record", task)
                status = record["status"]
                if status == "success":
                    return task_value(record["result"])
                if status in ("failure", "cancelled"):
                    raise failure_error(record["error_info"] or ["TASK_CANCELLED", task], operation or method,
                                        subject or "XenServer at %s" % self.uri, self.name)
                if time.monotonic() > deadline:
                    try:
                        self._call("task.cancel", task)
                    except SiroccoError:
                        pass  # it may have just finished
                    raise OperationTimeout("%s: %s took more than %ss" % (subject or self.uri, method, self.timeout))
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        finally:
            try:
                self._call("task.destroy", task)
            except SiroccoError:
                pass  # a task left behind is garbage-collected by XAPI

    # -- capabilities -------------------------------------------------------------------
    def pool_facts(self):
        """Hosts of the pool: names, CPU counts and speeds, memory (read once per connector)."""
        if self._caps is None:
            hosts = self._call("host.get_all_records")
            metrics = self._call("host_metrics.get_all_records")
            cpus = self._call("host_cpu.get_all_records")
            facts = []
            self._mhz = {}
            for ref, host in sorted(hosts.items(), key=lambda item: item[1]["name_label"]):
                speeds = [int(float(c["speed"])) for c in cpus.values() if c["host"] == ref and c.get("speed")]
                self._mhz[ref] = max(speeds) if speeds else None
                count = int(host.get("cpu_info", {}).get("cpu_count") or len(speeds) or 1)
                total = int((metrics.get(host["metrics"]) or {}).get("memory_total") or 0)
                facts.append({"name": host["name_label"], "cpus": count, "mhz": max(speeds) if speeds else None,
                              "memory_mib": total // MIB, "enabled": host.get("enabled", True)})
            self._caps = facts
        return self._caps

    def capabilities(self):
        hosts = self.pool_facts()
        speeds = [h["mhz"] for h in hosts if h["mhz"]]
        return Capabilities(
            provider=self.name, operations=self.implemented_operations(),
            cpu=Range(1, max((h["cpus"] for h in hosts), default=None)),
            cpu_mhz=Range(min(speeds) if speeds else None, max(speeds) if speeds else None),
            memory_mib=Range(1, max((h["memory_mib"] for h in hosts), default=None)),
            archs=("x86_64",), meters=METERS, locations=tuple(h["name"] for h in hosts),
            stop_force_default=False,
            image_formats=self.import_formats(), extras={"hosts": len(hosts)}, **self.guest_fields())

    # -- lookups -------------------------------------------------------------------------
    def _ref(self, cls, native_id, what):
        try:
            return self._call(cls + ".get_by_uuid", str(native_id))
        except NotFound:
            raise NotFound("%s '%s' not found on provider xenserver (%s)" % (what, native_id, self.uri)) from None

    def _vm(self, machine_id):
        """(ref, record) of the machine ``machine_id``; templates, snapshots and dom0 are no machines."""
        ref = self._ref("VM", machine_id, "machine")
        record = self._call("VM.get_record", ref)
        if not _is_machine(record):
            raise NotFound("machine '%s' not found on provider xenserver (%s): it is a template, snapshot or "
                           "control domain" % (machine_id, self.uri))
        return ref, record

    def _act(self, machine_id, action):
        """Look up the machine and refuse ``action`` unless its CIMI state allows it."""
        ref, record = self._vm(machine_id)
        state = cimi_state(record["power_state"], record["current_operations"])
        states.check_allowed(state, action, "machine '%s'" % record["name_label"])
        return ref, record

    def _subject(self, record):
        return "machine '%s'" % record["name_label"]

    # -- machines ------------------------------------------------------------------------
    def _machine(self, record, records):
        disks, volumes, interfaces = [], [], []
        for vbd_ref in record["VBDs"]:
            vbd = records.get("VBD", vbd_ref)
            if vbd is None or vbd["type"] != "Disk" or vbd["empty"]:
                continue
            vdi = records.get("VDI", vbd["VDI"])
            if vdi is None or _is_config_drive(vdi):
                continue
            if vdi["type"] == "user":
                volumes.append(MachineVolume(volume={"href": vdi["uuid"]}, initialLocation=vbd["userdevice"]))
            else:
                disks.append(Disk(capacity=int(vdi["virtual_size"]) // 1024, initialLocation=vbd["userdevice"]))
        guest = records.get("VM_guest_metrics", record["guest_metrics"]) or {}
        addresses = guest.get("networks", {})
        for vif_ref in record["VIFs"]:
            vif = records.get("VIF", vif_ref)
            if vif is None:
                continue
            network = records.get("network", vif["network"])
            iface = NetworkInterface(macAddress=vif["MAC"], mtu=int(vif["MTU"]) if vif.get("MTU") else None,
                                     state="Active" if vif["currently_attached"] else "Passive")
            if network is not None:
                iface.network = {"href": network["uuid"]}
            found = [{"address": v} for k, v in sorted(addresses.items())
                     if k.split("/")[0] == vif["device"] and ("/ip" in k and not k.endswith("/ipv6"))]
            if found:
                iface.addresses = found[:1] if any(k == vif["device"] + "/ip" for k in addresses) else found
            interfaces.append(iface)
        metrics = records.get("VM_metrics", record["metrics"]) or {}
        return Machine(id=record["uuid"], name=record["name_label"], description=record["name_description"] or None,
                       created=iso_time(metrics.get("install_time")), properties=properties_of(record["other_config"]),
                       state=cimi_state(record["power_state"], record["current_operations"]),
                       cpu=int(record["VCPUs_at_startup"]), memory=int(record["memory_static_max"]) // 1024,
                       cpuArch="x86_64", cpuSpeed=self._cpu_speed(record), disks=disks, volumes=volumes,
                       interfaces=interfaces)

    def _cpu_speed(self, record):
        """The clock (MHz) a VM's vCPUs run at: its host's while it is resident on one, else the pool's when
        every host has the same (a halted VM starts on any of them)."""
        self.pool_facts()
        speed = self._mhz.get(record.get("resident_on"))
        if speed is None:
            speeds = set(self._mhz.values())
            speed = speeds.pop() if len(speeds) == 1 else None
        return speed

    def list_machines(self, limit=None, marker=None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a positive integer", attribute="limit")
        # Ordered by uuid: a stable order in which a marker still works after its machine is deleted.
        vms = sorted((r for r in self._call("VM.get_all_records", operation="machine.list").values()
                      if _is_machine(r)), key=lambda r: r["uuid"])
        if marker is not None:
            vms = [r for r in vms if r["uuid"] > str(marker)]
        page = vms if limit is None else vms[:limit]
        # Small pages look records up one by one, larger ones fetch each class once.
        records = _Records(self, bulk=len(page) > 5)
        items = [self._machine(r, records) for r in page]
        more = limit is not None and len(vms) > limit
        return Page(items=items, marker=page[-1]["uuid"] if more and page else None)

    def get_machine(self, machine_id):
        record = self._vm(machine_id)[1]
        return self._machine(record, _Records(self, bulk=False))

    def create_machine(self, spec):
        spec.validate()
        check_guest_inputs(spec, self.name, self.guest_inputs, user_data_limit=CONFIG_DRIVE_USER_DATA_LIMIT)
        user = cloudinit.credential_user(spec.credential)
        seed = bool(spec.user_data or spec.credential)
        if seed and cloudinit.pycdlib is None:
            raise missing_sdk(self.name, "pycdlib", cloudinit.PYCDLIB_IMPORT_ERROR)
        # validates before anything is created
        properties = with_properties({}, {**(spec.properties or {}), **({USER_PROPERTY: user} if user else {})})
        self._check_fit(spec)
        if any(m.name == spec.name for m in self.iter_machines()):
            raise Conflict("a machine named '%s' already exists on %s" % (spec.name, self.uri))
        subject = "machine '%s'" % spec.name
        template, image = self._template(spec.image) if spec.image else (None, None)
        networks = [self._ref("network", n, "network") for n in spec.networks]
        volumes = [self._volume_vdi(v) for v in spec.volumes]
        vm = None
        try:
            if template is not None:
                vm = self._async("VM.clone", template, spec.name, operation="machine.create", subject=subject)
                self._async("VM.provision", vm, operation="machine.create", subject=subject)
            else:
                vm = self._call("VM.create", self._blank_vm(spec), operation="machine.create", subject=subject)
            record = self._call("VM.get_record", vm)
            self._call("VM.set_name_description", vm, spec.description or "")
            other_config = {**with_properties(record["other_config"], {}), **properties}
            if image is not None:
                other_config[IMAGE_KEY] = image["uuid"]
            self._call("VM.set_other_config", vm, other_config)
            self._apply_size(vm, record, spec.config.cpu, spec.config.memory)
            self._config_disks(vm, record, spec)
            if seed:
                self._config_drive(vm, record["uuid"], spec)
            used = {self._call("VIF.get_device", v) for v in record["VIFs"]}
            for network in networks:
                device = next(str(n) for n in range(64) if str(n) not in used)
                used.add(device)
                self._call("VIF.create", {"device": device, "network": network, "VM": vm, "MAC": "", "MTU": "1500",
                                          "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}},
                           operation="machine.create", subject=subject)
            for vdi in volumes:
                self._new_vbd(vm, vdi, None)
            host = None
            if spec.location:  # the host it prefers (XAPI's affinity) and starts on
                host = self._call("host.get_by_name_label", spec.location)[0]
                self._call("VM.set_affinity", vm, host, operation="machine.create", subject=subject)
            if spec.initial_state == states.STARTED and host is not None:
                self._call("VM.start_on", vm, host, False, False, operation="machine.create", subject=subject)
            elif spec.initial_state == states.STARTED:
                self._call("VM.start", vm, False, False, operation="machine.create", subject=subject)
        except BaseException:
            if vm is not None:
                self._destroy_vm(vm)
            raise
        return self._machine(self._call("VM.get_record", vm), _Records(self, bulk=False))

    def _check_fit(self, spec):
        names = [h["name"] for h in self.pool_facts()]
        if spec.location and spec.location not in names:
            raise InvalidInput("location '%s' is not a host of this pool (%s)" % (spec.location, ", ".join(names)),
                               attribute="location")
        reasons = self.capabilities().fits(cpu=spec.config.cpu, memory_mib=-(-spec.config.memory // KIB_PER_MIB),
                                           arch=spec.config.cpuArch)
        if reasons:
            raise InvalidInput("machine '%s' does not fit any host of the pool at %s: %s"
                               % (spec.name, self.uri, "; ".join(reasons)), attribute="machineConfig")

    def _template(self, image_ref):
        """(ref, record) of a template or snapshot given by uuid or (unique) name."""
        try:
            ref = self._call("VM.get_by_uuid", str(image_ref))
        except NotFound:
            ref = self._call("VM.get_by_uuid", self.get_machine_image(image_ref).id)
        record = self._call("VM.get_record", ref)
        if not _is_image(record):
            raise NotFound("machine image '%s' not found on provider xenserver (%s): it is a machine, not a "
                           "template or snapshot" % (image_ref, self.uri))
        return ref, record

    @staticmethod
    def _blank_vm(spec):
        """VM.create's record for a diskless HVM machine (every field XAPI requires)."""
        memory = str(spec.config.memory * 1024)
        return {
            "name_label": spec.name, "name_description": spec.description or "", "user_version": "1",
            "is_a_template": False, "affinity": NULL, "memory_static_max": memory, "memory_dynamic_max": memory,
            "memory_dynamic_min": memory, "memory_static_min": memory, "VCPUs_params": {},
            "VCPUs_max": str(spec.config.cpu), "VCPUs_at_startup": str(spec.config.cpu),
            "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
            "actions_after_crash": "restart", "PV_bootloader": "", "PV_kernel": "", "PV_ramdisk": "",
            "PV_args": "", "PV_bootloader_args": "", "PV_legacy_args": "", "HVM_boot_policy": "BIOS order",
            "HVM_boot_params": {"order": "dc"}, "platform": {"acpi": "1", "apic": "true", "pae": "true"},
            "PCI_bus": "", "other_config": {}, "recommendations": "", "domain_type": "hvm",
        }

    def _apply_size(self, vm, record, cpu, memory_kib, operation="machine.create"):
        """VCPUs (max and at startup) and memory limits (static and dynamic) of a halted VM."""
        subject = self._subject(record)
        for method, value in vcpu_steps(int(record["VCPUs_max"]), cpu):
            self._call(method, vm, str(value), operation=operation, subject=subject)
        memory = str(memory_kib * 1024)
        static_min = str(min(int(record["memory_static_min"]), memory_kib * 1024))
        self._call("VM.set_memory_limits", vm, static_min, memory, memory, memory, operation=operation,
                   subject=subject)

    # -- resize --------------------------------------------------------------------------------
    def _resize_plan(self, machine_id, config):
        """(ref, record, cpu, memory KiB, why the machine cannot take that size now or None), the size checked
        against the pool's hosts first. Halted, a VM takes any size; running, XAPI changes its VCPUs within
        VCPUs_max (VM.set_VCPUs_number_live) and nothing else."""
        cpu, memory_kib = resize_figures(config)
        reasons = self.capabilities().fits(cpu=cpu, memory_mib=-(-memory_kib // KIB_PER_MIB))
        if reasons:
            raise InvalidInput("machineConfig does not fit any host of the pool at %s: %s"
                               % (self.uri, "; ".join(reasons)), attribute="machineConfig")
        ref, record = self._vm(machine_id)
        state = cimi_state(record["power_state"], record["current_operations"])
        same_memory = memory_kib * 1024 == int(record["memory_static_max"])
        if state == states.STOPPED or (same_memory and cpu == int(record["VCPUs_at_startup"])):
            return ref, record, cpu, memory_kib, None
        if state != states.STARTED:
            return ref, record, cpu, memory_kib, "it is %s" % state
        reasons = []
        if not same_memory:
            reasons.append("XenServer changes the memory limits of a halted VM only")
        if cpu > int(record["VCPUs_max"]):
            reasons.append("%d VCPUs exceed its VCPUs_max of %s" % (cpu, record["VCPUs_max"]))
        return ref, record, cpu, memory_kib, "; ".join(reasons) or None

    def resize_needs_stop(self, machine, config):
        """Halted: never; running: unless only its VCPUs change, within VCPUs_max."""
        return self._resize_plan(machine.id, config)[4] is not None

    def resize_machine(self, machine_id, config):
        ref, record, cpu, memory_kib, refusal = self._resize_plan(machine_id, config)
        if refusal:
            raise Conflict("machine '%s' cannot take %d VCPUs and %d MiB now (%s): stop it first"
                           % (record["name_label"], cpu, memory_kib // KIB_PER_MIB, refusal))
        if record["power_state"] == "Halted":
            self._apply_size(ref, record, cpu, memory_kib, operation="machine.resize")
        elif cpu != int(record["VCPUs_at_startup"]):
            self._call("VM.set_VCPUs_number_live", ref, str(cpu), operation="machine.resize",
                       subject=self._subject(record))
        return self.get_machine(machine_id)

    def _config_disks(self, vm, record, spec):
        """Blank disks of the machine's configuration, when its image brought none."""
        wanted = [d.get("capacity") or 0 for d in (spec.config.disks or [])]
        record = self._call("VM.get_record", vm)
        if not wanted or any(self._call("VBD.get_type", v) == "Disk" for v in record["VBDs"]):
            return
        sr = self._sr()
        for i, capacity_kib in enumerate(wanted):
            if capacity_kib <= 0:
                continue
            vdi = self._call("VDI.create", {
                "name_label": "%s disk %d" % (spec.name, i), "name_description": "Created by Sirocco", "SR": sr,
                "virtual_size": str(capacity_kib * 1024), "type": "system", "sharable": False, "read_only": False,
                "other_config": {}, "xenstore_data": {}, "sm_config": {}, "tags": []}, operation="machine.create")
            self._new_vbd(vm, vdi, None, bootable=i == 0)

    def _config_drive(self, vm, machine_uuid, spec):
        """The machine's config drive: its NoCloud seed ISO in a VDI of its own, attached read-only."""
        subject = "machine '%s'" % spec.name
        keys = [spec.credential["key"]] if spec.credential and spec.credential.get("key") else []
        iso = cloudinit.nocloud_iso(cloudinit.nocloud_meta_data(machine_uuid, spec.name, keys),
                                    cloudinit.guest_user_data(spec.user_data, spec.credential), provider=self.name)
        tag = {CONFIG_DRIVE_KEY: machine_uuid}
        vdi = self._call("VDI.create", {
            "name_label": "%s config drive" % spec.name,
            "name_description": "cloud-init NoCloud seed (cidata) of machine %s, made by Sirocco" % spec.name,
            "SR": self._sr(), "virtual_size": str(-(-len(iso) // MIB) * MIB), "type": "system", "sharable": False,
            "read_only": False, "other_config": tag, "xenstore_data": {}, "sm_config": {}, "tags": []},
            operation="machine.create", subject=subject)
        try:
            self._put_vdi(vdi, iso, "raw", len(iso), subject, operation="machine.create")
            used = {self._call("VBD.get_userdevice", v) for v in self._call("VM.get_VBDs", vm)}
            self._call("VBD.create", {
                "VM": vm, "VDI": vdi, "userdevice": userdevice(None, used), "bootable": False, "mode": "RO",
                "type": "Disk", "empty": False, "other_config": tag, "qos_algorithm_type": "",
                "qos_algorithm_params": {}}, operation="machine.create", subject=subject)
        except BaseException:
            try:
                self._call("VDI.destroy", vdi)
            except SiroccoError:
                pass  # best effort: the original error is the one to report
            raise
        return vdi

    def _config_drives(self, record):
        """The config drive VDIs of a VM (tagged with its uuid)."""
        drives = []
        for vbd_ref in record["VBDs"]:
            vdi = self._call("VBD.get_VDI", vbd_ref)
            if vdi != NULL and self._call("VDI.get_other_config", vdi).get(CONFIG_DRIVE_KEY) == record["uuid"]:
                drives.append(vdi)
        return drives

    def _destroy_vm(self, vm):
        """Best-effort removal of a half-created VM and its own disks (keeps the original error)."""
        try:
            self._delete_vm(vm, self._call("VM.get_record", vm))
        except SiroccoError:
            pass

    def _own_disks(self, record):
        """VDIs that belong to a VM: not volumes (type user), not shared with another VM."""
        owned = []
        for vbd_ref in record["VBDs"]:
            vbd = self._call("VBD.get_record", vbd_ref)
            if vbd["type"] != "Disk" or vbd["empty"] or vbd["VDI"] == NULL:
                continue
            vdi = self._call("VDI.get_record", vbd["VDI"])
            if vdi["type"] != "user" and len(vdi["VBDs"]) == 1:
                owned.append(vbd["VDI"])
        return owned

    def _delete_vm(self, vm, record, operation="machine.delete"):
        subject = "'%s'" % record["name_label"]
        if record["power_state"] != "Halted" and not record["is_a_template"]:
            self._call("VM.hard_shutdown", vm, operation=operation, subject=subject)
        disks = self._own_disks(record)
        disks += [vdi for vdi in self._config_drives(record) if vdi not in disks]
        self._call("VM.destroy", vm, operation=operation, subject=subject)
        for vdi in disks:
            self._call("VDI.destroy", vdi, operation=operation, subject=subject)

    def start_machine(self, machine_id):
        ref, record = self._act(machine_id, states.START)
        subject = self._subject(record)
        power = record["power_state"]
        if power == "Paused":
            self._call("VM.unpause", ref, operation="machine.start", subject=subject)
        elif power == "Suspended":
            self._call("VM.resume", ref, False, False, operation="machine.start", subject=subject)
        else:
            self._call("VM.start", ref, False, False, operation="machine.start", subject=subject)
        return self.get_machine(machine_id)

    def stop_machine(self, machine_id, force=False):
        ref, record = self._act(machine_id, states.STOP)
        # Only a running guest can shut itself down; a paused or suspended one is powered off.
        method = "VM.clean_shutdown" if record["power_state"] == "Running" and not force else "VM.hard_shutdown"
        self._call(method, ref, operation="machine.stop", subject=self._subject(record))
        return self.get_machine(machine_id)

    def restart_machine(self, machine_id, force=False):
        ref, record = self._act(machine_id, states.RESTART)
        subject = self._subject(record)
        if record["power_state"] == "Halted":
            self._call("VM.start", ref, False, False, operation="machine.restart", subject=subject)
        else:
            method = "VM.hard_reboot" if force else "VM.clean_reboot"
            self._call(method, ref, operation="machine.restart", subject=subject)
        return self.get_machine(machine_id)

    def pause_machine(self, machine_id):
        ref, record = self._act(machine_id, states.PAUSE)
        self._call("VM.pause", ref, operation="machine.pause", subject=self._subject(record))
        return self.get_machine(machine_id)

    def suspend_machine(self, machine_id):
        ref, record = self._act(machine_id, states.SUSPEND)
        self._call("VM.suspend", ref, operation="machine.suspend", subject=self._subject(record))
        return self.get_machine(machine_id)

    def delete_machine(self, machine_id):
        ref, record = self._act(machine_id, states.DELETE)
        self._delete_vm(ref, record)

    def capture_machine(self, machine_id, name, description=None):
        if not name or not isinstance(name, str):
            raise InvalidInput("machine image name must be a non-empty string", attribute="name")
        ref, record = self._act(machine_id, states.CAPTURE)
        subject = self._subject(record)
        if any(i.name == name for i in self.list_machine_images()):
            raise Conflict("a machine image named '%s' already exists on %s" % (name, self.uri))
        vdis = [self._call("VBD.get_VDI", vbd) for vbd in record["VBDs"] if self._call("VBD.get_type", vbd) == "Disk"]
        kinds = {vdi: self._call("VDI.get_type", vdi) for vdi in vdis if vdi != NULL}
        drives = self._config_drives(record)
        volumes = [vdi for vdi, kind in kinds.items() if kind == "user"]
        if len(volumes) + len([d for d in drives if d in kinds]) == len(kinds):
            raise Conflict("machine '%s' has no disk of its own to capture" % record["name_label"])
        # A snapshot (any power state, consistent) cloned into a template that no longer depends on the
        # machine; the snapshot then goes. Attached volumes and the config drive (a machine made from the
        # image gets its own) stay out of the image (VM.snapshot's ignore_vdis, only sent when needed: older
        # XAPI versions take two parameters).
        ignored = volumes + [d for d in drives if d not in volumes]
        args = (ref, name, ignored) if ignored else (ref, name)
        snapshot = self._async("VM.snapshot", *args, operation="machine.capture", subject=subject)
        try:
            template = self._async("VM.clone", snapshot, name, operation="machine.capture", subject=subject)
        finally:
            self._delete_vm(snapshot, self._call("VM.get_record", snapshot), operation="machine.capture")
        try:
            self._call("VM.set_name_description", template, description or "", operation="machine.capture")
            other_config = with_properties(self._call("VM.get_other_config", template), {})
            self._call("VM.set_other_config", template, other_config, operation="machine.capture")
        except SiroccoError:
            self._destroy_vm(template)
            raise
        return self._image(self._call("VM.get_record", template))

    # -- configurations and images ---------------------------------------------------------
    def list_machine_configs(self):
        return list(self.configs)

    def _image(self, record):
        snapshot = bool(record["is_a_snapshot"])
        return MachineImage(id=record["uuid"], name=record["name_label"],
                            description=record["name_description"] or None, state="AVAILABLE",
                            type="SNAPSHOT" if snapshot else "IMAGE",
                            imageLocation="xapi://%s/VM/%s" % (urlsplit(self.uri).netloc, record["uuid"]),
                            created=iso_time(record["snapshot_time"]) if snapshot else None,
                            properties=properties_of(record["other_config"]) or None)

    def list_machine_images(self):
        records = self._call("VM.get_all_records", operation="machine_image.list")
        return [self._image(r) for r in sorted(records.values(), key=lambda r: (r["name_label"], r["uuid"]))
                if _is_image(r)]

    def delete_machine_image(self, image_id):
        ref, record = self._template(image_id)
        if record["other_config"].get("default_template") == "true":
            raise Conflict("machine image '%s' is a default template of XenServer and cannot be deleted"
                           % record["name_label"])
        users = sorted(vm["name_label"] for vm in self._call("VM.get_all_records").values()
                       if _is_machine(vm) and vm["other_config"].get(IMAGE_KEY) == record["uuid"])
        if users:
            raise Conflict("machine image '%s' is the image of machine(s) %s; delete those machines first"
                           % (record["name_label"], ", ".join(users)))
        self._delete_vm(ref, record, operation="machine_image.delete")

    def import_machine_image(self, image):
        """A VDI on the SR (option ``sr``, else the pool's default) filled through XAPI's HTTP handler
        ``PUT /import_raw_vdi``, then a template VM that boots from it; the IMAGE_* facts and the image's
        properties live in the template's other_config."""
        fmt, path = image.validate(self.image_formats)
        if image.arch != "x86_64":
            raise InvalidInput("provider xenserver runs x86_64 machines only, not %s" % image.arch, attribute="arch")
        other_config = with_properties({}, image.image_properties(fmt))
        if fmt == "vhd":
            wire, length, declared = vhd_upload(path)
        else:
            wire, length = "raw", os.path.getsize(path)
            declared = length
        if declared > image.virtual_size:
            raise InvalidInput("image file %s holds a disk of %d bytes, more than its virtual_size %d"
                               % (path, declared, image.virtual_size), attribute="virtual_size")
        if image.checksums.get(fmt) and file_sha256(path) != image.checksums[fmt].lower():
            raise InvalidInput("image file %s does not match its sha256 checksum" % path, attribute="checksums")
        subject = "machine image '%s'" % image.name
        if any(i.name == image.name for i in self.list_machine_images()):
            raise Conflict("a machine image named '%s' already exists on %s" % (image.name, self.uri))
        # type system, as a provisioned template disk: a machine cloned from the template owns its copy
        vdi = self._call("VDI.create", {
            "name_label": image.name, "name_description": image.description or "", "SR": self._sr(),
            "virtual_size": str(image.virtual_size), "type": "system", "sharable": False, "read_only": False,
            "other_config": {}, "xenstore_data": {}, "sm_config": {}, "tags": []},
            operation="machine_image.import", subject=subject)
        vm = None
        try:
            self._put_vdi(vdi, path, wire, length, subject)
            vm = self._call("VM.create", self._template_record(image, other_config),
                            operation="machine_image.import", subject=subject)
            self._call("VBD.create", {
                "VM": vm, "VDI": vdi, "userdevice": "0", "bootable": True, "mode": "RW", "type": "Disk",
                "empty": False, "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}},
                operation="machine_image.import", subject=subject)
            return self._image(self._call("VM.get_record", vm))
        except BaseException:
            for method, ref in (("VM.destroy", vm), ("VDI.destroy", vdi)):
                if ref is not None:
                    try:
                        self._call(method, ref)
                    except SiroccoError:
                        pass  # best effort: the original error is the one to report
            raise

    @staticmethod
    def _template_record(image, other_config):
        """VM.create's record of an HVM template booting from its disk (order c), BIOS or UEFI firmware."""
        memory = str(TEMPLATE_MEMORY)
        platform = {"acpi": "1", "apic": "true", "pae": "true", "nx": "true", "viridian": "false"}
        if image.boot == "uefi":
            platform["secureboot"] = "false"
        return {
            "name_label": image.name, "name_description": image.description or "", "user_version": "1",
            "is_a_template": True, "affinity": NULL, "memory_static_max": memory, "memory_dynamic_max": memory,
            "memory_dynamic_min": memory, "memory_static_min": memory, "VCPUs_params": {}, "VCPUs_max": "1",
            "VCPUs_at_startup": "1", "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
            "actions_after_crash": "restart", "PV_bootloader": "", "PV_kernel": "", "PV_ramdisk": "", "PV_args": "",
            "PV_bootloader_args": "", "PV_legacy_args": "", "HVM_boot_policy": "BIOS order",
            "HVM_boot_params": {"order": "c", "firmware": "uefi" if image.boot == "uefi" else "bios"},
            "platform": platform, "PCI_bus": "", "other_config": other_config, "recommendations": "",
            "domain_type": "hvm",
        }

    def _http(self):
        """An HTTP(S) connection to the pool master, with the TLS checks of the XML-RPC transport."""
        parts = urlsplit(self.uri)
        if parts.scheme == "https":
            context = ssl.create_default_context()
            if not self.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(parts.netloc, timeout=self.timeout, context=context)
        return http.client.HTTPConnection(parts.netloc, timeout=self.timeout)

    def _put_vdi(self, vdi, path, wire, length, subject, operation="machine_image.import"):
        """``length`` bytes of ``path`` (a file, or the bytes themselves) into the VDI through ``PUT
        /import_raw_vdi``. xapi answers 200 before it reads the body, and when its vhd-tool fails it fails the
        task and closes the connection, which the upload may meet as a reset: the outcome is the task we hand
        it (``task_id``), not the HTTP exchange."""
        what = "the image file %s" % path if not isinstance(path, bytes) else "the data of %s" % subject
        task = self._call("task.create", "sirocco: import %s" % subject, "", operation=operation, subject=subject)
        try:
            query = urlencode({"session_id": self.session.handle, "vdi": vdi, "format": wire, "task_id": task})
            status, reason, failure = None, None, None
            conn = self._http()
            try:
                conn.putrequest("PUT", "/import_raw_vdi?" + query, skip_accept_encoding=True)
                conn.putheader("Content-Type", "application/octet-stream")
                conn.putheader("Content-Length", str(length))
                conn.endheaders()
                with (io.BytesIO(path) if isinstance(path, bytes) else open(path, "rb")) as handle:
                    left = length
                    while left:
                        piece = handle.read(min(left, MIB))
                        if not piece:
                            raise InvalidInput("%s ended before its %d bytes" % (what, length), attribute="files")
                        conn.send(piece)
                        left -= len(piece)
                response = conn.getresponse()
                status, reason = response.status, response.reason
                response.read()  # xapi closes the connection once the VDI is written
            except (OSError, http.client.HTTPException) as exc:
                failure = exc  # the task says whether the server stopped reading (it fails it first)
            finally:
                conn.close()
            record = self._finished(task, wait=status == 200)
            if record["status"] == "success":
                return
            if record["status"] == "failure":
                error = failure_error(record["error_info"], operation, subject, self.name)
                if record["error_info"][:1] == ["VDI_IO_ERROR"]:
                    raise ProviderUnavailable(
                        "XenServer at %s could not write %s into its disk (%s): xapi's log says "
                        "why (vhd-tool)" % (self.uri, what, error), xapi_error="VDI_IO_ERROR") from None
                raise error
            if status == 401:
                raise AuthError("XenServer at %s refused the session for the upload of %s" % (self.uri, subject))
            why = "HTTP %s %s" % (status, reason) if status is not None else _reason(failure)
            raise ProviderUnavailable("XenServer at %s: the upload of %s failed (%s)" % (self.uri, subject, why))
        finally:
            try:
                self._call("task.destroy", task)
            except SiroccoError:
                pass  # xapi garbage-collects tasks left behind

    def _finished(self, task, wait=True):
        """The task's record once it left ``pending`` (at once when not ``wait``)."""
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            record = self._call("task.get_record", task)
            if record["status"] != "pending" or not wait:
                return record
            if time.monotonic() > deadline:
                raise OperationTimeout("XenServer at %s: the import task still runs after %ss"
                                       % (self.uri, self.timeout))
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    # -- volumes ---------------------------------------------------------------------------
    def _sr(self):
        """The SR new disks and volumes go to: option ``sr`` (uuid or name), else the pool's default."""
        wanted = self.options.get("sr")
        if wanted:
            for ref, sr in self._call("SR.get_all_records").items():
                if wanted in (sr["uuid"], sr["name_label"]):
                    return ref
            raise NotFound("storage repository '%s' (option sr) not found on %s" % (wanted, self.uri))
        pool = next(iter(self._call("pool.get_all_records").values()))
        if pool["default_SR"] in (NULL, ""):
            raise Conflict("the pool at %s has no default SR; set provider option sr" % self.uri)
        return pool["default_SR"]

    def _volume_vdi(self, volume_id):
        ref = self._ref("VDI", volume_id, "volume")
        record = self._call("VDI.get_record", ref)
        if record["type"] != "user" or record["is_a_snapshot"]:
            raise NotFound("volume '%s' not found on provider xenserver (%s): that VDI is not a volume"
                           % (volume_id, self.uri))
        return ref

    def _volume(self, record, vbds, vms):
        attached = []
        for vbd_ref in record["VBDs"]:
            vbd = vbds.get(vbd_ref)
            vm = vms.get(vbd["VM"]) if vbd else None
            if vm is not None and _is_machine(vm):
                attached.append({"href": vm["uuid"]})
        return Volume(id=record["uuid"], name=record["name_label"], description=record["name_description"] or None,
                      state="AVAILABLE", type="http://schemas.dmtf.org/cimi/2/VolumeConfiguration/vhd",
                      capacity=int(record["virtual_size"]) // 1024, bootable=False,
                      properties=properties_of(record["other_config"]) or None, attachedTo=attached)

    def list_volumes(self):
        vdis = self._call("VDI.get_all_records", operation="volume.list")
        srs = self._call("SR.get_all_records", operation="volume.list")
        vbds = self._call("VBD.get_all_records", operation="volume.list")
        vms = self._call("VM.get_all_records", operation="volume.list")
        found = []
        for record in vdis.values():
            sr = srs.get(record["SR"]) or {}
            if record["type"] != "user" or record["is_a_snapshot"] or sr.get("content_type") == "iso":
                continue
            users = [vms.get(vbds[v]["VM"]) for v in record["VBDs"] if v in vbds]
            if users and all(u is not None and _is_image(u) for u in users):
                continue  # a disk of a template: part of that image
            found.append(self._volume(record, vbds, vms))
        return sorted(found, key=lambda v: (v.name or "", v.id))

    def create_volume(self, name, capacity_kb, description=None, properties=None, volume_type=None):
        if volume_type is not None:
            raise InvalidInput("provider 'xenserver' has no volume types: a volume is a VDI of the SR of option sr "
                               "(type '%s' refused)" % (volume_type,), attribute="type")
        if not name or not isinstance(name, str):
            raise InvalidInput("volume name must be a non-empty string", attribute="name")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        other_config = with_properties({}, properties)
        if any(v.name == name for v in self.list_volumes()):
            raise Conflict("a volume named '%s' already exists on %s" % (name, self.uri))
        ref = self._call("VDI.create", {
            "name_label": name, "name_description": description or "", "SR": self._sr(),
            "virtual_size": str(capacity_kb * 1024), "type": "user", "sharable": False, "read_only": False,
            "other_config": other_config, "xenstore_data": {}, "sm_config": {}, "tags": []},
            operation="volume.create", subject="volume '%s'" % name)
        return self._volume(self._call("VDI.get_record", ref), {}, {})

    def delete_volume(self, volume_id):
        ref = self._volume_vdi(volume_id)
        record = self._call("VDI.get_record", ref)
        users = []
        for vbd in record["VBDs"]:
            vm = self._call("VBD.get_VM", vbd)
            users.append(self._call("VM.get_name_label", vm))
        if users:
            raise Conflict("volume '%s' is attached to machine(s) %s; detach it first"
                           % (record["name_label"], ", ".join(sorted(users))))
        self._call("VDI.destroy", ref, operation="volume.delete", subject="volume '%s'" % record["name_label"])

    def _new_vbd(self, vm, vdi, initial_location, bootable=False):
        used = {self._call("VBD.get_userdevice", v) for v in self._call("VM.get_VBDs", vm)}
        return self._call("VBD.create", {
            "VM": vm, "VDI": vdi, "userdevice": userdevice(initial_location, used), "bootable": bootable,
            "mode": "RW", "type": "Disk", "empty": False, "other_config": {}, "qos_algorithm_type": "",
            "qos_algorithm_params": {}}, operation="volume.attach")

    def _vm_for_volume_change(self, machine_id, verb):
        ref, record = self._vm(machine_id)
        state = cimi_state(record["power_state"], record["current_operations"])
        if state not in (states.STOPPED, states.STARTED):
            raise Conflict("cannot %s a volume %s machine '%s' in state %s"
                           % (verb, "to" if verb == "attach" else "from", record["name_label"], state))
        return ref, record

    def attach_volume(self, machine_id, volume_id, initial_location=None):
        ref, record = self._vm_for_volume_change(machine_id, "attach")
        vdi = self._volume_vdi(volume_id)
        subject = self._subject(record)
        for vbd in self._call("VDI.get_VBDs", vdi):
            if self._call("VBD.get_VM", vbd) == ref:
                raise Conflict("volume '%s' is already attached to machine '%s'" % (volume_id, record["name_label"]))
        vbd = self._new_vbd(ref, vdi, initial_location)
        if record["power_state"] == "Running":
            try:
                self._call("VBD.plug", vbd, operation="volume.attach", subject=subject)
            except SiroccoError:
                self._call("VBD.destroy", vbd)
                raise
        return self.get_machine(machine_id)

    def detach_volume(self, machine_id, volume_id):
        ref, record = self._vm_for_volume_change(machine_id, "detach")
        vdi = self._volume_vdi(volume_id)
        subject = self._subject(record)
        vbd = next((v for v in self._call("VDI.get_VBDs", vdi) if self._call("VBD.get_VM", v) == ref), None)
        if vbd is None:
            raise Conflict("volume '%s' is not attached to machine '%s'" % (volume_id, record["name_label"]))
        if self._call("VBD.get_currently_attached", vbd):
            self._call("VBD.unplug", vbd, operation="volume.detach", subject=subject)
        self._call("VBD.destroy", vbd, operation="volume.detach", subject=subject)
        return self.get_machine(machine_id)

    def resize_volume(self, volume_id, capacity_kb):
        """VDI.resize; while a running machine has the volume plugged, VDI.resize_online where its SR's driver
        offers it (the VDI's allowed_operations say so), else Conflict."""
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        ref = self._volume_vdi(volume_id)
        record = self._call("VDI.get_record", ref)
        subject = "volume '%s'" % record["name_label"]
        current = int(record["virtual_size"])
        if capacity_kb * 1024 < current:
            raise InvalidInput("%s has %d KB: a volume only grows (%d KB asked)"
                               % (subject, current // 1024, capacity_kb), attribute="capacity")
        if capacity_kb * 1024 > current:
            plugged = [self._call("VM.get_name_label", self._call("VBD.get_VM", vbd)) for vbd in record["VBDs"]
                       if self._call("VBD.get_currently_attached", vbd)]
            if not plugged:
                method = "VDI.resize"
            elif "resize_online" in record["allowed_operations"]:
                method = "VDI.resize_online"
            else:
                raise Conflict("%s is plugged into running machine(s) %s and its SR cannot grow it online: detach it "
                               "or stop the machine first" % (subject, ", ".join(sorted(plugged))))
            try:
                self._call(method, ref, str(capacity_kb * 1024), operation="volume.resize", subject=subject)
            except Unsupported:
                if method != "VDI.resize_online":
                    raise
                # a XAPI without the call (removed from XenServer 7.1 until xapi 26.x)
                raise Conflict("%s is plugged into running machine(s) %s and XenServer at %s cannot grow it online: "
                               "detach it or stop the machine first" % (subject, ", ".join(plugged), self.uri)) \
                    from None
        return self.get_volume(record["uuid"])

    # -- networks ----------------------------------------------------------------------------
    @staticmethod
    def _network(record):
        return Network(id=record["uuid"], name=record["name_label"], description=record["name_description"] or None,
                       properties=properties_of(record["other_config"]) or None, state=states.STARTED,
                       networkType="PUBLIC" if record.get("PIFs") else "PRIVATE",
                       mtu=int(record["MTU"]) if record.get("MTU") else None)

    def list_networks(self):
        records = self._call("network.get_all_records", operation="network.list")
        return [self._network(r) for r in sorted(records.values(), key=lambda r: (r["name_label"], r["uuid"]))
                if r["other_config"].get("is_host_internal_management_network") != "true"]

    def create_network(self, name, description=None, properties=None, cidr=None, dhcp=None):
        if not name or not isinstance(name, str):
            raise InvalidInput("network name must be a non-empty string", attribute="name")
        for value, attribute in ((cidr, "cidr"), (dhcp, "dhcp")):
            if value is not None:  # a XAPI network is a bridge: addresses are the guests' or a DHCP server's
                raise InvalidInput("provider 'xenserver' does not manage IP addressing: a XAPI network is a layer-2 "
                                   "bridge with no address range nor DHCP service (%s refused)" % attribute,
                                   attribute=attribute)
        other_config = with_properties({}, properties)
        if any(n.name == name for n in self.list_networks()):
            raise Conflict("a network named '%s' already exists on %s" % (name, self.uri))
        ref = self._call("network.create", {"name_label": name, "name_description": description or "",
                                            "MTU": "1500", "other_config": other_config, "tags": []},
                         operation="network.create", subject="network '%s'" % name)
        return self._network(self._call("network.get_record", ref))

    def delete_network(self, network_id):
        ref = self._ref("network", network_id, "network")
        record = self._call("network.get_record", ref)
        if record["other_config"].get("is_host_internal_management_network") == "true":
            raise NotFound("network '%s' not found on provider xenserver (%s)" % (network_id, self.uri))
        users = sorted({self._call("VM.get_name_label", self._call("VIF.get_VM", v)) for v in record["VIFs"]})
        if users:
            raise Conflict("network '%s' is used by machine(s) %s" % (record["name_label"], ", ".join(users)))
        if record["PIFs"]:
            raise Conflict("network '%s' is a physical network of the pool and cannot be deleted"
                           % record["name_label"])
        self._call("network.destroy", ref, operation="network.delete", subject="network '%s'" % record["name_label"])

    # -- meters ------------------------------------------------------------------------------
    def list_meters(self, machine_id, start=None, end=None):
        """Without a window, the current value of each data source. Over a window, the rows XAPI's RRDs keep
        in it (``GET /rrd_updates``, the finest archive that reaches back to ``start``); the disk aspect (the
        VDIs' physical utilisation, no RRD) and a XAPI without the handler give the current sample when now is
        in the window."""
        start, end = meter_window(start, end)
        ref, record = self._vm(machine_id)
        moment = datetime.now(UTC)
        history = {}
        if start is not None or end is not None:
            until = min(end or moment, moment)
            since = start or until - timedelta(seconds=RRD_SPANS[0][1])
            history = self._rrd_history(record, since, until, moment) if since <= until else {}
            # the current value is that of the last 5-second step: a window that ended within it still holds it
            if (start is not None and moment < start) or (end is not None and moment - end > SAMPLE_STEP):
                return [self._meter(record, aspect, [self._sample(t, v) for t, v in history.get(aspect, ())])
                        for aspect in METER_UNITS]
        current = self._current_values(ref, record)
        return [self._meter(record, aspect, [self._sample(t, v) for t, v in history[aspect]] if history.get(aspect)
                            else [self._sample(moment, current[aspect])])
                for aspect in METER_UNITS]

    def _current_values(self, ref, record):
        """{aspect: value} from the VM's data sources now (zeroes unless it runs) and its disks' utilisation."""
        sources = {}
        if record["power_state"] == "Running":
            for ds in self._call("VM.get_data_sources", ref, operation="meter.list", subject=self._subject(record)):
                sources[ds["name_label"]] = float(ds["value"])
        disk_kib = 0
        for vbd_ref in record["VBDs"]:
            vbd = self._call("VBD.get_record", vbd_ref)
            if vbd["type"] == "Disk" and not vbd["empty"] and vbd["VDI"] != NULL \
                    and CONFIG_DRIVE_KEY not in vbd["other_config"]:
                disk_kib += int(self._call("VDI.get_physical_utilisation", vbd["VDI"])) // 1024
        return {**aspect_values(sources), "disk": disk_kib}

    def _rrd_history(self, record, since, until, moment):
        """{aspect: [(time, value)] oldest first} of a running VM between ``since`` and ``until``, from
        ``GET /rrd_updates`` (its legend ``AVERAGE:vm:<uuid>:<source>``, rows newest first, NaN: no data);
        empty for a halted VM and where XAPI has no such handler (404)."""
        if record["power_state"] != "Running":
            return {}
        age = (moment - since).total_seconds()
        interval = next((step for step, span in RRD_SPANS if age <= span), RRD_SPANS[-1][0])
        query = urlencode({"session_id": self.session.handle, "start": int(since.timestamp()), "cf": "AVERAGE",
                           "interval": interval, "host": "false", "vm_uuid": record["uuid"]})
        conn = self._http()
        try:
            conn.request("GET", "/rrd_updates?" + query)
            response = conn.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ProviderUnavailable("XenServer at %s did not answer /rrd_updates: %s" % (self.uri, _reason(exc))) \
                from None
        finally:
            conn.close()
        if response.status == 404:
            return {}
        if response.status != 200:
            raise ProviderUnavailable("XenServer at %s answered /rrd_updates with HTTP %s %s"
                                      % (self.uri, response.status, response.reason))
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError as exc:
            raise ProviderUnavailable("XenServer at %s sent an unreadable /rrd_updates document: %s"
                                      % (self.uri, exc)) from None
        prefix = "AVERAGE:vm:%s:" % record["uuid"]
        legend = [(i, (e.text or "")[len(prefix):]) for i, e in enumerate(root.iter("entry"))
                  if (e.text or "").startswith(prefix)]
        series = {}
        for row in root.iter("row"):
            stamp = datetime.fromtimestamp(int(row.findtext("t")), UTC)
            cells = [v.text for v in row.findall("v")]
            sources = {name: float(cells[i]) for i, name in legend if i < len(cells) and cells[i] != "NaN"}
            if sources and since <= stamp <= until:
                for aspect, value in aspect_values(sources).items():
                    series.setdefault(aspect, []).append((stamp, value))
        return {aspect: sorted(points, key=lambda point: point[0]) for aspect, points in series.items()}

    @staticmethod
    def _sample(stamp, value):
        return Sample(timestamp=stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), value=str(round(value, 2)))

    @staticmethod
    def _meter(record, aspect, samples):
        return Meter(id="%s:%s" % (record["uuid"], aspect), name=aspect, targetResource={"href": record["uuid"]},
                     aspect=ASPECT + aspect, units=METER_UNITS[aspect], timeScope="Point", sampleInterval=5,
                     isContinuous=aspect in ("cpu", "memory"), samples=samples or None)


def _reason(exc):
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return "HTTP %s %s" % (exc.errcode, exc.errmsg)
    return str(exc) or type(exc).__name__


__all__ = ["XenServerConnector", "HAS_XENAPI", "FAILURES", "POWER_STATES", "cimi_state", "failure_error"]

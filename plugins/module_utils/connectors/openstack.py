# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenStack connector: Nova, Glance, Neutron and (when the cloud has it) Cinder, through openstacksdk.

Authentication, either way:

* ``cloud``: a cloud of a ``clouds.yaml`` (openstacksdk's usual search path, or the file
  named by option ``clouds_yaml``); common parameters that are set override its values;
* or the common parameters: ``uri`` is Keystone's URL (``https://keystone.example.org:5000/v3``),
  ``username``/``password`` a user (the password is never logged nor returned), ``region``
  the region; options ``project`` (project name) and ``domain`` (domain of the user and
  the project, default ``Default``).

Other options (``provider_options``):

* ``image``: the image (id or name) of machines whose request names none: Nova boots
  nothing without one, so a request without an image and without this option is refused.
* ``network``: the network (id or name) of machines whose request names none; without it
  such machines get no network interface (Nova's ``networks: none``).
* ``key_name``: a Nova key pair given to new machines (not with a request's credential: InvalidInput
  naming ``credential``, one key pair per server).
* ``shelve``: when true, ``stop`` shelves the server (Nova frees its host's resources;
  ``start`` unshelves it) instead of powering it off. Default false.
* ``interface``: the catalog's endpoint interface (``public``, ``internal``, ``admin``).

Mapping (native id in brackets):

* Machine = server [server id]; ``properties`` are its metadata, ``description`` its
  description. States come from ``SERVER_STATES`` and, while Nova runs an action on it,
  ``TASK_STATES``. SHELVED and SHELVED_OFFLOADED servers are STOPPED (``start`` unshelves).
  ``stop`` of a paused or suspended server first resumes it (Nova stops only active ones);
  ``restart`` is a soft reboot, or a hard one when forced; ``pause``/``suspend`` are Nova's.
  ``cpu``/``memory``/``disks`` come from the server's flavor, ``volumes`` from its attached
  volumes, ``interfaces`` from its addresses.
* MachineConfiguration = flavor [flavor id]. A request by cpu/memory gets the flavor that
  matches exactly, else the smallest that fits.
* MachineImage = Glance image [image id]; ``capture`` is Nova's createImage (waited for until
  the image is active); an image that servers were made from is not deleted (Conflict).
  ``properties`` are the image's additional Glance properties by their wire names (those
  openstacksdk types as attributes of its own, such as ``architecture`` or ``os_distro``, among
  them), less the bookkeeping of Glance, Nova and openstacksdk (``BOOKKEEPING_KEYS``,
  ``BOOKKEEPING_PREFIXES``). ``import`` creates a private image (disk format qcow2 or raw,
  container format bare, ``architecture``, ``hw_firmware_type`` bios or uefi, ``min_disk`` the
  virtual size in GiB rounded up, the ``sirocco.*`` facts and the caller's properties as Glance
  properties), uploads the file into it (PUT) and waits until it is active. Everything is
  checked before Glance is asked anything: the file's format (a raw disk that is really a
  qcow2, vmdk or vhd(x) is refused, and so is a qcow2 with a backing file), its virtual size and
  checksum, the properties, and that the name is free; afterwards, Glance's size, MD5 and virtual
  size of what it stored. An import that fails (or is interrupted) once the image exists deletes it.
* Network = Neutron network [network id]; ``properties`` are its tags ``key=value``. ``create``
  makes the network and one IPv4 subnet: CIDR from property ``cidr`` when given, else the
  first /24 of 10.0.0.0/8 that no subnet the project sees overlaps. ``delete`` is refused
  (Conflict) while servers have ports on it; Neutron removes its subnets with it.
* Volume = Cinder volume [volume id], only when the catalog has a block-storage service;
  without one no volume operation is advertised.
* Meters = Nova's server diagnostics (admin-only under Nova's default policy): cpu (percent,
  mean of the vCPUs), memory (KiB used), disk (bytes read and written), input/output
  bandwidth (bytes received/sent); a server that is not running reports zeros.

What a new machine's guest receives (``guest_inputs``), checked before anything is created:

* ``userData``: Nova's ``user_data``, base64-encoded, at most 65535 bytes so encoded (``USER_DATA_LIMIT``,
  the column Nova keeps it in); readable by an admin as ``OS-EXT-SRV-ATTR:user_data`` (microversion 2.3+).
* ``credential``: an SSH public key goes into a Nova key pair ``sirocco-<16 hex>`` (``base.key_pair_name``:
  the same key, the same name) imported unless the user has it already (reused), named as the server's
  ``key_name``; a password is Nova's ``admin_password``. The credential's ``userName``, when it has one, is
  server metadata ``sirocco.user`` (``base.USER_PROPERTY``, a property of the machine: the inventory's
  ``ansible_user``); the key goes to the image's default user, the user name creates no user. Key pairs
  are not deleted with machines: other machines may use them.

Capabilities follow the service catalog: an operation whose service is absent is not
advertised and is refused (Unsupported). Listings page with Nova's limit/marker. No
openstacksdk or keystoneauth exception leaves this module: ``translate`` maps them in one place.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import itertools
import struct
import time

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
    CPU_ARCHS,
    Credential,
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
    key_pair_name,
    missing_sdk,
    now_in_window,
    public_key,
    same_key,
)

try:
    import keystoneauth1.exceptions
    import openstack
    import openstack.config
    import openstack.connection
    import openstack.exceptions
    HAS_OPENSTACKSDK = True
    OPENSTACKSDK_IMPORT_ERROR = None
except ImportError as exc:  # Ansible's sanity import test runs without third-party libraries
    OPENSTACKSDK_IMPORT_ERROR = exc
    openstack = None
    keystoneauth1 = None
    HAS_OPENSTACKSDK = False

KIB_PER_GIB = 1024 * 1024
ASPECT = "http://schemas.dmtf.org/cimi/2/aspect/"
METERS = tuple(ASPECT + a for a in ("cpu", "memory", "disk", "inputBandwidth", "outputBandwidth"))
POLL = 0.25  # seconds between two looks at a server or image that is changing

# -- native states: the one table per resource ---------------------------------------
# Server status -> CIMI state; None: the server is gone.
SERVER_STATES = {
    "BUILD": states.CREATING,
    "REBUILD": states.CREATING,
    "ACTIVE": states.STARTED,
    "SHUTOFF": states.STOPPED,
    "SHELVED": states.STOPPED,
    "SHELVED_OFFLOADED": states.STOPPED,
    "PAUSED": states.PAUSED,
    "SUSPENDED": states.SUSPENDED,
    "REBOOT": states.STARTING,
    "HARD_REBOOT": states.STARTING,
    "RESIZE": states.STARTING,
    "REVERT_RESIZE": states.STARTING,
    "VERIFY_RESIZE": states.STARTED,
    "MIGRATING": states.STARTED,
    "PASSWORD": states.STARTED,
    "RESCUE": states.STARTED,
    "ERROR": states.ERROR,
    "UNKNOWN": states.ERROR,
    "DELETED": None,
    "SOFT_DELETED": None,
}
# Task state of an action Nova is running -> the transient CIMI state shown meanwhile
# (task states not listed leave the status's state as it is).
TASK_STATES = {
    "scheduling": states.CREATING, "block_device_mapping": states.CREATING, "networking": states.CREATING,
    "spawning": states.CREATING, "rebuilding": states.CREATING, "rebuild_spawning": states.CREATING,
    "powering-off": states.STOPPING, "shelving": states.STOPPING, "shelving_image_pending_upload": states.STOPPING,
    "shelving_image_uploading": states.STOPPING, "shelving_offloading": states.STOPPING,
    "powering-on": states.STARTING, "unpausing": states.STARTING, "resuming": states.STARTING,
    "unshelving": states.STARTING, "restoring": states.STARTING, "rebooting": states.STARTING,
    "reboot_pending": states.STARTING, "reboot_started": states.STARTING, "rebooting_hard": states.STARTING,
    "reboot_pending_hard": states.STARTING, "reboot_started_hard": states.STARTING,
    "pausing": states.PAUSING, "suspending": states.SUSPENDING,
    "image_snapshot": states.CAPTURING, "image_snapshot_pending": states.CAPTURING,
    "image_pending_upload": states.CAPTURING, "image_uploading": states.CAPTURING, "image_backup": states.CAPTURING,
    "deleting": states.DELETING, "soft-deleting": states.DELETING,
}
IMAGE_STATES = {"queued": states.CREATING, "saving": states.CREATING, "uploading": states.CREATING,
                "importing": states.CREATING, "active": "AVAILABLE", "deactivated": states.ERROR,
                "killed": states.ERROR, "pending_delete": None, "deleted": None}
VOLUME_STATES = {"creating": states.CREATING, "available": "AVAILABLE", "reserved": "AVAILABLE",
                 "attaching": "AVAILABLE", "detaching": "AVAILABLE", "in-use": "AVAILABLE",
                 "maintenance": "AVAILABLE", "deleting": states.DELETING, "error": states.ERROR,
                 "error_deleting": states.ERROR, "backing-up": "AVAILABLE", "restoring-backup": states.CREATING,
                 "error_restoring": states.ERROR, "extending": "AVAILABLE", "error_extending": states.ERROR,
                 "downloading": states.CREATING, "uploading": "AVAILABLE", "retyping": "AVAILABLE",
                 "awaiting-transfer": "AVAILABLE", "error_backing-up": states.ERROR, "deleted": None}
NETWORK_STATES = {"ACTIVE": states.STARTED, "DOWN": states.STOPPED, "BUILD": states.CREATING,
                  "ERROR": states.ERROR}
# Glance/Nova architecture names -> CIMI cpuArch, and the name an import writes for each
ARCHS = {"x86_64": "x86_64", "amd64": "x86_64", "i686": "x86", "i386": "x86", "aarch64": "aarch64",
         "arm64": "aarch64", "armv7l": "ARM", "ppc64le": "PowerPC", "ppc64": "PowerPC", "s390x": "z/Architecture"}
GLANCE_ARCHS = {"x86_64": "x86_64", "x86": "i686", "aarch64": "aarch64", "ARM": "armv7l", "PowerPC": "ppc64le",
                "z/Architecture": "s390x"}
BYTES_PER_GIB = 1024 ** 3
USER_DATA_LIMIT = 65535  # Nova's user_data: at most 65535 bytes once base64-encoded (its column's size)
QCOW2_MAGIC = b"QFI\xfb"
# Image properties that are the bookkeeping of Glance (os_glance*, stores), openstacksdk (owner_specified.*)
# or Nova's snapshots, not the image owner's: left out of a MachineImage's properties (description is its own).
BOOKKEEPING_PREFIXES = ("owner_specified.", "os_glance")
BOOKKEEPING_KEYS = frozenset(("stores", "description", "base_image_ref", "boot_roles", "image_location",
                              "image_state", "image_type", "instance_uuid", "owner_project_name", "owner_user_name",
                              "owner_id", "user_id"))
# Glance's own attributes of an image: no property may take their names.
GLANCE_ATTRIBUTES = frozenset((
    "id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo", "os_hash_value",
    "owner", "size", "virtual_size", "min_ram", "min_disk", "created_at", "updated_at", "disk_format",
    "container_format", "tags", "direct_url", "locations", "self", "file", "schema", "stores"))
# Attributes of openstacksdk's Image that are no Glance property (the SDK's own, or what it files elsewhere).
SDK_ATTRIBUTES = frozenset(("properties", "metadata", "url", "store", "location"))
# The first bytes of disk formats a file uploaded as raw must not have (Nova would boot it as raw data, or a
# hypervisor probe it: a qcow2 in disguise can point at the host's files).
FORMAT_MAGICS = ((QCOW2_MAGIC, "qcow2"), (b"KDMV", "vmdk"), (b"vhdxfile", "vhdx"), (b"conectix", "vhd"))
# Service types of the catalog behind each group of operations (aliases included).
SERVICES = {
    "compute": ("compute",),
    "image": ("image",),
    "network": ("network",),
    "block-storage": ("block-storage", "volumev3", "volumev2", "volume", "block-store"),
}
OPERATION_SERVICES = {
    "machine_image.list": "image", "machine_image.delete": "image", "machine.capture": "image",
    "machine_image.import": "image",
    "network.list": "network", "network.create": "network", "network.delete": "network",
    "volume.list": "block-storage", "volume.create": "block-storage", "volume.delete": "block-storage",
    "volume.attach": "block-storage", "volume.detach": "block-storage", "volume.resize": "block-storage",
}
KEY_NAME_MAX = 255  # Nova's key pair names: at most 255 characters
RESIZE_STATES = (states.STARTED, states.STOPPED)  # Nova resizes ACTIVE and SHUTOFF servers (keeping that state)


# -- errors: the one place openstacksdk and keystoneauth errors are translated ---------------
def _message(exc):
    details = getattr(exc, "details", None)
    message = getattr(exc, "message", None) or str(exc)
    if details and details not in message:
        message = "%s: %s" % (message, details)
    return " ".join(str(message).split())


def _http_error(exc):
    """The error class of an HTTP answer: by its status, else by its exception class."""
    status = exc.status_code or 0
    if status == 404 or isinstance(exc, openstack.exceptions.ResourceNotFound):
        return NotFound
    if status == 409 or isinstance(exc, openstack.exceptions.ConflictException):
        return Conflict
    if status == 400 or isinstance(exc, openstack.exceptions.BadRequestException):
        return InvalidInput
    if status == 401:
        return AuthError
    if status == 403 or isinstance(exc, openstack.exceptions.ForbiddenException):
        return Forbidden
    if status == 413:  # Nova's over-quota answer
        return Conflict
    return ProviderUnavailable


def _error_rules():
    """openstacksdk / keystoneauth exceptions -> Sirocco errors, first match wins."""
    return (
        (openstack.exceptions.ResourceTimeout, OperationTimeout),
        ErrorRule(openstack.exceptions.ConfigException, InvalidInput, attribute="provider_options"),
        ErrorRule(keystoneauth1.exceptions.MissingRequiredOptions, InvalidInput, attribute="uri",
                  detail=lambda exc: "incomplete credentials: %s" % exc),
        (keystoneauth1.exceptions.Unauthorized, AuthError),
        (keystoneauth1.exceptions.Forbidden, Forbidden),
        (openstack.exceptions.HttpException, _http_error),
        ErrorRule(keystoneauth1.exceptions.EndpointNotFound, ProviderUnavailable,
                  detail=lambda exc: "the service catalog has no endpoint for it: %s" % exc),
    )


ERRORS = ErrorTable(_error_rules, detail=_message,
                    catch=lambda: ((openstack.exceptions.SDKException, keystoneauth1.exceptions.ClientException)
                                   if HAS_OPENSTACKSDK else ()))


def translate(exc, operation, subject):
    """Any openstacksdk / keystoneauth exception as a Sirocco error."""
    return ERRORS.error(exc, operation, subject, "openstack")


# -- pure helpers ------------------------------------------------------------------------
def cimi_state(status, task_state=None):
    """CIMI state of a server status and task state (None: the server is gone)."""
    state = SERVER_STATES.get((status or "").upper(), states.ERROR)
    if state is None:
        return None
    return TASK_STATES.get(task_state, state)


def flavor_config(flavor):
    """A MachineConfiguration of a flavor."""
    disks = [Disk(capacity=int(flavor.disk) * KIB_PER_GIB)] if flavor.disk else None
    return MachineConfiguration(id=flavor.id, name=flavor.name, description=flavor.description or None,
                                cpu=int(flavor.vcpus), memory=int(flavor.ram) * KIB_PER_MIB, disks=disks)


def pick_flavor(configs, cpu, memory_kib, disk_kib=0):
    """The flavor for a request: an exact cpu/memory match, else the smallest that fits; None if none."""
    def disk(c):
        return c.disks[0].capacity if c.disks else 0
    fitting = [c for c in configs if c.cpu >= cpu and c.memory >= memory_kib and disk(c) >= (disk_kib or 0)]
    exact = [c for c in fitting if c.cpu == cpu and c.memory == memory_kib]
    pool = exact or fitting
    if not pool:
        return None
    return min(pool, key=lambda c: (c.memory, c.cpu, disk(c), c.name or "", c.id))


def check_properties(properties):
    """Nova metadata: at most 255 characters per key and value, strings only."""
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput("properties must map strings to strings", attribute="properties")
        if not key or len(key) > 255 or len(value) > 255:
            raise InvalidInput("property '%s': keys of 1 to 255 characters, values of at most 255" % key[:40],
                               attribute="properties")


def network_tags(properties):
    """Neutron tags ``key=value`` of a network's properties (tags are 1-255 characters, no commas)."""
    check_properties(properties)
    tags = []
    for key, value in sorted((properties or {}).items()):
        tag = "%s=%s" % (key, value)
        if "=" in key or "," in tag or len(tag) > 255:
            raise InvalidInput("network property '%s': keys without '=', no commas, key=value at most 255 characters"
                               % key[:40], attribute="properties")
        tags.append(tag)
    return tags


def tag_properties(tags):
    """A network's properties from its tags (tags that are not ``key=value`` are not properties)."""
    return dict(tag.split("=", 1) for tag in tags or [] if "=" in tag)


def glance_properties(image):
    """Every additional property of a Glance image (an openstacksdk Image) by its wire name, as Glance keeps it (a
    string): those openstacksdk declares as attributes of its own (``architecture``, ``os_distro``, ``hw_*``, ...,
    typed by the SDK: booleans and numbers turned back into Glance's strings) and the others, which it keeps in
    ``properties``."""
    wire = image.to_dict(body=True, headers=False, computed=False, ignore_none=True, original_names=True)
    props = {}
    for key, value in wire.items():
        if key in GLANCE_ATTRIBUTES or key in SDK_ATTRIBUTES:
            continue
        props[key] = ("true" if value else "false") if isinstance(value, bool) else value
    props.update(wire.get("properties") or {})
    return {k: str(v) if isinstance(v, int) and not isinstance(v, bool) else v for k, v in props.items()}


def image_properties(properties):
    """A Glance image's properties (``glance_properties``) as a MachineImage's: the owner's, not Glance's, Nova's
    or openstacksdk's bookkeeping."""
    return {k: v for k, v in (properties or {}).items()
            if isinstance(v, str) and k not in BOOKKEEPING_KEYS and not k.startswith(BOOKKEEPING_PREFIXES)}


def import_properties(image, fmt):
    """The Glance properties an import writes: the DiskImage's (the IMAGE_* facts among them), its boot firmware
    (Nova's ``hw_firmware_type``); a caller's property may not take a name Glance or the import uses."""
    check_properties(image.properties)
    taken = GLANCE_ATTRIBUTES | BOOKKEEPING_KEYS | {"architecture", "hw_firmware_type"}
    for key in image.properties or {}:
        if key in taken or key.startswith(BOOKKEEPING_PREFIXES):
            raise InvalidInput("property '%s' is Glance's or the import's own" % key, attribute="properties")
    props = image.image_properties(fmt)
    props["hw_firmware_type"] = image.boot
    if image.description:
        props["description"] = image.description
    check_properties(props)
    return props


def disk_file_facts(fmt, path):
    """(virtual size in bytes, md5 hex, sha256 hex, file size) of a raw or qcow2 file, read once; InvalidInput
    when it is not what ``fmt`` says (a qcow2 with a backing file is refused: it is not self-contained)."""
    md5 = hashlib.md5(usedforsecurity=False)
    sha256 = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
            handle.seek(0)
            for data in iter(lambda: handle.read(1024 * 1024), b""):
                md5.update(data)
                sha256.update(data)
            size = handle.tell()
    except OSError as exc:
        raise InvalidInput("image file %s cannot be read: %s" % (path, exc.strerror or exc),
                           attribute="files") from None
    if fmt == "qcow2":
        if len(head) < 32 or head[:4] != QCOW2_MAGIC:
            raise InvalidInput("image file %s is not a qcow2 image" % path, attribute="files")
        backing_offset, = struct.unpack(">Q", head[8:16])
        if backing_offset:
            raise InvalidInput("qcow2 image %s has a backing file: upload a self-contained one" % path,
                               attribute="files")
        virtual, = struct.unpack(">Q", head[24:32])
    else:
        for magic, other in FORMAT_MAGICS:
            if head.startswith(magic):
                raise InvalidInput("image file %s is a %s image, not a raw disk" % (path, other), attribute="files")
        virtual = size
    return virtual, md5.hexdigest(), sha256.hexdigest(), size


def free_cidr(used, prefix=24, block="10.0.0.0/8"):
    """The first ``/prefix`` of ``block`` that overlaps none of the ``used`` CIDRs, else None."""
    taken = [ipaddress.ip_network(c, strict=False) for c in used]
    taken = [n for n in taken if n.version == 4]
    for candidate in ipaddress.ip_network(block).subnets(new_prefix=prefix):
        if not any(candidate.overlaps(n) for n in taken):
            return str(candidate)
    return None


def network_cidr(cidr):
    """A network's ``cidr`` as an IPv4 network (``10.20.0.0/24``), or InvalidInput naming it."""
    try:
        if not isinstance(cidr, str):
            raise TypeError(cidr)
        return str(ipaddress.IPv4Network(cidr, strict=True))
    except (TypeError, ValueError):
        raise InvalidInput("cidr '%s' is not an IPv4 network such as 10.20.0.0/24" % str(cidr)[:60],
                           attribute="cidr") from None


def iso(stamp):
    """Nova and Glance's timestamps as CIMI's (UTC, ``Z``)."""
    if not stamp:
        return None
    stamp = str(stamp)
    if stamp.endswith("+00:00"):
        stamp = stamp[:-6] + "Z"
    elif len(stamp) == 19:
        stamp += "Z"
    return stamp


def interfaces_of(addresses, network_ids):
    """NetworkInterfaces of a server's ``addresses`` ({network name: [address, ...]})."""
    found = []
    for net_name, entries in sorted((addresses or {}).items()):
        by_mac = {}
        for entry in entries or []:
            mac = entry.get("OS-EXT-IPS-MAC:mac_addr")
            by_mac.setdefault(mac, []).append(entry)
        for mac, items in by_mac.items():
            net_id = network_ids.get(net_name)
            found.append(NetworkInterface(
                network={"href": net_id} if net_id else None, macAddress=mac, state="STARTED",
                addresses=[{"address": e.get("addr"), "protocol": "IPv%s" % e.get("version", 4),
                            "allocation": "dynamic" if e.get("OS-EXT-IPS:type") != "floating" else "static"}
                           for e in items]))
    return found


def diagnostics_values(diag):
    """Meter values (units, value) by aspect from Nova's standard server diagnostics (microversion 2.48)."""
    cpus = [c.get("utilisation") for c in (diag.get("cpu_details") or []) if c.get("utilisation") is not None]
    memory = diag.get("memory_details") or {}
    disks = diag.get("disk_details") or []
    nics = diag.get("nic_details") or []
    return {
        "cpu": ("percent", float(sum(cpus)) / len(cpus) if cpus else 0.0),
        "memory": ("KiB", int(memory.get("used") or 0) * KIB_PER_MIB),
        "disk": ("bytes read and written since start",
                 sum(int(d.get("read_bytes") or 0) + int(d.get("write_bytes") or 0) for d in disks)),
        "inputBandwidth": ("bytes received since start", sum(int(n.get("rx_octets") or 0) for n in nics)),
        "outputBandwidth": ("bytes sent since start", sum(int(n.get("tx_octets") or 0) for n in nics)),
    }


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class OpenStackConnector(Connector):
    name = "openstack"
    rounds_to_sizes = True  # instance types / flavors / sizes: the smallest that fits
    option_names = ("cloud", "clouds_yaml", "project", "domain", "image", "network", "key_name", "shelve",
                    "interface")
    guest_inputs = frozenset({"userData", "credential"})
    user_data_limit, user_data_encoded = USER_DATA_LIMIT, True
    image_formats = ("qcow2", "raw")  # Nova's libvirt driver boots both; qcow2 is smaller to upload

    def __init__(self, uri=None, username=None, password=None, region=None, validate_certs=True,
                 timeout=60, options=None):
        super().__init__(uri=uri, username=username, password=password, region=region,
                         validate_certs=validate_certs, timeout=timeout, options=options)
        if not HAS_OPENSTACKSDK:
            raise missing_sdk("openstack", "openstacksdk", OPENSTACKSDK_IMPORT_ERROR)
        for key in ("cloud", "clouds_yaml", "project", "domain", "image", "network", "key_name", "interface"):
            if self.options.get(key) is not None and not isinstance(self.options[key], str):
                raise InvalidInput("provider option %s must be a string" % key, attribute="provider_options")
        if not isinstance(self.options.get("shelve", False), bool):
            raise InvalidInput("provider option shelve must be a boolean", attribute="provider_options")
        if self.options.get("interface") not in (None, "public", "internal", "admin"):
            raise InvalidInput("provider option interface must be public, internal or admin",
                               attribute="provider_options")
        if not self.options.get("cloud") and not uri:
            raise InvalidInput("the openstack provider needs Keystone's URL as uri, or provider option cloud "
                               "naming a cloud of clouds.yaml", attribute="uri")
        self.conn = None
        self._catalog = None
        self._flavor_cache = None
        self._network_names = None
        with self._op("connect", "provider 'openstack'"):
            self.conn = self._connect()

    def _connect(self):
        overrides = {"api_timeout": self.timeout, "verify": self.validate_certs}
        if self.options.get("interface"):
            overrides["interface"] = self.options["interface"]
        if self.region:
            overrides["region_name"] = self.region
        auth = {}
        if self.uri:
            auth["auth_url"] = self.uri
        if self.username:
            auth["username"] = self.username
        if self._password:
            auth["password"] = self._password
        if self.options.get("project"):
            auth["project_name"] = self.options["project"]
        if self.options.get("domain"):
            auth["user_domain_name"] = auth["project_domain_name"] = self.options["domain"]
        if self.options.get("cloud"):
            files = [self.options["clouds_yaml"]] if self.options.get("clouds_yaml") else None
            loader = openstack.config.OpenStackConfig(config_files=files, load_envvars=False)
            region = loader.get_one(cloud=self.options["cloud"], **overrides)
            if auth:  # the common parameters that are set win over the cloud's values
                region = loader.get_one(cloud=self.options["cloud"], auth=dict(region.auth, **auth), **overrides)
        else:
            auth.setdefault("user_domain_name", "Default")
            auth.setdefault("project_domain_name", "Default")
            loader = openstack.config.OpenStackConfig(load_yaml_config=False, load_envvars=False)
            region = loader.get_one(auth=auth, auth_type="password", **overrides)
        return openstack.connection.Connection(config=region)

    def __repr__(self):
        return "<openstack connector uri=%r cloud=%r>" % (self.uri, self.options.get("cloud"))

    def close(self):
        if self.conn is not None:
            with contextlib.suppress(Exception):  # closing never fails a caller
                self.conn.close()

    def _op(self, operation, subject):
        """Run provider calls, their errors mapped to Sirocco errors."""
        return ERRORS.translating(operation, subject, self.name)

    # -- catalog and capabilities -----------------------------------------------------------
    def services(self):
        """Service types of the catalog that have an endpoint in this region (cached)."""
        if self._catalog is None:
            with self._op("connect", "provider 'openstack'"):
                access = self.conn.session.auth.get_access(self.conn.session)
                region = self.conn.config.get_region_name()
                endpoints = access.service_catalog.get_endpoints(region_name=region or None)
            self._catalog = frozenset(kind for kind, found in endpoints.items() if found)
        return self._catalog

    def has(self, service):
        return any(kind in self.services() for kind in SERVICES[service])

    def _need(self, operation):
        """Unsupported unless the catalog has the service behind ``operation``."""
        service = OPERATION_SERVICES.get(operation, "compute")
        if not self.has(service):
            raise Unsupported(self.name, operation, "provider 'openstack' does not support operation '%s': "
                              "this cloud's catalog has no %s service" % (operation, service))

    def implemented_operations(self):
        return frozenset(op for op in super().implemented_operations()
                         if self.has(OPERATION_SERVICES.get(op, "compute")))

    def capabilities(self):
        configs = self.list_machine_configs()
        zones = self._zones()
        return Capabilities(
            provider=self.name, operations=self.implemented_operations(),
            cpu=Range(min((c.cpu for c in configs), default=1), max((c.cpu for c in configs), default=None)),
            memory_mib=Range(min((c.memory for c in configs), default=KIB_PER_MIB) // KIB_PER_MIB,
                             max((c.memory for c in configs), default=0) // KIB_PER_MIB or None),
            archs=self._archs(), meters=METERS, locations=tuple(zones) or ("nova",), stop_force_default=False,
            **self.guest_fields(), image_formats=self.import_formats(), rounds_to_sizes=self.rounds_to_sizes,
            extras={"region": self.conn.config.get_region_name() or None, "services": sorted(self.services()),
                    "flavors": len(configs)})

    def _zones(self):
        """Nova's availability zones: the locations of new machines."""
        with self._op("machine.list", "availability zones"):
            return tuple(sorted(z.name for z in self.conn.compute.availability_zones() if z.name))

    def _archs(self):
        if not self.has("image"):
            return ()
        with self._op("machine_image.list", "images"):
            found = {ARCHS.get(getattr(i, "architecture", None)) for i in self.conn.image.images()}
        return tuple(sorted(a for a in found if a in CPU_ARCHS))

    # -- configurations ------------------------------------------------------------------------
    def _flavors(self):
        if self._flavor_cache is None:
            with self._op("machine_config.list", "flavors"):
                self._flavor_cache = [flavor_config(f) for f in self.conn.compute.flavors(details=True)]
        return self._flavor_cache

    def list_machine_configs(self):
        self._flavor_cache = None
        return list(self._flavors())

    def _pick_flavor(self, config):
        disk_kib = max((d.capacity for d in config.disks or []), default=0)
        chosen = pick_flavor(self._flavors(), config.cpu, config.memory, disk_kib)
        if chosen is None:
            raise InvalidInput("no flavor of provider 'openstack' has %d vCPU(s), %d MiB of memory%s (largest: %s)"
                               % (config.cpu, config.memory // KIB_PER_MIB,
                                  " and a %d GiB disk" % (disk_kib // KIB_PER_GIB) if disk_kib else "",
                                  ", ".join(sorted({"%s %d/%d MiB" % (c.name, c.cpu, c.memory // KIB_PER_MIB)
                                                    for c in self._flavors()})) or "none"),
                               attribute="machineConfig")
        return chosen

    # -- machines ---------------------------------------------------------------------------
    def _server(self, machine_id, operation="machine.get"):
        """The server with this id, NotFound when absent or deleted."""
        if not machine_id or not isinstance(machine_id, str):
            raise NotFound("machine '%s' not found on provider 'openstack'" % (machine_id,))
        subject = "machine '%s'" % machine_id
        with self._op(operation, subject):
            try:
                server = self.conn.compute.get_server(machine_id)
            except openstack.exceptions.BadRequestException:
                server = None  # not a server id at all
        if server is None or cimi_state(server.status, server.task_state) is None:
            raise NotFound("machine '%s' not found on provider 'openstack'" % machine_id)
        return server

    def _network_ids(self):
        """Neutron network name -> id (servers' addresses are keyed by network name)."""
        if self._network_names is None:
            if not self.has("network"):
                return {}
            with self._op("network.list", "networks"):
                self._network_names = {n.name: n.id for n in self.conn.network.networks()}
        return self._network_names

    def _machine(self, server):
        flavor = server.flavor
        disks = None
        if flavor is not None and flavor.disk:
            disks = [Disk(capacity=int(flavor.disk) * KIB_PER_GIB)]
        volumes = [MachineVolume(volume={"href": v["id"]}, initialLocation=v.get("device"))
                   for v in server.attached_volumes or [] if v.get("id")]
        interfaces = interfaces_of(server.addresses, self._network_ids() if server.addresses else {})
        return Machine(id=server.id, name=server.name, description=server.description or None,
                       created=iso(server.created_at), updated=iso(server.updated_at),
                       properties=dict(server.metadata or {}) or None,
                       state=cimi_state(server.status, server.task_state),
                       cpu=int(flavor.vcpus) if flavor is not None and flavor.vcpus else None,
                       memory=int(flavor.ram) * KIB_PER_MIB if flavor is not None and flavor.ram else None,
                       disks=disks, volumes=volumes or None, interfaces=interfaces or None)

    def list_machines(self, limit=None, marker=None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a positive integer", attribute="limit")
        query = {"details": True}
        if limit is not None:
            query["limit"] = limit + 1  # one more than asked: tells whether another page follows
        if marker is not None:
            query["marker"] = marker
        with self._op("machine.list", "machines"):
            servers = self.conn.compute.servers(**query)
            if limit is not None:
                servers = itertools.islice(servers, limit + 1)
            servers = list(servers)
        following = None
        if limit is not None and len(servers) > limit:
            servers = servers[:limit]
            following = servers[-1].id
        return Page(items=[self._machine(s) for s in servers if cimi_state(s.status) is not None], marker=following)

    def get_machine(self, machine_id):
        return self._machine(self._server(machine_id))

    def _act(self, machine_id, action, operation):
        """The server, after checking that its CIMI state allows ``action``."""
        self._need(operation)
        server = self._server(machine_id, operation)
        states.check_allowed(cimi_state(server.status, server.task_state), action,
                             "machine '%s'" % (server.name or machine_id))
        return server

    def _wait_server(self, server_id, done, operation, subject, timeout=None):
        """Poll the server until ``done(server)``; a server gone meanwhile is NotFound, ERROR is a Conflict."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            with self._op(operation, subject):
                server = self.conn.compute.get_server(server_id)
            if done(server):
                return server
            if server.status == "ERROR" and server.task_state is None:
                fault = (server.fault or {}).get("message") or "no reason given"
                raise Conflict("%s (%s): the server went to ERROR: %s" % (subject, operation, fault))
            if time.monotonic() >= deadline:
                raise OperationTimeout("%s (%s): still %s (task %s) after %ss"
                                       % (subject, operation, server.status, server.task_state,
                                          self.timeout if timeout is None else timeout))
            time.sleep(POLL)

    def _settled(self, status):
        return lambda server: server.status == status and server.task_state is None

    def _named(self, name):
        with self._op("machine.list", "machines named '%s'" % name):
            # Nova's name filter is a regular expression: keep the exact matches
            found = self.conn.compute.servers(details=False, name="^%s$" % _regex_escape(name))
            return [s for s in found if s.name == name]

    def create_machine(self, spec):
        self._need("machine.create")
        spec.validate()
        check_properties(spec.properties)
        check_guest_inputs(spec, self.name, self.guest_inputs, user_data_limit=USER_DATA_LIMIT,
                           user_data_encoded=True, passwords=True)
        metadata = dict(spec.properties or {})
        key = (spec.credential or {}).get("key")
        if spec.credential:
            if key and self.options.get("key_name"):
                raise InvalidInput("a credential's key and provider option key_name both name the machine's key "
                                   "pair: give one of them", attribute="credential")
            if spec.credential.get("username"):
                metadata[USER_PROPERTY] = spec.credential["username"]
                check_properties(metadata)
        subject = "machine '%s'" % spec.name
        if self._named(spec.name):
            raise Conflict("a machine named '%s' already exists on provider 'openstack'" % spec.name)
        flavor = self._pick_flavor(spec.config)
        image_ref = spec.image or self.options.get("image")
        if not image_ref:
            raise InvalidInput("the openstack provider needs an image: name one in the request or set provider "
                               "option image", attribute="machineImage")
        image = self.get_machine_image(image_ref)
        params = {"name": spec.name, "flavor_id": flavor.id, "image_id": image.id, "metadata": metadata}
        if spec.description:
            params["description"] = spec.description
        if spec.location:
            zones = self._zones()
            if spec.location not in zones:
                raise InvalidInput("location '%s' is not an availability zone of this cloud (%s)"
                                   % (spec.location, ", ".join(zones)), attribute="location")
            params["availability_zone"] = spec.location
        networks = list(spec.networks) or ([self.options["network"]] if self.options.get("network") else [])
        params["networks"] = [{"uuid": self.get_network(ref).id} for ref in networks] or "none"
        if spec.volumes:
            self._need("volume.attach")
            volume_ids = [self.get_volume(ref).id for ref in spec.volumes]
        else:
            volume_ids = []
        if spec.user_data:
            params["user_data"] = base64.b64encode(spec.user_data.encode("utf-8")).decode("ascii")
        if self.options.get("key_name"):
            params["key_name"] = self.options["key_name"]
        if spec.credential and spec.credential.get("password"):
            params["admin_password"] = spec.credential["password"]
        if key:
            params["key_name"] = self._key_pair(key, subject)
        with self._op("machine.create", subject):
            server = self.conn.compute.create_server(**params)
        try:
            self._wait_server(server.id, self._settled("ACTIVE"), "machine.create", subject)
            for volume_id in volume_ids:
                self._attach(server.id, volume_id, None, subject)
            if spec.initial_state == states.STOPPED:
                self._power_off(server.id, subject, "machine.create")
        except BaseException:
            with contextlib.suppress(Exception):  # the failure that brought us here is the one to report
                self.conn.compute.delete_server(server.id)
            raise
        return self.get_machine(server.id)

    def _key_pair(self, key, subject):
        """Name of the user's Nova key pair holding ``key`` (a checked public key line): ``key_pair_name(key)`` when
        the user has it, else any pair holding the same key (one registered as a credential under a name of its
        own), else ``key_pair_name(key)`` imported. Never deleted with a machine."""
        name = key_pair_name(key)
        with self._op("machine.create", "%s: key pair '%s'" % (subject, name)):
            pairs = list(self.conn.compute.keypairs())
            pair = next((p for p in pairs if p.name == name), None)
            holding = sorted(p.name for p in pairs if same_key(p.public_key, key))
            if pair is None and holding:
                return holding[0]
            if pair is None:
                try:
                    self.conn.compute.create_keypair(name=name, public_key=key)
                    return name
                except openstack.exceptions.ConflictException:  # imported meanwhile by a request with this key
                    pair = self.conn.compute.find_keypair(name)
        if pair is not None and pair.public_key and not same_key(pair.public_key, key):
            raise Conflict("%s: key pair '%s' holds another key than the credential's" % (subject, name))
        return name

    def _power_off(self, server_id, subject, operation):
        if self.options.get("shelve"):
            with self._op(operation, subject):
                self.conn.compute.shelve_server(server_id)
            self._wait_server(server_id, lambda s: s.status in ("SHELVED", "SHELVED_OFFLOADED")
                              and s.task_state is None, operation, subject)
        else:
            with self._op(operation, subject):
                self.conn.compute.stop_server(server_id)
            self._wait_server(server_id, self._settled("SHUTOFF"), operation, subject)

    def start_machine(self, machine_id):
        server = self._act(machine_id, states.START, "machine.start")
        if server.task_state in ("powering-on", "unpausing", "resuming", "unshelving"):
            return self.get_machine(machine_id)  # already on its way
        subject = "machine '%s'" % server.name
        with self._op("machine.start", subject):
            if server.status in ("SHELVED", "SHELVED_OFFLOADED"):
                self.conn.compute.unshelve_server(server)
            elif server.status == "PAUSED":
                self.conn.compute.unpause_server(server)
            elif server.status == "SUSPENDED":
                self.conn.compute.resume_server(server)
            elif server.status == "ERROR":
                self.conn.compute.reboot_server(server, "HARD")  # Nova's way out of ERROR
            else:
                self.conn.compute.start_server(server)
        return self.get_machine(machine_id)

    def stop_machine(self, machine_id, force=False):
        """Power off (or shelve, with option shelve); Nova stops gracefully, then forcibly after its timeout."""
        server = self._act(machine_id, states.STOP, "machine.stop")
        subject = "machine '%s'" % server.name
        if server.task_state in ("powering-off", "shelving", "shelving_offloading"):
            return self.get_machine(machine_id)  # already on its way
        if server.status in ("PAUSED", "SUSPENDED"):
            # Nova stops only active servers: bring this one back first
            with self._op("machine.stop", subject):
                if server.status == "PAUSED":
                    self.conn.compute.unpause_server(server)
                else:
                    self.conn.compute.resume_server(server)
            self._wait_server(server.id, self._settled("ACTIVE"), "machine.stop", subject)
        with self._op("machine.stop", subject):
            if self.options.get("shelve"):
                self.conn.compute.shelve_server(server)
            else:
                self.conn.compute.stop_server(server)
        return self.get_machine(machine_id)

    def restart_machine(self, machine_id, force=False):
        """A soft reboot (hard when forced); a stopped machine is started."""
        server = self._act(machine_id, states.RESTART, "machine.restart")
        if cimi_state(server.status, server.task_state) == states.STOPPED:
            return self.start_machine(machine_id)
        with self._op("machine.restart", "machine '%s'" % server.name):
            self.conn.compute.reboot_server(server, "HARD" if force else "SOFT")
        return self.get_machine(machine_id)

    def pause_machine(self, machine_id):
        server = self._act(machine_id, states.PAUSE, "machine.pause")
        with self._op("machine.pause", "machine '%s'" % server.name):
            self.conn.compute.pause_server(server)
        return self.get_machine(machine_id)

    def suspend_machine(self, machine_id):
        server = self._act(machine_id, states.SUSPEND, "machine.suspend")
        with self._op("machine.suspend", "machine '%s'" % server.name):
            self.conn.compute.suspend_server(server)
        return self.get_machine(machine_id)

    def delete_machine(self, machine_id):
        """Delete the server and wait until Nova no longer lists it; its volumes stay."""
        server = self._act(machine_id, states.DELETE, "machine.delete")
        subject = "machine '%s'" % server.name
        with self._op("machine.delete", subject):
            self.conn.compute.delete_server(server, ignore_missing=False)
        deadline = time.monotonic() + self.timeout
        while True:
            with self._op("machine.delete", subject):
                try:
                    found = self.conn.compute.get_server(server.id)
                except openstack.exceptions.NotFoundException:
                    return
            if cimi_state(found.status) is None:
                return
            if time.monotonic() >= deadline:
                raise OperationTimeout("%s (machine.delete): still %s after %ss"
                                       % (subject, found.status, self.timeout))
            time.sleep(POLL)

    def capture_machine(self, machine_id, name, description=None):
        """Nova's createImage, waited for until the image is active and the server idle again."""
        self._need("machine.capture")
        if not name or not isinstance(name, str):
            raise InvalidInput("machine image name must be a non-empty string", attribute="name")
        server = self._act(machine_id, states.CAPTURE, "machine.capture")
        subject = "machine '%s'" % server.name
        if self._images_named(name):
            raise Conflict("a machine image named '%s' already exists on provider 'openstack'" % name)
        metadata = {"description": description} if description else None
        with self._op("machine.capture", subject):
            image_id = server.create_image(self.conn.compute, name, metadata)
        image = self._wait_image(image_id, "machine.capture", subject)
        self._wait_server(server.id, lambda s: s.task_state is None, "machine.capture", subject)
        return self._image(image)

    def _wait_image(self, image_id, operation, subject):
        """The image once active; Conflict when it ends otherwise, OperationTimeout after ``timeout``."""
        deadline = time.monotonic() + self.timeout
        while True:
            with self._op(operation, subject):
                image = self.conn.image.get_image(image_id)
            state = IMAGE_STATES.get(image.status, states.ERROR)
            if state in ("AVAILABLE", states.ERROR, None):
                break
            if time.monotonic() >= deadline:
                raise OperationTimeout("%s (%s): image '%s' still %s after %ss"
                                       % (subject, operation, image.name, image.status, self.timeout))
            time.sleep(POLL)
        if state != "AVAILABLE":
            raise Conflict("%s (%s): the image '%s' ended %s" % (subject, operation, image.name, image.status))
        return image

    # -- images -----------------------------------------------------------------------------
    def _image(self, image):
        props = image.properties or {}
        base = props.get("base_image_ref") or getattr(image, "base_image_ref", None)
        endpoint = self._image_endpoint()
        return MachineImage(id=image.id, name=image.name, description=props.get("description") or None,
                            created=iso(image.created_at), updated=iso(image.updated_at),
                            state=IMAGE_STATES.get(image.status, states.ERROR), type="IMAGE",
                            imageLocation="%s/v2/images/%s/file" % (endpoint, image.id) if endpoint else image.id,
                            relatedImage={"href": base} if base else None,
                            properties=image_properties(glance_properties(image)) or None)

    def _image_endpoint(self):
        with contextlib.suppress(Exception):  # a location without the endpoint is still a location
            return self.conn.image.get_endpoint().rstrip("/").removesuffix("/v2")
        return None

    def _images_named(self, name):
        with self._op("machine_image.list", "images named '%s'" % name):
            return [i for i in self.conn.image.images(name=name)
                    if IMAGE_STATES.get(i.status, states.ERROR) is not None]

    def list_machine_images(self):
        self._need("machine_image.list")
        with self._op("machine_image.list", "images"):
            found = list(self.conn.image.images())
        return [self._image(i) for i in found if IMAGE_STATES.get(i.status, states.ERROR) is not None]

    def get_machine_image(self, ref):
        self._need("machine_image.list")
        with self._op("machine_image.list", "machine image '%s'" % ref):
            try:
                image = self.conn.image.get_image(ref)
            except (openstack.exceptions.NotFoundException, openstack.exceptions.BadRequestException):
                image = None
        if image is not None and IMAGE_STATES.get(image.status, states.ERROR) is not None:
            return self._image(image)
        return super().get_machine_image(ref)

    def delete_machine_image(self, image_id):
        self._need("machine_image.delete")
        image = self.get_machine_image(image_id)
        subject = "machine image '%s'" % (image.name or image.id)
        with self._op("machine_image.delete", subject):
            users = [s for s in self.conn.compute.servers(details=True, image=image.id)
                     if cimi_state(s.status) is not None]
        if users:
            raise Conflict("%s is the image of machine(s) %s; delete those machines first"
                           % (subject, ", ".join(sorted(s.name or s.id for s in users))))
        with self._op("machine_image.delete", subject):
            self.conn.image.delete_image(image.id, ignore_missing=False)

    def import_machine_image(self, image):
        """Glance image create, then the file uploaded into it (PUT), waited for until active; the image is
        deleted again when anything after its creation fails."""
        self._need("machine_image.import")
        fmt, path = image.validate(self.image_formats)
        if len(image.name) > 255:
            raise InvalidInput("image name: at most 255 characters", attribute="name")
        if image.arch not in GLANCE_ARCHS:
            raise InvalidInput("image arch %s has no Glance name (%s)" % (image.arch, ", ".join(sorted(GLANCE_ARCHS))),
                               attribute="arch")
        props = import_properties(image, fmt)
        virtual, md5, sha256, size = disk_file_facts(fmt, path)
        if virtual != image.virtual_size:
            raise InvalidInput("%s image %s is a disk of %d bytes, its virtual_size says %d"
                               % (fmt, path, virtual, image.virtual_size), attribute="virtual_size")
        expected = (image.checksums or {}).get(fmt)
        if expected and expected.lower() != sha256:
            raise InvalidInput("%s image %s does not match its sha256 checksum" % (fmt, path), attribute="checksums")
        subject = "machine image '%s'" % image.name
        if self._images_named(image.name):
            raise Conflict("a machine image named '%s' already exists on provider 'openstack'" % image.name)
        meta = dict(props, visibility="private", min_disk=max(1, -(-virtual // BYTES_PER_GIB)),
                    architecture=GLANCE_ARCHS[image.arch])
        with self._op("machine_image.import", subject):
            # the record only (no data: the SDK would upload it and, failing, clean up only some failures)
            created = self.conn.image.create_image(
                image.name, disk_format=fmt, container_format="bare", md5=md5, sha256=sha256,
                allow_duplicates=True, disable_vendor_agent=False, meta=meta)
        try:
            with self._op("machine_image.import", subject), open(path, "rb") as data:
                openstack.exceptions.raise_from_response(created.upload(self.conn.image, data=data, size=size))
            stored = self._wait_image(created.id, "machine_image.import", subject)
            if (stored.size, stored.checksum) != (size, md5):
                raise ProviderUnavailable("%s (machine_image.import): Glance stored %s bytes (md5 %s), not the %d "
                                          "bytes (md5 %s) sent" % (subject, stored.size, stored.checksum, size, md5))
            if stored.virtual_size not in (None, virtual):
                raise ProviderUnavailable("%s (machine_image.import): Glance reads a disk of %s bytes, not %d"
                                          % (subject, stored.virtual_size, virtual))
        except BaseException:  # interrupted too: a failed import leaves no image behind
            with contextlib.suppress(Exception):  # the failure that brought us here is the one to report
                self.conn.image.delete_image(created.id)
            raise
        return self._image(stored)

    # -- credentials: Nova key pairs ------------------------------------------------------------
    @staticmethod
    def _credential(pair):
        return Credential(id=pair.name, name=pair.name, key=(pair.public_key or "").strip() or None,
                          created=iso(getattr(pair, "created_at", None)))

    def list_credentials(self):
        """The user's Nova key pairs (name, public key). Nova keeps no user name nor description with them."""
        with self._op("credential.list", "key pairs"):
            return sorted((self._credential(p) for p in self.conn.compute.keypairs()), key=lambda c: c.id)

    def get_credential(self, ref):
        if not ref or not isinstance(ref, str):
            raise NotFound("credential '%s' not found on provider 'openstack'" % (ref,))
        with self._op("credential.get", "credential '%s'" % ref):
            try:
                return self._credential(self.conn.compute.get_keypair(ref))
            except openstack.exceptions.NotFoundException:
                raise NotFound("credential '%s' not found on provider 'openstack'" % ref) from None

    def create_credential(self, name, key, user_name=None, description=None):
        """A Nova key pair ``name`` holding ``key``. Nova keeps nothing else with a key pair: a ``user_name`` or a
        ``description`` is refused (InvalidInput naming it) rather than silently dropped; the user name a machine
        logs in as goes with the machine's credential (metadata ``sirocco.user``)."""
        if not isinstance(name, str) or not name.strip() or len(name) > KEY_NAME_MAX:
            raise InvalidInput("credential name: 1 to %d characters" % KEY_NAME_MAX, attribute="name")
        key = public_key(key, attribute="key")
        if user_name is not None:
            raise InvalidInput("provider 'openstack' keeps no user name with a key pair: leave userName out and "
                               "give it with the machine's credential", attribute="userName")
        if description is not None:
            raise InvalidInput("provider 'openstack' keeps no description with a key pair", attribute="description")
        subject = "credential '%s'" % name
        with self._op("credential.create", subject):
            if self.conn.compute.find_keypair(name) is not None:
                raise Conflict("a credential (key pair) named '%s' already exists on provider 'openstack'" % name)
            try:
                pair = self.conn.compute.create_keypair(name=name, public_key=key)
            except openstack.exceptions.ConflictException:  # made meanwhile
                raise Conflict("a credential (key pair) named '%s' already exists on provider 'openstack'"
                               % name) from None
        return self._credential(pair)

    def delete_credential(self, credential_id):
        """Delete the key pair; servers made with it keep the key."""
        credential = self.get_credential(credential_id)
        with self._op("credential.delete", "credential '%s'" % credential.name):
            try:
                self.conn.compute.delete_keypair(credential.id, ignore_missing=False)
            except openstack.exceptions.NotFoundException:
                raise NotFound("credential '%s' not found on provider 'openstack'" % credential_id) from None

    # -- resize ---------------------------------------------------------------------------------
    def _resize_flavor(self, server, config):
        """The flavor a resize to ``config`` gives: the one named by its id/name, else one of exactly its cpu and
        memory with a disk no smaller than the server's (Nova grows disks only; the same disk first); else
        InvalidInput listing the nearest."""
        flavors = self.list_machine_configs()
        for ref in (config.get("id"), config.get("name")):
            named = [f for f in flavors if ref and ref in (f.id, f.name)]
            if named:
                return named[0]
        if not isinstance(config.cpu, int) or not isinstance(config.memory, int):
            raise InvalidInput("machineConfig needs cpu and memory (or the id of a flavor)", attribute="machineConfig")

        def disk(c):
            return c.disks[0].capacity if c.disks else 0
        current = int(server.flavor.disk or 0) * KIB_PER_GIB if server.flavor is not None else 0
        exact = sorted((f for f in flavors if f.cpu == config.cpu and f.memory == config.memory
                        and disk(f) >= current), key=lambda f: (disk(f) != current, disk(f), f.name or "", f.id))
        if not exact:
            nearest = sorted(flavors, key=lambda f: (abs(f.cpu - config.cpu) + abs(f.memory - config.memory)
                                                     / KIB_PER_GIB, f.name or ""))[:3]
            raise InvalidInput("no flavor of provider 'openstack' has exactly %d vCPU(s) and %d MiB with a disk of "
                               "at least %d GiB; nearest: %s"
                               % (config.cpu, config.memory // KIB_PER_MIB, current // KIB_PER_GIB,
                                  ", ".join("%s (%d vCPU, %d MiB)" % (f.name, f.cpu, f.memory // KIB_PER_MIB)
                                            for f in nearest) or "none"), attribute="machineConfig")
        return exact[0]

    def resize_needs_stop(self, machine, config):
        """Nova resizes a running server as well as a stopped one (the fake driver of the stand-in too): only
        other states (paused, suspended...) need it stopped first."""
        return machine.state not in RESIZE_STATES

    def resize_machine(self, machine_id, config):
        """Nova's resize to the flavor of ``config``, waited for until VERIFY_RESIZE, then confirmed; the server
        keeps its power state. Its flavor already has that size: nothing to do."""
        server = self._server(machine_id, "machine.resize")
        subject = "machine '%s'" % (server.name or machine_id)
        flavor = self._resize_flavor(server, config)
        held = server.flavor
        if held is not None and (int(held.vcpus or 0), int(held.ram or 0) * KIB_PER_MIB,
                                 int(held.disk or 0) * KIB_PER_GIB) == (
                flavor.cpu, flavor.memory, flavor.disks[0].capacity if flavor.disks else 0):
            return self._machine(server)
        state = cimi_state(server.status, server.task_state)
        if state not in RESIZE_STATES:
            raise Conflict("%s is %s: stop it first (Nova resizes running or stopped servers only)" % (subject, state))
        with self._op("machine.resize", subject):
            self.conn.compute.resize_server(server, flavor.id)
        resized = self._wait_server(server.id, self._settled("VERIFY_RESIZE"), "machine.resize", subject)
        with self._op("machine.resize", subject):
            self.conn.compute.confirm_server_resize(resized)
        self._wait_server(server.id, self._settled(server.status), "machine.resize", subject)
        return self.get_machine(server.id)

    # -- networks -------------------------------------------------------------------------------
    @staticmethod
    def _network(n, subnet=None):
        """The Network of a Neutron network; ``cidr``/``dhcp`` from its IPv4 subnet ``subnet`` when it has one."""
        return Network(id=n.id, name=n.name or n.id, description=n.description or None,
                       created=iso(n.created_at), updated=iso(n.updated_at),
                       properties=tag_properties(n.tags) or None,
                       state=NETWORK_STATES.get(n.status, states.ERROR), mtu=n.mtu or None,
                       networkType=n.provider_network_type or None,
                       cidr=subnet.cidr if subnet is not None else None,
                       dhcp=bool(subnet.is_dhcp_enabled) if subnet is not None else None)

    def _ipv4_subnets(self):
        """Network id -> its first IPv4 subnet (what create_network made)."""
        found = {}
        for subnet in sorted(self.conn.network.subnets(ip_version=4), key=lambda s: (s.created_at or "", s.id)):
            found.setdefault(subnet.network_id, subnet)
        return found

    def list_networks(self):
        self._need("network.list")
        with self._op("network.list", "networks"):
            found = list(self.conn.network.networks())
            subnets = self._ipv4_subnets()
        self._network_names = {n.name: n.id for n in found}
        return [self._network(n, subnets.get(n.id)) for n in found]

    def create_network(self, name, description=None, properties=None, cidr=None, dhcp=None):
        """A Neutron network with its tags and one IPv4 subnet of ``cidr`` (else property ``cidr``, else the first
        free /24 of 10.0.0.0/8) serving DHCP unless ``dhcp`` is false; nothing is left behind when a step fails."""
        self._need("network.create")
        if not name or not isinstance(name, str):
            raise InvalidInput("network name must be a non-empty string", attribute="name")
        if description is not None and not isinstance(description, str):
            raise InvalidInput("network description must be a string", attribute="description")
        if dhcp is not None and not isinstance(dhcp, bool):
            raise InvalidInput("dhcp must be true or false", attribute="dhcp")
        tags = network_tags(properties)
        if cidr is not None:
            cidr = network_cidr(cidr)
        elif (properties or {}).get("cidr") is not None:  # the older way to give it, kept
            try:
                cidr = network_cidr((properties or {}).get("cidr"))
            except InvalidInput:
                raise InvalidInput("network property cidr '%s' is not an IPv4 network such as 10.1.2.0/24"
                                   % str(properties["cidr"])[:60], attribute="properties.cidr") from None
        subject = "network '%s'" % name
        with self._op("network.create", subject):
            if any(n.name == name for n in self.conn.network.networks(name=name)):
                raise Conflict("a network named '%s' already exists on provider 'openstack'" % name)
            if cidr is None:
                cidr = free_cidr([s.cidr for s in self.conn.network.subnets(ip_version=4)])
                if cidr is None:
                    raise Conflict("%s: no free /24 left in 10.0.0.0/8 for its subnet" % subject)
            net = self.conn.network.create_network(name=name, description=description or "")
        self._network_names = None
        try:
            with self._op("network.create", subject):
                if tags:
                    self.conn.network.set_tags(net, tags)
                subnet = self.conn.network.create_subnet(network_id=net.id, name=name, ip_version=4, cidr=cidr,
                                                         enable_dhcp=dhcp is not False)
                net = self.conn.network.get_network(net.id)
        except BaseException:
            with contextlib.suppress(Exception):  # the failure that brought us here is the one to report
                self.conn.network.delete_network(net.id)
            raise
        return self._network(net, subnet)

    def delete_network(self, network_id):
        """Delete a network and (Neutron does it) its subnets; refused while servers are plugged into it."""
        self._need("network.delete")
        if not network_id or not isinstance(network_id, str):
            raise NotFound("network '%s' not found on provider 'openstack'" % (network_id,))
        with self._op("network.delete", "network '%s'" % network_id):
            try:
                net = self.conn.network.get_network(network_id)
            except openstack.exceptions.NotFoundException:
                raise NotFound("network '%s' not found on provider 'openstack'" % network_id) from None
            subject = "network '%s'" % (net.name or net.id)
            servers = sorted({p.device_id for p in self.conn.network.ports(network_id=net.id)
                              if (p.device_owner or "").startswith("compute:") and p.device_id})
            if servers:
                names = []
                for server_id in servers:
                    try:
                        names.append(self.conn.compute.get_server(server_id).name or server_id)
                    except openstack.exceptions.NotFoundException:
                        names.append(server_id)  # going away: its id still says what holds the port
                raise Conflict("%s is used by machine(s) %s; delete them or unplug them first"
                               % (subject, ", ".join(sorted(names))))
            self.conn.network.delete_network(net, ignore_missing=False)
        self._network_names = None

    # -- volumes (Cinder) ---------------------------------------------------------------------
    def _volume(self, vol):
        return Volume(id=vol.id, name=vol.name or vol.id, description=vol.description or None,
                      created=iso(vol.created_at), updated=iso(getattr(vol, "updated_at", None)),
                      properties=dict(vol.metadata or {}) or None,
                      state=VOLUME_STATES.get(vol.status, states.ERROR), type=vol.volume_type or None,
                      capacity=int(vol.size or 0) * KIB_PER_GIB, bootable=str(vol.is_bootable).lower() == "true",
                      attachedTo=[{"href": a["server_id"]} for a in vol.attachments or [] if a.get("server_id")]
                      or None)

    def list_volumes(self):
        self._need("volume.list")
        with self._op("volume.list", "volumes"):
            found = list(self.conn.block_storage.volumes(details=True))
        return [self._volume(v) for v in found if VOLUME_STATES.get(v.status, states.ERROR) is not None]

    def _volume_item(self, volume_id, operation):
        with self._op(operation, "volume '%s'" % volume_id):
            try:
                return self.conn.block_storage.get_volume(volume_id)
            except (openstack.exceptions.NotFoundException, openstack.exceptions.BadRequestException):
                raise NotFound("volume '%s' not found on provider 'openstack'" % volume_id) from None

    def get_volume(self, ref):
        self._need("volume.list")
        with contextlib.suppress(NotFound):
            return self._volume(self._volume_item(ref, "volume.list"))
        return super().get_volume(ref)

    def create_volume(self, name, capacity_kb, description=None, properties=None, volume_type=None):
        """A Cinder volume of ``capacity_kb`` rounded up to GiB; ``volume_type`` the name or id of one of the
        cloud's volume types (InvalidInput listing them otherwise), else Cinder's default type."""
        self._need("volume.create")
        if not name or not isinstance(name, str):
            raise InvalidInput("volume name must be a non-empty string", attribute="name")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of kilobytes", attribute="capacity")
        check_properties(properties)
        extra = {}
        if volume_type is not None:
            extra["volume_type"] = self._volume_type(volume_type)
        if any(v.name == name for v in self.list_volumes()):
            raise Conflict("a volume named '%s' already exists on provider 'openstack'" % name)
        size_gib = -(-capacity_kb // KIB_PER_GIB)  # Cinder counts whole GiB
        subject = "volume '%s'" % name
        with self._op("volume.create", subject):
            vol = self.conn.block_storage.create_volume(name=name, size=size_gib, description=description,
                                                        metadata=dict(properties or {}), **extra)
            vol = self.conn.block_storage.wait_for_status(vol, "available", failures=["error"], interval=POLL,
                                                          wait=self.timeout)
        return self._volume(vol)

    def _volume_type(self, ref):
        """The name of the Cinder volume type ``ref`` (a name or id), or InvalidInput naming the types there are."""
        with self._op("volume.create", "volume types"):
            types = list(self.conn.block_storage.types())
        for kind in types:
            if isinstance(ref, str) and ref in (kind.name, kind.id):
                return kind.name
        raise InvalidInput("volume type %r is not one of this cloud's: %s" % (ref, ", ".join(sorted(
            t.name for t in types)) or "none"), attribute="type")

    def resize_volume(self, volume_id, capacity_kb):
        """Cinder's extend to ``capacity_kb`` rounded up to GiB, waited for until the volume is back to its state
        with that size. Never smaller (InvalidInput); the same size is nothing to do. An attached volume is
        extended in use where Cinder allows it (block-storage API 3.42 and a driver that does), else Conflict."""
        self._need("volume.resize")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of kilobytes", attribute="capacity")
        vol = self._volume_item(volume_id, "volume.resize")
        subject = "volume '%s'" % (vol.name or vol.id)
        size_gib = -(-capacity_kb // KIB_PER_GIB)
        if capacity_kb < int(vol.size) * KIB_PER_GIB:
            raise InvalidInput("%s has %d GiB: a volume grows, never shrinks (asked %d KB)"
                               % (subject, vol.size, capacity_kb), attribute="capacity")
        if size_gib == int(vol.size):
            return self._volume(vol)
        if vol.status not in ("available", "in-use"):
            raise Conflict("%s is %s: it can be extended when available or in use" % (subject, vol.status))
        with self._op("volume.resize", subject):
            self.conn.block_storage.extend_volume(vol, size_gib)
            deadline = time.monotonic() + self.timeout
            while True:
                now = self.conn.block_storage.get_volume(vol.id)
                if now.status == vol.status and int(now.size) == size_gib:
                    return self._volume(now)
                if now.status.startswith("error"):
                    raise Conflict("%s (volume.resize): Cinder could not extend it (%s)" % (subject, now.status))
                if time.monotonic() >= deadline:
                    raise OperationTimeout("%s (volume.resize): still %s, %s GiB after %ss"
                                           % (subject, now.status, now.size, self.timeout))
                time.sleep(POLL)

    def delete_volume(self, volume_id):
        self._need("volume.delete")
        vol = self._volume_item(volume_id, "volume.delete")
        if vol.attachments:
            raise Conflict("volume '%s' is attached to machine(s) %s; detach it first"
                           % (vol.name or vol.id, ", ".join(a.get("server_id", "?") for a in vol.attachments)))
        with self._op("volume.delete", "volume '%s'" % (vol.name or vol.id)):
            self.conn.block_storage.delete_volume(vol, ignore_missing=False)
            self.conn.block_storage.wait_for_delete(vol, interval=POLL, wait=self.timeout)

    def _attach(self, server_id, volume_id, initial_location, subject):
        params = {"volume_id": volume_id}
        if initial_location:
            params["device"] = initial_location
        with self._op("volume.attach", subject):
            self.conn.compute.create_volume_attachment(server_id, **params)
            vol = self.conn.block_storage.get_volume(volume_id)
            self.conn.block_storage.wait_for_status(vol, "in-use", failures=["error", "available"],
                                                    interval=POLL, wait=self.timeout)

    def attach_volume(self, machine_id, volume_id, initial_location=None):
        self._need("volume.attach")
        vol = self._volume_item(volume_id, "volume.attach")
        server = self._server(machine_id, "volume.attach")
        if any(a.get("server_id") == server.id for a in vol.attachments or []):
            raise Conflict("volume '%s' is already attached to machine '%s'" % (vol.name, server.name))
        self._attach(server.id, vol.id, initial_location, "machine '%s'" % server.name)
        return self.get_machine(server.id)

    def detach_volume(self, machine_id, volume_id):
        self._need("volume.detach")
        vol = self._volume_item(volume_id, "volume.detach")
        server = self._server(machine_id, "volume.detach")
        if not any(a.get("server_id") == server.id for a in vol.attachments or []):
            raise Conflict("volume '%s' is not attached to machine '%s'" % (vol.name, server.name))
        with self._op("volume.detach", "machine '%s'" % server.name):
            self.conn.compute.delete_volume_attachment(server.id, vol.id, ignore_missing=False)
            self.conn.block_storage.wait_for_status(vol, "available", failures=["error"], interval=POLL,
                                                    wait=self.timeout)
        return self.get_machine(server.id)

    # -- meters ---------------------------------------------------------------------------
    def list_meters(self, machine_id, start=None, end=None):
        """Nova's diagnostics keep no history: each meter has the current sample, when ``now`` is in the window
        (no window: always), else none."""
        current = now_in_window(start, end)
        server = self._server(machine_id, "meter.list")
        running = server.status == "ACTIVE" and current
        diag = {}
        if running:
            with self._op("meter.list", "machine '%s'" % server.name):
                try:
                    diag = self.conn.compute.get_server_diagnostics(server).to_dict()
                except openstack.exceptions.ConflictException:
                    running = False  # stopped between the two calls
        values = diagnostics_values(diag)
        now = _now()
        return [Meter(id="%s:%s" % (server.id, aspect), name=aspect, targetResource={"href": server.id},
                      aspect=ASPECT + aspect, units=units, timeScope="Point",
                      isContinuous=aspect in ("cpu", "memory"),
                      samples=[Sample(timestamp=now, value=str(round(value, 2)))] if current else None)
                for aspect, (units, value) in values.items()]


def _regex_escape(name):
    """``name`` as a literal in the regular expression of Nova's name filter (MySQL and PostgreSQL)."""
    return "".join("\\" + c if c in ".^$*+?()[]{}|\\" else c for c in name)


__all__ = ["OpenStackConnector", "HAS_OPENSTACKSDK", "SERVER_STATES", "TASK_STATES", "IMAGE_STATES",
           "cimi_state", "diagnostics_values", "flavor_config", "free_cidr", "interfaces_of", "network_tags",
           "pick_flavor", "tag_properties", "translate"]

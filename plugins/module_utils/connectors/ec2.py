# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Amazon EC2 connector (and any EC2-compatible cloud), through boto3.

``username``/``password`` are an access key id and its secret key (never logged);
without them boto3's usual chain applies (environment, ``~/.aws``, instance role).
``uri`` is an endpoint URL for an EC2-compatible cloud or a stand-in such as moto
(EC2 and CloudWatch are both asked there); unset, AWS's own endpoints are used.
``region`` is the region (default ``us-east-1``).

Options (``provider_options``):

* ``regions``: several regions served by one connector. The first (or ``region`` when
  set) is the primary one. With more than one, every id is ``REGION:NATIVE-ID``
  (``eu-west-1:i-0abc...``); with one, ids are EC2's own. Unqualified ids always mean the
  primary region.
* ``image``: the AMI (id or name) of machines whose request names none.
* ``image_owners``: whose AMIs are listed as MachineImages (default ``["self"]``);
  any AMI can still be used by id.
* ``instance_types``: the instance types offered as MachineConfigurations, as names or
  patterns (``t3.*``); default every type of the region.
* ``subnet``: the subnet of new machines that name no network (else the default VPC);
  its VPC also receives new networks, and its zone new volumes.
* ``key_name``, ``security_groups`` (ids ``sg-...`` or names): given to new machines. ``key_name``
  names a key pair that exists already; a request with a credential cannot have it too (InvalidInput
  naming ``credential``: one key pair per instance).
* ``max_attempts``: attempts of one API call (botocore's ``standard`` retry mode:
  throttling and transient errors are retried with exponential backoff); default 5.
* ``list_disks``: listings fill ``disks`` too (default false: see Machine below).

Mapping (native id in brackets):

* Machine = instance [instance id]; ``name`` is its ``Name`` tag, ``description`` its
  ``sirocco:description`` tag, ``properties`` every other tag except the ``sirocco:`` and
  ``aws:`` ones. States come from ``INSTANCE_STATES``; a terminated instance is gone.
  ``disks`` is its root EBS volume, ``volumes`` its other EBS volumes, ``interfaces`` its
  network interfaces. A root volume's size is not in DescribeInstances, only in
  DescribeVolumes, so ``get_machine`` and ``find_machines`` fill ``disks`` and a listing
  leaves it out, as a CIMI listing may leave a collection unexpanded (Machine ``disks``
  is a MachineDisk collection in DSP0263); ``list_disks: true`` expands it in listings
  too, at one more request per 200 machines. Pause is not offered; suspend would be
  EC2's hibernation, which needs an encrypted root volume and a guest agent, so it is
  not offered either.
* MachineConfiguration = instance type [type name]: vCPUs, memory, architecture and
  sustained clock speed from DescribeInstanceTypes (cached per process for an hour).
  A request by cpu/memory gets the type that matches exactly, else the smallest that fits.
* MachineImage = AMI [AMI id]; ``capture`` is CreateImage (without rebooting the
  machine), deleting an image also deletes its EBS snapshots. ``properties`` are its tags
  (as for machines). ``import`` takes a raw disk (``image_formats``) the way AWS's own tools
  upload one without S3: the EBS direct APIs write it into a new snapshot (StartSnapshot of
  its size rounded up to GiB, PutSnapshotBlock of each 512 KiB block that is not all zeros with
  its SHA256, CompleteSnapshot with the count and the aggregated checksum), then RegisterImage
  makes an HVM AMI of it (root device ``/dev/xvda``, the image's architecture and boot mode, ENA)
  tagged with the image's properties (the ``sirocco.*`` facts among them). The name is checked
  free before any upload; a failed import deletes its snapshot, and deleting the AMI deletes it too.
* Volume = EBS volume [volume id] that is not an instance's root device. ``create`` takes an EBS
  ``volume_type`` (``VOLUME_TYPES``; ``ebs:gp3`` as listings show it works too; io1/io2 get the minimum
  100 IOPS). ``resize`` is ModifyVolume to the capacity rounded up to GiB, waited for until
  DescribeVolumes reports it; grow only (InvalidInput ``capacity``), attached volumes too.
* Network = VPC subnet [subnet id] with its ``cidr`` (``dhcp`` always true: a VPC's DHCP options
  serve every subnet, so ``dhcp: false`` is InvalidInput). New ones get ``cidr`` when given (a /16 to
  /28 inside the VPC's blocks, else InvalidInput; overlapping a subnet of it, Conflict), else the first
  free /24 of the VPC.
* Meters = CloudWatch's AWS/EC2 metrics CPUUtilization, NetworkIn, NetworkOut: without a window the
  latest 5-minute datapoint of the last hour (a meter without data has no sample); with ``start``/``end``
  every datapoint CloudWatch keeps in it, oldest first (longer periods for windows of more than 5 days).
* Credential = key pair [its name, ``REGION:NAME`` with several regions]: ``key`` the public key
  (DescribeKeyPairs with IncludePublicKey), ``userName`` and ``description`` its tags ``sirocco.user`` and
  ``sirocco:description`` (moto keeps key pair tags as EC2 does). ``create`` is ImportKeyPair (RSA or
  ED25519, checked first: InvalidInput ``key``; a taken name, Conflict), ``delete`` DeleteKeyPair (NotFound
  checked first: EC2 answers success for any name). EC2 takes the same key under several names.
* Resize (machine.resize) = ModifyInstanceAttribute(InstanceType) of a stopped instance (EC2 changes the
  type of stopped instances only; moto would take a running one, the connector does not: Conflict saying to
  stop it). The type is the one of exactly the requested cpu and memory that runs the machine's
  architecture, its own family first; none: InvalidInput ``machineConfig`` naming the nearest.

What a new machine's guest receives (``guest_inputs``), checked before anything is created:

* ``userData``: RunInstances' UserData, at most 16384 bytes before base64 (``USER_DATA_LIMIT``,
  EC2's own limit; boto3 encodes it), readable as the instance attribute ``userData``.
* ``credential``: an SSH public key (RSA or ED25519, the types ImportKeyPair takes; no password)
  imported with ImportKeyPair as ``sirocco-<16 hex>`` (``base.key_pair_name``: the same key,
  the same name) in the machine's region, unless a key pair of that name exists there already, or another
  pair holds the same key (a credential registered under its own name), which is reused; its name is the
  instance's KeyName. EC2 puts the key into the image's default user
  (``admin`` on Debian's AMIs, ``ec2-user`` on Amazon Linux); the credential's ``userName``, when it has
  one, is recorded as tag ``sirocco.user`` (``base.USER_PROPERTY``, a property of the machine: the
  inventory's ``ansible_user``), it does not create that user. The key pair is not deleted with the
  machine: other machines may use it (``DeleteKeyPair`` of its name removes it once none does).

A create is idempotent: RunInstances carries a ClientToken derived from the request
(``client_token``), so a retried call never makes two instances, and a second
machine with the name of a live one is refused (Conflict).

No botocore exception leaves this module: ``error_for`` maps every error code in
one place (``ERROR_CODES``).
"""

from __future__ import annotations

import base64
import binascii
import concurrent.futures
import contextlib
import hashlib
import ipaddress
import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta

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
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
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
    IMAGE_NAME_PROPERTY,
    KIB_PER_MIB,
    USER_NAME_RE,
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
    public_key,
    same_key,
    translating,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    meter_window as checked_window,
)

try:
    import boto3
    import botocore.config
    import botocore.exceptions
    import botocore.loaders
    import botocore.session
    import botocore.utils
    HAS_BOTO3 = True
    BOTO3_IMPORT_ERROR = None
except ImportError as exc:  # Ansible's sanity import test runs without third-party libraries
    BOTO3_IMPORT_ERROR = exc
    boto3 = None
    botocore = None
    HAS_BOTO3 = False

DEFAULT_REGION = "us-east-1"
DEFAULT_ATTEMPTS = 5
NAME_TAG = "Name"
TAG_PREFIX = "sirocco:"
DESCRIPTION_TAG = TAG_PREFIX + "description"
KIB_PER_GIB = 1024 * 1024
ASPECT = "http://schemas.dmtf.org/cimi/2/aspect/"
TYPES_TTL = 3600.0
METER_PERIOD = 300
METER_WINDOW = 3600
DEVICE_LETTERS = "fghijklmnop"
FILTER_CHUNK = 200  # values per filter of one request
EBS_BLOCK = 512 * 1024  # the EBS direct APIs write snapshots in blocks of 512 KiB
BYTES_PER_GIB = 1024 ** 3
ROOT_DEVICE = "/dev/xvda"
BOOT_MODES = {"bios": "legacy-bios", "uefi": "uefi"}  # DiskImage.boot -> RegisterImage's BootMode
UPLOAD_WORKERS = 4  # blocks in flight at once: each PutSnapshotBlock is one round trip
AMI_NAME = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_ ]{3,128}$")  # RegisterImage's rule for Name
MAX_TAGS = 50  # tags per EC2 resource
USER_DATA_LIMIT = 16 * 1024  # RunInstances' UserData: 16 KB before base64 (EC2 User Guide, instance user data)
KEY_TYPES = ("ssh-rsa", "ssh-ed25519")  # what ImportKeyPair takes (RSA or ED25519)
KEY_NAME = re.compile(r"^[\x20-\x7e]{1,255}$")  # ImportKeyPair's KeyName: up to 255 ASCII characters
# EBS volume types create_volume takes; io1/io2 need an IOPS figure: they get their minimum, 100
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")
MIN_IOPS = 100
MAX_METER_POINTS = 1440  # samples per meter a window returns at most: longer windows get longer periods
SUBNET_PREFIXES = (16, 28)  # CreateSubnet: a block between /16 and /28

# -- native states: the one table per resource ---------------------------------------
# Instance state name -> CIMI state; None: the instance is gone (terminated).
INSTANCE_STATES = {
    "pending": states.CREATING,
    "running": states.STARTED,
    "stopping": states.STOPPING,
    "stopped": states.STOPPED,
    "shutting-down": states.DELETING,
    "terminated": None,
}
IMAGE_STATES = {"pending": states.CREATING, "available": "AVAILABLE", "invalid": states.ERROR,
                "deregistered": None, "transient": states.CREATING, "failed": states.ERROR,
                "error": states.ERROR, "disabled": states.ERROR}
VOLUME_STATES = {"creating": states.CREATING, "available": "AVAILABLE", "in-use": "AVAILABLE",
                 "deleting": states.DELETING, "deleted": None, "error": states.ERROR}
SUBNET_STATES = {"pending": states.CREATING, "available": states.STARTED, "unavailable": states.ERROR,
                 "failed": states.ERROR, "failed-insufficient-capacity": states.ERROR}
# EC2 architecture -> CIMI cpuArch, and back.
ARCHS = {"x86_64": "x86_64", "x86_64_mac": "x86_64", "arm64": "aarch64", "arm64_mac": "aarch64", "i386": "x86"}
CIMI_ARCHS = {"x86_64": ("x86_64",), "aarch64": ("arm64",), "ARM": ("arm64",), "x86": ("i386",)}
# CIMI aspect -> (CloudWatch metric of AWS/EC2, statistic, units)
METRICS = {
    "cpu": ("CPUUtilization", "Average", "percent"),
    "inputBandwidth": ("NetworkIn", "Sum", "bytes per 5 minutes"),
    "outputBandwidth": ("NetworkOut", "Sum", "bytes per 5 minutes"),
}
METERS = tuple(ASPECT + aspect for aspect in METRICS)

# -- errors: the one place EC2 error codes are translated ----------------------------
_ERROR_CODES = (
    (NotFound, ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed", "InvalidAMIID.NotFound",
                "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable", "InvalidVolume.NotFound",
                "InvalidVolumeID.Malformed", "InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed",
                "InvalidVpcID.NotFound", "InvalidSnapshot.NotFound", "InvalidGroup.NotFound",
                "InvalidKeyPair.NotFound", "InvalidAttachment.NotFound", "InvalidNetworkInterfaceID.NotFound",
                "ResourceNotFoundException")),
    (Conflict, ("IncorrectInstanceState", "IncorrectState", "VolumeInUse", "DependencyViolation",
                "InvalidAMIName.Duplicate", "IdempotentParameterMismatch", "InvalidSubnet.Conflict",
                "InvalidVolume.ZoneMismatch", "InstanceLimitExceeded", "VolumeLimitExceeded",
                "VcpuLimitExceeded", "InsufficientInstanceCapacity", "UnsupportedOperation",
                "OperationNotPermitted", "InvalidInstanceState", "InvalidSnapshot.InUse", "ConflictException",
                "ServiceQuotaExceededException")),
    (InvalidInput, ("InvalidParameterValue", "InvalidParameter", "InvalidParameterCombination",
                    "MissingParameter", "ValidationError", "InvalidInstanceType", "InvalidBlockDeviceMapping",
                    "InvalidSubnet.Range", "InvalidAMIName.Malformed", "InvalidUserData.Malformed",
                    "InvalidKeyPair.Format", "InvalidKey.Format",
                    "InvalidInput", "InvalidAvailabilityZone", "Unsupported", "InvalidRequest",
                    "ValidationException")),
    (AuthError, ("AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
                 "ExpiredToken", "RequestExpired", "InvalidAccessKeyId", "MissingAuthenticationToken",
                 "IncompleteSignature", "OptInRequired")),
    (Forbidden, ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "Blocked")),
    (ProviderUnavailable, ("RequestLimitExceeded", "Throttling", "ThrottlingException", "ServiceUnavailable",
                           "Unavailable", "InternalError", "InternalFailure", "ServerInternal",
                           "RequestThrottledException", "InternalServerException")),
)
ERROR_CODES = {code: cls for cls, codes in _ERROR_CODES for code in codes}


def _suffix(fault):
    """The last part of an EC2 code ("InvalidFoo.NotFound" -> "NotFound"): families not listed code by code."""
    code = fault[0]
    return code.rsplit(".", 1)[-1] if code else ""


# Faults here are (code, message) pairs: libcloud's EC2 driver hands them over without botocore.
CODE_ERRORS = ErrorTable(
    codes=ERROR_CODES, code=lambda fault: fault[0],
    rules=[(lambda fault: _suffix(fault) in ("NotFound", "Malformed"), NotFound),
           (lambda fault: _suffix(fault) in ("Duplicate", "InUse"), Conflict)],
    detail=lambda fault: "%s%s" % (fault[1] or fault[0], "" if fault[0] in (fault[1] or "") else " [%s]" % fault[0]),
    code_field="ec2_error")


def error_for(code, message, operation, subject, provider="ec2"):
    """The Sirocco error for an EC2 error ``code`` met during ``operation`` on ``subject``."""
    return CODE_ERRORS.error((code, message), operation, subject, provider)


def _waiter_reason(exc):
    reason = exc.last_response.get("Error", {}).get("Message") if exc.last_response else None
    return str(reason or exc)


def _boto_rules():
    """botocore's own exceptions (an API error answer is a ClientError, mapped by its code) -> Sirocco errors."""
    exceptions = botocore.exceptions
    return (
        ErrorRule((exceptions.NoCredentialsError, exceptions.PartialCredentialsError), AuthError,
                  detail=lambda exc: "no usable AWS credentials: give username (access key id) and password "
                                     "(secret key), or configure boto3's usual sources"),
        (exceptions.ParamValidationError, InvalidInput),
        ErrorRule(lambda exc: isinstance(exc, exceptions.WaiterError) and "Max attempts exceeded" in str(exc),
                  OperationTimeout, detail=lambda exc: "still not done: %s" % _waiter_reason(exc)),
        ErrorRule(exceptions.WaiterError, Conflict, detail=_waiter_reason),
    )


BOTO_ERRORS = ErrorTable(_boto_rules)


def translate(exc, operation, subject, provider="ec2"):
    """Any botocore exception as a Sirocco error (the only place they are caught)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        return error_for(error.get("Code", ""), error.get("Message", ""), operation, subject, provider)
    return BOTO_ERRORS.error(exc, operation, subject, provider)


def _botocore_faults():
    return (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


# -- pure helpers ------------------------------------------------------------------------
def cimi_state(instance_state):
    """CIMI state of an instance state name (None: terminated, i.e. gone)."""
    return INSTANCE_STATES.get(instance_state, states.ERROR)


def client_token(request, generation=0):
    """RunInstances' ClientToken for a request (a dict of plain values): the same request, the same token.

    ``generation`` counts the earlier instances of this very request that were deleted, so that
    creating it again after a delete is a new request for EC2, not a replay of the old one."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]
    return "sirocco-%s-%d" % (digest, generation)


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags") or []}


def properties_of(tags):
    """CIMI properties: the tags that are neither the name, Sirocco's own nor AWS's."""
    return {k: v for k, v in tags.items() if k != NAME_TAG and not k.startswith((TAG_PREFIX, "aws:"))}


def check_properties(properties):
    for key, value in (properties or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidInput("properties must map strings to strings", attribute="properties")
        if key == NAME_TAG or key.startswith((TAG_PREFIX, "aws:")):
            raise InvalidInput("property '%s' is reserved (the Name tag, sirocco: and aws: prefixes)" % key,
                               attribute="properties")


def check_key_type(credential, provider="ec2"):
    """Refuse a credential's key of a type EC2's ImportKeyPair does not take (before anything is created)."""
    key = (credential or {}).get("key")
    if key and key.split()[0] not in KEY_TYPES:
        raise InvalidInput("credential.key: provider '%s' imports only %s keys, not %s"
                           % (provider, " or ".join(KEY_TYPES), key.split()[0]), attribute="credential.key")


def tag_list(name, description=None, properties=None):
    tags = {NAME_TAG: name}
    if description:
        tags[DESCRIPTION_TAG] = description
    tags.update(properties or {})
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def iso(stamp):
    if stamp is None:
        return None
    if isinstance(stamp, str):
        return stamp
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def device_name(initial_location, used):
    """An EBS device name for a CIMI ``initialLocation`` (``sdf``, ``/dev/xvdg``), else the first free one."""
    if initial_location in (None, ""):
        for letter in DEVICE_LETTERS:
            for prefix in ("/dev/sd", "/dev/xvd"):
                if prefix + letter in used:
                    break
            else:
                return "/dev/sd" + letter
        raise Conflict("no free device name left (/dev/sdf to /dev/sdp are all used)")
    text = str(initial_location)
    match = re.match(r"^(?:/dev/)?((?:sd|xvd)[b-z][1-9]?)$", text)
    if not match:
        raise InvalidInput("initialLocation '%s' is not an EBS device name like /dev/sdf" % text,
                           attribute="initialLocation")
    device = "/dev/" + match.group(1)
    if device in used:
        raise Conflict("device %s (initialLocation '%s') is already used" % (device, text))
    return device


def type_config(info):
    """A MachineConfiguration of an instance type (a DescribeInstanceTypes item)."""
    archs = [ARCHS[a] for a in info.get("ProcessorInfo", {}).get("SupportedArchitectures", []) if a in ARCHS]
    ghz = info.get("ProcessorInfo", {}).get("SustainedClockSpeedInGhz")
    name = info["InstanceType"]
    return MachineConfiguration(id=name, name=name, cpu=int(info["VCpuInfo"]["DefaultVCpus"]),
                                memory=int(info["MemoryInfo"]["SizeInMiB"]) * KIB_PER_MIB,
                                cpuArch=archs[0] if archs else None, cpuSpeed=int(ghz * 1000) if ghz else None)


def pick_type(configs, cpu, memory_kib, arch=None):
    """The instance type for a cpu/memory request: an exact match, else the smallest that fits; None if none."""
    fitting = [c for c in configs if c.cpu >= cpu and c.memory >= memory_kib and (not arch or c.cpuArch == arch)]
    if not arch:  # prefer x86_64 when the request does not say
        fitting.sort(key=lambda c: c.cpuArch != "x86_64")
    exact = [c for c in fitting if c.cpu == cpu and c.memory == memory_kib]
    pool = exact or fitting
    if not pool:
        return None
    return min(pool, key=lambda c: (c.memory, c.cpu, not arch and c.cpuArch != "x86_64", c.id))


def meter_window(start, end, now):
    """(start, end) of a meter request as timezone-aware datetimes: InvalidInput naming the bound that is not one,
    or when start comes after end; without end the window ends ``now``, without start ``METER_WINDOW`` seconds
    before its end."""
    start, end = checked_window(start, end)
    end = end or now
    start = start or end - timedelta(seconds=METER_WINDOW)
    if start > end:  # an end given alone, earlier than the default start's reach is fine; a start after now is not
        raise InvalidInput("meter window: start %s comes after end %s" % (iso(start), iso(end)), attribute="start")
    return start, end


def meter_period(start, end):
    """A CloudWatch period (seconds, a multiple of 60, at least ``METER_PERIOD``) that gives a window at most
    ``MAX_METER_POINTS`` datapoints per metric."""
    seconds = (end - start).total_seconds()
    return max(METER_PERIOD, 60 * -(-int(seconds) // (60 * MAX_METER_POINTS)))


def subnet_cidr(cidr):
    """A network's ``cidr`` as CreateSubnet takes it (an IPv4 block of /16 to /28), or InvalidInput."""
    try:
        if not isinstance(cidr, str):
            raise TypeError(cidr)
        block = ipaddress.IPv4Network(cidr, strict=True)
    except (TypeError, ValueError):
        raise InvalidInput("cidr '%s' is not an IPv4 network such as 10.20.0.0/24" % str(cidr)[:60],
                           attribute="cidr") from None
    if not SUBNET_PREFIXES[0] <= block.prefixlen <= SUBNET_PREFIXES[1]:
        raise InvalidInput("cidr %s: an EC2 subnet is a block of /%d to /%d" % ((block,) + SUBNET_PREFIXES),
                           attribute="cidr")
    return str(block)


def ebs_volume_type(value):
    """The EBS volume type of a request (``gp3`` or, as listings show it, ``ebs:gp3``), or InvalidInput."""
    name = str(value).removeprefix("ebs:") if isinstance(value, str) else None
    if name not in VOLUME_TYPES:
        raise InvalidInput("volume type %r: EBS offers %s" % (value, ", ".join(VOLUME_TYPES)), attribute="type")
    return name


def nearest_configs(configs, cpu, memory_kib, count=3):
    """The ``count`` configurations nearest a cpu/memory figure, as text for an error message."""
    ranked = sorted(configs, key=lambda c: (abs(c.cpu - cpu) + abs(c.memory - memory_kib) / KIB_PER_GIB, c.id))
    return ", ".join("%s (%d vCPU, %d MiB)" % (c.id, c.cpu, c.memory // KIB_PER_MIB) for c in ranked[:count])


def free_cidr(vpc_cidrs, used_cidrs, prefix=24):
    """The first block of ``/prefix`` inside the VPC's blocks that overlaps no subnet, or None."""
    used = [ipaddress.ip_network(c) for c in used_cidrs]
    for block in vpc_cidrs:
        network = ipaddress.ip_network(block)
        size = max(prefix, network.prefixlen)
        for candidate in network.subnets(new_prefix=size):
            if not any(candidate.overlaps(u) for u in used):
                return str(candidate)
    return None


def encode_marker(region_index, token, after):
    raw = json.dumps([region_index, token, after], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_marker(marker):
    try:
        region_index, token, after = json.loads(base64.urlsafe_b64decode(str(marker).encode("ascii")))
        if not isinstance(region_index, int) or region_index < 0:
            raise ValueError(marker)
        return region_index, token, after
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise InvalidInput("marker '%s' is not one this provider returned" % marker, attribute="marker") from None


def block_checksum(data):
    """PutSnapshotBlock's Checksum: the base64 SHA256 of the block."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


def linear_checksum(checksums):
    """CompleteSnapshot's LINEAR aggregate: the SHA256 of the blocks' digests in block index order, base64
    (``checksums``: {block index: block_checksum})."""
    digest = hashlib.sha256()
    for index in sorted(checksums):
        digest.update(base64.b64decode(checksums[index]))
    return base64.b64encode(digest.digest()).decode("ascii")


def raw_blocks(handle):
    """(index, data) of every 512 KiB block of a raw disk that is not all zeros (a snapshot reads those as
    zeros anyway); the last block padded with zeros."""
    index = 0
    while True:
        data = handle.read(EBS_BLOCK)
        if not data:
            return
        if data.count(0) != len(data):
            yield index, data.ljust(EBS_BLOCK, b"\0")
        index += 1


def image_tags(image, fmt):
    """The AMI's tags of a DiskImage: its Name, description and properties (the IMAGE_* facts among them)."""
    check_properties(image.properties)
    tags = tag_list(image.name, image.description, image.image_properties(fmt))
    if len(tags) > MAX_TAGS or any(len(t["Key"]) > 128 or len(t["Value"]) > 256 for t in tags):
        raise InvalidInput("an AMI takes at most %d tags, keys of up to 128 characters, values of up to 256"
                           % MAX_TAGS, attribute="properties")
    return tags


def _chunks(items, size=FILTER_CHUNK):
    items = list(items)
    return [items[i:i + size] for i in range(0, len(items), size)]


_ID_PATTERNS = {"machine": r"^i-[0-9a-f]{8,17}$", "machine image": r"^ami-[0-9a-f]{8,17}$",
                "volume": r"^vol-[0-9a-f]{8,17}$", "network": r"^subnet-[0-9a-f]{8,17}$"}
# Instance types of a (endpoint, region, patterns): (fetched at, [items]); shared by the connectors of a process.
_TYPES_CACHE = {}
_TYPES_LOCK = threading.Lock()
# botocore's service models, parsed once per process rather than once per connector (~0.4 s each).
_LOADER = []


def parse_timestamp(text):
    """A reply's timestamp as a datetime: EC2's ISO 8601 ones read by the standard library, which is 200 times
    quicker than botocore's dateutil-based parser (a listing of 2,000 instances has 6,000 of them)."""
    try:
        stamp = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        stamp = None
    if stamp is None or stamp.tzinfo is None:  # epoch seconds, RFC 822, no zone: botocore's own rules
        return botocore.utils.parse_timestamp(text)
    return stamp


def _botocore_session():
    with _TYPES_LOCK:
        if not _LOADER:
            _LOADER.append(botocore.loaders.create_loader())
    session = botocore.session.get_session()
    session.register_component("data_loader", _LOADER[0])
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
    return session


class EC2Connector(Connector):
    name = "ec2"
    rounds_to_sizes = True  # instance types / flavors / sizes: the smallest that fits
    option_names = ("regions", "image", "image_owners", "instance_types", "subnet", "key_name",
                    "security_groups", "max_attempts", "list_disks")
    guest_inputs = frozenset({"userData", "credential"})
    user_data_limit = USER_DATA_LIMIT
    image_formats = ("raw",)  # the EBS direct APIs write a disk's blocks as they are

    def __init__(self, uri=None, username=None, password=None, region=None, validate_certs=True,
                 timeout=60, options=None):
        super().__init__(uri=uri, username=username, password=password, region=region,
                         validate_certs=validate_certs, timeout=timeout, options=options)
        if not HAS_BOTO3:
            raise missing_sdk("ec2", "boto3", BOTO3_IMPORT_ERROR)
        regions = self._list_option("regions")
        primary = region or (regions[0] if regions else DEFAULT_REGION)
        self.regions = [primary] + [r for r in regions if r != primary]
        self.region = primary
        self.image_owners = self._list_option("image_owners") or ["self"]
        self.type_patterns = self._list_option("instance_types")
        self.security_groups = self._list_option("security_groups")
        for key in ("image", "subnet", "key_name"):
            if self.options.get(key) is not None and not isinstance(self.options[key], str):
                raise InvalidInput("provider option %s must be a string" % key, attribute="provider_options")
        attempts = self.options.get("max_attempts", DEFAULT_ATTEMPTS)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise InvalidInput("provider option max_attempts must be a positive integer", attribute="provider_options")
        self.list_disks = self.options.get("list_disks", False)
        if not isinstance(self.list_disks, bool):
            raise InvalidInput("provider option list_disks must be true or false", attribute="provider_options")
        self._config = botocore.config.Config(
            retries={"mode": "standard", "max_attempts": attempts}, connect_timeout=timeout,
            read_timeout=max(timeout, 30), user_agent_extra="sirocco")
        self._session = boto3.session.Session(aws_access_key_id=username, aws_secret_access_key=password,
                                              botocore_session=_botocore_session())
        self._clients = {}
        self._zones = {}
        self._home = {}
        self._extra_types = {}
        self._type_index = {}
        self._config_cache = {}
        self._caps = None

    def _list_option(self, key):
        value = self.options.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
            raise InvalidInput("provider option %s must be a list of strings" % key, attribute="provider_options")
        return list(value)

    def __repr__(self):
        return "<ec2 connector regions=%s uri=%r>" % (",".join(self.regions), self.uri)

    def close(self):
        for client in self._clients.values():
            client.close()
        self._clients = {}

    # -- calls ------------------------------------------------------------------------------
    def client(self, region, service="ec2"):
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._session.client(service, region_name=region, endpoint_url=self.uri or None,
                                                      verify=self.validate_certs, config=self._config)
        return self._clients[key]

    def _call(self, region, method, operation, subject=None, service="ec2", **params):
        """One API call, its error mapped to a Sirocco error."""
        with translating(translate, _botocore_faults(), operation, subject or self._where(region)):
            return getattr(self.client(region, service), method)(**params)

    def _pages(self, region, method, key, operation, subject=None, **params):
        """Every item of a paginated listing (boto3's paginator), errors mapped."""
        with translating(translate, _botocore_faults(), operation, subject or self._where(region)):
            for page in self.client(region).get_paginator(method).paginate(**params):
                yield from page.get(key, [])

    def _wait(self, region, waiter, operation, subject, **params):
        """botocore's waiter ``waiter``, polling every 2 s (at once first) until ``timeout``."""
        delay = 2
        with translating(translate, _botocore_faults(), operation, subject):
            self.client(region).get_waiter(waiter).wait(
                WaiterConfig={"Delay": delay, "MaxAttempts": max(1, int(self.timeout // delay))}, **params)

    def _where(self, region):
        return "EC2 %s%s" % (region, " at %s" % self.uri if self.uri else "")

    # -- ids ------------------------------------------------------------------------------
    def qualify(self, region, native):
        return native if len(self.regions) == 1 else "%s:%s" % (region, native)

    def split(self, ref, what):
        """(region, native id) of an id; NotFound for what cannot be an id of ``what`` here."""
        text = str(ref)
        region, native = text.split(":", 1) if ":" in text else (self.region, text)
        if region not in self.regions or not re.match(_ID_PATTERNS[what], native):
            raise NotFound("%s '%s' not found on provider ec2 (%s)" % (what, ref, ", ".join(self.regions)))
        return region, native

    # -- instance types --------------------------------------------------------------------
    def _cached_type_items(self, region):
        """The offered types of ``region`` if this process has read them within the hour, else None."""
        with _TYPES_LOCK:
            cached = _TYPES_CACHE.get((self.uri, region, tuple(self.type_patterns)))
        return cached[1] if cached and time.monotonic() - cached[0] < TYPES_TTL else None

    def _type_items(self, region):
        cached = self._cached_type_items(region)
        if cached is not None:
            return cached
        key = (self.uri, region, tuple(self.type_patterns))
        params = {}
        if self.type_patterns:
            params["Filters"] = [{"Name": "instance-type", "Values": self.type_patterns}]
        items = list(self._pages(region, "describe_instance_types", "InstanceTypes", "machine_config.list", **params))
        items.sort(key=lambda t: t["InstanceType"])
        with _TYPES_LOCK:
            _TYPES_CACHE[key] = (time.monotonic(), items)
        return items

    def _learn_types(self, region, names):
        """Make ``_type_info`` of ``names`` cheap: the ones not known yet asked by name, in one request per 100.

        A listing needs only the types its instances use; loading every type of the region (several pages,
        2 s on moto) just for those would cost more than the listing itself."""
        offered = None if region in self._type_index else self._cached_type_items(region)
        if offered is not None:  # read already (a create, the capabilities): no need to ask
            self._type_index[region] = {item["InstanceType"]: item for item in offered}
        known = self._type_index.get(region, {})
        missing = sorted({n for n in names if n not in known and (region, n) not in self._extra_types})
        for chunk in _chunks(missing, 100):
            try:
                found = self._call(region, "describe_instance_types", "machine_config.list", InstanceTypes=chunk)
            except InvalidInput:  # a retired type fails the whole request: asked one by one by _type_info
                continue
            items = {item["InstanceType"]: item for item in found.get("InstanceTypes") or []}
            for name in chunk:
                if name in items:
                    self._extra_types[(region, name)] = items[name]

    def _type_info(self, region, name):
        """DescribeInstanceTypes' item for one type, also outside the ``instance_types`` option."""
        if (region, name) in self._extra_types:
            return self._extra_types[(region, name)]
        if region not in self._type_index:
            self._type_index[region] = {item["InstanceType"]: item for item in self._type_items(region)}
        if name in self._type_index[region]:
            return self._type_index[region][name]
        try:
            found = self._call(region, "describe_instance_types", "machine_config.list", InstanceTypes=[name])
        except InvalidInput:  # a type EC2 no longer describes: its machines' cpu and memory are unknown
            found = {}
        self._extra_types[(region, name)] = (found.get("InstanceTypes") or [None])[0]
        return self._extra_types[(region, name)]

    def _configs(self, region):
        """MachineConfigurations of a region's offered types (made once per connector)."""
        if region not in self._config_cache:
            self._config_cache[region] = [type_config(item) for item in self._type_items(region)]
        return self._config_cache[region]

    def list_machine_configs(self):
        return list(self._configs(self.region))

    def get_machine_config(self, ref):
        for item in self._type_items(self.region):
            if item["InstanceType"] == ref:
                return type_config(item)
        raise NotFound("machine configuration '%s' not found on provider ec2 (%s)%s"
                       % (ref, self.region, " among instance types %s" % ", ".join(self.type_patterns)
                          if self.type_patterns else ""))

    def _resolve_type(self, region, config):
        """The instance type name for a request's MachineConfiguration."""
        configs = self._configs(region)
        for ref in (config.get("id"), config.get("name")):
            if ref and any(c.id == ref for c in configs):
                return ref
        arch = config.cpuArch
        if arch and arch not in CIMI_ARCHS:
            raise InvalidInput("cpuArch %s is not offered by EC2 (%s)" % (arch, ", ".join(sorted(CIMI_ARCHS))),
                               attribute="machineConfig.cpuArch")
        chosen = pick_type(configs, config.cpu, config.memory, arch)
        if chosen is None:
            raise InvalidInput("no instance type of %s offers %d vCPU(s) and %d MiB%s (largest: %d vCPUs, %d MiB)"
                               % (region, config.cpu, -(-config.memory // KIB_PER_MIB),
                                  " on %s" % arch if arch else "", max((c.cpu for c in configs), default=0),
                                  max((c.memory for c in configs), default=0) // KIB_PER_MIB),
                               attribute="machineConfig")
        return chosen.id

    # -- zones and capabilities ---------------------------------------------------------------
    def zones(self, region):
        if region not in self._zones:
            found = self._call(region, "describe_availability_zones", "capabilities",
                               Filters=[{"Name": "state", "Values": ["available"]}])
            self._zones[region] = sorted(z["ZoneName"] for z in found.get("AvailabilityZones", []))
        return self._zones[region]

    def home_zone(self, region):
        """Zone of new volumes and of machines that name no network: the ``subnet`` option's, else the first."""
        if region not in self._home:
            zone = None
            if self.options.get("subnet") and region == self.region:
                zone = self._subnet(region, self.options["subnet"])["AvailabilityZone"]
            self._home[region] = zone or (self.zones(region) or [None])[0]
        return self._home[region]

    def capabilities(self):
        """Read once per connector (machine_action consults them before every action)."""
        if self._caps is None:
            self._caps = self._capabilities()
        return self._caps

    def _capabilities(self):
        configs = self._configs(self.region)
        speeds = [c.cpuSpeed for c in configs if c.cpuSpeed]
        locations = []
        for region in self.regions:
            locations += [region] + self.zones(region)
        return Capabilities(
            provider=self.name, operations=self.implemented_operations(),
            cpu=Range(min((c.cpu for c in configs), default=1), max((c.cpu for c in configs), default=None)),
            cpu_mhz=Range(min(speeds) if speeds else None, max(speeds) if speeds else None),
            memory_mib=Range(min((c.memory for c in configs), default=1) // KIB_PER_MIB,
                             max((c.memory for c in configs), default=0) // KIB_PER_MIB or None),
            archs=tuple(sorted({c.cpuArch for c in configs if c.cpuArch})), meters=METERS,
            locations=tuple(locations), stop_force_default=False,
            **self.guest_fields(), image_formats=self.import_formats(), rounds_to_sizes=self.rounds_to_sizes,
            extras={"regions": list(self.regions), "instanceTypes": len(configs)})

    # -- machines ---------------------------------------------------------------------------
    def _instance(self, machine_id):
        """(region, instance) of a machine that is not terminated, else NotFound."""
        region, native = self.split(machine_id, "machine")
        found = self._call(region, "describe_instances", "machine.get", "machine '%s'" % machine_id,
                           InstanceIds=[native])
        for reservation in found.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                if instance["InstanceId"] == native and cimi_state(instance["State"]["Name"]) is not None:
                    return region, instance
        raise NotFound("machine '%s' not found on provider ec2 (%s): it was deleted" % (machine_id, region))

    def _root_volumes(self, region, instances):
        """Volume id -> DescribeVolumes item, for the root volumes of ``instances``."""
        ids = []
        for instance in instances:
            for mapping in instance.get("BlockDeviceMappings", []):
                if mapping.get("DeviceName") == instance.get("RootDeviceName") and "Ebs" in mapping:
                    ids.append(mapping["Ebs"]["VolumeId"])
        volumes = {}
        for chunk in _chunks(ids):
            for volume in self._pages(region, "describe_volumes", "Volumes", "machine.list",
                                      Filters=[{"Name": "volume-id", "Values": chunk}]):
                volumes[volume["VolumeId"]] = volume
        return volumes

    def _machine(self, region, instance, volumes):
        """The Machine of an instance; ``volumes`` (root volume id -> DescribeVolumes item) None: no ``disks``."""
        tags = tags_of(instance)
        disks, attached = [], []
        for mapping in sorted(instance.get("BlockDeviceMappings", []), key=lambda m: m.get("DeviceName", "")):
            volume_id = mapping.get("Ebs", {}).get("VolumeId")
            if not volume_id:
                continue
            if mapping.get("DeviceName") == instance.get("RootDeviceName"):
                if volumes is not None:
                    size = volumes.get(volume_id, {}).get("Size")
                    disks.append(Disk(capacity=int(size or 0) * KIB_PER_GIB, initialLocation=mapping["DeviceName"]))
            else:
                attached.append(MachineVolume(volume={"href": self.qualify(region, volume_id)},
                                              initialLocation=mapping.get("DeviceName")))
        running = instance["State"]["Name"] == "running"
        interfaces = []
        for nic in sorted(instance.get("NetworkInterfaces", []), key=lambda n: n.get("Attachment", {})
                          .get("DeviceIndex", 0)):
            addresses = [{"address": a["PrivateIpAddress"]} for a in nic.get("PrivateIpAddresses", [])
                         if a.get("PrivateIpAddress")]
            public = nic.get("Association", {}).get("PublicIp")
            if public:
                addresses.append({"address": public})
            interfaces.append(NetworkInterface(network={"href": self.qualify(region, nic["SubnetId"])}
                                               if nic.get("SubnetId") else None,
                                               macAddress=nic.get("MacAddress"), addresses=addresses or None,
                                               state="Active" if running else "Passive"))
        info = self._type_info(region, instance["InstanceType"]) or {}
        options = instance.get("CpuOptions") or {}
        cpu = (options.get("CoreCount", 0) * options.get("ThreadsPerCore", 1)) or \
            info.get("VCpuInfo", {}).get("DefaultVCpus")
        memory = info.get("MemoryInfo", {}).get("SizeInMiB")
        return Machine(id=self.qualify(region, instance["InstanceId"]), name=tags.get(NAME_TAG),
                       description=tags.get(DESCRIPTION_TAG), created=iso(instance.get("LaunchTime")),
                       properties=properties_of(tags), state=cimi_state(instance["State"]["Name"]),
                       cpu=int(cpu) if cpu else None, memory=int(memory) * KIB_PER_MIB if memory else None,
                       cpuArch=ARCHS.get(instance.get("Architecture")),
                       disks=disks if volumes is not None else None, volumes=attached, interfaces=interfaces)

    def _machines(self, found, disks=True):
        """Machines of [(region, instance)]: their instance types asked at most once per region and, with
        ``disks``, their root volumes in one request per region and 200 machines."""
        volumes = {} if disks else None
        for region in {r for r, _i in found}:
            instances = [i for r, i in found if r == region]
            self._learn_types(region, {i["InstanceType"] for i in instances})
            if disks:
                volumes.update(self._root_volumes(region, instances))
        return [self._machine(region, instance, volumes) for region, instance in found]

    def list_machines(self, limit=None, marker=None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a positive integer", attribute="limit")
        region_index, token, after = decode_marker(marker) if marker is not None else (0, None, None)
        page_size = 1000 if limit is None else min(max(limit, 5), 1000)
        found = []
        while region_index < len(self.regions):
            region = self.regions[region_index]
            params = {"MaxResults": page_size}
            if token:
                params["NextToken"] = token
            reply = self._call(region, "describe_instances", "machine.list", **params)
            instances = [i for r in reply.get("Reservations", []) for i in r.get("Instances", [])]
            if after:  # resume inside this page, after the last instance already returned
                ids = [i["InstanceId"] for i in instances]
                instances = instances[ids.index(after) + 1:] if after in ids else instances
            alive = [(region, i) for i in instances if cimi_state(i["State"]["Name"]) is not None]
            if limit is not None and len(found) + len(alive) > limit:
                alive = alive[:limit - len(found)]
                found += alive
                return Page(items=self._machines(found, self.list_disks),
                            marker=encode_marker(region_index, token, alive[-1][1]["InstanceId"]))
            found += alive
            after = None
            token = reply.get("NextToken")
            if not token:
                region_index += 1
            if limit is not None and len(found) == limit:
                break
        more = region_index < len(self.regions)
        return Page(items=self._machines(found, self.list_disks),
                    marker=encode_marker(region_index, token, None) if more else None)

    def get_machine(self, machine_id):
        region, instance = self._instance(machine_id)
        return self._machines([(region, instance)])[0]

    def find_machines(self, name):
        """Every machine called ``name``, ``disks`` filled: asked by Name tag rather than read from a listing."""
        found = [(region, instance) for region in self.regions for instance in self._named(region, name, "machine.list")
                 if tags_of(instance).get(NAME_TAG) == name and cimi_state(instance["State"]["Name"]) is not None]
        return self._machines(found)

    def _act(self, machine_id, action):
        region, instance = self._instance(machine_id)
        name = tags_of(instance).get(NAME_TAG) or machine_id
        states.check_allowed(cimi_state(instance["State"]["Name"]), action, "machine '%s'" % name)
        return region, instance, "machine '%s'" % name

    def _location(self, location):
        """(region, zone or None) of a spec's location: a served region or one of their zones."""
        if not location:
            return self.region, None
        if location in self.regions:
            return location, None
        for region in self.regions:
            if location in self.zones(region):
                return region, location
        raise InvalidInput("location '%s' is neither a region nor a zone of this provider (%s)"
                           % (location, ", ".join(self.regions)), attribute="location")

    def _named(self, region, name, operation):
        return [instance for reservation in self._pages(region, "describe_instances", "Reservations", operation,
                                                        Filters=[{"Name": "tag:" + NAME_TAG, "Values": [name]}])
                for instance in reservation.get("Instances", [])]

    def create_machine(self, spec):
        spec.validate()
        check_properties(spec.properties)
        check_guest_inputs(spec, self.name, self.guest_inputs, user_data_limit=USER_DATA_LIMIT)
        if spec.credential:
            check_key_type(spec.credential)
            if self.options.get("key_name"):
                raise InvalidInput("a credential and provider option key_name both name the machine's key pair: "
                                   "give one of them", attribute="credential")
        region, zone = self._location(spec.location)
        subject = "machine '%s'" % spec.name
        named = {}
        for other in self.regions:
            named[other] = self._named(other, spec.name, "machine.create")
            if any(cimi_state(i["State"]["Name"]) is not None for i in named[other]):
                raise Conflict("a machine named '%s' already exists on provider ec2 (%s)" % (spec.name, other))
        image_ref = spec.image or self.options.get("image")
        if not image_ref:
            raise InvalidInput("the ec2 provider needs an image: name one in the request or set provider option image",
                               attribute="machineImage")
        image = self.get_machine_image(image_ref)
        image_region, ami = self.split(image.id, "machine image")
        if image_region != region:
            raise InvalidInput("machine image '%s' is in %s, the machine goes to %s"
                               % (image_ref, image_region, region), attribute="machineImage")
        instance_type = self._resolve_type(region, spec.config)
        volumes = []
        for ref in spec.volumes:
            volume_region, volume_id = self.split(ref, "volume")
            if volume_region != region:
                raise InvalidInput("volume '%s' is in %s, the machine goes to %s" % (ref, volume_region, region),
                                   attribute="volumes")
            self._volume_item(volume_region, volume_id)
            volumes.append(volume_id)
        properties = dict(spec.properties or {})
        if spec.credential and spec.credential.get("username"):
            properties[USER_PROPERTY] = spec.credential["username"]
        params = {"ImageId": ami, "InstanceType": instance_type, "MinCount": 1, "MaxCount": 1,
                  "TagSpecifications": [{"ResourceType": "instance",
                                         "Tags": tag_list(spec.name, spec.description, properties)}]}
        group_ids = [g for g in self.security_groups if g.startswith("sg-")]
        group_names = [g for g in self.security_groups if not g.startswith("sg-")]
        subnets = []
        for ref in spec.networks:
            net_region, subnet_id = self.split(ref, "network")
            if net_region != region:
                raise InvalidInput("network '%s' is in %s, the machine goes to %s" % (ref, net_region, region),
                                   attribute="networks")
            subnets.append(subnet_id)
        if len(subnets) > 1 or (subnets and group_ids):
            params["NetworkInterfaces"] = [dict({"DeviceIndex": i, "SubnetId": s}, **({"Groups": group_ids}
                                                                                      if group_ids else {}))
                                           for i, s in enumerate(subnets)]
        else:
            if subnets:
                params["SubnetId"] = subnets[0]
            elif self.options.get("subnet") and region == self.region and not zone:
                params["SubnetId"] = self._subnet(region, self.options["subnet"])["SubnetId"]
            else:
                params["Placement"] = {"AvailabilityZone": zone or self.home_zone(region)}
            if group_ids:
                params["SecurityGroupIds"] = group_ids
        if group_names:
            params["SecurityGroups"] = group_names
        if self.options.get("key_name"):
            params["KeyName"] = self.options["key_name"]
        if spec.credential:
            params["KeyName"] = self._key_pair(region, spec.credential["key"], subject)
        if spec.user_data:
            params["UserData"] = spec.user_data
        request = {k: v for k, v in params.items() if k not in ("MinCount", "MaxCount")}
        request.update(region=region, volumes=volumes, initial_state=spec.initial_state)
        instance = self._run(region, named[region], params, request, subject)
        machine_id = self.qualify(region, instance["InstanceId"])
        try:
            self._wait(region, "instance_running", "machine.create", subject, InstanceIds=[instance["InstanceId"]])
            for volume_id in volumes:
                self._attach(region, instance["InstanceId"], volume_id, None, subject)
            if spec.initial_state == states.STOPPED:
                self._call(region, "stop_instances", "machine.create", subject, InstanceIds=[instance["InstanceId"]])
                self._wait(region, "instance_stopped", "machine.create", subject, InstanceIds=[instance["InstanceId"]])
        except BaseException:
            self._terminate(region, instance["InstanceId"], subject, wait=False)
            raise
        return self.get_machine(machine_id)

    def _key_pair(self, region, key, subject):
        """The name of the key pair holding ``key`` in ``region``: ``key_pair_name(key)`` when there, else any
        pair holding the same key (one registered as a credential under a name of its own), else
        ``key_pair_name(key)`` imported. Never deleted with a machine."""
        name = key_pair_name(key)
        pairs = self._call(region, "describe_key_pairs", "machine.create", subject,
                           IncludePublicKey=True).get("KeyPairs", [])
        for pair in pairs:
            if pair.get("KeyName") == name:
                if pair.get("PublicKey") and not same_key(pair["PublicKey"], key):
                    raise Conflict("%s: key pair '%s' in %s holds another key than the credential's"
                                   % (subject, name, region))
                return name
        holding = sorted(p["KeyName"] for p in pairs if same_key(p.get("PublicKey"), key))
        if holding:
            return holding[0]
        try:
            self._call(region, "import_key_pair", "machine.create", subject, KeyName=name,
                       PublicKeyMaterial=key.encode("ascii"))
        except Conflict as exc:
            if exc.details.get("ec2_error") != "InvalidKeyPair.Duplicate":
                raise
            # imported meanwhile by another request with the same key: that pair is this one
        return name

    def _run(self, region, named, params, request, subject):
        """RunInstances with the request's ClientToken; a token of a deleted instance (among ``named``, the
        instances with the machine's name) moves to the next one."""
        spent = {i.get("ClientToken") for i in named if cimi_state(i["State"]["Name"]) in (None, states.DELETING)}
        generation = 0
        while client_token(request, generation) in spent:
            generation += 1
        for attempt in range(generation, generation + 5):
            reply = self._call(region, "run_instances", "machine.create", subject,
                               ClientToken=client_token(request, attempt), **params)
            instance = reply["Instances"][0]
            if cimi_state(instance["State"]["Name"]) not in (None, states.DELETING):
                return instance
            # EC2 remembered this token from an instance deleted long ago: that one is not ours to return.
        raise Conflict("%s: EC2 keeps returning deleted instances for this request" % subject)

    def _terminate(self, region, instance_id, subject, wait=True):
        try:
            self._call(region, "terminate_instances", "machine.delete", subject, InstanceIds=[instance_id])
            if wait:
                self._wait(region, "instance_terminated", "machine.delete", subject, InstanceIds=[instance_id])
        except SiroccoError:
            if wait:
                raise

    def start_machine(self, machine_id):
        region, instance, subject = self._act(machine_id, states.START)
        self._call(region, "start_instances", "machine.start", subject, InstanceIds=[instance["InstanceId"]])
        return self.get_machine(machine_id)

    def stop_machine(self, machine_id, force=False):
        region, instance, subject = self._act(machine_id, states.STOP)
        self._call(region, "stop_instances", "machine.stop", subject, InstanceIds=[instance["InstanceId"]],
                   Force=bool(force))
        return self.get_machine(machine_id)

    def restart_machine(self, machine_id, force=False):
        """A reboot (EC2 forces it when the guest does not restart within 4 minutes); a stopped machine starts."""
        region, instance, subject = self._act(machine_id, states.RESTART)
        if instance["State"]["Name"] == "stopped":
            self._call(region, "start_instances", "machine.restart", subject, InstanceIds=[instance["InstanceId"]])
        else:
            self._call(region, "reboot_instances", "machine.restart", subject, InstanceIds=[instance["InstanceId"]])
        return self.get_machine(machine_id)

    def delete_machine(self, machine_id):
        region, instance, subject = self._act(machine_id, states.DELETE)
        self._terminate(region, instance["InstanceId"], subject)

    def capture_machine(self, machine_id, name, description=None):
        if not name or not isinstance(name, str):
            raise InvalidInput("machine image name must be a non-empty string", attribute="name")
        region, instance, subject = self._act(machine_id, states.CAPTURE)
        if self._images(region, Filters=[{"Name": "name", "Values": [name]}], Owners=["self"]):
            raise Conflict("a machine image named '%s' already exists on provider ec2 (%s)" % (name, region))
        params = {"InstanceId": instance["InstanceId"], "Name": name, "NoReboot": True}
        if description:
            params["Description"] = description
        ami = self._call(region, "create_image", "machine.capture", subject, **params)["ImageId"]
        self._wait(region, "image_available", "machine.capture", subject, ImageIds=[ami])
        return self._image(region, self._image_item(region, ami))

    # -- credentials: key pairs ------------------------------------------------------------
    def _credential(self, region, pair):
        tags = tags_of(pair)
        return Credential(id=self.qualify(region, pair["KeyName"]), name=pair["KeyName"],
                          description=tags.get(DESCRIPTION_TAG), userName=tags.get(USER_PROPERTY),
                          key=(pair.get("PublicKey") or "").strip() or None, created=iso(pair.get("CreateTime")))

    def _split_credential(self, ref):
        """(region, key name) of a credential id: ``REGION:NAME`` with several regions, else the name itself."""
        text = str(ref)
        region, name = text.split(":", 1) if ":" in text else (None, text)
        if region not in self.regions:
            region, name = self.region, text
        return region, name

    def _key_pairs(self, region, operation, name=None):
        params = {"IncludePublicKey": True}
        if name is not None:
            params["Filters"] = [{"Name": "key-name", "Values": [name]}]
        pairs = self._call(region, "describe_key_pairs", operation, **params).get("KeyPairs", [])
        return [p for p in pairs if name is None or p.get("KeyName") == name]

    def list_credentials(self):
        """Key pairs, with the public key EC2 keeps (IncludePublicKey), of every served region."""
        found = []
        for region in self.regions:
            found += [self._credential(region, p) for p in self._key_pairs(region, "credential.list")]
        return sorted(found, key=lambda c: c.id)

    def get_credential(self, ref):
        region, name = self._split_credential(ref)
        found = self._key_pairs(region, "credential.get", name)
        if not found:
            raise NotFound("credential '%s' not found on provider ec2 (%s)" % (ref, region))
        return self._credential(region, found[0])

    def create_credential(self, name, key, user_name=None, description=None):
        """ImportKeyPair of ``key`` as ``name`` in the primary region; ``user_name`` and ``description`` are the
        key pair's tags ``sirocco.user`` and ``sirocco:description`` (moto keeps them, as EC2 does)."""
        if not isinstance(name, str) or not KEY_NAME.match(name):
            raise InvalidInput("credential name: 1 to 255 ASCII characters", attribute="name")
        key = public_key(key, attribute="key")
        if key.split()[0] not in KEY_TYPES:
            raise InvalidInput("key: provider ec2 imports only %s keys, not %s"
                               % (" or ".join(KEY_TYPES), key.split()[0]), attribute="key")
        if user_name is not None and (not isinstance(user_name, str) or not USER_NAME_RE.match(user_name)):
            raise InvalidInput("userName '%s' is not a user name a guest OS takes" % (user_name,),
                               attribute="userName")
        if description is not None and (not isinstance(description, str) or len(description) > 256):
            raise InvalidInput("description: a string of at most 256 characters", attribute="description")
        region = self.region
        subject = "credential '%s'" % name
        if self._key_pairs(region, "credential.create", name):
            raise Conflict("a credential (key pair) named '%s' already exists on provider ec2 (%s)" % (name, region))
        tags = {USER_PROPERTY: user_name, DESCRIPTION_TAG: description}
        params = {"KeyName": name, "PublicKeyMaterial": key.encode("ascii")}
        if any(tags.values()):
            params["TagSpecifications"] = [{"ResourceType": "key-pair",
                                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items() if v]}]
        self._call(region, "import_key_pair", "credential.create", subject, **params)
        return self.get_credential(self.qualify(region, name))

    def delete_credential(self, credential_id):
        """DeleteKeyPair; NotFound when there is none (EC2 itself answers success). Machines made with it keep
        the key."""
        credential = self.get_credential(credential_id)
        region, name = self._split_credential(credential.id)
        self._call(region, "delete_key_pair", "credential.delete", "credential '%s'" % name, KeyName=name)

    # -- resize ------------------------------------------------------------------------------
    def _resize_type(self, region, instance, config):
        """The instance type a resize to ``config`` gives: the one named by its id/name, else one of exactly its
        cpu and memory on the machine's architecture (the machine's family first); else InvalidInput listing the
        nearest."""
        arch = ARCHS.get(instance.get("Architecture"))
        runs = {item["InstanceType"] for item in self._type_items(region)  # types that run the machine's arch
                if not arch or arch in {ARCHS.get(a) for a in item.get("ProcessorInfo", {})
                                        .get("SupportedArchitectures", [])}}
        configs = [c for c in self._configs(region) if c.id in runs]
        for ref in (config.get("id"), config.get("name")):
            named = [c for c in configs if c.id == ref]
            if ref and named:
                return named[0].id
        if not isinstance(config.cpu, int) or not isinstance(config.memory, int):
            raise InvalidInput("machineConfig needs cpu and memory (or the id of an instance type)",
                               attribute="machineConfig")
        family = instance["InstanceType"].split(".")[0]
        exact = sorted((c for c in configs if c.cpu == config.cpu and c.memory == config.memory),
                       key=lambda c: (c.id.split(".")[0] != family, c.id))
        if not exact:
            raise InvalidInput("no instance type of %s has exactly %d vCPU(s) and %d MiB%s; nearest: %s"
                               % (region, config.cpu, config.memory // KIB_PER_MIB, " on %s" % arch if arch else "",
                                  nearest_configs(configs, config.cpu, config.memory) or "none"),
                               attribute="machineConfig")
        return exact[0].id

    def resize_machine(self, machine_id, config):
        """ModifyInstanceAttribute(InstanceType) of a stopped instance (EC2 changes the type of stopped instances
        only; moto would take it running too). The type already there: nothing to do."""
        region, instance = self._instance(machine_id)
        name = tags_of(instance).get(NAME_TAG) or machine_id
        target = self._resize_type(region, instance, config)
        if target == instance["InstanceType"]:
            return self.get_machine(machine_id)
        state = cimi_state(instance["State"]["Name"])
        if state != states.STOPPED:
            raise Conflict("machine '%s' is %s: stop it first, EC2 changes the instance type of a stopped instance "
                           "only" % (name, state))
        self._call(region, "modify_instance_attribute", "machine.resize", "machine '%s'" % name,
                   InstanceId=instance["InstanceId"], InstanceType={"Value": target})
        return self.get_machine(machine_id)

    # -- images -----------------------------------------------------------------------------
    def _images(self, region, **params):
        found = self._call(region, "describe_images", "machine_image.list", **params)
        return [i for i in found.get("Images", []) if IMAGE_STATES.get(i.get("State"), states.ERROR) is not None]

    def _image_item(self, region, ami):
        found = self._images(region, ImageIds=[ami])
        if not found:
            raise NotFound("machine image '%s' not found on provider ec2 (%s)" % (ami, region))
        return found[0]

    def _image(self, region, item):
        location = item.get("ImageLocation") or "ec2://%s/%s" % (region, item["ImageId"])
        return MachineImage(id=self.qualify(region, item["ImageId"]), name=item.get("Name") or item["ImageId"],
                            description=item.get("Description") or None,
                            state=IMAGE_STATES.get(item.get("State"), states.ERROR), type="IMAGE",
                            imageLocation=location, created=iso(item.get("CreationDate")),
                            properties=properties_of(tags_of(item)) or None)

    def list_machine_images(self):
        found = []
        for region in self.regions:
            items = self._pages(region, "describe_images", "Images", "machine_image.list", Owners=self.image_owners)
            found += [self._image(region, i) for i in sorted(items, key=lambda i: (i.get("Name") or "", i["ImageId"]))
                      if IMAGE_STATES.get(i.get("State"), states.ERROR) is not None]
        return found

    def get_machine_image(self, ref):
        """An image by id (any AMI this account may use) or by name (among the listed ones)."""
        text = str(ref)
        native = text.split(":", 1)[-1]
        if native.startswith("ami-"):
            region, ami = self.split(text, "machine image")
            return self._image(region, self._image_item(region, ami))
        return super().get_machine_image(ref)

    def delete_machine_image(self, image_id):
        region, ami = self.split(image_id, "machine image")
        item = self._image_item(region, ami)
        subject = "machine image '%s'" % (item.get("Name") or ami)
        users = [i for r in self._pages(region, "describe_instances", "Reservations", "machine_image.delete",
                                        Filters=[{"Name": "image-id", "Values": [ami]}])
                 for i in r.get("Instances", []) if cimi_state(i["State"]["Name"]) is not None]
        if users:
            names = sorted(tags_of(i).get(NAME_TAG) or i["InstanceId"] for i in users)
            raise Conflict("%s is the image of machine(s) %s; delete those machines first"
                           % (subject, ", ".join(names)))
        self._call(region, "deregister_image", "machine_image.delete", subject, ImageId=ami)
        for mapping in item.get("BlockDeviceMappings", []):
            snapshot = mapping.get("Ebs", {}).get("SnapshotId")
            if snapshot:
                try:
                    self._call(region, "delete_snapshot", "machine_image.delete", subject, SnapshotId=snapshot)
                except NotFound:
                    pass  # already gone

    def import_machine_image(self, image):
        """A raw disk written into an EBS snapshot by the EBS direct APIs, then registered as an AMI."""
        fmt, path = image.validate(self.image_formats)
        if not isinstance(image.name, str) or not AMI_NAME.match(image.name):
            raise InvalidInput("image name '%s': 3 to 128 letters, digits, spaces or ( ) [ ] . / - ' @ _"
                               % image.name, attribute="name")
        if image.arch not in CIMI_ARCHS:
            raise InvalidInput("image arch %s is not offered by EC2 (%s)" % (image.arch, ", ".join(sorted(CIMI_ARCHS))),
                               attribute="arch")
        if image.description and len(image.description) > 255:
            raise InvalidInput("image description: at most 255 characters", attribute="description")
        tags = image_tags(image, fmt)
        self._check_raw(image, path)
        region = self.region
        subject = "machine image '%s'" % image.name
        if self._images(region, Filters=[{"Name": "name", "Values": [image.name]}], Owners=["self"]):
            raise Conflict("a machine image named '%s' already exists on provider ec2 (%s)" % (image.name, region))
        size_gib = max(1, -(-image.virtual_size // BYTES_PER_GIB))
        snapshot_tags = tag_list(image.name, None, {IMAGE_NAME_PROPERTY: image.generic_name}
                                 if image.generic_name else None)
        snapshot = self._call(region, "start_snapshot", "machine_image.import", subject, service="ebs",
                              VolumeSize=size_gib, Tags=snapshot_tags,
                              Description=("disk of image %s" % image.name)[:255])["SnapshotId"]
        try:
            self._write_snapshot(region, snapshot, path, subject)
            ami = self._call(region, "register_image", "machine_image.import", subject,
                             Name=image.name, Description=image.description or "", RootDeviceName=ROOT_DEVICE,
                             Architecture=CIMI_ARCHS[image.arch][0], BootMode=BOOT_MODES[image.boot],
                             VirtualizationType="hvm", EnaSupport=True,
                             BlockDeviceMappings=[{"DeviceName": ROOT_DEVICE,
                                                   "Ebs": {"SnapshotId": snapshot, "VolumeSize": size_gib,
                                                           "VolumeType": "gp3", "DeleteOnTermination": True}}],
                             TagSpecifications=[{"ResourceType": "image", "Tags": tags}])["ImageId"]
        except BaseException:
            with contextlib.suppress(SiroccoError):  # the failure that brought us here is the one to report
                self._call(region, "delete_snapshot", "machine_image.import", subject, SnapshotId=snapshot)
            raise
        self._wait(region, "image_available", "machine_image.import", subject, ImageIds=[ami])
        return self._image(region, self._image_item(region, ami))

    @staticmethod
    def _check_raw(image, path):
        """InvalidInput unless ``path`` is a raw disk of the image's size (and checksum, when given)."""
        try:
            with open(path, "rb") as handle:
                size = handle.seek(0, 2)
                if size != image.virtual_size:
                    raise InvalidInput("raw image %s has %d bytes, its virtual_size says %d"
                                       % (path, size, image.virtual_size), attribute="virtual_size")
                expected = (image.checksums or {}).get("raw")
                if expected:
                    handle.seek(0)
                    digest = hashlib.sha256()
                    for data in iter(lambda: handle.read(1024 * 1024), b""):
                        digest.update(data)
                    if digest.hexdigest() != expected.lower():
                        raise InvalidInput("raw image %s does not match its sha256 checksum" % path,
                                           attribute="checksums")
        except OSError as exc:
            raise InvalidInput("raw image %s cannot be read: %s" % (path, exc.strerror or exc),
                               attribute="files") from None

    def _write_snapshot(self, region, snapshot, path, subject):
        """PutSnapshotBlock of every block of ``path`` that holds data (a few in flight), CompleteSnapshot with
        their count and LINEAR checksum, then waited for until EC2 reports the snapshot completed."""
        self.client(region, "ebs")  # made once, before the workers share it
        checksums = {}

        def put(index, data):
            checksums[index] = block_checksum(data)
            self._call(region, "put_snapshot_block", "machine_image.import", subject, service="ebs",
                       SnapshotId=snapshot, BlockIndex=index, BlockData=data, DataLength=len(data),
                       Checksum=checksums[index], ChecksumAlgorithm="SHA256")

        with open(path, "rb") as handle, concurrent.futures.ThreadPoolExecutor(UPLOAD_WORKERS) as pool:
            pending = set()
            for index, data in raw_blocks(handle):
                if len(pending) >= 2 * UPLOAD_WORKERS:  # read no further ahead than the uploads go
                    done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in done:
                        future.result()
                pending.add(pool.submit(put, index, data))
            for future in pending:
                future.result()
        status = self._call(region, "complete_snapshot", "machine_image.import", subject, service="ebs",
                            SnapshotId=snapshot, ChangedBlocksCount=len(checksums),
                            Checksum=linear_checksum(checksums), ChecksumAlgorithm="SHA256",
                            ChecksumAggregationMethod="LINEAR")["Status"]
        if status == "error":
            raise ProviderUnavailable("%s (machine_image.import): EBS refused snapshot %s of the image"
                                      % (subject, snapshot))
        self._wait(region, "snapshot_completed", "machine_image.import", subject, SnapshotIds=[snapshot])

    # -- volumes ----------------------------------------------------------------------------
    def _volume_item(self, region, volume_id):
        found = self._call(region, "describe_volumes", "volume.get", "volume '%s'" % volume_id,
                           VolumeIds=[volume_id]).get("Volumes", [])
        if not found or VOLUME_STATES.get(found[0]["State"], states.ERROR) is None:
            raise NotFound("volume '%s' not found on provider ec2 (%s)" % (volume_id, region))
        return found[0]

    def _roots(self, region, volumes):
        """Ids of the volumes among ``volumes`` that are an instance's root device."""
        attached = {(a["InstanceId"], a.get("Device")): v["VolumeId"] for v in volumes
                    for a in v.get("Attachments", []) if a.get("InstanceId")}
        roots = set()
        for chunk in _chunks({instance for instance, _device in attached}):
            for reservation in self._pages(region, "describe_instances", "Reservations", "volume.list",
                                           Filters=[{"Name": "instance-id", "Values": chunk}]):
                for instance in reservation.get("Instances", []):
                    key = (instance["InstanceId"], instance.get("RootDeviceName"))
                    if key in attached:
                        roots.add(attached[key])
        return roots

    def _volume(self, region, item):
        tags = tags_of(item)
        attached = [{"href": self.qualify(region, a["InstanceId"])} for a in item.get("Attachments", [])
                    if a.get("InstanceId") and a.get("State") in ("attaching", "attached", "busy")]
        return Volume(id=self.qualify(region, item["VolumeId"]), name=tags.get(NAME_TAG) or item["VolumeId"],
                      description=tags.get(DESCRIPTION_TAG), properties=properties_of(tags) or None,
                      state=VOLUME_STATES.get(item["State"], states.ERROR), type="ebs:%s" % item.get("VolumeType"),
                      capacity=int(item["Size"]) * KIB_PER_GIB, bootable=False, created=iso(item.get("CreateTime")),
                      attachedTo=attached)

    def list_volumes(self):
        found = []
        for region in self.regions:
            items = [v for v in self._pages(region, "describe_volumes", "Volumes", "volume.list")
                     if VOLUME_STATES.get(v["State"], states.ERROR) is not None]
            roots = self._roots(region, items)
            found += [self._volume(region, v) for v in items if v["VolumeId"] not in roots]
        return sorted(found, key=lambda v: (v.name or "", v.id))

    def get_volume(self, ref):
        text = str(ref)
        if text.split(":", 1)[-1].startswith("vol-"):
            region, volume_id = self.split(text, "volume")
            item = self._volume_item(region, volume_id)
            if self._roots(region, [item]):
                raise NotFound("volume '%s' is the root disk of a machine, not a volume" % ref)
            return self._volume(region, item)
        return super().get_volume(ref)

    def create_volume(self, name, capacity_kb, description=None, properties=None, volume_type=None):
        """An EBS volume in the home zone; ``volume_type`` one of ``VOLUME_TYPES`` (EBS's default, gp2 or gp3
        by region, without one; io1/io2 get ``MIN_IOPS``)."""
        if not name or not isinstance(name, str):
            raise InvalidInput("volume name must be a non-empty string", attribute="name")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        check_properties(properties)
        extra = {}
        if volume_type is not None:
            extra["VolumeType"] = ebs_volume_type(volume_type)
            if extra["VolumeType"] in ("io1", "io2"):
                extra["Iops"] = MIN_IOPS
        region = self.region
        named = [v for v in self._pages(region, "describe_volumes", "Volumes", "volume.create",
                                        Filters=[{"Name": "tag:" + NAME_TAG, "Values": [name]}])
                 if VOLUME_STATES.get(v["State"], states.ERROR) is not None]
        if named:
            raise Conflict("a volume named '%s' already exists on provider ec2 (%s)" % (name, region))
        subject = "volume '%s'" % name
        item = self._call(region, "create_volume", "volume.create", subject,
                          AvailabilityZone=self.home_zone(region), Size=max(1, -(-capacity_kb // KIB_PER_GIB)),
                          TagSpecifications=[{"ResourceType": "volume",
                                              "Tags": tag_list(name, description, properties)}], **extra)
        self._wait(region, "volume_available", "volume.create", subject, VolumeIds=[item["VolumeId"]])
        return self._volume(region, self._volume_item(region, item["VolumeId"]))

    def delete_volume(self, volume_id):
        region, native = self.split(volume_id, "volume")
        item = self._volume_item(region, native)
        subject = "volume '%s'" % (tags_of(item).get(NAME_TAG) or native)
        users = [a["InstanceId"] for a in item.get("Attachments", []) if a.get("InstanceId")]
        if users:
            raise Conflict("%s is attached to machine(s) %s; detach it first" % (subject, ", ".join(sorted(users))))
        self._call(region, "delete_volume", "volume.delete", subject, VolumeId=native)
        self._wait(region, "volume_deleted", "volume.delete", subject, VolumeIds=[native])

    def resize_volume(self, volume_id, capacity_kb):
        """ModifyVolume to ``capacity_kb`` rounded up to whole GiB, waited for until DescribeVolumes reports that
        size; never smaller than the volume is (InvalidInput), the same size is nothing to do. An attached
        volume grows too (the guest then grows its file system)."""
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        region, native = self.split(volume_id, "volume")
        item = self._volume_item(region, native)
        subject = "volume '%s'" % (tags_of(item).get(NAME_TAG) or native)
        size_gib = -(-capacity_kb // KIB_PER_GIB)
        if capacity_kb < int(item["Size"]) * KIB_PER_GIB:
            raise InvalidInput("%s has %d GiB: a volume grows, never shrinks (asked %d KB)"
                               % (subject, item["Size"], capacity_kb), attribute="capacity")
        if size_gib != int(item["Size"]):
            self._call(region, "modify_volume", "volume.resize", subject, VolumeId=native, Size=size_gib)
            deadline = time.monotonic() + self.timeout
            while int(self._volume_item(region, native)["Size"]) != size_gib:
                if time.monotonic() >= deadline:
                    raise OperationTimeout("%s (volume.resize): still not %d GiB after %ss"
                                           % (subject, size_gib, self.timeout))
                time.sleep(1)
        return self._volume(region, self._volume_item(region, native))

    def _attach(self, region, instance_id, volume_id, initial_location, subject):
        instance = self._instance(self.qualify(region, instance_id))[1]
        used = {m.get("DeviceName") for m in instance.get("BlockDeviceMappings", [])}
        device = device_name(initial_location, used)
        self._call(region, "attach_volume", "volume.attach", subject, VolumeId=volume_id, InstanceId=instance_id,
                   Device=device)
        self._wait(region, "volume_in_use", "volume.attach", subject, VolumeIds=[volume_id])

    def _volume_change(self, machine_id, volume_id, verb):
        region, instance = self._instance(machine_id)
        name = tags_of(instance).get(NAME_TAG) or machine_id
        state = cimi_state(instance["State"]["Name"])
        if state not in (states.STOPPED, states.STARTED):
            raise Conflict("cannot %s a volume %s machine '%s' in state %s"
                           % (verb, "to" if verb == "attach" else "from", name, state))
        volume_region, native = self.split(volume_id, "volume")
        if volume_region != region:
            raise InvalidInput("volume '%s' is in %s, machine '%s' in %s" % (volume_id, volume_region, name, region),
                               attribute="volume")
        item = self._volume_item(region, native)
        users = [a["InstanceId"] for a in item.get("Attachments", []) if a.get("InstanceId")]
        return region, instance, item, users, "machine '%s'" % name

    def attach_volume(self, machine_id, volume_id, initial_location=None):
        region, instance, item, users, subject = self._volume_change(machine_id, volume_id, "attach")
        if instance["InstanceId"] in users:
            raise Conflict("volume '%s' is already attached to %s" % (volume_id, subject))
        if users and not item.get("MultiAttachEnabled"):
            raise Conflict("volume '%s' is attached to machine(s) %s" % (volume_id, ", ".join(users)))
        self._attach(region, instance["InstanceId"], item["VolumeId"], initial_location, subject)
        return self.get_machine(machine_id)

    def detach_volume(self, machine_id, volume_id):
        region, instance, item, users, subject = self._volume_change(machine_id, volume_id, "detach")
        if instance["InstanceId"] not in users:
            raise Conflict("volume '%s' is not attached to %s" % (volume_id, subject))
        self._call(region, "detach_volume", "volume.detach", subject, VolumeId=item["VolumeId"],
                   InstanceId=instance["InstanceId"])
        self._wait(region, "volume_available", "volume.detach", subject, VolumeIds=[item["VolumeId"]])
        return self.get_machine(machine_id)

    # -- networks ---------------------------------------------------------------------------
    def _subnet(self, region, ref):
        """A subnet by id or Name tag."""
        key = "subnet-id" if str(ref).startswith("subnet-") else "tag:" + NAME_TAG
        found = self._call(region, "describe_subnets", "network.get", "network '%s'" % ref,
                           Filters=[{"Name": key, "Values": [str(ref)]}]).get("Subnets", [])
        if len(found) != 1:
            raise (Conflict if found else NotFound)("%s subnet(s) '%s' on provider ec2 (%s)"
                                                    % (len(found) or "no", ref, region))
        return found[0]

    def _network(self, region, subnet):
        tags = tags_of(subnet)
        return Network(id=self.qualify(region, subnet["SubnetId"]), name=tags.get(NAME_TAG) or subnet["SubnetId"],
                       description=tags.get(DESCRIPTION_TAG), properties=properties_of(tags) or None,
                       state=SUBNET_STATES.get(subnet.get("State"), states.ERROR),
                       networkType="PUBLIC" if subnet.get("MapPublicIpOnLaunch") else "PRIVATE",
                       cidr=subnet.get("CidrBlock"), dhcp=True)  # a VPC's DHCP options serve every subnet

    def list_networks(self):
        found = []
        for region in self.regions:
            found += [self._network(region, s) for s in self._pages(region, "describe_subnets", "Subnets",
                                                                    "network.list")]
        return sorted(found, key=lambda n: (n.name or "", n.id))

    def get_network(self, ref):
        text = str(ref)
        if text.split(":", 1)[-1].startswith("subnet-"):
            region, native = self.split(text, "network")
            return self._network(region, self._subnet(region, native))
        return super().get_network(ref)

    def _vpc(self, region):
        if self.options.get("subnet") and region == self.region:
            vpc_id = self._subnet(region, self.options["subnet"])["VpcId"]
            filters = [{"Name": "vpc-id", "Values": [vpc_id]}]
        else:
            filters = [{"Name": "is-default", "Values": ["true"]}]
        vpcs = self._call(region, "describe_vpcs", "network.create", Filters=filters).get("Vpcs", [])
        if not vpcs:
            raise InvalidInput("%s has no default VPC: set provider option subnet (new networks go to its VPC)"
                               % region, attribute="provider_options")
        return vpcs[0]

    def create_network(self, name, description=None, properties=None, cidr=None, dhcp=None):
        """A subnet of the VPC (the ``subnet`` option's, else the default one): ``cidr`` when given (inside
        the VPC, overlapping no subnet of it), else its first free /24. A VPC always serves DHCP: ``dhcp``
        false is refused."""
        if not name or not isinstance(name, str):
            raise InvalidInput("network name must be a non-empty string", attribute="name")
        check_properties(properties)
        if cidr is not None:
            cidr = subnet_cidr(cidr)
        if dhcp is not None and not isinstance(dhcp, bool):
            raise InvalidInput("dhcp must be true or false", attribute="dhcp")
        if dhcp is False:
            raise InvalidInput("an EC2 subnet always has DHCP (the VPC's DHCP options): dhcp cannot be false",
                               attribute="dhcp")
        region = self.region
        subject = "network '%s'" % name
        if self._call(region, "describe_subnets", "network.create", subject,
                      Filters=[{"Name": "tag:" + NAME_TAG, "Values": [name]}]).get("Subnets"):
            raise Conflict("a network named '%s' already exists on provider ec2 (%s)" % (name, region))
        vpc = self._vpc(region)
        cidr = self._subnet_block(region, vpc, cidr, subject)
        subnet = self._call(region, "create_subnet", "network.create", subject, VpcId=vpc["VpcId"], CidrBlock=cidr,
                            AvailabilityZone=self.home_zone(region),
                            TagSpecifications=[{"ResourceType": "subnet",
                                                "Tags": tag_list(name, description, properties)}])["Subnet"]
        self._wait(region, "subnet_available", "network.create", subject, SubnetIds=[subnet["SubnetId"]])
        return self._network(region, self._subnet(region, subnet["SubnetId"]))

    def _subnet_block(self, region, vpc, cidr, subject):
        """The CIDR block of a new subnet of ``vpc``: ``cidr`` checked against the VPC's blocks (InvalidInput) and
        its subnets (Conflict), or the first free /24."""
        blocks = [a["CidrBlock"] for a in vpc.get("CidrBlockAssociationSet", [])
                  if a.get("CidrBlockState", {}).get("State") == "associated"] or [vpc["CidrBlock"]]
        used = [s["CidrBlock"] for s in self._pages(region, "describe_subnets", "Subnets", "network.create",
                                                    Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])]
        if cidr is None:
            cidr = free_cidr(blocks, used)
            if cidr is None:
                raise Conflict("VPC %s has no free /24 left for %s" % (vpc["VpcId"], subject))
            return cidr
        block = ipaddress.ip_network(cidr)
        if not any(block.subnet_of(ipaddress.ip_network(b)) for b in blocks):
            raise InvalidInput("cidr %s is outside VPC %s (%s)" % (cidr, vpc["VpcId"], ", ".join(blocks)),
                               attribute="cidr")
        taken = [u for u in used if block.overlaps(ipaddress.ip_network(u))]
        if taken:
            raise Conflict("cidr %s overlaps subnet(s) %s of VPC %s" % (cidr, ", ".join(taken), vpc["VpcId"]))
        return cidr

    def delete_network(self, network_id):
        region, native = self.split(network_id, "network")
        subnet = self._subnet(region, native)
        subject = "network '%s'" % (tags_of(subnet).get(NAME_TAG) or native)
        users = {i["InstanceId"]: tags_of(i).get(NAME_TAG) or i["InstanceId"]
                 for r in self._pages(region, "describe_instances", "Reservations", "network.delete",
                                      Filters=[{"Name": "subnet-id", "Values": [native]}])
                 for i in r.get("Instances", []) if cimi_state(i["State"]["Name"]) is not None}
        if users:
            raise Conflict("%s is used by machine(s) %s" % (subject, ", ".join(sorted(users.values()))))
        self._call(region, "delete_subnet", "network.delete", subject, SubnetId=native)

    # -- meters -----------------------------------------------------------------------------
    def list_meters(self, machine_id, start=None, end=None):
        """CloudWatch's AWS/EC2 metrics of the instance (GetMetricData): without a window the latest datapoint of
        the last hour, with one every datapoint of the window, oldest first (periods of ``METER_PERIOD`` seconds,
        longer for long windows: at most ``MAX_METER_POINTS`` per meter)."""
        now = datetime.now(UTC).replace(microsecond=0)
        window = start is not None or end is not None
        if window:
            start, end = meter_window(start, end, now)
        else:
            start, end = now - timedelta(seconds=METER_WINDOW), now + timedelta(seconds=60)
        period = meter_period(start, end)
        region, instance = self._instance(machine_id)
        machine_ref = self.qualify(region, instance["InstanceId"])
        queries = [{"Id": "m%d" % i, "ReturnData": True,
                    "MetricStat": {"Metric": {"Namespace": "AWS/EC2", "MetricName": metric,
                                              "Dimensions": [{"Name": "InstanceId", "Value": instance["InstanceId"]}]},
                                   "Period": period, "Stat": stat}}
                   for i, (metric, stat, _units) in enumerate(METRICS.values())]
        results = {}
        with translating(translate, _botocore_faults(), "meter.list", "machine '%s'" % machine_id):
            pages = self.client(region, "cloudwatch").get_paginator("get_metric_data").paginate(
                MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending")
            for page in pages:
                for result in page.get("MetricDataResults", []):
                    points = results.setdefault(result["Id"], [])
                    points += zip(result.get("Timestamps", []), result.get("Values", []), strict=False)
        meters = []
        for i, (aspect, (_metric, stat, units)) in enumerate(METRICS.items()):
            if stat == "Sum":  # a sum is per period
                units = "bytes per %d minutes" % (period // 60)
            points = sorted(p for p in results.get("m%d" % i, []) if start <= p[0] <= end)
            if not window:
                points = points[-1:]
            samples = [Sample(timestamp=iso(stamp), value=str(round(value, 2))) for stamp, value in points]
            meters.append(Meter(id="%s:%s" % (machine_ref, aspect), name=aspect, targetResource={"href": machine_ref},
                                aspect=ASPECT + aspect, units=units, timeScope="Interval",
                                intervalDuration="PT%dM" % (period // 60), sampleInterval=period, isContinuous=True,
                                samples=samples or None))
        return meters


__all__ = ["EC2Connector", "HAS_BOTO3", "INSTANCE_STATES", "ERROR_CODES", "cimi_state", "client_token",
           "error_for", "pick_type"]

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract every provider connector implements.

A connector speaks to one provider account and hands back CIMI model objects
whose ``id`` is the provider's native identifier. It implements the methods its
provider supports; the ones it leaves alone raise ``Unsupported`` and are absent
from its ``Capabilities``, which callers consult before calling.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    SiroccoError,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration

if TYPE_CHECKING:  # names for annotations only
    from typing import Self, Tuple, Type, Union  # noqa: UP035

    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
        Credential,
        Job,
        Machine,
        MachineImage,
        MachineTemplate,
        Meter,
        Network,
        System,
        SystemTemplate,
        Volume,
    )

    # what error tables take: an exception class or a tuple of them. typing's names, not ``|``: ansible-test's
    # pylint reads module_utils as Python 3.8 code, where this expression (unlike an annotation) would run
    ExceptionTypes = Union[Type[BaseException], Tuple[Type[BaseException], ...]]  # noqa: UP006, UP007

# Contract operation -> the method that implements it.
OPERATIONS = {
    "machine.list": "list_machines",
    "machine.get": "get_machine",
    "machine.create": "create_machine",
    "machine.start": "start_machine",
    "machine.stop": "stop_machine",
    "machine.restart": "restart_machine",
    "machine.pause": "pause_machine",
    "machine.suspend": "suspend_machine",
    "machine.delete": "delete_machine",
    "machine.capture": "capture_machine",
    "machine.migrate": "migrate_machine",
    "machine.resize": "resize_machine",
    "machine_config.list": "list_machine_configs",
    "machine_config.create": "create_machine_config",
    "machine_config.delete": "delete_machine_config",
    "machine_template.list": "list_machine_templates",
    "machine_template.create": "create_machine_template",
    "machine_template.delete": "delete_machine_template",
    "machine_image.list": "list_machine_images",
    "machine_image.import": "import_machine_image",
    "machine_image.delete": "delete_machine_image",
    "volume.list": "list_volumes",
    "volume.create": "create_volume",
    "volume.delete": "delete_volume",
    "volume.attach": "attach_volume",
    "volume.detach": "detach_volume",
    "volume.resize": "resize_volume",
    "network.list": "list_networks",
    "network.create": "create_network",
    "network.delete": "delete_network",
    "meter.list": "list_meters",
    "credential.list": "list_credentials",
    "credential.create": "create_credential",
    "credential.delete": "delete_credential",
    "system.list": "list_systems",
    "system.create": "create_system",
    "system.start": "start_system",
    "system.stop": "stop_system",
    "system.delete": "delete_system",
    "system_template.list": "list_system_templates",
    "system_template.create": "create_system_template",
    "system_template.delete": "delete_system_template",
    "job.list": "list_jobs",
}
# The machine operation behind each CIMI action verb.
ACTION_OPERATIONS = {verb: "machine." + verb for verb in states.MACHINE_ACTIONS}
ACTION_OPERATIONS["delete"] = "machine.delete"

KIB_PER_MIB = 1024

# Properties of a MachineImage that registration writes where the provider keeps them (tags, metadata,
# other_config, annotations, ...) and listing reads back: the image's generic name, the same on every
# provider (``machine_image: debian-12-web`` finds it anywhere), and what the provider holds.
IMAGE_NAME_PROPERTY = "sirocco.image"
IMAGE_FORMAT_PROPERTY = "sirocco.format"  # the disk format as the provider keeps it: qcow2, raw, vmdk, vhd
IMAGE_SIZE_PROPERTY = "sirocco.size"  # the disk's virtual size, in bytes
IMAGE_ARCH_PROPERTY = "sirocco.arch"  # CIMI cpuArch: x86_64, aarch64
IMAGE_FORMATS = ("qcow2", "raw", "vmdk", "vhd")


@dataclass(frozen=True)
class Range:
    """An inclusive range of a hardware figure; ``None`` means unbounded."""

    minimum: int | None = None
    maximum: int | None = None

    def __contains__(self, value: float) -> bool:
        return ((self.minimum is None or value >= self.minimum)
                and (self.maximum is None or value <= self.maximum))

    def to_json(self) -> dict[str, int | None]:
        return {"min": self.minimum, "max": self.maximum}


@dataclass(frozen=True)
class Capabilities:
    """What a provider offers, advertised at run time."""

    provider: str
    operations: frozenset[str]
    cpu: Range = Range()
    cpu_mhz: Range = Range()
    memory_mib: Range = Range()
    archs: tuple[str, ...] = ()
    meters: tuple[str, ...] = ()  # metered aspects; empty when the provider meters nothing
    locations: tuple[str, ...] = ()
    initial_states: tuple[str, ...] = (states.STOPPED, states.STARTED)
    stop_force_default: bool = False
    # what create_machine puts into the guest for the caller ("userData", "credential")
    guest_inputs: frozenset[str] = frozenset()
    # the most userData it takes, in bytes of UTF-8 (of their base64 form when user_data_encoded); None: no limit
    user_data_limit: int | None = None
    user_data_encoded: bool = False
    # whether volumes attach to (and detach from) a running machine
    hot_plug: bool = True
    # the disk formats machine_image.import takes, preferred first (empty without the operation)
    image_formats: tuple[str, ...] = ()
    # a machine asked by value gets the smallest named size that fits (instance types, flavors), not exactly it
    rounds_to_sizes: bool = False
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def metering(self) -> bool:
        return bool(self.meters)

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    def require(self, operation: str) -> None:
        if operation not in self.operations:
            raise Unsupported(self.provider, operation)

    def fits(self, cpu: int | None = None, memory_mib: int | None = None, arch: str | None = None,
             cpu_mhz: int | None = None) -> list[str]:
        """Reasons a request does not fit these ranges (empty when it fits)."""
        reasons = []
        if cpu is not None and cpu not in self.cpu:
            reasons.append("cpu %d outside %s" % (cpu, _show(self.cpu)))
        if memory_mib is not None and memory_mib not in self.memory_mib:
            reasons.append("memory %d MiB outside %s" % (memory_mib, _show(self.memory_mib)))
        if cpu_mhz is not None and cpu_mhz not in self.cpu_mhz:
            reasons.append("cpu speed %d MHz outside %s" % (cpu_mhz, _show(self.cpu_mhz)))
        if arch is not None and self.archs and arch not in self.archs:
            reasons.append("architecture %s not in %s" % (arch, ", ".join(self.archs)))
        return reasons

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "operations": sorted(self.operations),
                "cpu": self.cpu.to_json(), "cpuSpeedMHz": self.cpu_mhz.to_json(),
                "memoryMiB": self.memory_mib.to_json(), "cpuArchs": list(self.archs),
                "metering": self.metering, "meters": list(self.meters), "locations": list(self.locations),
                "initialStates": list(self.initial_states), "stopForceDefault": self.stop_force_default,
                "guestInputs": sorted(self.guest_inputs), "userDataLimit": self.user_data_limit,
                "userDataEncoded": self.user_data_encoded, "hotPlug": self.hot_plug,
                "imageFormats": list(self.image_formats), "roundsToSizes": self.rounds_to_sizes, **self.extras}


def _show(rng):
    return "[%s, %s]" % ("-" if rng.minimum is None else rng.minimum, "-" if rng.maximum is None else rng.maximum)


@dataclass
class Page:
    """One page of a listing; ``marker`` fetches the next one, ``None`` at the end."""

    items: list[Any]
    marker: str | None = None


@dataclass
class DiskImage:
    """A disk image to register, made in the formats a provider may take: ``files`` {format: local path}
    (``vmdk`` streamOptimized, for an OVA), plus what every format shares. A provider that fetches images
    itself (a CIMI endpoint) takes ``url`` instead."""

    name: str  # the native name to give it: unique on the provider
    files: dict[str, str] = field(default_factory=dict)
    virtual_size: int = 0  # bytes of the disk
    arch: str = "x86_64"  # CIMI cpuArch
    boot: str = "bios"  # bios | uefi
    generic_name: str | None = None  # IMAGE_NAME_PROPERTY
    description: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)  # {format: sha256 hex}
    url: str | None = None  # where a provider may fetch the image itself (its format: url_format)
    url_format: str | None = None

    def validate(self, formats: Sequence[str]) -> tuple[str, str]:
        """InvalidInput unless the image comes in one of ``formats`` (a connector's image_formats); the
        format to upload, and its file."""
        if not self.name or not isinstance(self.name, str):
            raise InvalidInput("image name must be a non-empty string", attribute="name")
        if self.virtual_size <= 0:
            raise InvalidInput("image virtual_size must be a positive number of bytes", attribute="virtual_size")
        if self.boot not in ("bios", "uefi"):
            raise InvalidInput("image boot must be bios or uefi", attribute="boot")
        for fmt in formats:
            if self.files.get(fmt):
                return fmt, self.files[fmt]
        raise InvalidInput("image '%s' comes as %s; this provider takes %s"
                           % (self.name, ", ".join(sorted(self.files)) or "nothing", ", ".join(formats)),
                           attribute="files")

    def image_properties(self, fmt: str) -> dict[str, str]:
        """The properties registration writes with the image (IMAGE_*_PROPERTY and the caller's)."""
        props = dict(self.properties or {})
        props.update({IMAGE_FORMAT_PROPERTY: fmt, IMAGE_SIZE_PROPERTY: str(self.virtual_size),
                      IMAGE_ARCH_PROPERTY: self.arch})
        if self.generic_name:
            props[IMAGE_NAME_PROPERTY] = self.generic_name
        return props


@dataclass
class MachineSpec:
    """A resolved request to create a machine: everything by value."""

    name: str
    config: MachineConfiguration
    image: str | None = None  # native id of a MachineImage; None for a diskless machine
    initial_state: str = states.STOPPED
    description: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    user_data: str | None = None
    credential: dict[str, Any] | None = None  # {"username", "password"|"key"}; never logged
    volumes: list[str] = field(default_factory=list)  # native volume ids to attach
    networks: list[str] = field(default_factory=list)  # native network ids to plug into
    location: str | None = None

    def validate(self) -> None:
        if not self.name or not isinstance(self.name, str):
            raise InvalidInput("machine name must be a non-empty string", attribute="name")
        if self.initial_state not in states.INITIAL_STATES:
            raise InvalidInput("initialState must be one of %s" % ", ".join(states.INITIAL_STATES),
                               attribute="initialState")
        if not self.config.cpu or self.config.cpu < 1:
            raise InvalidInput("machineConfig.cpu must be at least 1", attribute="machineConfig.cpu")
        if not self.config.memory or self.config.memory < 1:
            raise InvalidInput("machineConfig.memory must be at least 1 KiB", attribute="machineConfig.memory")


# -- what a machine receives for its guest: an SSH credential and userData --------------------------------
# Properties a connector writes where the provider keeps them and reads back with the machine, so that
# an inventory can reach the guest: the credential's user name (ansible_user) and the guest's SSH host
# key as it will present it (known_hosts), when the connector knows it.
USER_PROPERTY = "sirocco.user"
HOST_KEY_PROPERTY = "sirocco.sshHostKey"
# the user name a credential without one logs in as (cloud-init's default user on Debian cloud images)
DEFAULT_GUEST_USER = "debian"
# each key type and the number of length-prefixed fields of its blob, its type name included (RFC 4253
# 6.6: rsa e, n; RFC 5656: ecdsa curve, Q; RFC 8709: ed25519 key; OpenSSH PROTOCOL.u2f: sk- adds the application)
SSH_KEY_FIELDS = {"ssh-ed25519": 2, "ssh-rsa": 3, "ecdsa-sha2-nistp256": 3, "ecdsa-sha2-nistp384": 3,
                  "ecdsa-sha2-nistp521": 3, "sk-ssh-ed25519@openssh.com": 3, "sk-ecdsa-sha2-nistp256@openssh.com": 4}
SSH_KEY_TYPES = tuple(SSH_KEY_FIELDS)
USER_NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


def public_key(text: str | None, attribute: str = "credential.key") -> str:
    """``text`` as one OpenSSH public key line (type, base64 blob, optional comment), or InvalidInput."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("%s: an SSH public key is required (a line such as 'ssh-ed25519 AAAA... me@host')"
                           % attribute, attribute=attribute)
    lines = [line for line in text.strip().splitlines() if line.strip()]
    parts = lines[0].split() if len(lines) == 1 else []
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        raise InvalidInput("%s: not an OpenSSH public key (expected one line '<type> <base64> [comment]' with type "
                           "one of %s)" % (attribute, ", ".join(SSH_KEY_TYPES)), attribute=attribute)
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("%s: the key's second field is not base64" % attribute, attribute=attribute) from None
    # the blob starts with its own type name, length-prefixed: a private key or another type fails here
    if blob[4:4 + len(parts[0])] != parts[0].encode("ascii"):
        raise InvalidInput("%s: the key's data does not match its type %s" % (attribute, parts[0]),
                           attribute=attribute)
    fields = _ssh_strings(blob)
    if fields is None or len(fields) != SSH_KEY_FIELDS[parts[0]] or (
            parts[0] == "ssh-ed25519" and len(fields[1]) != 32):
        raise InvalidInput("%s: the %s key's data is incomplete or malformed (a truncated paste?)"
                           % (attribute, parts[0]), attribute=attribute)
    return " ".join(parts)


def _ssh_strings(blob: bytes) -> list | None:
    """The length-prefixed fields of an SSH public key blob (RFC 4253 6.6), None unless they fill it exactly."""
    fields, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            return None
        size = int.from_bytes(blob[offset:offset + 4], "big")
        offset += 4
        if offset + size > len(blob):
            return None
        fields.append(blob[offset:offset + size])
        offset += size
    return fields


def key_fingerprint(key: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line (as ``ssh-keygen -l`` prints it)."""
    blob = base64.b64decode(key.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")


def key_pair_name(key: str) -> str:
    """The name a connector imports ``key`` under where the provider keeps key pairs: the same key gets the
    same name on every run and every provider (idempotent), another key another name."""
    return "sirocco-" + hashlib.sha256(base64.b64decode(key.split()[1])).hexdigest()[:16]


def user_data_size(text: str | None, encoded: bool = False) -> int:
    """The size of userData as a provider counts it: bytes of UTF-8, or of their base64 form."""
    size = len(text.encode("utf-8")) if isinstance(text, str) else 0
    return 4 * -(-size // 3) if encoded else size


def check_guest_inputs(spec: MachineSpec, provider: str, accepts: Collection[str], user_data_limit: int | None = None,
                       user_data_encoded: bool = False, passwords: bool = False) -> None:
    """Refuse, before anything is created, what a provider cannot put into a guest: userData or a credential
    it does not take (``accepts``: its guest_inputs), userData over its limit (bytes of UTF-8, or of its base64
    form when ``user_data_encoded``), a credential without a usable SSH key (or a password where ``passwords``
    is false), a user name no guest OS takes. Normalises ``spec.credential["key"]`` to one line."""
    if spec.user_data is not None:
        if "userData" not in accepts:
            raise InvalidInput("provider '%s' cannot pass userData to a guest" % provider, attribute="userData")
        if not isinstance(spec.user_data, str):
            raise InvalidInput("userData must be a string", attribute="userData")
        size = user_data_size(spec.user_data, user_data_encoded)
        if user_data_limit is not None and size > user_data_limit:
            raise InvalidInput("userData is %d bytes%s; provider '%s' takes at most %d"
                               % (size, " once base64-encoded" if user_data_encoded else "", provider,
                                  user_data_limit), attribute="userData")
    if not spec.credential:
        return
    if "credential" not in accepts:
        raise InvalidInput("provider '%s' cannot put a credential into a guest" % provider, attribute="credential")
    credential = dict(spec.credential)
    user = credential.get("username")
    if user is not None and (not isinstance(user, str) or not USER_NAME_RE.match(user)):
        raise InvalidInput("credential.userName: '%s' is not a user name a guest OS takes (lower-case letters, "
                           "digits, '_' and '-', at most 32)" % user, attribute="credential.userName")
    if credential.get("password") and not passwords:
        raise InvalidInput("provider '%s' takes no password credential: give an SSH public key" % provider,
                           attribute="credential.password")
    if credential.get("key") or not credential.get("password"):
        credential["key"] = public_key(credential.get("key"))
    spec.credential = credential


def same_key(held: str | None, key: str) -> bool:
    """Whether a public key line the provider holds is ``key`` (the base64 blob decides; comments may differ)."""
    held_fields = (held or "").split()
    return len(held_fields) > 1 and held_fields[1] == key.split()[1]


def resize_figures(config: object) -> tuple[int, ...]:
    """(cpu, memory KiB) of the MachineConfiguration a machine is resized to; InvalidInput unless both are
    positive integers."""
    figures = []
    for name in ("cpu", "memory"):
        value = getattr(config, name, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInput("machineConfig.%s must be a positive integer, got %r" % (name, value),
                               attribute="machineConfig.%s" % name)
        figures.append(value)
    return tuple(figures)


def meter_window(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """list_meters' window, checked: each bound None or a timezone-aware datetime, start not after end;
    InvalidInput naming the bound at fault otherwise."""
    for value, name in ((start, "start"), (end, "end")):
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            raise InvalidInput("meter window %s must be a timezone-aware date and time, got %r" % (name, value),
                               attribute=name)
    if start is not None and end is not None and start > end:
        raise InvalidInput("meter window: start %s is after end %s" % (start.isoformat(), end.isoformat()),
                           attribute="start")
    return start, end


def now_in_window(start: datetime | None, end: datetime | None, now: datetime | None = None) -> bool:
    """Whether now is inside the (checked) window, a missing bound being open: what a source that keeps no
    history answers with, its current sample or none."""
    start, end = meter_window(start, end)
    now = now or datetime.now(UTC)
    return (start is None or start <= now) and (end is None or now <= end)


def missing_sdk(provider: str, package: str, cause: BaseException | None = None) -> ProviderUnavailable:
    """The error of a connector whose SDK cannot be imported: the package, the Python that lacks it (a module
    runs under ``ansible_python_interpreter``, which may not be the controller's) and how to install it."""
    why = " (%s)" % cause if cause else ""
    return ProviderUnavailable(
        "provider '%s' needs the Python package %s, which %s cannot import%s: install it for that Python with "
        "`pip install -r requirements/%s.txt` from the sirocco.cimi collection's directory, or "
        "`pip install 'sirocco-cimi[%s]'`" % (provider, package, sys.executable, why, provider, provider))


# -- provider errors: the mechanics are here once, each connector keeps its own table ---------------
MESSAGE = "%(subject)s (%(operation)s): %(detail)s"
UNSUPPORTED = "provider '%(provider)s' does not support operation '%(operation)s': %(detail)s"


@dataclass(frozen=True)
class ErrorRule:
    """One row of an error table.

    ``match``: an exception class or a tuple of them (``isinstance``), or a predicate on the fault.
    ``error``: the Sirocco error class, or a function of the fault that picks one. ``detail`` (fault -> text)
    and ``message`` (a template) replace the table's for this row; ``attribute`` goes to an InvalidInput.
    """

    match: ExceptionTypes | Callable[[Any], object] | None
    error: type[SiroccoError] | Callable[[Any], type[SiroccoError]]
    detail: Callable[[Any], str] | None = None
    message: str | None = None
    attribute: str | None = None

    def matches(self, fault: object) -> bool:
        if isinstance(self.match, (type, tuple)):
            return isinstance(fault, self.match)  # pylint: disable=isinstance-second-argument-not-valid-type
        return bool(self.match(fault))  # type: ignore[misc]  # rows of a table match; rule()'s bare rows never do


class ErrorTable:
    """How one provider's faults (its exceptions, error codes or statuses) become Sirocco errors.

    A fault is looked up first by ``code(fault)`` in ``codes`` ({code: error class}), then through ``rules``
    (ErrorRules or their tuples, first match wins), else it is ``default``. ``rules`` and ``catch`` (the
    exceptions ``translating`` turns into errors) may be functions returning them, called at first use: the
    provider's library may be missing when the module is imported.
    Messages are %-templates over subject, operation, provider, detail (``detail(fault)``) and the fields a
    caller adds; ``unsupported`` is the one of an Unsupported error. ``code_field`` names the detail that
    keeps the provider's code; ``keep_cause`` chains the provider's exception to the error raised.
    """

    def __init__(self, rules: Iterable[Any] | Callable[[], Iterable[Any]] = (),
                 codes: Mapping[Any, type[SiroccoError]] | None = None, code: Callable[[Any], Any] | None = None,
                 catch: ExceptionTypes | Callable[[], ExceptionTypes] = Exception,
                 detail: Callable[[Any], str] = str, message: str = MESSAGE, unsupported: str = UNSUPPORTED,
                 default: type[SiroccoError] = ProviderUnavailable, code_field: str | None = None,
                 keep_cause: bool = False) -> None:
        self._rules = rules if callable(rules) else _rows(rules)
        self._catch = catch
        self.codes = codes or {}
        self.code = code
        self.detail = detail
        self.message = message
        self.unsupported = unsupported
        self.default = default
        self.code_field = code_field
        self.keep_cause = keep_cause

    @property
    def rules(self) -> tuple[ErrorRule, ...]:
        if callable(self._rules):
            self._rules = _rows(self._rules())
        return self._rules

    @property
    def catch(self) -> ExceptionTypes:
        """The exceptions ``translating`` turns into Sirocco errors."""
        return self._catch if isinstance(self._catch, (type, tuple)) else self._catch()

    def rule(self, fault: object) -> ErrorRule:
        """The row that applies to ``fault`` (a bare one naming ``default`` when none does)."""
        if self.code is not None and self.code(fault) in self.codes:
            return ErrorRule(None, self.codes[self.code(fault)])
        return next((rule for rule in self.rules if rule.matches(fault)), ErrorRule(None, self.default))

    def error_class(self, fault: object) -> type[SiroccoError]:
        error = self.rule(fault).error
        return error if isinstance(error, type) else error(fault)

    def error(self, fault: BaseException, operation: str, subject: str, provider: str, attribute: str | None = None,
              **fields: Any) -> SiroccoError:
        """The Sirocco error for ``fault`` met during ``operation`` on ``subject``; a Sirocco error passes as is.
        ``fields`` fill the message templates (a ``detail`` given here replaces the table's)."""
        if isinstance(fault, SiroccoError):
            return fault
        rule = self.rule(fault)
        cls = rule.error if isinstance(rule.error, type) else rule.error(fault)
        values = dict(subject=subject, operation=operation, provider=provider)
        if "detail" not in fields:
            values["detail"] = (rule.detail or self.detail)(fault)
        values.update(fields)
        if cls is Unsupported:
            return Unsupported(provider, operation, (rule.message or self.unsupported) % values)
        details = {}
        if self.code_field is not None:
            details[self.code_field] = self.code(fault)  # type: ignore[misc]  # a code_field comes with its code
        if cls is InvalidInput:
            details["attribute"] = rule.attribute or attribute
        return cls((rule.message or self.message) % values, **details)

    def translating(self, operation: str, subject: str, provider: str,
                    **fields: Any) -> AbstractContextManager[Where]:
        """Context manager: an exception of ``catch`` raised inside is raised as its Sirocco error.
        Yields the block's Where."""
        return translating(self.error, self.catch, operation, subject, provider, keep_cause=self.keep_cause,
                           **fields)


def _rows(rules):
    return tuple(rule if isinstance(rule, ErrorRule) else ErrorRule(*rule) for rule in rules)


@dataclass
class Where:
    """What a ``translating`` block does; the block may name its subject better once it knows it."""

    operation: str
    subject: str


@contextmanager
def translating(translate: Callable[..., BaseException], catch: ExceptionTypes, operation: str, subject: str,
                *args: Any, keep_cause: bool = False, **kwargs: Any) -> Iterator[Where]:
    """Run provider calls; Sirocco errors pass, a ``catch`` exception is raised as
    ``translate(exc, operation, subject, *args, **kwargs)``. Yields the block's Where."""
    where = Where(operation, subject)
    try:
        yield where
    except SiroccoError:
        raise
    except catch as exc:
        error = translate(exc, where.operation, where.subject, *args, **kwargs)
        if keep_cause:
            raise error from exc
        raise error from None


# Named sizes offered by hypervisor connectors unless their options say otherwise:
# (name, cpu, memory MiB, disk GiB). Small on purpose: demo machines run under TCG.
DEFAULT_SIZES = (
    ("tiny", 1, 64, 0),
    ("small", 1, 128, 1),
    ("medium", 2, 256, 2),
    ("large", 4, 512, 4),
    ("xlarge", 8, 1024, 8),
)


def sizes_from_options(sizes: Iterable[Mapping[str, Any]] | None = None) -> list[MachineConfiguration]:
    """MachineConfigurations from a list of dicts (name, cpu, memory_mib, disk_gib) or the defaults."""
    if sizes is None:
        sizes = [dict(name=n, cpu=c, memory_mib=m, disk_gib=d) for n, c, m, d in DEFAULT_SIZES]
    configs = []
    for i, size in enumerate(sizes):
        try:
            name, cpu, mib = size["name"], int(size["cpu"]), int(size["memory_mib"])
            disk_gib = int(size.get("disk_gib", 0))
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("sizes[%d]: needs name, cpu and memory_mib" % i, attribute="sizes") from None
        disks = [{"capacity": disk_gib * 1024 * 1024}] if disk_gib else None
        configs.append(MachineConfiguration(id=name, name=name, cpu=cpu, memory=mib * KIB_PER_MIB, disks=disks))
    return configs


class Connector:
    """Base of every connector. Subclasses set ``name`` and override what they support."""

    name: str = "base"
    # Options a connector understands besides the common ones (documentation and validation).
    option_names: Sequence[str] = ()
    # What its create_machine puts into the guest ("userData", "credential"): the rest it refuses; the most
    # userData it takes (bytes, of the base64 form when user_data_encoded; None: no limit of its own).
    guest_inputs: Collection[str] = frozenset()
    user_data_limit: int | None = None
    user_data_encoded: bool = False
    # The disk formats its import_machine_image takes, preferred first.
    image_formats: Sequence[str] = ()
    # Whether a machine asked by value gets the smallest of the provider's named sizes that fits.
    rounds_to_sizes: bool = False

    def __init__(self, uri: str | None = None, username: str | None = None, password: str | None = None,
                 region: str | None = None, validate_certs: bool = True, timeout: float = 60,
                 options: Mapping[str, Any] | None = None) -> None:
        self.uri = uri
        self.username = username
        self._password = password  # kept private: never part of a repr, log or result
        self.region = region
        self.validate_certs = validate_certs
        self.timeout = timeout
        self.options = dict(options or {})
        unknown = sorted(set(self.options) - set(self.option_names))
        if unknown:
            raise InvalidInput("provider '%s' does not know option(s): %s (known: %s)"
                               % (self.name, ", ".join(unknown), ", ".join(self.option_names) or "none"),
                               attribute="provider_options")

    def __repr__(self) -> str:
        return "<%s connector uri=%r>" % (self.name, self.uri)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the provider connection."""

    # -- capabilities ------------------------------------------------------
    def implemented_operations(self) -> frozenset[str]:
        """Contract operations this class really implements (overrides)."""
        return frozenset(op for op, method in OPERATIONS.items()
                         if getattr(type(self), method) is not getattr(Connector, method))

    def capabilities(self) -> Capabilities:
        return Capabilities(provider=self.name, operations=self.implemented_operations(),
                            image_formats=self.import_formats(), rounds_to_sizes=self.rounds_to_sizes,
                            **self.guest_fields())

    def guest_fields(self, inputs: Iterable[str] | None = None) -> dict[str, Any]:
        """The Capabilities fields of guest inputs: what create_machine takes (``inputs``, default
        ``guest_inputs``) and its userData limit."""
        return {"guest_inputs": frozenset(self.guest_inputs if inputs is None else inputs),
                "user_data_limit": self.user_data_limit, "user_data_encoded": self.user_data_encoded}

    def import_formats(self) -> tuple[str, ...]:
        """``image_formats`` when this connector imports images, else nothing (for capabilities())."""
        return tuple(self.image_formats) if "machine_image.import" in self.implemented_operations() else ()

    def require(self, operation: str) -> None:
        self.capabilities().require(operation)

    # -- machines ----------------------------------------------------------
    def list_machines(self, limit: int | None = None, marker: str | None = None) -> Page:
        """A Page of Machines, at most ``limit`` of them, starting after ``marker``."""
        raise Unsupported(self.name, "machine.list")

    def get_machine(self, machine_id: str) -> Machine:
        """The Machine with this native id, or NotFound."""
        raise Unsupported(self.name, "machine.get")

    def create_machine(self, spec: MachineSpec) -> Machine:
        """Create a machine from a MachineSpec; returns it in its initial state."""
        raise Unsupported(self.name, "machine.create")

    def start_machine(self, machine_id: str) -> Machine:
        raise Unsupported(self.name, "machine.start")

    def stop_machine(self, machine_id: str, force: bool = False) -> Machine:
        raise Unsupported(self.name, "machine.stop")

    def restart_machine(self, machine_id: str, force: bool = False) -> Machine:
        raise Unsupported(self.name, "machine.restart")

    def pause_machine(self, machine_id: str) -> Machine:
        raise Unsupported(self.name, "machine.pause")

    def suspend_machine(self, machine_id: str) -> Machine:
        raise Unsupported(self.name, "machine.suspend")

    def delete_machine(self, machine_id: str) -> None:
        raise Unsupported(self.name, "machine.delete")

    def capture_machine(self, machine_id: str, name: str, description: str | None = None) -> MachineImage:
        """Capture a machine into a new MachineImage, returned."""
        raise Unsupported(self.name, "machine.capture")

    # -- configurations and images --------------------------------------------
    def list_machine_configs(self) -> list[MachineConfiguration]:
        raise Unsupported(self.name, "machine_config.list")

    def list_machine_images(self) -> list[MachineImage]:
        raise Unsupported(self.name, "machine_image.list")

    def import_machine_image(self, image: DiskImage) -> MachineImage:
        """Register a DiskImage (in one of ``image_formats``) as a MachineImage, AVAILABLE when returned,
        its properties holding the IMAGE_*_PROPERTY facts as the provider keeps them; Conflict when the
        name is taken."""
        raise Unsupported(self.name, "machine_image.import")

    def delete_machine_image(self, image_id: str) -> None:
        raise Unsupported(self.name, "machine_image.delete")

    # -- volumes -------------------------------------------------------------
    def list_volumes(self) -> list[Volume]:
        raise Unsupported(self.name, "volume.list")

    def create_volume(self, name: str, capacity_kb: int, description: str | None = None,
                      properties: Mapping[str, str] | None = None, volume_type: str | None = None) -> Volume:
        """A new Volume of ``capacity_kb`` KB; ``volume_type`` (a provider's volume type: gp3, a Cinder type...)
        only where the provider offers types, else InvalidInput(attribute="type")."""
        raise Unsupported(self.name, "volume.create")

    def delete_volume(self, volume_id: str) -> None:
        raise Unsupported(self.name, "volume.delete")

    def attach_volume(self, machine_id: str, volume_id: str, initial_location: str | None = None) -> Machine:
        raise Unsupported(self.name, "volume.attach")

    def detach_volume(self, machine_id: str, volume_id: str) -> Machine:
        raise Unsupported(self.name, "volume.detach")

    def resize_volume(self, volume_id: str, capacity_kb: int) -> Volume:
        """Grow a volume to ``capacity_kb`` KB (never shrink: InvalidInput(attribute="capacity"); the same
        capacity changes nothing); the Volume.
        Conflict, naming what to do, when its state or its machine's forbids it now."""
        raise Unsupported(self.name, "volume.resize")

    # -- networks -------------------------------------------------------------
    def list_networks(self) -> list[Network]:
        raise Unsupported(self.name, "network.list")

    def create_network(self, name: str, description: str | None = None, properties: Mapping[str, str] | None = None,
                       cidr: str | None = None, dhcp: bool | None = None) -> Network:
        """A new Network; ``cidr`` (an IPv4 network such as 10.20.0.0/24) and ``dhcp`` (bool) where the
        provider can set them, else InvalidInput naming the attribute ("cidr", "dhcp")."""
        raise Unsupported(self.name, "network.create")

    def delete_network(self, network_id: str) -> None:
        raise Unsupported(self.name, "network.delete")

    def migrate_machine(self, machine_id: str, target: Connector) -> Machine:
        """Move the machine to the host that ``target`` (a connector of the same provider) serves, live when
        it runs; the Machine as ``target`` sees it (its id there may differ)."""
        raise Unsupported(self.name, "machine.migrate")

    def resize_machine(self, machine_id: str, config: MachineConfiguration) -> Machine:
        """Give the machine ``config``'s cpu and memory (a MachineConfiguration; disks are left alone); the
        Machine. Conflict saying a stop is needed when ``resize_needs_stop`` says so and it runs."""
        raise Unsupported(self.name, "machine.resize")

    def resize_needs_stop(self, machine: Machine, config: MachineConfiguration) -> bool:
        """Whether resizing ``machine`` (a Machine as listed) to ``config`` needs it STOPPED first. By default
        any machine that is not stopped; connectors that resize live (within maximums) say less."""
        return machine.state != states.STOPPED

    # -- meters ---------------------------------------------------------------
    def list_meters(self, machine_id: str, start: datetime | None = None,
                    end: datetime | None = None) -> list[Meter]:
        """Meters of one machine. Without a window, each with its latest sample; with ``start``/``end``
        (timezone-aware datetimes, either may be None) each with the samples its source keeps in that window
        (a source that keeps no history gives its current sample when ``now`` is in the window)."""
        raise Unsupported(self.name, "meter.list")

    # -- credentials (SSH public keys kept by the provider: key pairs, CIMI Credentials) -------
    def list_credentials(self) -> list[Credential]:
        """Credentials (name, userName, key: the public key) the provider keeps."""
        raise Unsupported(self.name, "credential.list")

    def create_credential(self, name: str, key: str, user_name: str | None = None,
                          description: str | None = None) -> Credential:
        """Register the SSH public key ``key`` under ``name``; the Credential. Conflict when the name is taken."""
        raise Unsupported(self.name, "credential.create")

    def delete_credential(self, credential_id: str) -> None:
        raise Unsupported(self.name, "credential.delete")

    # -- machine configurations and templates stored by the provider (a CIMI endpoint) ----------
    def create_machine_config(self, config: MachineConfiguration) -> MachineConfiguration:
        """Store a MachineConfiguration (named); the stored one."""
        raise Unsupported(self.name, "machine_config.create")

    def delete_machine_config(self, config_id: str) -> None:
        raise Unsupported(self.name, "machine_config.delete")

    def list_machine_templates(self) -> list[MachineTemplate]:
        raise Unsupported(self.name, "machine_template.list")

    def create_machine_template(self, template: MachineTemplate) -> MachineTemplate:
        """Store a MachineTemplate (its machineConfig, machineImage, credential by reference); the stored one."""
        raise Unsupported(self.name, "machine_template.create")

    def delete_machine_template(self, template_id: str) -> None:
        raise Unsupported(self.name, "machine_template.delete")

    # -- systems (natively, on a CIMI endpoint; elsewhere module_utils orchestrates them) -----------
    def list_systems(self) -> list[System]:
        raise Unsupported(self.name, "system.list")

    def create_system(self, name: str, template: str | SystemTemplate, description: str | None = None,
                      properties: Mapping[str, str] | None = None, initial_state: str | None = None) -> System:
        """A System from ``template`` (a SystemTemplate's native id, or a SystemTemplate by value); the System."""
        raise Unsupported(self.name, "system.create")

    def start_system(self, system_id: str) -> System:
        raise Unsupported(self.name, "system.start")

    def stop_system(self, system_id: str, force: bool = False) -> System:
        raise Unsupported(self.name, "system.stop")

    def delete_system(self, system_id: str) -> None:
        raise Unsupported(self.name, "system.delete")

    def list_system_templates(self) -> list[SystemTemplate]:
        raise Unsupported(self.name, "system_template.list")

    def create_system_template(self, template: SystemTemplate) -> SystemTemplate:
        raise Unsupported(self.name, "system_template.create")

    def delete_system_template(self, template_id: str) -> None:
        raise Unsupported(self.name, "system_template.delete")

    # -- jobs -------------------------------------------------------------------
    def list_jobs(self) -> list[Job]:
        """The provider's Jobs (a CIMI endpoint's), nested ones included."""
        raise Unsupported(self.name, "job.list")

    # -- derived helpers: the same for every connector ------------------------
    def iter_machines(self, page_size: int = 100) -> Iterator[Machine]:
        marker = None
        while True:
            page = self.list_machines(limit=page_size, marker=marker)
            yield from page.items
            if page.marker is None or not page.items:
                return
            marker = page.marker

    def find_machines(self, name: str) -> list[Machine]:
        """Every machine called ``name`` (names need not be unique everywhere)."""
        return [m for m in self.iter_machines() if m.name == name]

    def find_machine(self, name: str) -> Machine | None:
        """The one machine called ``name``, None if absent, Conflict if ambiguous."""
        found = self.find_machines(name)
        if len(found) > 1:
            raise Conflict("%d machines are named '%s' on provider '%s'; use their ids"
                           % (len(found), name, self.name))
        return found[0] if found else None

    def get_machine_config(self, ref: str) -> MachineConfiguration:
        """A configuration by id or name."""
        return _by_id_or_name(self.list_machine_configs(), ref, "machine configuration", self.name)

    def get_machine_image(self, ref: str) -> MachineImage:
        return _by_id_or_name(self.list_machine_images(), ref, "machine image", self.name)

    def find_machine_images(self, generic_name: str) -> list[MachineImage]:
        """The images registered under ``generic_name`` (IMAGE_NAME_PROPERTY), or else named so."""
        images = self.list_machine_images()
        tagged = [i for i in images if (i.properties or {}).get(IMAGE_NAME_PROPERTY) == generic_name]
        return tagged or [i for i in images if i.name == generic_name]

    def get_volume(self, ref: str) -> Volume:
        return _by_id_or_name(self.list_volumes(), ref, "volume", self.name)

    def get_network(self, ref: str) -> Network:
        return _by_id_or_name(self.list_networks(), ref, "network", self.name)

    def get_credential(self, ref: str) -> Credential:
        return _by_id_or_name(self.list_credentials(), ref, "credential", self.name)

    def get_machine_template(self, ref: str) -> MachineTemplate:
        return _by_id_or_name(self.list_machine_templates(), ref, "machine template", self.name)

    def get_system(self, ref: str) -> System:
        return _by_id_or_name(self.list_systems(), ref, "system", self.name)

    def get_system_template(self, ref: str) -> SystemTemplate:
        return _by_id_or_name(self.list_system_templates(), ref, "system template", self.name)

    def machine_action(self, machine_id: str, action: str, force: bool | None = None) -> Any:
        """Run a CIMI action verb on a machine, refusing what its state does not allow."""
        operation = ACTION_OPERATIONS.get(action)
        if operation is None:
            raise InvalidInput("unknown machine action '%s'" % action, attribute="action")
        self.require(operation)
        machine = self.get_machine(machine_id)
        states.check_allowed(machine.state, action, "machine '%s'" % (machine.name or machine_id))
        method = getattr(self, OPERATIONS[operation])
        if action in (states.STOP, states.RESTART):
            return method(machine_id, force=bool(force))
        if action == states.CAPTURE:
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
            return method(machine_id, name="%s-%s" % (machine.name or machine_id, stamp))
        return method(machine_id)

    def wait_for_machine(self, machine_id: str, wanted: str | Iterable[str | None] | None,
                         timeout: float | None = None, interval: float = 0.2) -> Machine | None:

        """Poll until the machine is in one of ``wanted`` states (None: gone)."""
        wanted = (wanted,) if isinstance(wanted, str) or wanted is None else tuple(wanted)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            try:
                machine = self.get_machine(machine_id)
            except NotFound:
                if None in wanted:
                    return None
                raise
            if machine.state in wanted:
                return machine
            if machine.state in (states.ERROR, states.FAILED) and machine.state not in wanted:
                raise Conflict("machine '%s' went to state %s while waiting for %s"
                               % (machine.name or machine_id, machine.state, "/".join(map(str, wanted))))
            if time.monotonic() >= deadline:
                raise OperationTimeout("machine '%s' still %s after %ss waiting for %s"
                                       % (machine.name or machine_id, machine.state,
                                          timeout if timeout is not None else self.timeout,
                                          "/".join(map(str, wanted))))
            time.sleep(interval)


def _by_id_or_name(items, ref, what, provider):
    for item in items:
        if item.id == ref:
            return item
    named = [item for item in items if item.name == ref]
    if len(named) == 1:
        return named[0]
    if named:
        raise Conflict("%d %ss are named '%s' on provider '%s'; use an id" % (len(named), what, ref, provider))
    raise NotFound("%s '%s' not found on provider '%s'" % (what, ref, provider))

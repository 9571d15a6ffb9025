# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One connector over any Apache Libcloud compute driver (vCloud, CloudStack, OpenStack, EC2, ...).

(``import libcloud`` below is an absolute import: it is the PyPI package, never this file.)

Options (``provider_options``):

* ``driver`` (required): the libcloud provider name, as ``get_driver`` takes it
  (``ec2``, ``openstack``, ``cloudstack``, ``vcloud``, ...).
* ``driver_kwargs``: keyword arguments of the driver's constructor (``host``, ``port``,
  ``secure``, ``signature_version``, ``ex_force_auth_url``, ...). ``username``/``password``
  are the driver's key and secret (never logged), ``region`` its region when it takes
  one, ``timeout`` its connection timeout; ``uri`` becomes ``host``/``port``/``secure``
  (or, for drivers listed in ``DRIVER_TRAITS`` with ``uri_kwarg``, that argument).
* ``create_kwargs``: extra keyword arguments of ``create_node`` (``ex_keyname``,
  ``ex_security_groups``, ``networks``...).
* ``list_images_kwargs``: keyword arguments of ``list_images`` (EC2's default:
  ``{"ex_owner": "self"}``); any image can still be used by id.
* ``image``: the image id of machines whose request names none.
* ``size_filter``: sizes offered as MachineConfigurations, as names or patterns (``t3.*``).

Mapping: Machine = Node, MachineConfiguration = NodeSize (a request by cpu/memory gets
the exact size, else the smallest that fits), MachineImage = NodeImage, Volume =
StorageVolume. Node states map to CIMI states in ``NODE_STATES``; a TERMINATED node is
gone. ``description`` and ``properties`` live in the node's metadata (``ex_metadata`` at
creation: EC2 tags, OpenStack server metadata), the description under
``sirocco:description``.

Capabilities come from the driver class itself (``driver_operations``): an operation is
advertised only when every driver method it needs is the driver's own (not NodeDriver's
stub) and is not a body that only raises NotImplementedError; volume operations also need
the provider to answer a volume listing (``PROBES``: a cloud may lack the service). Pause and suspend need
the driver's ``ex_pause_node``/``ex_unpause_node`` and ``ex_suspend_node``/``ex_resume_node``.
Networks and meters have no driver-neutral API in libcloud: never advertised.

Credentials are the driver's key pairs (``list_key_pairs``, ``import_key_pair_from_string``,
``delete_key_pair``) [the pair's name]; where ``list_key_pairs`` leaves the public key out (EC2's), it is
read through ``DRIVER_TRAITS``' ``public_keys``. libcloud imports a name and a key only: a ``userName`` or a
``description`` is refused (InvalidInput naming it). ``machine.resize`` needs the driver's ``ex_resize`` and
``ex_confirm_resize`` (OpenStack's: Nova's resize, confirmed once the node awaits it, live on a running
node); other drivers leave it unsupported, and ``volume.resize`` too (no driver-neutral call). A
``volume_type`` goes to ``create_volume``'s ``ex_volume_type`` where the driver takes one.

What a new machine's guest receives (``guest_inputs``) comes from the driver too, checked before anything is
created: ``userData`` when its ``create_node`` takes ``ex_userdata`` (within the provider's limit, from
``DRIVER_TRAITS``: EC2 16384 bytes before base64, Nova 65535 once encoded); ``credential`` (an SSH public key,
no password) when its ``create_node`` takes ``ex_keyname`` and the driver implements ``list_key_pairs`` and
``import_key_pair_from_string`` (EC2, OpenStack): the key is imported as ``sirocco-<16 hex>``
(``base.key_pair_name``: the same key, the same name; a pair of that name, or another pair holding the same key,
is reused) and named as the node's
key pair; the credential's ``userName`` is metadata ``sirocco.user`` (``base.USER_PROPERTY``) where the driver
keeps metadata. Key pairs are not deleted with machines (other machines may use them). A credential with
``ex_keyname`` in ``create_kwargs`` too is refused.

What libcloud keeps in a driver-specific place (metadata, size and image of a node,
attachments of a volume, root device) is read through ``DRIVER_TRAITS``; a driver not
listed there gets the generic guesses of ``GENERIC_TRAITS``. Adding a driver that
needs more is one entry there plus its contract stand-in.

No libcloud exception leaves this module: ``translate`` maps them in one place.
"""

from __future__ import annotations

import dis
import fnmatch
import inspect
import re
import time
from urllib.parse import urlsplit

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
    Credential,
    Disk,
    Machine,
    MachineConfiguration,
    MachineImage,
    MachineVolume,
    NetworkInterface,
    Volume,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import ec2
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
    public_key,
    same_key,
    translating,
)

try:
    import libcloud
    import libcloud.security
    from libcloud.common.exceptions import BaseHTTPError
    from libcloud.common.types import InvalidCredsError, LibcloudError, MalformedResponseError
    from libcloud.compute.base import NodeDriver
    from libcloud.compute.providers import get_driver
    HAS_LIBCLOUD = True
    LIBCLOUD_IMPORT_ERROR = None
except ImportError as exc:  # Ansible's sanity import test runs without third-party libraries
    LIBCLOUD_IMPORT_ERROR = exc
    libcloud = None
    HAS_LIBCLOUD = False

KIB_PER_GIB = 1024 * 1024
DESCRIPTION_KEY = "sirocco:description"
RESERVED_PREFIXES = ("sirocco:", "aws:")

# -- libcloud's states: the one table per resource ----------------------------------------
# NodeState value -> CIMI state; None: the node is gone.
NODE_STATES = {
    "running": states.STARTED,
    "starting": states.STARTING,
    "rebooting": states.STARTING,
    "pending": states.CREATING,
    "stopping": states.STOPPING,
    "stopped": states.STOPPED,
    "suspended": states.SUSPENDED,
    "paused": states.PAUSED,
    "terminated": None,
    "error": states.ERROR,
    "unknown": states.ERROR,
    "migrating": states.STARTED,
    "reconfiguring": states.STARTED,
    "updating": states.STARTED,
    "normal": states.STARTED,
}
# StorageVolumeState value -> CIMI volume state; None: gone.
VOLUME_STATES = {"available": "AVAILABLE", "inuse": "AVAILABLE", "attaching": "AVAILABLE", "backup": "AVAILABLE",
                 "migrating": "AVAILABLE", "updating": "AVAILABLE", "creating": states.CREATING,
                 "deleting": states.DELETING, "deleted": None, "error": states.ERROR, "unknown": states.ERROR}
# An image's state as drivers write it in ``extra`` (EC2 ``state``, OpenStack ``status``), lower-cased.
IMAGE_STATES = {"available": "AVAILABLE", "active": "AVAILABLE", "pending": states.CREATING,
                "queued": states.CREATING, "saving": states.CREATING, "creating": states.CREATING,
                "failed": states.ERROR, "error": states.ERROR, "killed": states.ERROR, "invalid": states.ERROR,
                "deleted": None, "deregistered": None, "pending_delete": None}

# Contract operation -> the driver methods it needs (all of them, really implemented).
DRIVER_METHODS = {
    "machine.list": ("list_nodes",),
    "machine.get": ("list_nodes",),
    "machine.create": ("create_node", "list_nodes", "list_sizes"),
    "machine.start": ("start_node",),
    "machine.stop": ("stop_node",),
    "machine.restart": ("reboot_node", "start_node"),
    "machine.pause": ("ex_pause_node", "ex_unpause_node"),
    "machine.suspend": ("ex_suspend_node", "ex_resume_node"),
    "machine.delete": ("destroy_node",),
    "machine.capture": ("create_image",),
    "machine_config.list": ("list_sizes",),
    "machine_image.list": ("list_images",),
    "machine_image.delete": ("delete_image", "list_images"),
    "volume.list": ("list_volumes",),
    "volume.create": ("create_volume", "list_volumes"),
    "volume.delete": ("destroy_volume", "list_volumes"),
    "volume.attach": ("attach_volume", "list_volumes"),
    "volume.detach": ("detach_volume", "list_volumes"),
    "credential.list": ("list_key_pairs",),
    "credential.create": ("import_key_pair_from_string", "list_key_pairs"),
    "credential.delete": ("delete_key_pair", "list_key_pairs"),
    # Nova's resize, then its confirmation (OpenStack's driver); no driver-neutral resize in libcloud
    "machine.resize": ("ex_resize", "ex_confirm_resize", "list_sizes", "list_nodes"),
}

# Where drivers keep what libcloud has no common field for. Keys of a node's/volume's ``extra``:
#   metadata: the node's key/value metadata; size/image: its size and image ids;
#   raw_state: the provider's own state name, read through raw_states (the provider's own table);
#   root_device: the node's root device name; attached_node/attached_device: a volume's attachment;
#   attachments: a volume's list of {server id, device} (OpenStack style);
#   needs_device: attach_volume needs a device name; list_images: list_images' default kwargs;
#   uri_kwarg: the constructor argument ``uri`` goes to (default: host/port/secure);
#   zone_kwarg: the create_node argument a request's location goes to, by name, when the driver's
#   create_node takes no ``location`` (a NodeLocation);
#   volume_location: create_volume gets the location (when it takes one);
#   user_data_limit/user_data_encoded: the provider's userData limit, in bytes before or after base64;
#   key_types: the SSH key types its key pair import takes (None: whatever the provider checks itself);
#   public_keys: a function of the driver giving {key pair name: public key} where list_key_pairs leaves the
#   public key out (EC2's: DescribeKeyPairs without IncludePublicKey);
#   resize_pending: (extra key, value) of a node whose resize awaits confirmation; resize_live: a running node
#   resizes (else it must be stopped first); volume_types: a function checking create_volume's type (the
#   provider's name of it, or InvalidInput).
GENERIC_TRAITS = {
    "metadata": ("tags", "metadata"),
    "size": ("instance_type", "flavorId", "size", "size_id"),
    "image": ("image_id", "imageId", "image"),
    "raw_state": None,
    "raw_states": {},
    "root_device": ("root_device_name",),
    "attached_node": ("instance_id", "node_id"),
    "attached_device": ("device",),
    "attachments": ("attachments",),
    "needs_device": False,
    "list_images": {},
    "uri_kwarg": None,
    "zone_kwarg": None,
    "stop_resumes_first": False,
    "volume_location": True,
    "user_data_limit": None,
    "user_data_encoded": False,
    "key_types": None,
    "public_keys": None,
    "resize_pending": None,
    "resize_live": False,
    "volume_types": None,
}
# Nova's vm_state -> CIMI state; None: the server is gone.
OPENSTACK_VM_STATES = {
    "active": states.STARTED, "building": states.CREATING, "paused": states.PAUSED,
    "suspended": states.SUSPENDED, "stopped": states.STOPPED, "shelved": states.STOPPED,
    "shelved_offloaded": states.STOPPED, "rescued": states.STARTED, "resized": states.STARTED,
    "error": states.ERROR, "deleted": None, "soft_deleted": None,
}


def ec2_public_keys(driver):
    """{key pair name: public key} through the EC2 driver's own connection: DescribeKeyPairs with IncludePublicKey,
    which its list_key_pairs does not ask for (it leaves public_key None)."""
    from libcloud.compute.drivers.ec2 import NAMESPACE
    from libcloud.utils.xml import findall, findtext

    reply = driver.connection.request(driver.path, params={"Action": "DescribeKeyPairs", "IncludePublicKey": "true"})
    return {findtext(element=item, xpath="keyName", namespace=NAMESPACE):
            (findtext(element=item, xpath="publicKey", namespace=NAMESPACE) or "").strip() or None
            for item in findall(element=reply.object, xpath="keySet/item", namespace=NAMESPACE)}


DRIVER_TRAITS = {
    "ec2": {"metadata": ("tags",), "size": ("instance_type",), "image": ("image_id",), "raw_state": "status",
            "raw_states": ec2.INSTANCE_STATES, "needs_device": True, "list_images": {"ex_owner": "self"},
            "user_data_limit": ec2.USER_DATA_LIMIT, "key_types": ec2.KEY_TYPES, "public_keys": ec2_public_keys,
            "volume_types": ec2.ebs_volume_type},
    # uri is Keystone's URL. libcloud maps Nova's PAUSED (and SHELVED) status to UNKNOWN, so the server's
    # own vm_state (OS-EXT-STS) decides.
    "openstack": {"metadata": ("metadata",), "size": ("flavorId",), "image": ("imageId",),
                  "uri_kwarg": "ex_force_auth_url", "zone_kwarg": "ex_availability_zone",
                  "raw_state": "vm_state", "raw_states": OPENSTACK_VM_STATES, "stop_resumes_first": True,
                  # its create_volume sends the NodeLocation itself as Cinder's availability zone (which
                  # JSON cannot carry), and its one location is unnamed: Cinder picks its default zone
                  "volume_location": False,
                  "user_data_limit": 65535, "user_data_encoded": True,  # Nova's user_data: 65535 bytes of base64
                  "resize_pending": ("vm_state", "resized"), "resize_live": True},
}


# What a driver needs to import a credential's key and name it in create_node (besides create_node's ex_keyname).
KEY_PAIR_METHODS = ("list_key_pairs", "import_key_pair_from_string")

# Operation families the provider itself may lack although the driver implements them (an OpenStack
# without block storage: Nova's volume proxy answers 500), probed once per connector with a listing.
PROBES = (("volume.", "list_volumes"),)


def traits_of(driver_name):
    return dict(GENERIC_TRAITS, **DRIVER_TRAITS.get(driver_name, {}))


# -- capability derivation -------------------------------------------------------------------
def only_raises_not_implemented(func):
    """True for a function whose body can only raise NotImplementedError (a stub)."""
    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None or "NotImplementedError" not in code.co_names:
        return False
    return not any(i.opname.startswith("RETURN") for i in dis.get_instructions(code))


def implements(driver_cls, method):
    """Whether ``driver_cls`` really implements ``method``: its own (not NodeDriver's), not a stub."""
    func = getattr(driver_cls, method, None)
    if func is None or not callable(func):
        return False
    if HAS_LIBCLOUD and func is getattr(NodeDriver, method, None):
        return False
    return not only_raises_not_implemented(func)


def driver_operations(driver_cls):
    """The contract operations a driver class supports, from what it implements."""
    return frozenset(op for op, methods in DRIVER_METHODS.items() if all(implements(driver_cls, m) for m in methods))


def accepts(func, name):
    """Whether ``func`` takes a keyword ``name`` (explicitly or through ``**kwargs``)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def explicit(func, name):
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


# -- errors: the one place libcloud exceptions are translated ----------------------------------
HTTP_ERRORS = {400: InvalidInput, 401: AuthError, 403: Forbidden, 404: NotFound, 409: Conflict}


def _error_rules():
    """libcloud (and transport) exceptions -> Sirocco errors, first match wins."""
    rows = [ErrorRule(NotImplementedError, Unsupported, detail=str)]
    if HAS_LIBCLOUD:
        rows += [
            ErrorRule(InvalidCredsError, AuthError, detail=lambda exc: "authentication failed: %s" % exc),
            ErrorRule(BaseHTTPError, lambda exc: HTTP_ERRORS.get(getattr(exc, "code", None), ProviderUnavailable),
                      detail=lambda exc: _exc_message(exc) or "HTTP %s" % exc.code),
            ErrorRule(MalformedResponseError, ProviderUnavailable,
                      detail=lambda exc: "malformed reply from the provider"),
        ]
    rows.append(ErrorRule((OSError, TimeoutError), ProviderUnavailable,
                          detail=lambda exc: "cannot reach the provider: %s" % exc))
    if HAS_LIBCLOUD:
        rows.append(ErrorRule(LibcloudError, ProviderUnavailable, detail=str))
    return rows


ERRORS = ErrorTable(_error_rules, detail=lambda exc: "%s: %s" % (type(exc).__name__, exc))


def _exc_message(exc):
    return str(getattr(exc, "message", None) or exc)


def _ec2_error(exc):
    """(code, message) of an EC2-style driver's error ("Code: message") with a known EC2 code, else None.
    A Sirocco error, a stub's NotImplementedError and InvalidCredsError keep their own translation."""
    if isinstance(exc, (SiroccoError, NotImplementedError)) or HAS_LIBCLOUD and isinstance(exc, InvalidCredsError):
        return None
    message = _exc_message(exc)
    match = re.match(r"^([A-Za-z][\w.]*): ", message)
    if match and match.group(1) in ec2.ERROR_CODES:
        return match.group(1), message[match.end():]
    return None


def translate(exc, operation, subject, provider="libcloud"):
    """A libcloud (or transport) exception as a Sirocco error."""
    ec2_error = _ec2_error(exc)
    if ec2_error is not None:
        code, message = ec2_error
        return ec2.error_for(code, message, operation, subject, provider)
    return ERRORS.error(exc, operation, subject, provider)


def cimi_node_state(node, traits):
    """CIMI state of a node: the provider's own state when the driver's traits know it, else libcloud's."""
    raw = node.extra.get(traits["raw_state"]) if traits["raw_state"] else None
    if raw in traits["raw_states"]:
        return traits["raw_states"][raw]
    return NODE_STATES.get(str(node.state), states.ERROR)


def _first(extra, keys, default=None):
    for key in keys:
        value = extra.get(key)
        if value not in (None, "", {}):
            return value
    return default


def size_cpu(size):
    for key in ("vcpus", "vcpu", "cpus", "cpu", "cores"):
        value = getattr(size, key, None) or (size.extra or {}).get(key)
        try:
            if value is not None and int(value) > 0:
                return int(value)
        except (TypeError, ValueError):
            continue
    return None


class LibcloudConnector(Connector):
    name = "libcloud"
    rounds_to_sizes = True  # instance types / flavors / sizes: the smallest that fits
    option_names = ("driver", "driver_kwargs", "create_kwargs", "list_images_kwargs", "image", "size_filter")

    def __init__(self, uri=None, username=None, password=None, region=None, validate_certs=True,
                 timeout=60, options=None):
        super().__init__(uri=uri, username=username, password=password, region=region,
                         validate_certs=validate_certs, timeout=timeout, options=options)
        if not HAS_LIBCLOUD:
            raise missing_sdk("libcloud", "apache-libcloud", LIBCLOUD_IMPORT_ERROR)
        self.driver_name = self.options.get("driver")
        if not self.driver_name or not isinstance(self.driver_name, str):
            raise InvalidInput("the libcloud provider needs provider option driver (ec2, openstack, cloudstack, "
                               "vcloud, ...)", attribute="provider_options")
        for key in ("driver_kwargs", "create_kwargs", "list_images_kwargs"):
            if not isinstance(self.options.get(key, {}), dict):
                raise InvalidInput("provider option %s must be a dictionary" % key, attribute="provider_options")
        self.traits = traits_of(self.driver_name)
        self.user_data_limit = self.traits["user_data_limit"]
        self.user_data_encoded = bool(self.traits["user_data_encoded"])
        try:
            self.driver_cls = get_driver(self.driver_name)
        except (AttributeError, LibcloudError, KeyError, ValueError):
            raise InvalidInput("libcloud has no compute driver '%s'" % self.driver_name,
                               attribute="provider_options") from None
        self._driver = None
        self._sizes = None
        self._size_index = None
        self._locations = None
        self._operations = None
        self._caps = None

    def __repr__(self):
        return "<libcloud connector driver=%s uri=%r>" % (self.driver_name, self.uri)

    @property
    def subject(self):
        return "libcloud %s%s" % (self.driver_name, " at %s" % self.uri if self.uri else "")

    # -- the driver ---------------------------------------------------------------------------
    def driver_kwargs(self):
        """The driver constructor's keyword arguments (secret excluded)."""
        kwargs = {}
        if self.uri:
            if self.traits["uri_kwarg"]:
                kwargs[self.traits["uri_kwarg"]] = self.uri
            else:
                parts = urlsplit(self.uri if "//" in self.uri else "//" + self.uri)
                kwargs.update(host=parts.hostname, secure=parts.scheme != "http")
                if parts.port:
                    kwargs["port"] = parts.port
        if self.region and explicit(self.driver_cls.__init__, "region"):
            kwargs["region"] = self.region
        kwargs["timeout"] = self.timeout
        kwargs.update(self.options.get("driver_kwargs") or {})
        return kwargs

    @property
    def driver(self):
        if self._driver is None:
            if not self.validate_certs:
                libcloud.security.VERIFY_SSL_CERT = False  # libcloud has only this process-wide switch
            try:
                self._driver = self.driver_cls(self.username, self._password, **self.driver_kwargs())
            except TypeError as exc:
                raise InvalidInput("libcloud driver %s: bad driver_kwargs: %s" % (self.driver_name, exc),
                                   attribute="provider_options") from None
            except Exception as exc:  # noqa: BLE001 - drivers raise anything; translate names it
                raise translate(exc, "connect", self.subject, self.name) from None
        return self._driver

    def _do(self, operation, subject, method, *args, **kwargs):
        """One driver call, its exception mapped to a Sirocco error."""
        with translating(translate, Exception, operation, subject or self.subject, self.name):  # drivers raise anything
            return getattr(self.driver, method)(*args, **kwargs)

    # -- capabilities -------------------------------------------------------------------------
    def implemented_operations(self):
        """What the driver's class implements (the class of the driver made: factories such as OpenStack's
        ``get_driver`` class pick a versioned class when instantiated)."""
        if self._operations is None:
            ops = driver_operations(type(self.driver))
            for family, method in PROBES:
                if any(op.startswith(family) for op in ops) and not self._answers(method):
                    ops = frozenset(op for op in ops if not op.startswith(family))
            self._operations = ops
        return self._operations

    def _answers(self, method):
        """Whether the provider serves what the driver implements (a cloud may lack the service behind it)."""
        try:
            self._do("capabilities", None, method)
        except (ProviderUnavailable, NotFound, Unsupported):
            return False
        return True

    def capabilities(self):
        """Read once per connector (machine_action consults them before every action)."""
        if self._caps is None:
            self._caps = self._capabilities()
        return self._caps

    def _capabilities(self):
        ops = self.implemented_operations()
        configs = self.list_machine_configs() if "machine_config.list" in ops else []
        cpus = [c.cpu for c in configs if c.cpu]
        mibs = [c.memory // KIB_PER_MIB for c in configs if c.memory]
        return Capabilities(
            provider=self.name, operations=ops,
            cpu=Range(min(cpus, default=1), max(cpus, default=None)),
            memory_mib=Range(min(mibs, default=1), max(mibs, default=None)),
            locations=tuple(self.locations()) or (self.region or self.driver_name,),
            stop_force_default=False, image_formats=self.import_formats(), rounds_to_sizes=self.rounds_to_sizes,
            **self.guest_fields(self._guest_inputs()),
            extras={"driver": self.driver_name, "sizes": len(configs)})

    def _guest_inputs(self):
        """userData when the driver's create_node takes it (ex_userdata); a credential when it takes a key pair's
        name (ex_keyname) and the driver imports key pairs (KEY_PAIR_METHODS)."""
        create = self.driver.create_node
        inputs = set()
        if explicit(create, "ex_userdata"):
            inputs.add("userData")
        if explicit(create, "ex_keyname") and all(implements(type(self.driver), m) for m in KEY_PAIR_METHODS):
            inputs.add("credential")
        return frozenset(inputs)

    def _check_guest_inputs(self, spec):
        """Refuse, before anything is created, the userData or credential this driver cannot take."""
        check_guest_inputs(spec, self.name, self._guest_inputs(), user_data_limit=self.traits["user_data_limit"],
                           user_data_encoded=self.traits["user_data_encoded"])
        key = (spec.credential or {}).get("key")
        if not key:
            return None
        if self.traits["key_types"] and key.split()[0] not in self.traits["key_types"]:
            raise InvalidInput("credential.key: libcloud driver %s imports only %s keys, not %s"
                               % (self.driver_name, " or ".join(self.traits["key_types"]), key.split()[0]),
                               attribute="credential.key")
        if "ex_keyname" in (self.options.get("create_kwargs") or {}):
            raise InvalidInput("a credential and ex_keyname in provider option create_kwargs both name the "
                               "machine's key pair: give one of them", attribute="credential")
        return key

    def _key_pair(self, key, subject):
        """The name of the driver's key pair holding ``key``: ``key_pair_name(key)`` when there, else any pair
        holding the same key (one registered as a credential under a name of its own), else ``key_pair_name(key)``
        imported. Never deleted with a machine."""
        name = key_pair_name(key)
        subject = "%s: key pair '%s'" % (subject, name)
        held = self._public_keys("machine.create", subject)
        if name not in held:
            holding = sorted(n for n, public in held.items() if same_key(public, key))
            if holding:
                return holding[0]
            try:
                self._do("machine.create", subject, "import_key_pair_from_string", name, key)
                return name
            except Conflict:  # imported meanwhile by another request with the same key
                held = self._public_keys("machine.create", subject)
                if name not in held:
                    raise
        if held[name] and not same_key(held[name], key):
            raise Conflict("%s holds another key than the credential's" % subject)
        return name

    def _public_keys(self, operation, subject=None):
        """{key pair name: its public key line, None where the provider does not say}."""
        pairs = {p.name: getattr(p, "public_key", None) for p in self._do(operation, subject, "list_key_pairs")}
        if self.traits["public_keys"] and any(key is None for key in pairs.values()):
            with translating(translate, Exception, operation, subject or self.subject, self.name):
                pairs.update(self.traits["public_keys"](self.driver))
        return pairs

    # -- credentials: the driver's key pairs ------------------------------------------------------
    def list_credentials(self):
        """The driver's key pairs, with their public keys (where the driver leaves them out, through
        ``DRIVER_TRAITS``' public_keys). libcloud keeps no user name nor description with a key pair."""
        self._require("credential.list")
        return sorted((Credential(id=name, name=name, key=(public or "").strip() or None)
                       for name, public in self._public_keys("credential.list").items()), key=lambda c: c.id)

    def create_credential(self, name, key, user_name=None, description=None):
        """The driver's ``import_key_pair_from_string``; it takes a name and a key only, so ``user_name`` and
        ``description`` are refused (InvalidInput naming them) rather than dropped."""
        self._require("credential.create")
        if not isinstance(name, str) or not name.strip() or len(name) > 255:
            raise InvalidInput("credential name: 1 to 255 characters", attribute="name")
        key = public_key(key, attribute="key")
        if self.traits["key_types"] and key.split()[0] not in self.traits["key_types"]:
            raise InvalidInput("key: libcloud driver %s imports only %s keys, not %s"
                               % (self.driver_name, " or ".join(self.traits["key_types"]), key.split()[0]),
                               attribute="key")
        if user_name is not None:
            raise InvalidInput("libcloud keeps no user name with a key pair: leave userName out and give it with "
                               "the machine's credential", attribute="userName")
        if description is not None:
            raise InvalidInput("libcloud keeps no description with a key pair", attribute="description")
        subject = "credential '%s'" % name
        if name in self._public_keys("credential.create", subject):
            raise Conflict("a credential (key pair) named '%s' already exists on provider libcloud (%s)"
                           % (name, self.driver_name))
        self._do("credential.create", subject, "import_key_pair_from_string", name, key)
        return self.get_credential(name)

    def delete_credential(self, credential_id):
        self._require("credential.delete")
        subject = "credential '%s'" % credential_id
        pair = next((p for p in self._do("credential.delete", subject, "list_key_pairs")
                     if p.name == credential_id), None)
        if pair is None:
            raise NotFound("credential '%s' not found on provider libcloud (%s)" % (credential_id, self.driver_name))
        self._do("credential.delete", subject, "delete_key_pair", pair)

    def _require(self, operation):
        if operation not in self.implemented_operations():
            raise Unsupported(self.name, operation, "provider '%s' does not support operation '%s' (libcloud "
                                                    "driver %s lacks %s)"
                              % (self.name, operation, self.driver_name, ", ".join(DRIVER_METHODS[operation])))

    def locations(self):
        if self._locations is None:
            self._locations = []
            if implements(type(self.driver), "list_locations"):
                self._locations = self._do("capabilities", None, "list_locations")
        return [loc.name for loc in self._locations]

    def _location(self, name=None):
        """The NodeLocation new machines and volumes go to: ``name``, else the first one (None if none)."""
        self.locations()
        if name:
            for loc in self._locations:
                if name in (loc.name, str(loc.id)):
                    return loc
            raise InvalidInput("location '%s' is not one of %s" % (name, ", ".join(self.locations()) or "none"),
                               attribute="location")
        return self._locations[0] if self._locations else None

    # -- sizes --------------------------------------------------------------------------------
    def _size_list(self):
        if self._sizes is None:
            self._require("machine_config.list")
            patterns = self.options.get("size_filter") or []
            if isinstance(patterns, str):
                patterns = [patterns]
            sizes = self._do("machine_config.list", None, "list_sizes")
            if patterns:
                sizes = [s for s in sizes if any(fnmatch.fnmatchcase(str(s.id), p) or fnmatch.fnmatchcase(s.name, p)
                                                 for p in patterns)]
            self._sizes = sorted(sizes, key=lambda s: str(s.id))
        return self._sizes

    @staticmethod
    def _config(size):
        cpu = size_cpu(size)
        return MachineConfiguration(id=str(size.id), name=size.name or str(size.id), cpu=cpu,
                                    memory=int(size.ram) * KIB_PER_MIB if size.ram else None,
                                    disks=[{"capacity": int(size.disk) * KIB_PER_GIB}] if size.disk else None)

    def list_machine_configs(self):
        return [self._config(s) for s in self._size_list()]

    def _size(self, size_id):
        if self._size_index is None:
            sizes = self._size_list() if "machine_config.list" in self.implemented_operations() else []
            self._size_index = {str(size.id): size for size in sizes}
        return self._size_index.get(str(size_id))

    # -- nodes --------------------------------------------------------------------------------
    def _nodes(self, operation="machine.list"):
        """Every node that is not gone."""
        self._require("machine.list")
        return [n for n in self._do(operation, None, "list_nodes") if cimi_node_state(n, self.traits) is not None]

    def _node(self, machine_id, operation="machine.get"):
        lister = self.driver.list_nodes
        if explicit(lister, "ex_node_ids"):
            try:
                found = self._do(operation, "machine '%s'" % machine_id, "list_nodes", ex_node_ids=[str(machine_id)])
            except (NotFound, InvalidInput):
                found = []
        else:
            found = self._do(operation, None, "list_nodes")
        for node in found:
            if str(node.id) == str(machine_id) and cimi_node_state(node, self.traits) is not None:
                return node
        raise NotFound("machine '%s' not found on provider libcloud (%s)" % (machine_id, self.driver_name))

    def _metadata(self, node_or_volume):
        return dict(_first(node_or_volume.extra or {}, self.traits["metadata"], {}) or {})

    def _volumes_raw(self):
        if "volume.list" not in self.implemented_operations():
            return []
        return [v for v in self._do("volume.list", None, "list_volumes")
                if VOLUME_STATES.get(str(v.state), states.ERROR) is not None]

    def _attachments(self, volume):
        """[(node id, device)] of a volume."""
        extra = volume.extra or {}
        node = _first(extra, self.traits["attached_node"])
        if node:
            return [(str(node), _first(extra, self.traits["attached_device"]))]
        found = []
        for item in _first(extra, self.traits["attachments"], []) or []:
            if isinstance(item, dict):
                server = item.get("serverId") or item.get("server_id") or item.get("instance_id")
                if server:
                    found.append((str(server), item.get("device")))
        return found

    def _is_root(self, node_root_devices, volume):
        return any(node_root_devices.get(node) == device and device for node, device in self._attachments(volume))

    def _machine(self, node, attached_here, root_devices):
        """A Machine of a node; ``attached_here``: [(volume, device)] attached to it."""
        meta = self._metadata(node)
        size = self._size(_first(node.extra or {}, self.traits["size"]) or getattr(node.size, "id", None))
        disks, attached = [], []
        for volume, device in attached_here:
            if device and device == root_devices.get(str(node.id)):
                disks.append(Disk(capacity=int(volume.size or 0) * KIB_PER_GIB, initialLocation=device))
            else:
                attached.append(MachineVolume(volume={"href": str(volume.id)}, initialLocation=device))
        if not disks and size is not None and size.disk:
            disks.append(Disk(capacity=int(size.disk) * KIB_PER_GIB))
        addresses = [{"address": a} for a in list(node.private_ips or []) + list(node.public_ips or []) if a]
        properties = {k: v for k, v in meta.items() if k != "Name" and not k.startswith(RESERVED_PREFIXES)}
        return Machine(id=str(node.id), name=node.name, description=meta.get(DESCRIPTION_KEY), properties=properties,
                       state=cimi_node_state(node, self.traits), cpu=size_cpu(size) if size else None,
                       memory=int(size.ram) * KIB_PER_MIB if size is not None and size.ram else None,
                       created=node.created_at.strftime("%Y-%m-%dT%H:%M:%SZ") if node.created_at else None,
                       disks=disks, volumes=sorted(attached, key=lambda v: v.initialLocation or ""),
                       interfaces=[NetworkInterface(addresses=addresses)] if addresses else None)

    def _root_devices(self, nodes):
        return {str(n.id): _first(n.extra or {}, self.traits["root_device"]) for n in nodes}

    def _machines(self, nodes):
        by_node = {}
        for volume in self._volumes_raw() if nodes else []:
            for node_id, device in self._attachments(volume):
                by_node.setdefault(node_id, []).append((volume, device))
        roots = self._root_devices(nodes)
        return [self._machine(n, by_node.get(str(n.id), []), roots) for n in nodes]

    def list_machines(self, limit=None, marker=None):
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise InvalidInput("limit must be a positive integer", attribute="limit")
        # Ordered by id, the marker being the last id: stable across calls, even after a delete.
        nodes = sorted(self._nodes(), key=lambda n: str(n.id))
        if marker is not None:
            nodes = [n for n in nodes if str(n.id) > str(marker)]
        page = nodes if limit is None else nodes[:limit]
        more = limit is not None and len(nodes) > limit
        return Page(items=self._machines(page), marker=str(page[-1].id) if more and page else None)

    def get_machine(self, machine_id):
        self._require("machine.get")
        return self._machines([self._node(machine_id)])[0]

    def _act(self, machine_id, action):
        node = self._node(machine_id)
        state = cimi_node_state(node, self.traits)
        states.check_allowed(state, action, "machine '%s'" % (node.name or machine_id))
        return node, "machine '%s'" % (node.name or machine_id)

    def _wait_node(self, machine_id, wanted, operation):
        """Poll until the node is in one of the CIMI states ``wanted`` (None: gone)."""
        deadline = time.monotonic() + self.timeout
        delay = 0.1
        while True:
            try:
                state = cimi_node_state(self._node(machine_id, operation), self.traits)
            except NotFound:
                state = None
            if state in wanted:
                return state
            if time.monotonic() > deadline:
                raise OperationTimeout("machine '%s' still %s after %ss (%s)" % (machine_id, state, self.timeout,
                                                                                 operation))
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _pick_size(self, config):
        sizes = self._size_list()
        for ref in (config.get("id"), config.get("name")):
            for size in sizes:
                if ref and ref in (str(size.id), size.name):
                    return size
        configs = [self._config(s) for s in sizes if size_cpu(s) and s.ram]
        chosen = ec2.pick_type(configs, config.cpu, config.memory)
        if chosen is None:
            raise InvalidInput("no size of libcloud driver %s offers %d vCPU(s) and %d MiB"
                               % (self.driver_name, config.cpu, -(-config.memory // KIB_PER_MIB)),
                               attribute="machineConfig")
        return next(s for s in sizes if str(s.id) == chosen.id)

    # -- resize (OpenStack's driver: Nova's resize and its confirmation) -----------------------------
    def _resize_size(self, config):
        """The size a resize to ``config`` gives: the one named by its id/name, else one of exactly its cpu and
        memory; else InvalidInput listing the nearest."""
        sizes = [s for s in self._size_list() if size_cpu(s) and s.ram]
        for ref in (config.get("id"), config.get("name")):
            named = [s for s in sizes if ref and ref in (str(s.id), s.name)]
            if named:
                return named[0]
        if not isinstance(config.cpu, int) or not isinstance(config.memory, int):
            raise InvalidInput("machineConfig needs cpu and memory (or the id of a size)", attribute="machineConfig")
        configs = [self._config(s) for s in sizes]
        exact = [c for c in configs if c.cpu == config.cpu and c.memory == config.memory]
        if not exact:
            raise InvalidInput("no size of libcloud driver %s has exactly %d vCPU(s) and %d MiB; nearest: %s"
                               % (self.driver_name, config.cpu, config.memory // KIB_PER_MIB,
                                  ec2.nearest_configs(configs, config.cpu, config.memory) or "none"),
                               attribute="machineConfig")
        chosen = min(exact, key=lambda c: (c.disks[0]["capacity"] if c.disks else 0, c.name or "", c.id))
        return next(s for s in sizes if str(s.id) == chosen.id)

    def resize_needs_stop(self, machine, config):
        """Where the driver's provider resizes live (``resize_live``: Nova) only a machine neither running nor
        stopped needs a stop; elsewhere any machine that is not stopped."""
        if self.traits["resize_live"]:
            return machine.state not in (states.STARTED, states.STOPPED)
        return super().resize_needs_stop(machine, config)

    def resize_machine(self, machine_id, config):
        """``ex_resize`` to the size of ``config``, waited for until the node awaits confirmation
        (``resize_pending``), then ``ex_confirm_resize``, waited for until it is back in its state. The size it
        has already: nothing to do."""
        self._require("machine.resize")
        machine = self.get_machine(machine_id)
        size = self._resize_size(config)
        if (machine.cpu, machine.memory) == (size_cpu(size), int(size.ram) * KIB_PER_MIB):
            return machine
        subject = "machine '%s'" % (machine.name or machine_id)
        if self.resize_needs_stop(machine, config):
            raise Conflict("%s is %s: stop it first to resize it" % (subject, machine.state))
        self._do("machine.resize", subject, "ex_resize", self._node(machine_id, "machine.resize"), size)
        key, value = self.traits["resize_pending"] or (None, None)
        deadline = time.monotonic() + self.timeout
        while key is not None:
            extra = self._node(machine_id, "machine.resize").extra or {}
            if extra.get(key) == value and not extra.get("task_state"):
                break
            if time.monotonic() > deadline:
                raise OperationTimeout("%s (machine.resize): still %s=%s after %ss"
                                       % (subject, key, extra.get(key), self.timeout))
            time.sleep(0.5)
        self._do("machine.resize", subject, "ex_confirm_resize", self._node(machine_id, "machine.resize"))
        self._wait_node(machine_id, (machine.state,), "machine.resize")
        return self.get_machine(machine_id)

    def _image_obj(self, ref, operation):
        if implements(type(self.driver), "get_image"):
            try:
                return self.driver.get_image(str(ref))
            except (IndexError, KeyError):
                pass  # some drivers (EC2) index an empty reply: no such image
            except Exception as exc:  # noqa: BLE001 - drivers raise anything; translate maps it
                error = translate(exc, operation, "machine image '%s'" % ref, self.name)
                if not isinstance(error, (NotFound, InvalidInput)):
                    raise error from None
        for image in self._images_raw(operation):
            if ref in (str(image.id), image.name):
                return image
        raise NotFound("machine image '%s' not found on provider libcloud (%s)" % (ref, self.driver_name))

    def create_machine(self, spec):
        self._require("machine.create")
        spec.validate()
        ec2.check_properties(spec.properties)
        subject = "machine '%s'" % spec.name
        create = self.driver.create_node
        metadata = dict(spec.properties or {})
        if spec.description:
            metadata[DESCRIPTION_KEY] = spec.description
        if metadata and not accepts(create, "ex_metadata"):
            raise InvalidInput("libcloud driver %s cannot store a description or properties" % self.driver_name,
                               attribute="properties")
        key = self._check_guest_inputs(spec)
        if spec.networks:
            raise InvalidInput("the libcloud provider takes no networks in a request: use provider option "
                               "create_kwargs", attribute="networks")
        if spec.credential and spec.credential.get("username") and accepts(create, "ex_metadata"):
            metadata[USER_PROPERTY] = spec.credential["username"]
        nodes = self._do("machine.create", None, "list_nodes")
        if any(n.name == spec.name and cimi_node_state(n, self.traits) is not None for n in nodes):
            raise Conflict("a machine named '%s' already exists on provider libcloud (%s)"
                           % (spec.name, self.driver_name))
        image_ref = spec.image or self.options.get("image")
        if not image_ref:
            raise InvalidInput("the libcloud provider needs an image: name one in the request or set provider "
                               "option image", attribute="machineImage")
        image = self._image_obj(image_ref, "machine.create")
        size = self._pick_size(spec.config)
        volumes = [self._volume_obj(v) for v in spec.volumes]
        kwargs = dict(name=spec.name, size=size, image=image)
        location = None
        if explicit(create, "location"):  # machines go where new volumes go unless told otherwise
            location = self._location(spec.location)
            if location is not None:
                kwargs["location"] = location
        elif spec.location:
            if not self.traits["zone_kwarg"]:
                raise InvalidInput("libcloud driver %s takes no location" % self.driver_name, attribute="location")
            location = self._location(spec.location)
            kwargs[self.traits["zone_kwarg"]] = location.name
        if metadata:
            kwargs["ex_metadata"] = metadata
        if spec.user_data:
            kwargs["ex_userdata"] = spec.user_data
        kwargs.update(self.options.get("create_kwargs") or {})
        if key:
            kwargs["ex_keyname"] = self._key_pair(key, subject)
        if explicit(create, "ex_clienttoken"):
            request = {"name": spec.name, "size": str(size.id), "image": str(image.id),
                       "location": getattr(location, "name", None), "metadata": metadata,
                       "user_data": spec.user_data, "volumes": spec.volumes, "initial_state": spec.initial_state}
            if key:
                request["key_name"] = kwargs["ex_keyname"]
            spent = {n.extra.get("client_token") for n in nodes
                     if n.name == spec.name and cimi_node_state(n, self.traits) in (None, states.DELETING)}
            generation = 0
            while ec2.client_token(request, generation) in spent:
                generation += 1
            kwargs["ex_clienttoken"] = ec2.client_token(request, generation)
        node = self._do("machine.create", subject, "create_node", **kwargs)
        try:
            self._wait_node(node.id, (states.STARTED, states.STOPPED), "machine.create")
            for volume in volumes:
                self._attach(node, volume, None, subject)
            if spec.initial_state == states.STOPPED and cimi_node_state(self._node(node.id), self.traits) \
                    != states.STOPPED:
                self._require("machine.stop")
                self._do("machine.create", subject, "stop_node", self._node(node.id))
                self._wait_node(node.id, (states.STOPPED,), "machine.create")
        except BaseException:
            try:
                self._do("machine.create", subject, "destroy_node", node)
            except SiroccoError:
                pass  # keep the original error
            raise
        return self.get_machine(node.id)

    def start_machine(self, machine_id):
        self._require("machine.start")
        node, subject = self._act(machine_id, states.START)
        state = cimi_node_state(node, self.traits)
        method = {states.PAUSED: "ex_unpause_node", states.SUSPENDED: "ex_resume_node"}.get(state, "start_node")
        self._do("machine.start", subject, method, node)
        return self.get_machine(machine_id)

    def stop_machine(self, machine_id, force=False):
        """Stop (libcloud's stop_node has no force: the provider decides how hard)."""
        self._require("machine.stop")
        node, subject = self._act(machine_id, states.STOP)
        state = cimi_node_state(node, self.traits)
        resume = {states.PAUSED: "ex_unpause_node", states.SUSPENDED: "ex_resume_node"}.get(state)
        if resume and self.traits["stop_resumes_first"]:
            # Nova stops only active servers: bring a paused or suspended one back first.
            self._do("machine.stop", subject, resume, node)
            self.wait_for_machine(machine_id, states.STARTED)
            node = self._node(machine_id)
        self._do("machine.stop", subject, "stop_node", node)
        return self.get_machine(machine_id)

    def restart_machine(self, machine_id, force=False):
        self._require("machine.restart")
        node, subject = self._act(machine_id, states.RESTART)
        method = "start_node" if cimi_node_state(node, self.traits) == states.STOPPED else "reboot_node"
        self._do("machine.restart", subject, method, node)
        return self.get_machine(machine_id)

    def pause_machine(self, machine_id):
        self._require("machine.pause")
        node, subject = self._act(machine_id, states.PAUSE)
        self._do("machine.pause", subject, "ex_pause_node", node)
        return self.get_machine(machine_id)

    def suspend_machine(self, machine_id):
        self._require("machine.suspend")
        node, subject = self._act(machine_id, states.SUSPEND)
        self._do("machine.suspend", subject, "ex_suspend_node", node)
        return self.get_machine(machine_id)

    def delete_machine(self, machine_id):
        self._require("machine.delete")
        node, subject = self._act(machine_id, states.DELETE)
        self._do("machine.delete", subject, "destroy_node", node)
        self._wait_node(machine_id, (None,), "machine.delete")

    def capture_machine(self, machine_id, name, description=None):
        self._require("machine.capture")
        if not name or not isinstance(name, str):
            raise InvalidInput("machine image name must be a non-empty string", attribute="name")
        node, subject = self._act(machine_id, states.CAPTURE)
        if any(i.name == name for i in self._images_raw("machine.capture")):
            raise Conflict("a machine image named '%s' already exists on provider libcloud (%s)"
                           % (name, self.driver_name))
        kwargs = {"description": description} if description and accepts(self.driver.create_image, "description") \
            else {}
        image = self._do("machine.capture", subject, "create_image", node, name, **kwargs)
        deadline = time.monotonic() + self.timeout
        while True:
            current = self._image_obj(str(image.id), "machine.capture")
            state = self._image_state(current)
            if state != states.CREATING:
                break
            if time.monotonic() > deadline:
                raise OperationTimeout("machine image '%s' still %s after %ss" % (name, state, self.timeout))
            time.sleep(0.5)
        return self._image(current)

    # -- images -------------------------------------------------------------------------------
    def _images_raw(self, operation="machine_image.list"):
        self._require("machine_image.list")
        kwargs = dict(self.traits["list_images"], **(self.options.get("list_images_kwargs") or {}))
        return [i for i in self._do(operation, None, "list_images", **kwargs) if self._image_state(i) is not None]

    @staticmethod
    def _image_state(image):
        raw = str((image.extra or {}).get("state") or (image.extra or {}).get("status") or "available").lower()
        return IMAGE_STATES.get(raw, "AVAILABLE")

    def _image(self, image):
        extra = image.extra or {}
        return MachineImage(id=str(image.id), name=image.name or str(image.id),
                            description=extra.get("description") or None, state=self._image_state(image),
                            type="IMAGE", imageLocation=extra.get("image_location") or "libcloud://%s/%s"
                            % (self.driver_name, image.id))

    def list_machine_images(self):
        return sorted((self._image(i) for i in self._images_raw()), key=lambda i: (i.name, i.id))

    def get_machine_image(self, ref):
        self._require("machine_image.list")
        return self._image(self._image_obj(str(ref), "machine_image.get"))

    def delete_machine_image(self, image_id):
        self._require("machine_image.delete")
        image = self._image_obj(str(image_id), "machine_image.delete")
        users = sorted(n.name or str(n.id) for n in self._nodes("machine_image.delete")
                       if str(_first(n.extra or {}, self.traits["image"]) or getattr(n.image, "id", ""))
                       == str(image.id))
        if users:
            raise Conflict("machine image '%s' is the image of machine(s) %s; delete those machines first"
                           % (image.name or image_id, ", ".join(users)))
        self._do("machine_image.delete", "machine image '%s'" % (image.name or image_id), "delete_image", image)

    # -- volumes ------------------------------------------------------------------------------
    def _volume_obj(self, ref):
        for volume in self._volumes_raw():
            if str(volume.id) == str(ref):
                return volume
        raise NotFound("volume '%s' not found on provider libcloud (%s)" % (ref, self.driver_name))

    def _volume(self, volume):
        meta = self._metadata(volume)
        return Volume(id=str(volume.id), name=volume.name or str(volume.id), description=meta.get(DESCRIPTION_KEY),
                      state=VOLUME_STATES.get(str(volume.state), states.ERROR),
                      capacity=int(volume.size or 0) * KIB_PER_GIB, bootable=False,
                      attachedTo=[{"href": node} for node, _device in self._attachments(volume)])

    def list_volumes(self):
        self._require("volume.list")
        volumes = self._volumes_raw()
        nodes = self._nodes("volume.list") if any(self._attachments(v) for v in volumes) else []
        roots = self._root_devices(nodes)
        return sorted((self._volume(v) for v in volumes if not self._is_root(roots, v)),
                      key=lambda v: (v.name or "", v.id))

    def create_volume(self, name, capacity_kb, description=None, properties=None, volume_type=None):
        """``volume_type`` goes to the driver's ``ex_volume_type`` where its create_volume takes one (checked by
        ``volume_types`` where the driver's traits have it: EC2's EBS types, io1/io2 with their minimum IOPS),
        else it is refused (InvalidInput naming ``type``)."""
        self._require("volume.create")
        if not name or not isinstance(name, str):
            raise InvalidInput("volume name must be a non-empty string", attribute="name")
        if isinstance(capacity_kb, bool) or not isinstance(capacity_kb, int) or capacity_kb < 1:
            raise InvalidInput("volume capacity must be a positive number of KB", attribute="capacity")
        if description or properties:
            raise InvalidInput("the libcloud provider keeps no description or properties of volumes",
                               attribute="properties" if properties else "description")
        if any(v.name == name for v in self._volumes_raw()):
            raise Conflict("a volume named '%s' already exists on provider libcloud (%s)" % (name, self.driver_name))
        kwargs = self._volume_type_kwargs(volume_type)
        location = self._location()
        if location is not None and self.traits["volume_location"] and accepts(self.driver.create_volume, "location"):
            kwargs["location"] = location
        volume = self._do("volume.create", "volume '%s'" % name, "create_volume",
                          max(1, -(-capacity_kb // KIB_PER_GIB)), name, **kwargs)
        self._wait_volume(volume.id, ("AVAILABLE",), "volume.create")
        return self._volume(self._volume_obj(volume.id))

    def _volume_type_kwargs(self, volume_type):
        if volume_type is None:
            return {}
        if not explicit(self.driver.create_volume, "ex_volume_type"):
            raise InvalidInput("libcloud driver %s creates volumes of one type only" % self.driver_name,
                               attribute="type")
        if self.traits["volume_types"]:
            volume_type = self.traits["volume_types"](volume_type)
        elif not isinstance(volume_type, str) or not volume_type:
            raise InvalidInput("volume type must be a non-empty string", attribute="type")
        kwargs = {"ex_volume_type": volume_type}
        if volume_type in ("io1", "io2") and explicit(self.driver.create_volume, "ex_iops"):
            kwargs["ex_iops"] = ec2.MIN_IOPS
        return kwargs

    def _wait_volume(self, volume_id, wanted, operation, attached_to=None):
        deadline = time.monotonic() + self.timeout
        delay = 0.1
        while True:
            try:
                volume = self._volume_obj(volume_id)
                state = VOLUME_STATES.get(str(volume.state), states.ERROR)
                nodes = [n for n, _d in self._attachments(volume)]
            except NotFound:
                state, nodes = None, []
            if state in wanted and (attached_to is None or (attached_to in nodes if attached_to else not nodes)):
                return
            if time.monotonic() > deadline:
                raise OperationTimeout("volume '%s' still %s after %ss (%s)" % (volume_id, state, self.timeout,
                                                                                operation))
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def delete_volume(self, volume_id):
        self._require("volume.delete")
        volume = self._volume_obj(volume_id)
        users = [n for n, _d in self._attachments(volume)]
        if users:
            raise Conflict("volume '%s' is attached to machine(s) %s; detach it first"
                           % (volume.name or volume_id, ", ".join(sorted(users))))
        self._do("volume.delete", "volume '%s'" % (volume.name or volume_id), "destroy_volume", volume)
        self._wait_volume(volume_id, (None,), "volume.delete")

    def _attach(self, node, volume, initial_location, subject):
        device = initial_location
        if self.traits["needs_device"] or initial_location:
            used = {d for v in self._volumes_raw() for n, d in self._attachments(v) if n == str(node.id)}
            used.add(_first(node.extra or {}, self.traits["root_device"]))
            device = ec2.device_name(initial_location, used)
        self._do("volume.attach", subject, "attach_volume", node, volume, device)
        self._wait_volume(volume.id, ("AVAILABLE",), "volume.attach", attached_to=str(node.id))

    def _volume_change(self, machine_id, volume_id, verb):
        node = self._node(machine_id)
        state = cimi_node_state(node, self.traits)
        if state not in (states.STOPPED, states.STARTED):
            raise Conflict("cannot %s a volume %s machine '%s' in state %s"
                           % (verb, "to" if verb == "attach" else "from", node.name or machine_id, state))
        volume = self._volume_obj(volume_id)
        return node, volume, [n for n, _d in self._attachments(volume)], "machine '%s'" % (node.name or machine_id)

    def attach_volume(self, machine_id, volume_id, initial_location=None):
        self._require("volume.attach")
        node, volume, users, subject = self._volume_change(machine_id, volume_id, "attach")
        if str(node.id) in users:
            raise Conflict("volume '%s' is already attached to %s" % (volume_id, subject))
        if users:
            raise Conflict("volume '%s' is attached to machine(s) %s" % (volume_id, ", ".join(users)))
        self._attach(node, volume, initial_location, subject)
        return self.get_machine(machine_id)

    def detach_volume(self, machine_id, volume_id):
        self._require("volume.detach")
        node, volume, users, subject = self._volume_change(machine_id, volume_id, "detach")
        if str(node.id) not in users:
            raise Conflict("volume '%s' is not attached to %s" % (volume_id, subject))
        self._do("volume.detach", subject, "detach_volume", volume)
        self._wait_volume(volume_id, ("AVAILABLE",), "volume.detach", attached_to="")
        return self.get_machine(machine_id)


__all__ = ["LibcloudConnector", "HAS_LIBCLOUD", "NODE_STATES", "DRIVER_METHODS", "DRIVER_TRAITS",
           "driver_operations", "implements", "only_raises_not_implemented", "translate"]

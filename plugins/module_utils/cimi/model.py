# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CIMI resource model (DSP0263 2.0.0), each type declared once.

A class lists its attributes as ``Attr`` descriptors; JSON in (with validation
that names the offending attribute), JSON out and ResourceMetadata all derive
from that list. Table numbers refer to the specification.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import (
    ANY,
    BOOLEAN,
    DATETIME,
    INTEGER,
    MAP,
    REF,
    STRING,
    Attr,
    type_uri,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

if TYPE_CHECKING:
    from typing import Self

# what a client may ask for (Table 12's cpu and memory, Table 23's userData, a disk's capacity): beyond any
# hypervisor here, and bounded so that a number stays a number everywhere it is stored
MAX_CPU = 4096
MAX_MEMORY_KIB = 2 ** 34  # 16 TiB
MAX_CAPACITY_KB = 2 ** 40  # 1 PB
MAX_USER_DATA = 65536  # characters: what OpenStack's metadata service takes; EC2 takes 16 KB

CPU_ARCHS = ("68000", "Alpha", "ARM", "Itanium", "MIPS", "PA_RISC", "POWER", "PowerPC",
             "x86", "x86_64", "z/Architecture", "SPARC", "aarch64")


class Structure:
    """A typed bag of attributes, serialised by wire name."""

    type_name: str | None = None
    # wire name -> Attr, every attribute of the class and its bases (set for each subclass)
    attributes: ClassVar[dict[str, Attr]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        attrs = {}
        for klass in reversed(cls.__mro__):
            for value in vars(klass).values():
                if isinstance(value, Attr):
                    attrs[value.wire] = value
        cls.attributes = attrs

    def __init__(self, **values: Any) -> None:
        self._values: dict[str, Any] = {}
        by_name = {a.name: a for a in self.attributes.values()}
        for key, value in values.items():
            attr = by_name.get(key) or self.attributes.get(key)
            if attr is None:
                raise TypeError("%s has no attribute %r" % (type(self).__name__, key))
            if value is not None:
                self._values[attr.wire] = value

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.to_json() == other.to_json()

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self._values)

    def get(self, wire: str, default: Any = None) -> Any:
        return self._values.get(wire, default)

    @classmethod
    def from_json(cls, doc: Any, path: str | None = None, partial: bool = False, trusted: bool = False) -> Self:
        """Validate a JSON document and every error names the attribute's path.

        From a client (``trusted=False``) read-only attributes are dropped and
        unknown ones refused; from a provider (``trusted=True``, e.g. another
        CIMI endpoint's reply) read-only ones are kept and extensions ignored."""
        path = path or cls.type_name or cls.__name__
        if not isinstance(doc, dict):
            raise InvalidInput("%s: expected a JSON object" % path, attribute=path)
        expected = type_uri(cls.type_name) if cls.type_name else None
        uri = doc.get("resourceURI")
        if uri is not None and expected and uri != expected:
            raise InvalidInput("%s.resourceURI: expected '%s', got '%s'" % (path, expected, uri),
                               attribute="resourceURI")
        obj = cls()
        for key, value in doc.items():
            if key == "resourceURI":
                continue
            attr = cls.attributes.get(key)
            if attr is None:
                if trusted:
                    continue
                raise InvalidInput("%s: unknown attribute '%s'" % (path, key), attribute=key)
            if (attr.read_only and not trusted) or value is None:
                continue
            parsed = attr.parse(value, "%s.%s" % (path, key), trusted)
            if parsed is not None:  # an unexpanded collection reference from a provider
                obj._values[key] = parsed
        if not partial and not trusted:
            for wire, attr in cls.attributes.items():
                if attr.required and not attr.read_only and wire not in obj._values:
                    raise InvalidInput("%s.%s: required attribute is missing" % (path, wire), attribute=wire)
        return obj

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.type_name and isinstance(self, Resource):
            out["resourceURI"] = type_uri(self.type_name)
        for wire, attr in self.attributes.items():
            value = self._values.get(wire)
            if value is None or attr.write_only or (value == {} and attr.kind == MAP) or value == []:
                continue
            out[wire] = attr.dump(value)
        return out


class Resource(Structure):
    """A CIMI resource: the common attributes of Table 5."""

    collection_key: str | None = None  # the Cloud Entry Point's name for this type's collection
    entries_key: str | None = None  # the name of its collection's entries, when not collection_key

    id = Attr("id", STRING, read_only=True, doc="URI of the resource")
    name = Attr("name", STRING, max_length=255, doc="human-readable name")
    description = Attr("description", STRING)
    created = Attr("created", DATETIME, read_only=True)
    updated = Attr("updated", DATETIME, read_only=True)
    properties = Attr("properties", MAP, doc="free-form string pairs")
    operations = Attr("operations", ANY, read_only=True, many=True, doc="links {rel, href}")


# -- embedded structures --------------------------------------------------

class Disk(Structure):
    type_name = "Disk"
    capacity = Attr("capacity", INTEGER, required=True, minimum=0, maximum=MAX_CAPACITY_KB, doc="kilobytes")
    format = Attr("format", STRING)
    initialLocation = Attr("initialLocation", STRING)


class Sample(Structure):
    type_name = "Sample"
    timestamp = Attr("timestamp", DATETIME, required=True)
    value = Attr("value", STRING, required=True)


class MachineVolume(Structure):
    """Item of a template's ``volumes`` list (and of a Machine's located volumes)."""
    type_name = "locatedVolume"
    initialLocation = Attr("initialLocation", STRING)
    volume = Attr("volume", REF, required=True)
    credential = Attr("credential", REF)


class MachineVolumeTemplate(Structure):
    type_name = "volumeTemplate"
    initialLocation = Attr("initialLocation", STRING)
    volumeTemplate = Attr("volumeTemplate", REF, required=True)


class NetworkInterface(Structure):
    type_name = "NetworkInterface"
    network = Attr("network", REF)
    state = Attr("state", STRING, read_only=True)
    macAddress = Attr("macAddress", STRING)
    addresses = Attr("addresses", ANY, many=True)
    networkType = Attr("networkType", STRING)
    mtu = Attr("mtu", INTEGER, maximum=65535)


# -- machines (5.14) ------------------------------------------------------

class MachineConfiguration(Resource):
    type_name = "MachineConfiguration"
    collection_key = "machineConfigs"
    cpu = Attr("cpu", INTEGER, required=True, minimum=1, maximum=MAX_CPU)
    memory = Attr("memory", INTEGER, required=True, minimum=1, maximum=MAX_MEMORY_KIB, doc="kibibytes")
    disks = Attr("disks", Disk, many=True)
    cpuArch = Attr("cpuArch", STRING, choices=CPU_ARCHS)
    cpuSpeed = Attr("cpuSpeed", INTEGER, minimum=1, maximum=1_000_000, doc="megahertz")


class MachineImage(Resource):
    type_name = "MachineImage"
    collection_key = "machineImages"
    state = Attr("state", STRING, read_only=True, choices=states.IMAGE_STATES)
    type = Attr("type", STRING, choices=("IMAGE", "SNAPSHOT", "PARTIAL_SNAPSHOT"))
    imageLocation = Attr("imageLocation", STRING, doc="where the image lives, or the machine to capture")
    relatedImage = Attr("relatedImage", REF)


class Credential(Resource):
    type_name = "Credential"
    collection_key = "credentials"
    parameters = Attr("parameters", MAP, doc="provider-specific attributes (Table 22), served back as given: "
                                             "never a secret (the password has its own write-only attribute)")
    userName = Attr("userName", STRING, doc="the user the credential logs in as (Table 23)")
    password = Attr("password", STRING, write_only=True)
    key = Attr("key", STRING, max_length=16384, doc="SSH public key: one OpenSSH line <type> <base64> [comment]")


class CredentialTemplate(Resource):
    """What Credentials are made from (5.14.11, Table 25), with the Credential attributes of Tables 23 and 24;
    its password, like a Credential's, is never served."""
    type_name = "CredentialTemplate"
    collection_key = "credentialTemplates"
    parameters = Attr("parameters", MAP, doc="copied into each Credential made from the template (Table 25)")
    userName = Attr("userName", STRING, doc="the user the credentials log in as (Table 23)")
    password = Attr("password", STRING, write_only=True)
    key = Attr("key", STRING, max_length=16384, doc="SSH public key: one OpenSSH line <type> <base64> [comment]")


class CredentialCreate(Resource):
    """A Credential's creation (4.2.1.1, 5.14.10.1): its credentialTemplate by reference or by value."""
    type_name = "CredentialCreate"
    credentialTemplate = Attr("credentialTemplate", REF, of=CredentialTemplate, required=True)


class MachineTemplate(Resource):
    type_name = "MachineTemplate"
    collection_key = "machineTemplates"
    initialState = Attr("initialState", STRING, choices=states.INITIAL_STATES)
    machineConfig = Attr("machineConfig", REF, of=MachineConfiguration)
    machineImage = Attr("machineImage", REF, of=MachineImage)
    credential = Attr("credential", REF, of=Credential)
    volumes = Attr("volumes", MachineVolume, many=True)
    volumeTemplates = Attr("volumeTemplates", MachineVolumeTemplate, many=True)
    interfaceTemplates = Attr("interfaceTemplates", ANY, many=True)
    userData = Attr("userData", STRING, max_length=MAX_USER_DATA)
    meterTemplates = Attr("meterTemplates", ANY, many=True)
    eventLogTemplate = Attr("eventLogTemplate", REF)


class MachineCreate(Resource):
    type_name = "MachineCreate"
    machineTemplate = Attr("machineTemplate", REF, of=MachineTemplate, required=True)


class Machine(Resource):
    type_name = "Machine"
    collection_key = "machines"
    state = Attr("state", STRING, read_only=True, choices=states.MACHINE_STATES)
    cpu = Attr("cpu", INTEGER, read_only=True)
    memory = Attr("memory", INTEGER, read_only=True, doc="kibibytes")
    disks = Attr("disks", Disk, many=True, read_only=True, collection=("Disk", "disks"))
    cpuArch = Attr("cpuArch", STRING, read_only=True)
    cpuSpeed = Attr("cpuSpeed", INTEGER, read_only=True, doc="megahertz")
    volumes = Attr("volumes", MachineVolume, many=True, read_only=True, collection=("locatedVolume", "locatedVolumes"))
    interfaces = Attr("interfaces", NetworkInterface, many=True, read_only=True,
                      collection=("NetworkInterface", "networkInterfaces"))
    latestSnapshot = Attr("latestSnapshot", REF, read_only=True)
    snapshots = Attr("snapshots", REF, many=True, read_only=True, collection=("MachineImage", "machineImages"))
    meters = Attr("meters", REF, many=True, read_only=True, collection=("Meter", "meters"))
    eventLog = Attr("eventLog", REF, read_only=True)


# -- volumes (5.15) -------------------------------------------------------

class VolumeConfiguration(Resource):
    type_name = "VolumeConfiguration"
    collection_key = "volumeConfigs"
    type = Attr("type", STRING)
    format = Attr("format", STRING)
    capacity = Attr("capacity", INTEGER, required=True, minimum=1, maximum=MAX_CAPACITY_KB, doc="kilobytes")


class VolumeImage(Resource):
    type_name = "VolumeImage"
    collection_key = "volumeImages"
    state = Attr("state", STRING, read_only=True, choices=states.IMAGE_STATES)
    imageLocation = Attr("imageLocation", STRING)
    bootable = Attr("bootable", BOOLEAN)


class VolumeTemplate(Resource):
    type_name = "VolumeTemplate"
    collection_key = "volumeTemplates"
    volumeConfig = Attr("volumeConfig", REF, of=VolumeConfiguration, required=True)
    volumeImage = Attr("volumeImage", REF, of=VolumeImage)
    meterTemplates = Attr("meterTemplates", ANY, many=True)
    eventLogTemplate = Attr("eventLogTemplate", REF)


class VolumeCreate(Resource):
    type_name = "VolumeCreate"
    volumeTemplate = Attr("volumeTemplate", REF, of=VolumeTemplate, required=True)


class Volume(Resource):
    type_name = "Volume"
    collection_key = "volumes"
    state = Attr("state", STRING, read_only=True, choices=states.VOLUME_STATES)
    type = Attr("type", STRING, read_only=True)
    capacity = Attr("capacity", INTEGER, read_only=True, doc="kilobytes")
    bootable = Attr("bootable", BOOLEAN, read_only=True)
    images = Attr("images", REF, many=True, read_only=True)
    meters = Attr("meters", REF, many=True, read_only=True)
    eventLog = Attr("eventLog", REF, read_only=True)
    attachedTo = Attr("attachedTo", REF, many=True, read_only=True, extension=True,
                      doc="machines using it (Sirocco extension)")


# -- networks (5.16) ------------------------------------------------------

class NetworkConfiguration(Resource):
    """Sirocco extension: DSP0263 2.0.0 has no NetworkConfiguration (CIMI 1.x had one). Kept so that clients
    and CMDBs of older siroccods keep working: a NetworkTemplate's networkConfig (by reference or by value)
    carries what the hosts' connectors set up."""
    type_name = "NetworkConfiguration"
    collection_key = "networkConfigs"
    networkType = Attr("networkType", STRING, extension=True, doc="recorded on the Network (Sirocco extension)")
    mtu = Attr("mtu", INTEGER, minimum=1, maximum=65535, extension=True,
               doc="recorded on the Network (Sirocco extension)")
    classOfService = Attr("classOfService", STRING, extension=True, doc="recorded on the Network (Sirocco extension)")
    # what the host's connector sets up (create_network's cidr and dhcp)
    cidr = Attr("cidr", STRING, max_length=18, extension=True,
                doc="IPv4 network, e.g. 10.20.0.0/24 (Sirocco extension)")
    dhcp = Attr("dhcp", BOOLEAN, extension=True, doc="whether the network serves DHCP (Sirocco extension)")


class NetworkTemplate(Resource):
    """Table 31; segments, services and subnetworks (each by reference, or made from templates) name resources
    a provider may not have: siroccod has none and refuses them (400 naming the attribute)."""
    type_name = "NetworkTemplate"
    collection_key = "networkTemplates"
    initialState = Attr("initialState", STRING, choices=states.INITIAL_STATES,
                        doc="the new Network's state (Network ResourceMetadata: InitialStates, DefaultInitialState)")
    segments = Attr("segments", REF, many=True, doc="ProtocolSegments to put into the new Network")
    segmentTemplates = Attr("segmentTemplates", REF, many=True, doc="ProtocolSegmentTemplates to make segments from")
    services = Attr("services", REF, many=True, doc="NetworkServices to put into the new Network")
    serviceTemplates = Attr("serviceTemplates", REF, many=True, doc="NetworkServiceTemplates to make services from")
    subnetworks = Attr("subnetworks", REF, many=True, doc="Networks to put into the new Network's subnetworks")
    subnetworkTemplates = Attr("subnetworkTemplates", REF, many=True, doc="NetworkTemplates to make subnetworks from")
    meterTemplates = Attr("meterTemplates", ANY, many=True)
    eventLogTemplate = Attr("eventLogTemplate", REF)
    networkConfig = Attr("networkConfig", REF, of=NetworkConfiguration, extension=True,
                         doc="the Network's cidr and dhcp (and networkType, mtu, classOfService), by reference or by "
                             "value (Sirocco extension, from CIMI 1.x: optional)")


class NetworkCreate(Resource):
    type_name = "NetworkCreate"
    networkTemplate = Attr("networkTemplate", REF, of=NetworkTemplate, required=True)


class Network(Resource):
    type_name = "Network"
    collection_key = "networks"
    state = Attr("state", STRING, read_only=True, choices=states.NETWORK_STATES)
    # from its template's networkConfig (Sirocco extensions: DSP0263 2.0.0's Network has none of them)
    networkType = Attr("networkType", STRING, read_only=True, extension=True, doc="Sirocco extension")
    mtu = Attr("mtu", INTEGER, read_only=True, extension=True, doc="Sirocco extension")
    classOfService = Attr("classOfService", STRING, read_only=True, extension=True, doc="Sirocco extension")
    cidr = Attr("cidr", STRING, read_only=True, extension=True, doc="IPv4 network (Sirocco extension)")
    dhcp = Attr("dhcp", BOOLEAN, read_only=True, extension=True, doc="whether it serves DHCP (Sirocco extension)")
    meters = Attr("meters", REF, many=True, read_only=True)
    eventLog = Attr("eventLog", REF, read_only=True)


# -- systems (5.13) -------------------------------------------------------

# Table 14: a component descriptor holds its component's template under the attribute named for the template's
# type, first letter in lowercase (a Machine's under machineTemplate): component type URI -> that attribute
COMPONENT_TEMPLATES = {type_uri(t): t[0].lower() + t[1:] + "Template"
                       for t in ("Machine", "Volume", "Network", "Credential", "System")}
# where siroccod kept a component's template before it followed Table 14: read from stored or served templates
LEGACY_COMPONENT = "component"


def spec_descriptor(doc: Any) -> Any:
    """A component descriptor in Table 14's shape: one in siroccod's former shape (its template under
    ``component``) gets it under the attribute its type names (machineTemplate, ...); others as they are."""
    if not isinstance(doc, dict) or LEGACY_COMPONENT not in doc or doc.get("type") not in COMPONENT_TEMPLATES:
        return doc
    out = {k: v for k, v in doc.items() if k != LEGACY_COMPONENT}
    out.setdefault(COMPONENT_TEMPLATES[doc["type"]], doc[LEGACY_COMPONENT])
    return out


class ComponentDescriptor(Structure):
    """Item of a SystemTemplate's componentDescriptors (Table 14): a component of the System, its template by
    reference or by value under the attribute named for it, made ``quantity`` times (named ``name``, with a
    sequence number appended when there are several)."""
    type_name = "ComponentDescriptor"
    name = Attr("name", STRING, max_length=255, doc="the name of the component made (numbered when quantity >= 2)")
    description = Attr("description", STRING, doc="the description of the component made")
    properties = Attr("properties", MAP, doc="the properties of the component made")
    type = Attr("type", STRING, required=True,
                doc="type URI of the component, e.g. http://schemas.dmtf.org/cimi/2/Machine")
    machineTemplate = Attr("machineTemplate", REF, of=MachineTemplate, doc="a Machine component's template")
    volumeTemplate = Attr("volumeTemplate", REF, of=VolumeTemplate, doc="a Volume component's template")
    networkTemplate = Attr("networkTemplate", REF, of=NetworkTemplate, doc="a Network component's template")
    # Table 14's other component templates: declared so that they are read, though siroccod creates neither
    credentialTemplate = Attr("credentialTemplate", ANY, doc="a Credential component's template (siroccod: refused)")
    systemTemplate = Attr("systemTemplate", ANY, doc="a System component's template (siroccod: refused)")
    quantity = Attr("quantity", INTEGER, minimum=1, doc="how many components to make (default 1)")

    @classmethod
    def from_json(cls, doc: Any, path: str | None = None, partial: bool = False, trusted: bool = False) -> Self:
        if trusted:  # a provider's (an older siroccod's) may be in the former shape; a client's must be Table 14's
            doc = spec_descriptor(doc)
        return super().from_json(doc, path=path, partial=partial, trusted=trusted)


class SystemTemplate(Resource):
    type_name = "SystemTemplate"
    collection_key = "systemTemplates"
    componentDescriptors = Attr("componentDescriptors", ComponentDescriptor, many=True)
    meterTemplates = Attr("meterTemplates", ANY, many=True)
    eventLogTemplate = Attr("eventLogTemplate", REF)


class SystemCreate(Resource):
    type_name = "SystemCreate"
    systemTemplate = Attr("systemTemplate", REF, of=SystemTemplate, required=True)


class System(Resource):
    type_name = "System"
    collection_key = "systems"
    state = Attr("state", STRING, read_only=True, choices=states.SYSTEM_STATES)
    machines = Attr("machines", REF, many=True, read_only=True, collection=("Machine", "machines"))
    volumes = Attr("volumes", REF, many=True, read_only=True, collection=("Volume", "volumes"))
    networks = Attr("networks", REF, many=True, read_only=True, collection=("Network", "networks"))
    credentials = Attr("credentials", REF, many=True, read_only=True, collection=("Credential", "credentials"))
    systems = Attr("systems", REF, many=True, read_only=True, collection=("System", "systems"))
    meters = Attr("meters", REF, many=True, read_only=True, collection=("Meter", "meters"))
    eventLog = Attr("eventLog", REF, read_only=True)


# -- jobs, meters, actions, metadata ---------------------------------------

class Job(Resource):
    type_name = "Job"
    collection_key = "jobs"
    state = Attr("state", STRING, read_only=True, choices=states.JOB_STATES)
    targetResource = Attr("targetResource", REF, read_only=True)
    affectedResources = Attr("affectedResources", REF, many=True, read_only=True)
    action = Attr("action", STRING, read_only=True)
    returnCode = Attr("returnCode", INTEGER, read_only=True)
    progress = Attr("progress", INTEGER, read_only=True)
    statusMessage = Attr("statusMessage", STRING, read_only=True)
    timeOfStatusChange = Attr("timeOfStatusChange", DATETIME, read_only=True)
    parentJob = Attr("parentJob", REF, read_only=True)
    nestedJobs = Attr("nestedJobs", REF, many=True, read_only=True)
    isCancellable = Attr("isCancellable", BOOLEAN, read_only=True)


class Meter(Resource):
    type_name = "Meter"
    collection_key = "meters"
    targetResource = Attr("targetResource", REF, read_only=True)
    aspect = Attr("aspect", STRING, read_only=True)
    units = Attr("units", STRING, read_only=True)
    sampleInterval = Attr("sampleInterval", INTEGER, read_only=True)
    timeScope = Attr("timeScope", STRING, read_only=True, choices=("Point", "Interval"))
    intervalDuration = Attr("intervalDuration", STRING, read_only=True)
    isContinuous = Attr("isContinuous", BOOLEAN, read_only=True)
    samples = Attr("samples", Sample, many=True, read_only=True, collection=("Sample", "samples"))
    minValue = Attr("minValue", STRING, read_only=True)
    maxValue = Attr("maxValue", STRING, read_only=True)
    stopTime = Attr("stopTime", DATETIME, read_only=True)
    expiresTime = Attr("expiresTime", DATETIME, read_only=True)


class MeterConfiguration(Resource):
    """What a provider can meter (5.17.7): one aspect, on the resource types it applies to."""
    type_name = "MeterConfiguration"
    collection_key = "meterConfigs"
    associatedResources = Attr("associatedResources", STRING, many=True, doc="type URIs of the metered resources")
    aspect = Attr("aspect", STRING, required=True, doc="aspect URI, e.g. .../aspect/cpu")
    units = Attr("units", STRING)
    sampleInterval = Attr("sampleInterval", INTEGER, minimum=1, doc="seconds")
    timeScope = Attr("timeScope", STRING, choices=("Point", "Interval"))
    intervalDuration = Attr("intervalDuration", STRING)
    isContinuous = Attr("isContinuous", BOOLEAN)


class Action(Resource):
    """Body of an operation invocation (4.2.1.x): the verb and its parameters."""
    type_name = "Action"
    action = Attr("action", STRING, required=True, doc="action URI")
    force = Attr("force", BOOLEAN)
    # Parameters of capture-like actions and of Sirocco's migrate extension.
    image = Attr("image", REF, of=MachineImage)
    volume = Attr("volume", REF)
    initialLocation = Attr("initialLocation", STRING)
    host = Attr("host", STRING, extension=True, doc="target host of a migration (Sirocco extension)")
    # Parameters of Sirocco's resize actions (SIROCCO_RESIZE): a machine's new size, a volume's new capacity.
    machineConfig = Attr("machineConfig", REF, of=MachineConfiguration, extension=True,
                         doc="the machine's new cpu and memory, by reference or by value (Sirocco extension)")
    capacity = Attr("capacity", INTEGER, minimum=1, maximum=MAX_CAPACITY_KB, extension=True,
                    doc="kilobytes: the volume's new capacity, larger than its present one (Sirocco extension)")


# Sirocco's own actions, beside CIMI's: action URIs of the project's namespace (DSP0263 allows extensions).
SIROCCO_ACTION_NS = "urn:sirocco:cimi:action:"
SIROCCO_CAPABILITY_NS = "urn:sirocco:cimi:capability:"  # siroccod's capabilities in ResourceMetadata
SIROCCO_ATTRIBUTE_NS = "urn:sirocco:cimi:attribute"  # the namespace of Sirocco's extension attributes (Table 6)
CAPABILITY_NS = "http://schemas.dmtf.org/cimi/2/capability/"  # + <Resource>/<Capability> (5.11.1, Table 7)
SIROCCO_RESIZE = SIROCCO_ACTION_NS + "resize"
# A machine's hardware: the attributes a MachineConfiguration gives a Machine (DSP0263 Tables 15 and 17), declared
# once for every place that copies them from one to the other
HARDWARE = ("cpu", "memory", "disks", "cpuArch", "cpuSpeed")


class CloudEntryPoint(Resource):
    type_name = "CloudEntryPoint"
    baseURI = Attr("baseURI", STRING, read_only=True)
    # Collection links ({"href"}) are added per provider; they are read-only.


class ResourceMetadata(Resource):
    type_name = "ResourceMetadata"
    collection_key = "resourceMetadata"
    entries_key = "resourceMetadatas"  # the one collection whose entries are not named as its link (5.11.2)
    typeURI = Attr("typeURI", STRING, read_only=True)
    # collected into the class's ``attributes`` dict, which then takes this name's place
    attributes = Attr("attributes", ANY, many=True, read_only=True)
    capabilities = Attr("capabilities", ANY, many=True, read_only=True)
    actions = Attr("actions", ANY, many=True, read_only=True)
    vscope = Attr("vscope", ANY, many=True, read_only=True, doc="the bounds of clients' values (5.5.14)")


RESOURCE_TYPES = {cls.type_name: cls for cls in (
    CloudEntryPoint, ResourceMetadata, Machine, MachineConfiguration, MachineImage, MachineTemplate,
    MachineCreate, Credential, CredentialTemplate, CredentialCreate, Volume, VolumeConfiguration, VolumeImage,
    VolumeTemplate, VolumeCreate,
    Network, NetworkConfiguration, NetworkTemplate, NetworkCreate, System, SystemTemplate, SystemCreate,
    Job, Meter, MeterConfiguration, Action,
)}
COLLECTIONS = {cls.collection_key: cls for cls in RESOURCE_TYPES.values() if cls.collection_key}


def collection_json(cls: type[Resource], collection_id: str, items: list[dict[str, Any]], count: int | None = None,
                    operations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A collection document (5.5.12): its items are already JSON documents."""
    # a type with a collection (COLLECTIONS) has both a type_name and a collection_key
    doc = {"resourceURI": type_uri(cls.type_name + "Collection"),  # type: ignore[operator]
           "id": collection_id, "count": len(items) if count is None else count}
    if items:  # an empty collection has no entry array at all (5.5.11, 5.5.15)
        doc[cls.entries_key or cls.collection_key] = items  # type: ignore[index]
    if operations:
        doc["operations"] = operations
    return doc


def value_scope(cls: type[Structure]) -> dict[str, dict[str, Any]]:
    """The bounds a client's values must keep, as a valueScope (5.5.14): integer ranges, string enumerations
    and, as an extension keyword, the maximum length of free text."""
    scope: dict[str, dict[str, Any]] = {}
    for wire, attr in cls.attributes.items():
        if attr.read_only:
            continue
        if attr.choices:
            scope[wire] = {"values": list(attr.choices)}
        elif attr.kind == "integer":
            scope[wire] = {key: value for key, value in (("minimum", attr.minimum), ("maximum", attr.maximum))
                           if value is not None}
        elif attr.kind == "string" and attr.max_length is not None:
            scope[wire] = {"maxLength": attr.max_length}
        if wire in scope and attr.doc in ("kilobytes", "kibibytes", "megahertz"):
            scope[wire]["units"] = attr.doc
    return scope


def resource_metadata(cls: type[Structure], capabilities: Iterable[Any] = (), actions: Iterable[Any] = (),
                      unserved: Iterable[str] = ()) -> ResourceMetadata:
    """ResourceMetadata (5.11) describing ``cls``, derived from its declaration; ``unserved`` names the
    attributes this provider never sends (they are not providerMandatory)."""
    unserved = set(unserved)
    attributes = [attribute_metadata(wire, attr, wire not in unserved)
                  for wire, attr in cls.attributes.items() if not attr.write_only or attr.required]
    scope = value_scope(cls)
    return ResourceMetadata(name=cls.type_name, typeURI=type_uri(cls.type_name), attributes=attributes,
                            capabilities=list(capabilities), actions=list(actions),
                            vscope=[scope] if scope else None)


# the common attributes that never change once a resource exists (5.3 mutable: false)
IMMUTABLE = ("id", "created")


def attribute_metadata(wire: str, attr: Attr, served: bool = True) -> dict[str, Any]:
    """One entry of ResourceMetadata.attributes (Table 6). 7.1 asks for every field of the entry but
    consumerMandatory, while Table 6 says namespace and type shall not be present for a CIMI-defined
    attribute: the specific rule wins, so only Sirocco's extensions carry them."""
    entry: dict[str, Any] = {"name": wire}
    if attr.extension:
        entry["namespace"] = SIROCCO_ATTRIBUTE_NS
        entry["type"] = attr.type_label
    entry.update(providerMandatory=served, consumerMandatory=attr.required and not attr.read_only,
                 mutable=wire not in IMMUTABLE, consumerWritable=not attr.read_only,
                 required=attr.required)  # the JSON pseudo-schema of 5.11 still shows "required"
    return entry

"""The collections the CIMI endpoint serves, declared once: the routes, the Cloud Entry
Point, ResourceMetadata and the generic create/read/update/delete code derive from this table."""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import type_uri

SYNC, ASYNC, READONLY = "sync", "async", "readonly"


@dataclass(frozen=True)
class Kind:
    key: str  # collection name in URLs and the Cloud Entry Point
    cls: type  # the resource class
    create_cls: type | None  # what a POST to the collection carries; None: no create
    lifecycle: str  # SYNC: CMDB only; ASYNC: jobs on hosts; READONLY: the daemon writes them
    shared: bool = False  # public rows (tenant NULL) are visible to every tenant
    # a POST may also carry the resource itself instead of create_cls (a Credential: what older clients and the
    # cimi connector before CredentialCreate sent; Sirocco extension)
    direct: bool = False

    @property
    def type_name(self):
        return self.cls.type_name


KINDS = {k.key: k for k in (
    Kind("machines", model.Machine, model.MachineCreate, ASYNC),
    Kind("machineConfigs", model.MachineConfiguration, model.MachineConfiguration, SYNC, shared=True),
    Kind("machineImages", model.MachineImage, model.MachineImage, SYNC, shared=True),
    Kind("machineTemplates", model.MachineTemplate, model.MachineTemplate, SYNC, shared=True),
    Kind("credentials", model.Credential, model.CredentialCreate, SYNC, direct=True),
    # not shared: a template may hold a password, like the credentials made from it
    Kind("credentialTemplates", model.CredentialTemplate, model.CredentialTemplate, SYNC),
    Kind("volumes", model.Volume, model.VolumeCreate, ASYNC),
    Kind("volumeConfigs", model.VolumeConfiguration, model.VolumeConfiguration, SYNC, shared=True),
    Kind("volumeImages", model.VolumeImage, model.VolumeImage, SYNC, shared=True),
    Kind("volumeTemplates", model.VolumeTemplate, model.VolumeTemplate, SYNC, shared=True),
    Kind("networks", model.Network, model.NetworkCreate, ASYNC),
    # Sirocco extension (DSP0263 2.0.0 has no NetworkConfiguration): kept for older clients and CMDBs
    Kind("networkConfigs", model.NetworkConfiguration, model.NetworkConfiguration, SYNC, shared=True),
    Kind("networkTemplates", model.NetworkTemplate, model.NetworkTemplate, SYNC, shared=True),
    Kind("systems", model.System, model.SystemCreate, ASYNC),
    Kind("systemTemplates", model.SystemTemplate, model.SystemTemplate, SYNC, shared=True),
    Kind("jobs", model.Job, None, READONLY),
    Kind("meters", model.Meter, None, READONLY),
    Kind("meterConfigs", model.MeterConfiguration, None, READONLY, shared=True),
)}
BY_TYPE = {k.type_name: k for k in KINDS.values()}
# A resource's own collections (5.5.12) served, by the owner's collection key: the model's attribute names
# (a Machine's disks, interfaces, volumes and meters; a Meter's samples; a System's members). Documents
# refer to each as {"href": <resource id>/<attribute>}; resources.subcollections serves them.
SUBCOLLECTIONS: dict[str, tuple[str, ...]] = {
    "machines": ("disks", "interfaces", "volumes", "meters"),
    "meters": ("samples",),
    "systems": ("machines", "volumes", "networks"),
}


def collection_references(key: str, rid: str) -> dict[str, dict[str, str]]:
    """What a resource's document carries for its collections: ``{attribute: {"href"}}``."""
    return {attr: {"href": rid + "/" + attr} for attr in SUBCOLLECTIONS.get(key, ())}


# ResourceMetadata is served from the model, not the CMDB.
METADATA_KEY = "resourceMetadata"

# The resource type each reference attribute must point to (hrefs are checked on the way in).
REF_TYPES = {
    "machineConfig": "MachineConfiguration", "machineImage": "MachineImage", "credential": "Credential",
    "volumeConfig": "VolumeConfiguration", "volumeImage": "VolumeImage", "networkConfig": "NetworkConfiguration",
    "relatedImage": "MachineImage", "volumeTemplate": "VolumeTemplate", "machineTemplate": "MachineTemplate",
    "networkTemplate": "NetworkTemplate", "systemTemplate": "SystemTemplate", "volume": "Volume",
    "network": "Network", "credentialTemplate": "CredentialTemplate",
}
# Component types a SystemTemplate may hold, with the template type of each.
SYSTEM_COMPONENTS = {
    type_uri("Machine"): ("Machine", "MachineTemplate"),
    type_uri("Volume"): ("Volume", "VolumeTemplate"),
    type_uri("Network"): ("Network", "NetworkTemplate"),
}

# CIMI's actions of each collection (each at <resource>/<verb>)
ACTIONS = {"machines": states.MACHINE_ACTIONS, "systems": (states.START, states.STOP)}
# Sirocco's extension actions: collection -> {verb: (action URI, the contract operation a host needs for it)};
# each at <resource>/<verb>, in the type's ResourceMetadata while a host offers its operation
EXTENSION_ACTIONS = {"machines": {"resize": (model.SIROCCO_RESIZE, "machine.resize")},
                     "volumes": {"resize": (model.SIROCCO_RESIZE, "volume.resize")}}
# the parameters of Action that are a resize's (its own: machineConfig of a machine, capacity of a volume) or
# another action's: a resize refuses all but its own
RESIZE_PARAMETERS = ("force", "image", "volume", "initialLocation", "host", "machineConfig", "capacity")

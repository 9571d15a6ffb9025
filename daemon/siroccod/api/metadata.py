"""ResourceMetadata (5.11): each served type's, derived from the model's declaration, with the
capabilities (Table 7) and actions this daemon offers."""

from __future__ import annotations

from typing import Any

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import MAX_ENTRIES, action_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import CAPABILITY_NS, SIROCCO_CAPABILITY_NS
from siroccod.api.common import daemon
from siroccod.guests import guest_offer
from siroccod.kinds import ACTIONS, BY_TYPE, EXTENSION_ACTIONS, METADATA_KEY
from siroccod.resources.networks import INITIAL_STATES as NETWORK_INITIAL_STATES

EXTENSION_DESCRIPTIONS = {
    ("machines", "resize"): "give a machine another machineConfig's cpu and memory (Sirocco extension)",
    ("volumes", "resize"): "grow a volume to a larger capacity in KB (Sirocco extension)"}
# the query parameter of a machine resize's dry run (resources.resize.resize_dry_run)
DRY_RUN = "dryRun"

# DSP0263's capabilities (Table 7) this daemon has, by resource type: (name, value, what it means here).
# Each is proven by tests/daemon/test_cimi_conformance_metadata.py; a boolean one absent means false
# (MachineStopForceDefault: a stop without force shuts the guest down; SharedVolumeSupport: one machine
# per volume; MachineImageByValue: images are made first, from their imageLocation).
STANDARD_CAPABILITIES: dict[str, tuple[tuple[str, Any, str], ...]] = {
    "CloudEntryPoint": (
        ("ExpandParameter", True, "$expand on resources and collections (4.1.6.4)"),
        ("FilterParameter", True, "$filter on collections (4.1.6.1)"),
        ("FirstParameter", True, "$first and $last on collections (4.1.6.2)"),
        ("SelectParameter", True, "$select on resources and collections (4.1.6.3)"),
        ("OrderByParameter", True, "$orderby on collections (4.1.6.6)"),
        ("MaxPropertyItems", MAX_ENTRIES, "the most entries a properties attribute holds"),
    ),
    "Machine": (
        ("DefaultInitialState", states.STOPPED, "a new machine's state when its template names none"),
        ("InitialStates", list(states.INITIAL_STATES), "the initialState values a MachineTemplate may name"),
        ("MachineTemplateByValue", True, "a MachineCreate may carry its machineTemplate by value"),
        ("MachineConfigByValue", True, "a machineTemplate may carry its machineConfig by value"),
        ("MachineCredentialByValue", True, "a machineTemplate may carry its credential by value"),
        ("MachineStopForce", True, "stop and restart take force"),
    ),
    "Volume": (
        ("VolumeTemplateByValue", True, "a VolumeCreate may carry its volumeTemplate by value"),
        ("VolumeConfigByValue", True, "a volumeTemplate may carry its volumeConfig by value"),
    ),
    "System": (
        ("SystemComponentTemplateByValue", True, "a SystemTemplate's components may carry their templates by value"),
    ),
    # proven by tests/daemon/test_cimi_conformance_networks_credentials.py
    "Network": (
        ("DefaultInitialState", NETWORK_INITIAL_STATES[0], "a new network's state when its template names none: "
                                                           "the hosts' networks run once made"),
        ("InitialStates", list(NETWORK_INITIAL_STATES), "the initialState values a NetworkTemplate may name"),
        ("NetworkTemplateByValue", True, "a NetworkCreate may carry its networkTemplate by value"),
    ),
    "Credential": (
        ("CredentialTemplateByValue", True, "a CredentialCreate may carry its credentialTemplate by value"),
    ),
}
# attributes this daemon never sends (not providerMandatory): no snapshots, event logs, nested systems,
# volume images or meters of anything but machines here
UNSERVED = {
    "Machine": ("latestSnapshot", "snapshots", "eventLog"),
    "Volume": ("images", "meters", "eventLog"),
    "Network": ("meters", "eventLog"),
    "System": ("credentials", "systems", "meters", "eventLog"),
    "Meter": ("intervalDuration", "minValue", "maxValue", "stopTime", "expiresTime"),
    "Job": ("returnCode",),  # only once a job has ended
}
# the types with a ResourceMetadata beside those of the collections: the Cloud Entry Point's capabilities
EXTRA_TYPES = {"CloudEntryPoint": model.CloudEntryPoint}


def standard(type_name: str) -> list[dict[str, Any]]:
    return [{"name": name, "uri": CAPABILITY_NS + type_name + "/" + name, "value": value, "description": text}
            for name, value, text in STANDARD_CAPABILITIES.get(type_name, ())]


def types() -> list[str]:
    return list(EXTRA_TYPES) + list(BY_TYPE)


def document(base: str, type_name: str) -> dict[str, Any]:
    """The ResourceMetadata of ``type_name`` (one of types())."""
    cls = EXTRA_TYPES.get(type_name) or BY_TYPE[type_name].cls
    key = BY_TYPE[type_name].key if type_name in BY_TYPE else None
    actions = []
    if key in ACTIONS:
        actions = [{"name": verb, "uri": action_uri(verb), "description": "%s a %s" % (verb, type_name),
                    "method": "POST", "inputMessage": "application/json", "outputMessage": "application/json"}
                   for verb in ACTIONS[key]]
    actions += [{"name": verb, "uri": uri, "description": EXTENSION_DESCRIPTIONS[(key, verb)], "method": "POST",
                 "inputMessage": "application/json", "outputMessage": "application/json"}
                for verb, (uri, operation) in EXTENSION_ACTIONS.get(key, {}).items()
                if any(h.supports(operation) for h in daemon().pool.handles.values())]
    capabilities = standard(type_name)
    if type_name == "Machine":
        guest = guest_capabilities()
        if "credential" not in guest[0]["value"].split():  # by value or not, no host could use it
            capabilities = [c for c in capabilities if c["name"] != "MachineCredentialByValue"]
        capabilities += guest
        if any(a["uri"] == model.SIROCCO_RESIZE for a in actions):
            capabilities.append({
                "name": "resizeDryRun", "uri": SIROCCO_CAPABILITY_NS + "resizeDryRun", "value": DRY_RUN,
                "description": "POST a resize with ?dryRun=true: its input checked, nothing changed, "
                               "and {needsStop, reason} says whether a stop is needed first"})
    doc = model.resource_metadata(cls, capabilities=capabilities, actions=actions,
                                  unserved=UNSERVED.get(type_name, ())).to_json()
    doc["id"] = base + METADATA_KEY + "/" + type_name
    return doc


def guest_capabilities() -> list[dict[str, Any]]:
    """guestInputs (space-separated: credential, userData) and userDataLimit (bytes of raw userData, when
    every host taking it says), over every enabled host and upstream whose capabilities are known."""
    pool = daemon().pool
    handles = [h for h in pool.handles.values() if h.cfg.enabled]
    handles += [u for u in pool.upstreams.values() if u.known_capabilities() is not None]
    inputs, limit = guest_offer(handles)
    found = [{"name": "guestInputs", "uri": SIROCCO_CAPABILITY_NS + "guestInputs", "value": " ".join(sorted(inputs)),
              "description": "what a machine's creation can put into its guest (Sirocco extension)"}]
    if limit is not None:
        found.append({"name": "userDataLimit", "uri": SIROCCO_CAPABILITY_NS + "userDataLimit", "value": str(limit),
                      "description": "the most userData a host takes, in bytes (Sirocco extension)"})
    return found

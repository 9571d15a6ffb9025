# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Systems for the modules: a group of machines, volumes and networks made from one template.

A template is a dictionary in the CIMI SystemTemplate shape (DSP0263 5.13.4, Table 14: each component's
template under the attribute named for its type), its components' templates in the module options' words::

    componentDescriptors:
      - {name: net, type: network, networkTemplate: {cidr: 10.20.0.0/24}}
      - {name: data, type: volume, volumeTemplate: {size_gib: 1}}
      - {name: web, type: machine, quantity: 2, machineTemplate: {machine_config: tiny, networks: [net]}}
      - {name: db, type: machine, properties: {tier: db}, machineTemplate: {machine_config: tiny, volumes: [data]}}

(``component``, the key of earlier versions, is still read in place of the template's attribute.) A machine's
``networks`` and ``volumes`` name other components of the template (each of their members) or resources that
exist on the provider. Client-side, member ``n`` of component ``c`` of system ``s`` is named ``s-c`` (``s-c-n``
when the component has several); a CIMI endpoint names them as Table 14 says (``c``, or ``c1``, ``c2``...).

Two ways to make one:

* natively, where the provider has ``system.create`` (a CIMI endpoint: the daemon): the template goes to the
  provider as a SystemTemplate by value (or a stored template by reference), which creates, starts, stops and
  deletes the members itself;
* client-side everywhere else, through the contract's machine, volume and network operations: members carry
  ``sirocco.system`` (and ``sirocco.component``) in their properties where the provider keeps properties, and
  their names everywhere. They are created in order (networks, volumes, machines, then attachments); when one
  fails, what this run created is deleted again (what existed is left alone); a re-run creates what is missing.

``run(module)``/``run_info(module)`` are the ``system``/``system_info`` modules, ``run_template``/
``run_template_info`` the ``system_template``/``system_template_info`` ones. ``module`` is a
``module.SiroccoModule``; this file imports no Ansible.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field

from ansible_collections.sirocco.cimi.plugins.module_utils import machine_images, machines, templates
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OperationTimeout,
    SiroccoError,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
    MachineConfiguration,
    System,
    SystemTemplate,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import parse_filter
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    MachineSpec,
    check_guest_inputs,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.module import string_map

SYSTEM_PROPERTY = "sirocco.system"
SYSTEM_TEMPLATES = "system_templates"  # the section of the templates file
COMPONENT_PROPERTY = "sirocco.component"
MACHINE, VOLUME, NETWORK = "machine", "volume", "network"
KINDS = (NETWORK, VOLUME, MACHINE)  # the order of creation; deletion goes the other way
TYPE_NAMES = {MACHINE: "Machine", VOLUME: "Volume", NETWORK: "Network"}
TEMPLATE_TYPES = {MACHINE: "MachineTemplate", VOLUME: "VolumeTemplate", NETWORK: "NetworkTemplate"}
COLLECTIONS = {MACHINE: "machines", VOLUME: "volumes", NETWORK: "networks"}
COMPONENT_KEYS = {
    MACHINE: ("machine_config", "machine_image", "credential", "user_data", "networks", "volumes", "description",
              "properties"),
    VOLUME: ("size_gib", "type", "description", "properties"),
    NETWORK: ("cidr", "dhcp", "description", "properties"),
}
# a component's template is under the key Table 14 names for its type (TEMPLATE_KEYS_OF), or under the key of
# earlier versions (LEGACY_COMPONENT)
TEMPLATE_KEYS_OF = {MACHINE: "machineTemplate", VOLUME: "volumeTemplate", NETWORK: "networkTemplate"}
LEGACY_COMPONENT = "component"
DESCRIPTOR_KEYS = ("name", "type", "quantity", "description", "properties", *TEMPLATE_KEYS_OF.values(),
                   LEGACY_COMPONENT)
TEMPLATE_KEYS = ("name", "description", "componentDescriptors")
CONFIG_KEYS = ("cpu", "memory_mib", "disk_gib", "cpu_arch")
CREDENTIAL_KEYS = ("name", "public_key", "user_name")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
MAX_MEMBERS = 100  # as the daemon: a system is a handful of resources, not a fleet
CREATED_STATES = {VOLUME: "AVAILABLE", NETWORK: states.STARTED}
POWER = {"started": states.STARTED, "stopped": states.STOPPED}
BUSY_SYSTEM_STATES = (states.CREATING, states.STARTING, states.STOPPING, states.DELETING)
# CIMI attributes in errors -> the options of the system modules
ATTRIBUTE_OPTIONS = {"template": "template", "componentDescriptors": "template", "name": "name"}


# -- templates -------------------------------------------------------------------------------------------------
@dataclass
class Component:
    """One componentDescriptor of a template, checked: ``options`` are its component's keys."""

    name: str
    kind: str
    quantity: int = 1
    description: str | None = None
    options: dict = field(default_factory=dict)
    path: str = "template"

    def member_names(self, system):
        base = "%s-%s" % (system, self.name)
        return [base] if self.quantity == 1 else ["%s-%d" % (base, n + 1) for n in range(self.quantity)]


def _fail(path, message):
    raise InvalidInput("%s: %s" % (path, message), attribute="template")


def _check_keys(value, known, path):
    if not isinstance(value, dict):
        _fail(path, "expected a dictionary, got %s" % type(value).__name__)
    unknown = sorted(set(value) - set(known))
    if unknown:
        _fail(path, "unknown key(s) %s (known: %s)" % (", ".join(map(str, unknown)), ", ".join(known)))


def _kind(value, path):
    text = value if isinstance(value, str) else ""
    for kind, type_name in TYPE_NAMES.items():
        if text.lower() == kind or text == type_uri(type_name):
            return kind
    _fail(path, "expected one of machine, volume, network (or their CIMI type URIs), got %r" % (value,))


def _integer(value, path, minimum):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        _fail(path, "expected an integer of at least %d, got %r" % (minimum, value))
    return value


def _names(value, path):
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        _fail(path, "expected a list of names")
    return list(value)


def parse_template(value, option="template"):
    """The Components of a template dictionary, every key checked (InvalidInput naming its path)."""
    _check_keys(value, TEMPLATE_KEYS, option)
    descriptors = value.get("componentDescriptors")
    if not isinstance(descriptors, list) or not descriptors:
        _fail(option + ".componentDescriptors", "expected a non-empty list of components")
    components = []
    for i, desc in enumerate(descriptors):
        path = "%s.componentDescriptors[%d]" % (option, i)
        _check_keys(desc, DESCRIPTOR_KEYS, path)
        name = desc.get("name")
        if not isinstance(name, str) or not NAME_RE.match(name):
            _fail(path + ".name", "expected a name of letters, digits, '.', '_' and '-' (at most 63), got %r"
                  % (name,))
        if any(c.name == name for c in components):
            _fail(path + ".name", "component '%s' is named twice" % name)
        kind = _kind(desc.get("type"), path + ".type")
        quantity = _integer(desc.get("quantity", 1), path + ".quantity", 1)
        key = _template_key(desc, kind, path)
        body = desc.get(key) or {}
        _check_keys(body, COMPONENT_KEYS[kind], "%s.%s" % (path, key))
        options = dict(body)
        if desc.get("properties") is not None:  # Table 14: the member's properties, over its template's
            options["properties"] = dict(string_map(body.get("properties"), "%s.%s.properties" % (path, key)) or {},
                                         **string_map(desc["properties"], path + ".properties"))
        components.append(Component(name=name, kind=kind, quantity=quantity, description=desc.get("description"),
                                    options=options, path="%s.%s" % (path, key)))
    if sum(c.quantity for c in components) > MAX_MEMBERS:
        _fail(option, "at most %d members in a system" % MAX_MEMBERS)
    by_name = {c.name: c for c in components}
    for comp in components:
        _check_component(comp, by_name)
    return components


def _template_key(desc, kind, path):
    """The key of a descriptor's template: the one Table 14 names for ``kind`` (or the former ``component``);
    another kind's, or both, refused."""
    wanted = TEMPLATE_KEYS_OF[kind]
    for key in TEMPLATE_KEYS_OF.values():
        if key != wanted and key in desc:
            _fail("%s.%s" % (path, key), "a %s component's template is given as %s" % (kind, wanted))
    if wanted in desc and LEGACY_COMPONENT in desc:
        _fail(path, "give the template once, as %s" % wanted)
    return LEGACY_COMPONENT if LEGACY_COMPONENT in desc else wanted


def _check_component(comp, by_name):
    """What can be checked of a component without the provider."""
    o, path = comp.options, comp.path
    if comp.kind == VOLUME:
        o["size_gib"] = _integer(o.get("size_gib"), path + ".size_gib", 1)
    elif comp.kind == NETWORK:
        if o.get("cidr") is not None and not isinstance(o["cidr"], str):
            _fail(path + ".cidr", "expected a string such as 10.20.0.0/24")
        if o.get("dhcp") is not None and not isinstance(o["dhcp"], bool):
            _fail(path + ".dhcp", "expected true or false")
    else:
        if o.get("machine_config") is None:
            _fail(path + ".machine_config", "required: a size name or a dictionary (%s)" % ", ".join(CONFIG_KEYS))
        for key, kind in (("networks", NETWORK), ("volumes", VOLUME)):
            o[key] = _names(o.get(key), "%s.%s" % (path, key))
            for ref in o[key]:
                sibling = by_name.get(ref)
                if sibling is not None and sibling.kind != kind:
                    _fail("%s.%s" % (path, key), "component '%s' is a %s, not a %s" % (ref, sibling.kind, kind))
        if o.get("credential") is not None:
            _check_keys(o["credential"], CREDENTIAL_KEYS, path + ".credential")
            if bool(o["credential"].get("name")) == bool(o["credential"].get("public_key")):
                _fail(path + ".credential", "give either name (a registered credential) or public_key")
    if o.get("properties") is not None:
        o["properties"] = string_map(o["properties"], path + ".properties")


def client_templates(library):
    """{name: (template dictionary, source)} of the system templates defined client-side: under
    ``system_templates`` in the templates file, then in the ``templates`` option (which wins)."""
    found = {}
    path = library.file_path()
    explicit = bool(library.path or library.environ.get(templates.TEMPLATES_ENV))
    sources = []
    if path and (explicit or os.path.isfile(path)):
        sources.append((templates.load_file(path), path))
    if library.inline is not None:
        sources.append((library.inline, "templates"))
    for data, source in sources:
        section = data.get(SYSTEM_TEMPLATES) if isinstance(data, dict) else None
        if section is None:
            continue
        if not isinstance(section, dict):
            raise InvalidInput("%s: %s must be a dictionary of named templates" % (_where(source), SYSTEM_TEMPLATES),
                               attribute="templates_file" if source != "templates" else "templates")
        found.update({str(name): (value, source) for name, value in section.items()})
    return found


def _where(source):
    return "templates" if source == "templates" else "templates_file: %s" % source


def load_template(connector, value, library=None, option="template"):
    """``template`` as Components: a dictionary, or the name of a system template defined client-side (the
    templates file's ``system_templates``, or the ``templates`` option's). A template stored on the provider is
    used natively, by reference (``native_reference``)."""
    if isinstance(value, dict):
        return parse_template(value, option)
    if not isinstance(value, str) or not value:
        _fail(option, "expected a template name or a dictionary with componentDescriptors")
    library = library or templates.Library(inline=None, path=None)
    defined = client_templates(library)
    if value in defined:
        template, source = defined[value]
        return parse_template(template, "%s: %s.%s" % (_where(source), SYSTEM_TEMPLATES, value))
    raise InvalidInput("template: no system template '%s' in %s (known there: %s), and provider '%s' stores none; "
                       "define it under %s there, or give the template as a dictionary"
                       % (value, library.where(), ", ".join(sorted(defined)) or "none", connector.name,
                          SYSTEM_TEMPLATES), attribute="template")


# -- resolving components against the provider -----------------------------------------------------------------
def _within(path, call, *args):
    """``call(*args)``, its InvalidInput said of the component at ``path`` (the machine module's helpers name
    their own option: machine_config, credential...)."""
    try:
        return call(*args)
    except InvalidInput as exc:
        _fail(path, exc.message)


def resolve_config(connector, caps, value, path, library=None):
    """``machine_config`` (a size name, a configuration of the templates file, or a dictionary) as a
    MachineConfiguration the provider accepts."""
    return _within(path, machines.resolve_config, connector, caps, value, library)


def resolve_credential(connector, value, path):
    """A component's ``credential`` as MachineSpec.credential: a key given, or a registered credential's."""
    return _within(path, machines.resolve_credential, connector, value)


def _existing_ref(getter, ref, path, what):
    try:
        return getter(ref).id
    except (NotFound, Conflict, Unsupported) as exc:
        _fail(path, "'%s' is neither a component of the template nor a %s of the provider: %s"
              % (ref, what, exc.message))


@dataclass
class MachinePlan:
    """A machine component resolved: what every member's MachineSpec shares, and its references."""

    config: MachineConfiguration
    image: str | None = None
    credential: dict | None = None
    user_data: str | None = None
    networks: list = field(default_factory=list)  # ("component", name) or ("id", native id)
    volumes: list = field(default_factory=list)


def resolve_machine(connector, caps, comp, by_name, library=None):
    o, path = comp.options, comp.path
    plan = MachinePlan(config=resolve_config(connector, caps, o["machine_config"], path, library))
    if o.get("machine_image"):
        plan.image = machine_images.resolve_image(connector, o["machine_image"], option=path + ".machine_image",
                                                  attribute="template").id
    plan.credential = resolve_credential(connector, o.get("credential"), path + ".credential")
    plan.user_data = o.get("user_data")
    for key, getter, what in (("networks", connector.get_network, NETWORK), ("volumes", connector.get_volume, VOLUME)):
        for ref in o[key]:
            entry = ("component", ref) if ref in by_name else (
                "id", _existing_ref(getter, ref, "%s.%s" % (path, key), what))
            getattr(plan, key).append(entry)
    probe = MachineSpec(name="probe", config=plan.config, image=plan.image, user_data=plan.user_data,
                        credential=plan.credential)
    try:
        check_guest_inputs(probe, connector.name, caps.guest_inputs, caps.user_data_limit, caps.user_data_encoded)
    except InvalidInput as exc:
        _fail(path, exc.message)
    plan.credential = probe.credential
    return plan


# -- what exists -----------------------------------------------------------------------------------------------
@dataclass
class Member:
    """One member of a system: expected by the template (``component``) and/or found on the provider."""

    kind: str
    name: str
    component: str | None = None
    resource: object = None  # the provider's Machine, Volume or Network; None while missing

    @property
    def id(self):
        return self.resource.id if self.resource is not None else None

    @property
    def state(self):
        return self.resource.state if self.resource is not None else None


def provider_resources(connector, caps):
    """Every machine, volume and network of the provider (the kinds it lists)."""
    found = {MACHINE: list(connector.iter_machines()), VOLUME: [], NETWORK: []}
    if caps.supports("volume.list"):
        found[VOLUME] = connector.list_volumes()
    if caps.supports("network.list"):
        found[NETWORK] = connector.list_networks()
    return found


def settle(module, members):
    """Member machines on their way to a state, once there (within wait_timeout; waiting changes nothing)."""
    for m in members:
        if m.kind == MACHINE and m.resource is not None and m.state not in states.STABLE_MACHINE_STATES:
            m.resource = module.wait_for_machine(m.id, states.STABLE_MACHINE_STATES + (None,))


def _tag(resource, key=SYSTEM_PROPERTY):
    return (resource.properties or {}).get(key)


def expected_members(system, components, found):
    """The members ``components`` make, each with what the provider holds under its name."""
    members = []
    for comp in components:
        for name in comp.member_names(system):
            named = [r for r in found[comp.kind] if r.name == name]
            if len(named) > 1:
                raise Conflict("%d %ss are named '%s' on the provider; system '%s' cannot tell its member"
                               % (len(named), comp.kind, name, system))
            resource = named[0] if named else None
            if resource is not None and _tag(resource) not in (None, system):
                raise Conflict("%s '%s' belongs to system '%s', not '%s'" % (comp.kind, name, _tag(resource), system))
            members.append(Member(comp.kind, name, comp.name, resource))
    return members


def tagged_members(system, found):
    """The members of ``system`` found without its template: machines and networks carrying its tag, volumes
    carrying it or, on a provider that keeps no volume properties (libvirt), named as its members are and
    attached to its machines only (an unattached one is found through the template alone; a volume of another
    name that a machine uses is not the system's)."""
    members = [Member(kind, r.name, _tag(r, COMPONENT_PROPERTY), r)
               for kind in (NETWORK, MACHINE) for r in found[kind] if _tag(r) == system]
    machine_ids = {m.id for m in members if m.kind == MACHINE}
    for vol in found[VOLUME]:
        users = {ref.get("href") for ref in (vol.attachedTo or [])}
        named = (vol.name or "").startswith(system + "-")
        if _tag(vol) == system or (named and users and users <= machine_ids):
            members.append(Member(VOLUME, vol.name, _tag(vol, COMPONENT_PROPERTY), vol))
    return sorted(members, key=lambda m: (KINDS.index(m.kind), m.name))


def systems_by_tag(found):
    """Names of the systems whose members carry the tag."""
    return sorted({_tag(r) for kind in KINDS for r in found[kind] if _tag(r)})


def attached(volume, machine):
    """Whether ``volume`` (a Volume) is attached to ``machine`` (a Machine), as either of them says."""
    if any(ref.get("href") == machine.id for ref in (volume.attachedTo or [])):
        return True
    return any((ref.get("volume") or {}).get("href") == volume.id for ref in (machine.volumes or []))


def aggregate_state(members):
    """A system's state from its machines', as the daemon computes it: theirs when they agree, else MIXED."""
    found = [m.state for m in members if m.kind == MACHINE and m.state]
    if not found:
        return states.STOPPED
    return found[0] if all(s == found[0] for s in found) else "MIXED"


def system_doc(name, members, description=None, system=None):
    """The System JSON document: the provider's (natively) or one made of the members, with every member's
    name, type, component, id and state under ``members``."""
    doc = system.to_json() if system is not None else System(
        name=name, description=description, state=aggregate_state(members)).to_json()
    for kind in KINDS:
        refs = [{"href": m.id} for m in members if m.kind == kind and m.id]
        if refs or system is None:
            doc[COLLECTIONS[kind]] = refs
    doc["members"] = [{"name": m.name, "type": TYPE_NAMES[m.kind], "component": m.component, "id": m.id,
                       "state": m.state} for m in members]
    return doc


def diff_doc(doc):
    """What ``--diff`` shows of a system: its state and each member's."""
    if not doc:
        return {}
    return {"name": doc.get("name"), "state": doc.get("state"),
            "members": {"%s %s" % (m["type"].lower(), m["name"]): m["state"] for m in doc.get("members", [])}}


# -- the plan, client-side -------------------------------------------------------------------------------------
@dataclass
class Step:
    verb: str  # create, attach, start, stop, delete
    member: Member
    other: Member | None = None  # attach: the machine
    component: Component | None = None

    def text(self):
        if self.verb == "attach":
            return "attach volume %s to machine %s" % (self.member.name, self.other.name)
        return "%s %s %s" % (self.verb, self.member.kind, self.member.name)


def _volume_refs(comp, plan, members, volumes):
    """The volumes each member of machine component ``comp`` uses, as Members: those of sibling components,
    and the existing volumes it names (``volumes``: the provider's, by id), which are no members."""
    refs = []
    for source, ref in plan.volumes:
        if source == "component":
            refs.extend(m for m in members if m.kind == VOLUME and m.component == ref)
        elif ref in volumes:
            refs.append(Member(VOLUME, volumes[ref].name, None, volumes[ref]))
    return refs


def plan_client(state, members, components, plans, volumes=None):
    """The Steps that take the ``members`` to ``state``: creations in order, attachments, power changes; or
    the deletions of what exists. ``volumes``: the provider's volumes by id (those a machine names)."""
    if state == "absent":
        return [Step("delete", m) for kind in reversed(KINDS) for m in members if m.kind == kind and m.resource]
    by_name = {c.name: c for c in components or ()}
    steps = [Step("create", m, component=by_name[m.component])
             for kind in KINDS for m in members if m.kind == kind and m.resource is None and m.component in by_name]
    for machine in (m for m in members if m.kind == MACHINE and m.component in by_name):
        for vol in _volume_refs(by_name[machine.component], plans[machine.component], members, volumes or {}):
            if not (vol.resource and machine.resource and attached(vol.resource, machine.resource)):
                steps.append(Step("attach", vol, machine))
    wanted = POWER.get(state)
    for machine in (m for m in members if m.kind == MACHINE):
        current = machine.state or states.STOPPED  # a new machine is made stopped
        if wanted is not None and current != wanted:
            steps.extend(Step(op, machine) for op in states.path_to(current, wanted))
    return steps


def required_operations(steps):
    ops = []
    for step in steps:
        op = "%s.%s" % (step.member.kind if step.verb != "attach" else VOLUME, step.verb)
        if step.verb in ("start", "stop"):
            op = "machine." + step.verb
        if op not in ops:
            ops.append(op)
    return ops


def predicted_members(members, steps):
    """The members as they would be after ``steps`` (check mode): states only, ids unknown for new ones."""
    out = []
    deleted = {id(s.member) for s in steps if s.verb == "delete"}
    for m in members:
        if id(m) in deleted:
            continue
        state = m.state
        if m.resource is None:
            state = CREATED_STATES.get(m.kind, states.STOPPED)
        for step in steps:
            if step.member is m and step.verb in ("start", "stop"):
                state = states.result_state(state, step.verb)
        out.append(_Predicted(m.kind, m.name, m.component, m.id, state))
    return out


@dataclass
class _Predicted:
    kind: str
    name: str
    component: str | None
    id: str | None
    state: str | None


# -- execution, client-side ------------------------------------------------------------------------------------
class Run:
    """Executes Steps, remembering what it created so that a failure can undo it."""

    def __init__(self, module, system, plans):
        self.module = module
        self.connector = module.connector
        self.system = system
        self.plans = plans
        self.created = []  # (kind, id, name), in order of creation
        self.attached = []  # (machine id, volume id, names) of attachments to machines that existed

    def ids(self, members):
        return {(m.kind, m.component, m.name): m.id for m in members}

    def execute(self, steps, members):
        try:
            for step in steps:
                getattr(self, "_" + step.verb)(step, members)
        except SiroccoError as exc:
            exc.message = "system '%s': %s%s" % (self.system, exc.message, self.rollback())
            raise exc

    def _tags(self, comp):
        props = dict(comp.options.get("properties") or {})
        props.update({SYSTEM_PROPERTY: self.system, COMPONENT_PROPERTY: comp.name})
        return props

    def _create(self, step, members):
        comp, member = step.component, step.member
        if member.kind == NETWORK:
            kwargs = {k: comp.options[k] for k in ("cidr", "dhcp") if comp.options.get(k) is not None}
            resource = self.connector.create_network(member.name, description=comp.options.get("description"),
                                                     properties=self._tags(comp), **kwargs)
        elif member.kind == VOLUME:
            resource = self._create_volume(comp, member)
        else:
            resource = self.connector.create_machine(self._machine_spec(comp, member, members))
        self.created.append((member.kind, resource.id, member.name))
        member.resource = resource
        if member.kind == MACHINE:
            member.resource = self.wait(resource.id, states.STOPPED)

    def _create_volume(self, comp, member):
        kwargs = {"volume_type": comp.options["type"]} if comp.options.get("type") else {}
        size = comp.options["size_gib"] * 1024 * 1024
        description = comp.options.get("description")
        try:
            return self.connector.create_volume(member.name, size, description=description,
                                                properties=self._tags(comp), **kwargs)
        except InvalidInput as exc:
            if exc.attribute != "properties" or comp.options.get("properties"):
                raise
        # a provider that keeps no volume properties (libvirt) refuses the tags before creating anything:
        # the volume is then known by its name alone
        return self.connector.create_volume(member.name, size, description=description, **kwargs)

    def _machine_spec(self, comp, member, members):
        plan = self.plans[comp.name]
        networks = []
        for source, ref in plan.networks:
            if source == "id":
                networks.append(ref)
            else:
                networks.extend(m.id for m in members if m.kind == NETWORK and m.component == ref)
        return MachineSpec(name=member.name, config=plan.config, image=plan.image, initial_state=states.STOPPED,
                           description=comp.options.get("description"), properties=self._tags(comp),
                           user_data=plan.user_data, credential=plan.credential, networks=networks)

    def _attach(self, step, members):
        volume_id, machine_id = step.member.id, step.other.id
        self.connector.attach_volume(machine_id, volume_id)
        if not any(kind == MACHINE and cid == machine_id for kind, cid, _n in self.created):
            self.attached.append((machine_id, volume_id, step.member.name, step.other.name))

    def _start(self, step, members):
        self.connector.machine_action(step.member.id, states.START)
        step.member.resource = self.wait(step.member.id, states.STARTED)

    def _stop(self, step, members):
        self.connector.machine_action(step.member.id, states.STOP, force=self.module.params.get("force"))
        step.member.resource = self.wait(step.member.id, states.STOPPED)

    def _delete(self, step, members):
        member = step.member
        if member.kind == MACHINE:
            self.connector.machine_action(member.id, states.DELETE)
            self.wait(member.id, None)
        elif member.kind == VOLUME:
            self.connector.delete_volume(member.id)
        else:
            self.connector.delete_network(member.id)
        member.resource = None

    def wait(self, machine_id, wanted):
        """The machine once in ``wanted`` (None: gone): each step needs the previous one settled, so the
        client-side orchestration always waits (within wait_timeout)."""
        return self.module.wait_for_machine(machine_id, wanted)

    def rollback(self):
        """Undo this run's creations and attachments, newest first; the text the error message gets."""
        undone, failed = [], []
        for machine_id, volume_id, volume, machine in reversed(self.attached):
            try:
                self.connector.detach_volume(machine_id, volume_id)
                undone.append("detached volume %s from machine %s" % (volume, machine))
            except SiroccoError as exc:
                failed.append("volume %s stays attached to machine %s (%s)" % (volume, machine, exc.message))
        for kind, rid, name in reversed(self.created):
            try:
                if kind == MACHINE:
                    self.connector.delete_machine(rid)
                    self._gone(rid)
                elif kind == VOLUME:
                    self.connector.delete_volume(rid)
                else:
                    self.connector.delete_network(rid)
                undone.append("deleted %s %s" % (kind, name))
            except SiroccoError as exc:
                failed.append("%s %s is left (%s)" % (kind, name, exc.message))
        text = ""
        if undone:
            text += "; rolled back what this run made: " + ", ".join(undone)
        if failed:
            text += "; could not roll back: " + ", ".join(failed)
        return text

    def _gone(self, machine_id):
        try:
            self.connector.wait_for_machine(machine_id, None, timeout=max(self.module.deadline.remaining(), 30))
        except (SiroccoError, OperationTimeout):
            pass  # the volume's deletion says whether it is still in use


# -- the system module -----------------------------------------------------------------------------------------
def check_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput("name: expected letters, digits, '.', '_' and '-' (at most 63), got %r" % (name,),
                           attribute="name")


def run(module):
    """The ``system`` module: natively where the provider has ``system.create``, else client-side."""
    check_name(module.params["name"])
    caps = module.connector.capabilities()
    if caps.supports("system.create"):
        return run_native(module, caps)
    return run_client(module, caps)


def run_client(module, caps):
    p = module.params
    connector, name, state = module.connector, p["name"], p["state"]
    library = templates.library_of(p)
    components = load_template(connector, p["template"], library) if p["template"] is not None else None
    plans = {}
    if components is not None and state != "absent":
        by_name = {c.name: c for c in components}
        plans = {c.name: resolve_machine(connector, caps, c, by_name, library)
                 for c in components if c.kind == MACHINE}
    found = provider_resources(connector, caps)
    if components is None:
        members = tagged_members(name, found)
        if state != "absent" and not members:
            raise InvalidInput("template is required to create system '%s'" % name, attribute="template")
    else:
        members = expected_members(name, components, found)
        if state == "absent":  # what carries the tag, though the template no longer lists it, goes too
            known = {(m.kind, m.name) for m in members}
            members += [m for m in tagged_members(name, found) if (m.kind, m.name) not in known]
    settle(module, members)
    members = [m for m in members if m.resource is not None or m.component is not None]
    steps = plan_client(state, members, components, plans, {v.id: v for v in found[VOLUME]})
    for op in required_operations(steps):
        caps.require(op)
    before = system_doc(name, [m for m in members if m.resource is not None], p.get("description")) \
        if any(m.resource is not None for m in members) else {}
    result = dict(changed=bool(steps), actions=[s.text() for s in steps], orchestration="client")
    if module.check_mode:
        after = system_doc(name, predicted_members(members, steps), p.get("description")) if state != "absent" else {}
    else:
        Run(module, name, plans).execute(steps, members)
        after = system_doc(name, refreshed(connector, members)) if state != "absent" else {}
    if state != "absent":
        result["system"] = after
    if module.diff_mode:
        result["diff"] = dict(before=diff_doc(before), after=diff_doc(after))
    return result


def refreshed(connector, members):
    """The members as the provider now has them (machines read again: their state moved)."""
    for m in members:
        if m.kind == MACHINE and m.resource is not None:
            m.resource = connector.get_machine(m.id)
    return members


# -- natively (a CIMI endpoint) --------------------------------------------------------------------------------
def find_system(connector, name):
    named = [s for s in connector.list_systems() if s.name == name]
    if len(named) > 1:
        raise Conflict("%d systems are named '%s' on provider '%s'" % (len(named), name, connector.name))
    return named[0] if named else None


def cimi_template(connector, caps, components, name=None, description=None, library=None):
    """A SystemTemplate by value for a CIMI endpoint, its components' references resolved to hrefs."""
    descriptors = []
    for comp in components:
        if comp.kind == MACHINE:
            body = _machine_template(connector, caps, comp, {c.name for c in components}, library)
        elif comp.kind == VOLUME:
            body = {"volumeConfig": {"capacity": comp.options["size_gib"] * 1024 * 1024}}
            if comp.options.get("type"):
                body["volumeConfig"]["type"] = comp.options["type"]
        else:
            body = {"networkConfig": {k: comp.options[k] for k in ("cidr", "dhcp") if comp.options.get(k) is not None}}
        # Table 14: the descriptor's name, description and properties are the members'
        desc = {"name": comp.name, "type": type_uri(TYPE_NAMES[comp.kind]), "quantity": comp.quantity,
                TEMPLATE_KEYS_OF[comp.kind]: body}
        if comp.description or comp.options.get("description"):
            desc["description"] = comp.description or comp.options["description"]
        if comp.options.get("properties"):
            desc["properties"] = comp.options["properties"]
        descriptors.append(desc)
    doc = {"componentDescriptors": descriptors}
    if name:
        doc["name"] = name
    if description:
        doc["description"] = description
    return SystemTemplate.from_json(doc, trusted=True)


def _machine_template(connector, caps, comp, siblings, library=None):
    o, path = comp.options, comp.path
    for key in ("networks", "volumes"):
        shared = [ref for ref in o[key] if ref in siblings]
        if shared:
            _fail("%s.%s" % (path, key), "provider '%s' makes systems itself and wires no member to another (%s); "
                  "name %s that exist already" % (connector.name, ", ".join(shared), key))
    plan = resolve_machine(connector, caps, comp, {}, library)
    body = {"machineConfig": {"href": plan.config.id} if plan.config.id else {
        k: v for k, v in plan.config.to_json().items() if k in ("cpu", "memory", "cpuArch", "disks")}}
    if plan.image:
        body["machineImage"] = {"href": plan.image}
    if o.get("credential") and o["credential"].get("name"):
        body["credential"] = {"href": connector.get_credential(o["credential"]["name"]).id}
    elif plan.credential:
        body["credential"] = {k: v for k, v in (("key", plan.credential["key"]),
                                                ("userName", plan.credential.get("username"))) if v}
    if plan.user_data:
        body["userData"] = plan.user_data
    if plan.networks:
        body["interfaceTemplates"] = [{"network": {"href": ref}} for _s, ref in plan.networks]
    if plan.volumes:
        body["volumes"] = [{"volume": {"href": ref}} for _s, ref in plan.volumes]
    return body


def native_reference(connector, caps, value, library=None):
    """What create_system takes for ``template``: a stored template's id, or a SystemTemplate by value."""
    library = library or templates.Library(inline=None, path=None)
    if isinstance(value, str) and value and caps.supports("system_template.list"):
        try:
            return connector.get_system_template(value).id
        except NotFound:
            if value not in client_templates(library):
                stored = ", ".join(sorted(t.name or t.id for t in connector.list_system_templates())) or "none"
                raise InvalidInput("template: no system template '%s' on provider '%s' (it stores: %s) nor in %s"
                                   % (value, connector.name, stored, library.where()), attribute="template") from None
    return cimi_template(connector, caps, load_template(connector, value, library), library=library)


def native_members(connector, system):
    """The members of a native System, each with its resource as the provider lists it."""
    if system is None:
        return []
    lists = {MACHINE: None, VOLUME: system.volumes and connector.list_volumes(),
             NETWORK: system.networks and connector.list_networks()}
    members = []
    for kind in KINDS:
        for ref in getattr(system, COLLECTIONS[kind]) or []:
            href = ref.get("href")
            try:
                resource = connector.get_machine(href) if kind == MACHINE else _same(lists[kind], href)
            except NotFound:
                resource = None
            name = resource.name if resource is not None else href
            component = _tag(resource, COMPONENT_PROPERTY) if resource is not None else None
            members.append(Member(kind, name, component, resource))
    return members


def _same(resources, href):
    for r in resources or ():
        if r.id == href or r.id.rstrip("/").rsplit("/", 1)[-1] == href.rstrip("/").rsplit("/", 1)[-1]:
            return r
    raise NotFound(href)


def plan_native(system, state):
    if state == "absent":
        return ["delete"] if system is not None else []
    steps = [] if system is not None else ["create"]
    current = system.state if system is not None else states.STOPPED
    wanted = POWER.get(state)
    if wanted is not None and current != wanted:
        steps.append(states.START if wanted == states.STARTED else states.STOP)
    return steps


def run_native(module, caps):
    p = module.params
    connector, name, state = module.connector, p["name"], p["state"]
    template = None
    if isinstance(p["template"], dict):  # checked even when the system exists and it is not used
        parse_template(p["template"])
    system = find_system(connector, name)
    if system is not None and system.state in BUSY_SYSTEM_STATES and state != "absent":
        system = wait_system(module, system.id, lambda s: s.state not in BUSY_SYSTEM_STATES)
    if system is None and state != "absent":
        if p["template"] is None:
            raise InvalidInput("template is required to create system '%s'" % name, attribute="template")
        template = native_reference(connector, caps, p["template"], templates.library_of(p))
    steps = plan_native(system, state)
    for verb in steps:
        caps.require("system." + verb)
    members = native_members(connector, system)
    before = system_doc(name, members, system=system) if system is not None else {}
    result = dict(changed=bool(steps), actions=["%s system %s" % (verb, name) for verb in steps],
                  orchestration="native")
    if module.check_mode:
        after = {} if state == "absent" else dict(before or System(name=name, description=p.get("description"),
                                                                   state=states.STOPPED).to_json())
        if after and steps and steps[-1] in (states.START, states.STOP):
            after["state"] = states.result_state(after.get("state"), steps[-1])
    else:
        system = execute_native(module, system, template, steps)
        after = system_doc(name, native_members(connector, system), system=system) if system is not None else {}
    if state != "absent":
        result["system"] = after
    if module.diff_mode:
        result["diff"] = dict(before=diff_doc(before), after=diff_doc(after))
    return result


def execute_native(module, system, template, steps):
    connector, p = module.connector, module.params
    for verb in steps:
        if verb == "create":
            properties = string_map(p.get("properties"), "properties")
            system = connector.create_system(p["name"], template, description=p.get("description"),
                                             properties=properties)
            system = wait_system(module, system.id, lambda s: s.state not in BUSY_SYSTEM_STATES)
        elif verb == "delete":
            connector.delete_system(system.id)
            if p.get("wait", True):
                wait_system(module, system.id, None)
            return None
        else:
            if verb == states.START:
                connector.start_system(system.id)
            else:
                connector.stop_system(system.id, force=bool(p.get("force")))
            wanted = states.result_state(None, verb)
            system = wait_system(module, system.id, lambda s, w=wanted: s.state == w)
    return system


def wait_system(module, system_id, done, interval=0.5):
    """The system once ``done(system)`` holds (``done`` None: once gone), within wait_timeout; without
    ``wait``, as it is now."""
    connector = module.connector
    while True:
        try:
            system = connector.get_system(system_id)
        except NotFound:
            if done is None:
                return None
            raise
        if done is not None and (done(system) or not module.params.get("wait", True)):
            return system
        if system.state == states.ERROR:
            raise Conflict("system '%s' went to state ERROR" % (system.name or system_id))
        if module.deadline.expired:
            raise OperationTimeout("wait_timeout: gave up after %s s: system '%s' is %s"
                                   % (module.params.get("wait_timeout"), system.name or system_id, system.state))
        time.sleep(interval)


# -- system_info -----------------------------------------------------------------------------------------------
def select(docs, name=None, match=None):
    chosen = [d for d in docs if (name is None or d.get("name") == name) and (match is None or match.matches(d))]
    return sorted(chosen, key=lambda d: (d.get("name") or "", d.get("id") or ""))


def run_info(module):
    """The ``system_info`` module: the provider's systems (natively), or those its resources' tags make."""
    p = module.params
    match = parse_filter(p["filter"]) if p["filter"] is not None else None  # checked before any call
    connector = module.connector
    caps = connector.capabilities()
    if caps.supports("system.list"):
        docs = [system_doc(s.name, native_members(connector, s), system=s) for s in connector.list_systems()
                if p["name"] is None or s.name == p["name"]]
        orchestration = "native"
    else:
        found = provider_resources(connector, caps)
        names = [p["name"]] if p["name"] is not None else systems_by_tag(found)
        docs = [system_doc(n, members) for n, members in ((n, tagged_members(n, found)) for n in names) if members]
        orchestration = "client"
    return dict(changed=False, systems=select(docs, p["name"], match), orchestration=orchestration)


# -- system_template, system_template_info ---------------------------------------------------------------------
def _template_store(connector, caps, operation):
    if not caps.supports(operation):
        raise Unsupported(connector.name, operation,
                          "provider '%s' does not store system templates (operation '%s'): give the system module "
                          "its template as a dictionary, or name one of the templates file (templates_file)"
                          % (connector.name, operation))


def find_template(connector, name):
    named = [t for t in connector.list_system_templates() if t.name == name]
    if len(named) > 1:
        raise Conflict("%d system templates are named '%s' on provider '%s'" % (len(named), name, connector.name))
    return named[0] if named else None


def run_template(module):
    """The ``system_template`` module: a SystemTemplate stored on the provider (the daemon)."""
    p = module.params
    connector, name, state = module.connector, p["name"], p["state"]
    check_name(name)
    caps = connector.capabilities()
    _template_store(connector, caps, "system_template.list")
    template = None
    if state == "present" and p["template"] is not None:  # every reference resolved before anything changes
        template = cimi_template(connector, caps, parse_template(p["template"]), name, p.get("description"))
    existing = find_template(connector, name)
    if state == "present" and existing is None and template is None:
        raise InvalidInput("template is required to store system template '%s'" % name, attribute="template")
    actions = []
    if state == "absent" and existing is not None:
        actions = ["delete"]
    elif state == "present" and existing is None:
        actions = ["create"]
    for verb in actions:
        caps.require("system_template." + verb)
    before = existing.to_json() if existing is not None else {}
    after = before
    if actions == ["create"]:
        after = template.to_json() if module.check_mode else connector.create_system_template(template).to_json()
    elif actions == ["delete"]:
        after = {}
        if not module.check_mode:
            connector.delete_system_template(existing.id)
    elif template is not None and existing is not None and differs(existing.to_json(), template.to_json()):
        module.warn("system template '%s' exists with other components and is left as it is (delete it, "
                    "state: absent, to store this one)" % name)
    result = dict(changed=bool(actions), actions=actions)
    if state == "present":
        result["system_template"] = after
    if module.diff_mode:
        result["diff"] = dict(before=_template_view(before), after=_template_view(after))
    return result


def differs(stored, wanted):
    """Whether a stored SystemTemplate's components are other than ``wanted``'s (what the provider adds aside)."""
    def components(doc):
        return [templates.comparable(d) for d in doc.get("componentDescriptors") or []]
    return components(stored) != components(wanted)


def _template_view(doc):
    if not doc:
        return {}
    return {"name": doc.get("name"), "description": doc.get("description"),
            "components": ["%s %s x%s" % (d.get("type", "").rsplit("/", 1)[-1], d.get("name"), d.get("quantity", 1))
                           for d in doc.get("componentDescriptors") or []]}


def run_template_info(module):
    p = module.params
    match = parse_filter(p["filter"]) if p["filter"] is not None else None
    connector = module.connector
    _template_store(connector, connector.capabilities(), "system_template.list")
    docs = [t.to_json() for t in connector.list_system_templates()]
    return dict(changed=False, system_templates=select(docs, p["name"], match))

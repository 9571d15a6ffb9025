# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The volume and volume_info modules: plan, execution, predicted result and filtering.

``run(module)`` makes a volume of ``name`` exist with at least ``size`` GiB (grown where the provider offers
``volume.resize``, never shrunk) and attached where ``attached_to`` says, or not exist. Every input and every
operation the plan needs is checked before the first change. ``module`` is a ``module.SiroccoModule`` (or
anything with its ``params``, ``connector``, ``check_mode``, ``diff_mode``, ``deadline`` and ``warn``).
"""

from __future__ import annotations

import time

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    OperationTimeout,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import Volume
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import parse_filter
from ansible_collections.sirocco.cimi.plugins.module_utils.module import diff_view, string_map

KB_PER_GIB = 1024 * 1024  # CIMI capacities are kilobytes (1024 bytes, as every connector counts them)
CREATE, RESIZE, ATTACH, DETACH, DELETE = "create", "resize", "attach", "detach", "delete"
OPERATION = {CREATE: "volume.create", RESIZE: "volume.resize", ATTACH: "volume.attach", DETACH: "volume.detach",
             DELETE: "volume.delete"}
DIFF_FIELDS = ("name", "state", "capacity", "type", "description", "properties", "attachedTo")
# CIMI attributes named in connector errors -> this module's options
ATTRIBUTE_OPTIONS = {"capacity": "size", "type": "type", "initialLocation": "device", "$filter": "filter"}
POLL = 0.5


# -- shared by the _info modules of this collection's resources ----------------------------------------------
def info_documents(resources, name=None, filter_text=None):
    """``resources`` as CIMI JSON documents, those named ``name`` that pass the CIMI ``filter_text``, sorted by
    name then id. The filter is parsed before ``resources`` is consumed (a generator fails later)."""
    match = parse_filter(filter_text) if filter_text is not None else None
    docs = [r.to_json() for r in resources if name is None or r.name == name]
    docs = [d for d in docs if match is None or match.matches(d)]
    return sorted(docs, key=lambda d: (d.get("name") or "", d.get("id") or ""))


def one_named(items, name, what, provider):
    """The one item called ``name`` (None); Conflict when several are, since the modules work by name."""
    found = [i for i in items if i.name == name]
    if len(found) > 1:
        raise Conflict("%d %ss are named '%s' on provider '%s' (%s); remove all but one"
                       % (len(found), what, name, provider, ", ".join(str(i.id) for i in found)))
    return found[0] if found else None


# -- inputs ------------------------------------------------------------------------------------------------
def wanted_kb(params):
    """The capacity ``size`` asks for, in KB (None when not given)."""
    size = params.get("size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise InvalidInput("size: a volume's size is a whole number of GiB, at least 1 (got %r)" % (size,),
                           attribute="size")
    return size * KB_PER_GIB


def check_params(params):
    """Every option checked before the provider is asked anything."""
    if not params.get("name"):
        raise InvalidInput("name: a volume needs a non-empty name", attribute="name")
    wanted_kb(params)
    if params.get("type") == "":
        raise InvalidInput("type: give a volume type (or leave the option out)", attribute="type")
    string_map(params.get("properties"), "properties")
    if params.get("device") and params.get("attached_to") in (None, ""):
        raise InvalidInput("device: only used when attaching; give attached_to too", attribute="device")


def attached_ids(volume):
    """Native ids of the machines the volume is attached to."""
    return [ref.get("href") if isinstance(ref, dict) else ref for ref in (volume.attachedTo or [])]


def same_type(have, want):
    """Whether a listed volume type (``gp3``, or ``ebs:gp3`` as some listings qualify it) is ``want``."""
    return have == want or str(have).rsplit(":", 1)[-1] == want


def resolve_machine(connector, ref):
    """The Machine ``attached_to`` names (a name, else a native id), or InvalidInput naming the option."""
    machine = connector.find_machine(ref)
    if machine is not None:
        return machine
    try:
        return connector.get_machine(ref)
    except NotFound:
        raise InvalidInput("attached_to: no machine '%s' on provider '%s'" % (ref, connector.name),
                           attribute="attached_to") from None


# -- the plan ----------------------------------------------------------------------------------------------
class Plan:
    """What takes the provider to the options: ``steps`` [(action, machine or None)], in order."""

    def __init__(self, volume):
        self.volume = volume
        self.steps = []
        self.machine = None  # the machine attached_to names, once resolved

    @property
    def actions(self):
        return [action for action, _machine in self.steps]

    def add(self, action, machine=None):
        self.steps.append((action, machine))


def plan_present(module, volume):
    """The Plan of ``state: present``; refuses a shrink or another type before anything changes."""
    p = module.params
    connector = module.connector
    plan = Plan(volume)
    want = wanted_kb(p)
    if volume is None:
        if want is None:
            raise InvalidInput("size: required to create volume '%s'" % p["name"], attribute="size")
        plan.add(CREATE)
    else:
        check_existing(module, volume, want)
        if want is not None and (volume.capacity or 0) < want:
            plan.add(RESIZE)
    attached = attached_ids(volume) if volume is not None else []
    if p.get("attached_to") == "":
        for machine_id in attached:
            plan.add(DETACH, connector.get_machine(machine_id))
    elif p.get("attached_to") is not None:
        plan.machine = resolve_machine(connector, p["attached_to"])
        if plan.machine.id not in attached:
            for machine_id in attached:  # moved: off the machine it is on, onto the one named
                plan.add(DETACH, connector.get_machine(machine_id))
            plan.add(ATTACH, plan.machine)
    return plan


def check_existing(module, volume, want):
    """InvalidInput when the existing volume cannot become what the options ask; warnings for what is kept."""
    p = module.params
    if want is not None and (volume.capacity or 0) > want:
        raise InvalidInput("size: volume '%s' holds %s; a volume never shrinks (size %d GiB asks for less)"
                           % (volume.name, show_capacity(volume.capacity), p["size"]), attribute="size")
    if p.get("type") and volume.type and not same_type(volume.type, p["type"]):
        raise InvalidInput("type: volume '%s' is of type %s, not %s; a volume's type does not change in place "
                           "(delete it, state=absent, to make it anew)" % (volume.name, volume.type, p["type"]),
                           attribute="type")
    if p.get("type") and not volume.type:
        module.warn("volume '%s' exists and provider '%s' reports no type for it: left as it is"
                    % (volume.name, module.connector.name))
    if p.get("description") is not None and volume.description != p["description"]:
        module.warn("volume '%s' left with its description: only creation sets it" % volume.name)
    for key, value in sorted((string_map(p.get("properties"), "properties") or {}).items()):
        if (volume.properties or {}).get(key) != value:
            module.warn("volume '%s' left with its properties: only creation sets them (%s differs)"
                        % (volume.name, key))


def show_capacity(kb):
    if kb and kb % KB_PER_GIB == 0:
        return "%d GiB" % (kb // KB_PER_GIB)
    return "%s KB" % kb


def plan_absent(module, volume):
    plan = Plan(volume)
    if volume is not None:
        for machine_id in attached_ids(volume):
            plan.add(DETACH, module.connector.get_machine(machine_id))
        plan.add(DELETE)
    return plan


def check_feasible(connector, plan):
    """Unsupported for an operation the provider lacks; Conflict for a machine whose state forbids a plug or
    unplug where the provider does not hot-plug. Before anything changes."""
    capabilities = connector.capabilities()
    for action in dict.fromkeys(plan.actions):
        capabilities.require(OPERATION[action])
    if capabilities.hot_plug:
        return
    for action, machine in plan.steps:
        if machine is not None and machine.state != states.STOPPED:
            raise Conflict("machine '%s' is %s and provider '%s' %ss volumes only on stopped machines: stop it "
                           "first" % (machine.name or machine.id, machine.state, connector.name, action))


# -- check mode ----------------------------------------------------------------------------------------------
def predicted(module, plan):
    """The Volume JSON the plan would leave ({} when gone)."""
    p = module.params
    if DELETE in plan.actions:
        return {}
    if plan.volume is None:
        doc = Volume(name=p["name"], state="AVAILABLE", capacity=wanted_kb(p), type=p.get("type"),
                     description=p.get("description"),
                     properties=string_map(p.get("properties"), "properties")).to_json()
    else:
        doc = plan.volume.to_json()
    if RESIZE in plan.actions:
        doc["capacity"] = wanted_kb(p)
    attached = [] if plan.volume is None else attached_ids(plan.volume)
    attached = [m for m in attached if m not in {machine.id for action, machine in plan.steps if action == DETACH}]
    attached += [machine.id for action, machine in plan.steps if action == ATTACH]
    if attached or doc.get("attachedTo"):
        doc["attachedTo"] = [{"href": machine_id} for machine_id in attached]
    return doc


# -- execution -----------------------------------------------------------------------------------------------
def execute(module, plan):
    """Run the plan's steps in order; the Volume JSON afterwards ({} once deleted)."""
    p = module.params
    connector = module.connector
    volume = plan.volume
    for action, machine in plan.steps:
        if action == CREATE:
            extra = {"volume_type": p["type"]} if p.get("type") else {}  # only where asked: older connectors
            volume = connector.create_volume(p["name"], wanted_kb(p), description=p.get("description"),
                                             properties=string_map(p.get("properties"), "properties"), **extra)
            volume = wait_volume(module, volume.id, lambda v: v.state not in (states.CREATING, None))
        elif action == RESIZE:
            connector.resize_volume(volume.id, wanted_kb(p))
            volume = wait_volume(module, volume.id, lambda v: (v.capacity or 0) >= wanted_kb(p))
        elif action == DETACH:
            connector.detach_volume(machine.id, volume.id)
            volume = wait_volume(module, volume.id, lambda v, m=machine.id: m not in attached_ids(v))
        elif action == ATTACH:
            connector.attach_volume(machine.id, volume.id, initial_location=p.get("device") or None)
            volume = wait_volume(module, volume.id, lambda v, m=machine.id: m in attached_ids(v))
        elif action == DELETE:
            connector.delete_volume(volume.id)
            wait_gone(module, volume.id)
            return {}
    return connector.get_volume(volume.id).to_json() if volume is not None else {}


def wait_volume(module, volume_id, done):
    """The Volume once ``done(volume)`` (within wait_timeout), or as it is now when wait=false."""
    deadline = module.deadline
    while True:
        volume = module.connector.get_volume(volume_id)
        if done(volume) or not module.params.get("wait"):
            return volume
        if volume.state == states.ERROR:
            raise Conflict("volume '%s' went to state ERROR" % (volume.name or volume_id))
        if deadline.expired:
            raise OperationTimeout("wait_timeout: gave up after %s s: volume '%s' is still %s"
                                   % (module.params.get("wait_timeout"), volume.name or volume_id, volume.state))
        time.sleep(POLL)


def wait_gone(module, volume_id):
    if not module.params.get("wait"):
        return
    deadline = module.deadline
    while volume_id in {v.id for v in module.connector.list_volumes()}:
        if deadline.expired:
            raise OperationTimeout("wait_timeout: gave up after %s s: volume %s is still there"
                                   % (module.params.get("wait_timeout"), volume_id))
        time.sleep(POLL)


# -- the modules ---------------------------------------------------------------------------------------------
def run(module):
    """The volume module."""
    p = module.params
    check_params(p)
    connector = module.connector
    connector.require("volume.list")
    volume = one_named(connector.list_volumes(), p["name"], "volume", connector.name)
    plan = plan_present(module, volume) if p["state"] == "present" else plan_absent(module, volume)
    check_feasible(connector, plan)
    before = volume.to_json() if volume is not None else {}
    after = predicted(module, plan) if module.check_mode else execute(module, plan)
    result = dict(changed=bool(plan.steps), actions=plan.actions)
    if p["state"] == "present":
        result["volume"] = after
    if module.diff_mode:
        result["diff"] = dict(before=diff_view(before, DIFF_FIELDS), after=diff_view(after, DIFF_FIELDS))
    return result


def run_info(module):
    """The volume_info module: the provider's volumes, by name and CIMI filter; never changes anything."""
    p = module.params
    if p.get("filter") is not None:
        parse_filter(p["filter"])  # a bad filter fails before the provider is asked anything
    module.connector.require("volume.list")
    return dict(changed=False, volumes=info_documents(module.connector.list_volumes(), p.get("name"), p.get("filter")))

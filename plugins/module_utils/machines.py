# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sirocco.cimi.machine module's logic: options -> plan -> (check mode) prediction or execution.

``run(module)`` resolves every option on the provider first (size, image, credential, networks, template),
finds the machine, plans the CIMI operations that bring it where the task asks (power states, a resize
where ``machine.resize`` is offered, a stop and start around it only with ``allow_restart``), checks that
the provider offers each, and only then changes anything. ``module`` is a ``module.SiroccoModule``.
"""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils import machine_images, templates
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import Machine
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    MachineSpec,
    check_guest_inputs,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.module import diff_view, string_map
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.match import WISH_LOCATION, Request

POWER_STATES = {"started": states.STARTED, "stopped": states.STOPPED,
                "paused": states.PAUSED, "suspended": states.SUSPENDED}
CREATE = "create"
DELETE = "delete"
RESIZE = "resize"
DIFF_FIELDS = ("name", "state", "cpu", "memory", "cpuArch", "disks", "description", "properties")
CONFIG_KEYS = templates.CONFIG_KEYS
# CIMI attributes in errors -> the option the user wrote.
ATTRIBUTE_OPTIONS = {"machineConfig": "machine_config", "machineImage": "machine_image", "initialState": "state",
                     "userData": "user_data", "credential": "credential", "machineTemplate": "machine_template",
                     "networks": "networks", "templates": "templates", "templates_file": "templates_file"}
# the credential's CIMI attributes in messages -> its suboptions
CREDENTIAL_WORDS = (("credential.key", "credential.public_key"), ("credential.userName", "credential.user_name"))
config_by_value = templates.config_by_value
resolve_config = templates.resolve_config


def plan(current, state, initial_states=states.INITIAL_STATES):
    """The operations that take a machine in state ``current`` (None: absent) to ``state``.

    Returns (initial_state, operations): ``initial_state`` is the state to
    create the machine in, None when no machine is created.
    """
    if state == "absent":
        return None, () if current is None else (DELETE,)
    if current is None:
        wanted = POWER_STATES.get(state, states.STARTED if state == "restarted" else states.STOPPED)
        started = wanted != states.STOPPED or states.STOPPED not in initial_states
        initial = states.STARTED if started and states.STARTED in initial_states else states.STOPPED
        return initial, (CREATE,) + states.path_to(initial, wanted)
    if state == "present":
        return None, ()
    if state == "restarted":
        if current == states.STARTED:
            return None, (states.RESTART,)
        if current in (states.PAUSED, states.SUSPENDED):
            return None, (states.STOP, states.START)
        return None, states.path_to(current, states.STARTED)
    return None, states.path_to(current, POWER_STATES[state])


def predicted_state(current, initial, operations):
    """The state a machine ends in after ``operations`` (None once deleted)."""
    state = current
    for op in operations:
        if op == CREATE:
            state = initial
        elif op != RESIZE:
            state = states.result_state(state, op)
    return state


def needs_resize(machine, config, sizes=()):
    """Whether ``machine`` lacks ``config``'s cpu or memory. A dictionary (no id) that the provider would round
    up to one of its ``sizes`` (EC2 instance types, OpenStack flavors) is satisfied by the smallest size that
    fits it, the one the machine would have been created with."""
    if machine.cpu is None or machine.memory is None:  # the provider does not tell: nothing to compare
        return False
    if machine.cpu == config.cpu and machine.memory == config.memory:
        return False
    if config.id is None:
        fitting = [s for s in sizes if s.cpu and s.memory and s.cpu >= config.cpu and s.memory >= config.memory]
        smallest = min(fitting, key=lambda s: (s.memory, s.cpu), default=None)
        if smallest is not None and (smallest.cpu, smallest.memory) == (machine.cpu, machine.memory):
            return False
    return True


def with_resize(current, operations, needs_stop, allow_restart, name):
    """``operations`` with RESIZE where the machine can take it: at once when it needs no stop, else after the
    plan's own stop, else (``allow_restart``, or a restart asked) between a stop and the way back to the state
    the plan ends in. Without that consent, Conflict saying a stop is needed, before anything changes."""
    if not needs_stop:
        return (RESIZE,) + tuple(operations)
    state = current
    for i, op in enumerate(operations):
        state = states.result_state(state, op)
        if state == states.STOPPED:
            return tuple(operations[:i + 1]) + (RESIZE,) + tuple(operations[i + 1:])
    final = predicted_state(current, None, operations)
    if allow_restart or tuple(operations) == (states.RESTART,):
        return (states.STOP, RESIZE) + states.path_to(states.STOPPED, final)
    raise Conflict("machine '%s' is %s and the provider resizes it only stopped: set allow_restart: true to stop it, "
                   "resize it and bring it back to %s, or ask state: stopped" % (name, current, final))


def resolve_image(connector, ref):
    """The native id of the image ``machine_image`` names: a native id or name, else a generic name."""
    return machine_images.resolve_image(connector, ref).id


def resolve_credential(connector, given):
    """The MachineSpec credential ({"username", "key"}) of the ``credential`` option: a key given by value, or
    the key and user of a credential the provider keeps (``name``; ``user_name`` overrides its user)."""
    if not given:
        return None
    templates.check_credential(given, "credential", "credential")
    if not given.get("name"):
        return {"username": given.get("user_name"), "key": given.get("public_key")}
    stored = templates.stored_credential(connector, given["name"])
    if not stored.key:
        raise InvalidInput("credential.name: credential '%s' of provider '%s' holds no SSH public key that can be "
                           "read back; give credential.public_key" % (given["name"], connector.name),
                           attribute="credential")
    return {"username": given.get("user_name") or stored.userName, "key": stored.key}


def machine_spec(params, config, image_id, initial_state, capabilities=None, credential=None, networks=()):
    """The MachineSpec a create sends, from the module's options; its guest inputs checked against what the
    provider takes (``capabilities``) before anything is created. ``credential`` is the resolved one (else the
    ``credential`` option's key and user), ``networks`` native network ids."""
    if credential is None and params.get("credential") and params["credential"].get("public_key"):
        given = params["credential"]
        credential = {"username": given.get("user_name"), "key": given.get("public_key")}
    spec = MachineSpec(name=params["name"], config=config, image=image_id, initial_state=initial_state,
                       description=params.get("description"),
                       properties=string_map(params.get("properties"), "properties") or {},
                       user_data=params.get("user_data"), credential=credential, networks=list(networks))
    spec.validate()
    if capabilities is not None:
        try:
            check_guest_inputs(spec, capabilities.provider, capabilities.guest_inputs)
        except InvalidInput as exc:
            message = exc.message
            for cimi, option in CREDENTIAL_WORDS:
                message = message.replace(cimi, option)
            raise InvalidInput(message.replace("userData", "user_data"), attribute=exc.attribute) from None
    return spec


def differences(doc, config=None, description=None, properties=None, networks=()):
    """What the existing machine ``doc`` (CIMI JSON) has other than requested and no operation changes:
    human-readable lines (cpu and memory are resized, not listed)."""
    found = []
    wanted = (config or {}).get("cpuArch")
    if wanted is not None and doc.get("cpuArch") != wanted:
        found.append("cpuArch is %s, machine_config asks %s" % (doc.get("cpuArch"), wanted))
    if description is not None and doc.get("description") != description:
        found.append("description differs")
    for key, value in sorted((properties or {}).items()):
        if (doc.get("properties") or {}).get(key) != value:
            found.append("properties.%s differs" % key)
    plugged = {(i.get("network") or {}).get("href") for i in doc.get("interfaces") or []}
    missing = [n for n in networks if n not in plugged]
    if missing:
        found.append("networks: not plugged into %s" % ", ".join(missing))
    return found


def predicted_machine(machine, spec, state, config=None):
    """The Machine JSON check mode reports: the existing one in its new state (with ``config``'s cpu and memory
    when it is resized), or the one to create."""
    if machine is not None:
        doc = machine.to_json()
        doc["state"] = state
        if config is not None:
            doc["cpu"], doc["memory"] = config.cpu, config.memory
        return doc
    config = spec.config
    return Machine(name=spec.name, description=spec.description, properties=spec.properties or None, state=state,
                   cpu=config.cpu, memory=config.memory, cpuArch=config.cpuArch, disks=config.disks).to_json()


def placement_request(value, state, properties, image=None):
    """The match.Request of ``machine_config`` (a size name or a dictionary) for ``provider: auto``."""
    operations = ["machine." + op for op in plan(None, state)[1] if op != CREATE]
    if isinstance(value, str):
        return Request.build(size=value, properties=properties, operations=operations, image=image)
    if not isinstance(value, dict):
        raise InvalidInput("machine_config: expected a size name or a dictionary, got %s" % type(value).__name__,
                           attribute="machineConfig")
    return Request.build(config=config_by_value(value), properties=properties, operations=operations, image=image)


def place(module, params, properties):
    """``provider: auto``: the Placement chosen among ``providers``; the module now uses its connector."""
    request = None
    if params["state"] != "absent" and params["machine_config"] is not None:
        request = placement_request(params["machine_config"], params["state"], properties,
                                    params["machine_image"] or None)
    placement = module.place(params["name"], request)
    if placement.label is None and params["state"] != "absent":
        raise InvalidInput("machine_config is required to create machine '%s'" % params["name"],
                           attribute="machineConfig")
    return placement


def with_template(module, library):
    """The module's options with its ``machine_template``'s filled in, and where the template came from
    (None without one). With ``provider: auto`` only client-side templates count: no provider is chosen yet."""
    p = module.params
    if not p.get("machine_template") or p["state"] == "absent":
        return dict(p), None
    if module.auto:
        found = library.template(p["machine_template"])
        if found is None:
            raise InvalidInput("machine_template: with provider: auto, '%s' must be a client-side template, and %s "
                               "define none of that name" % (p["machine_template"], library.where()),
                               attribute="machineTemplate")
    else:
        connector = module.connector
        found = templates.find_template(connector, connector.capabilities(), p["machine_template"], library)
    options, source = found
    return templates.merge(options, p), {"name": p["machine_template"], "source": source}


def rounding_sizes(connector, capabilities, config):
    """The sizes a provider rounds ``config`` up to when it was given by value (EC2 instance types, OpenStack
    flavors, libcloud sizes: Capabilities.rounds_to_sizes): a machine of such a size "has" the dictionary. ()
    where the provider makes exactly what is asked (hypervisors, a CIMI endpoint)."""
    if config.id is not None or not capabilities.rounds_to_sizes:
        return ()
    try:
        return connector.list_machine_configs()
    except Unsupported:
        return ()


def run(module):
    library = templates.library_of(module.params)
    p, template = with_template(module, library)
    state = p["state"]
    properties = string_map(p["properties"], "properties")
    placement = place(module, p, properties) if module.auto else None
    if placement is not None and placement.label is None:  # absent, and on none of the providers
        return dict(changed=False, actions=[], **(dict(diff=dict(before={}, after={})) if module.diff_mode else {}))
    connector = module.connector
    capabilities = connector.capabilities()
    config = image_id = credential = None
    networks = []
    if state != "absent":
        if placement is not None and placement.size is not None:
            config = placement.size
        elif p["machine_config"] is not None:
            config = resolve_config(connector, capabilities, p["machine_config"], library)
        if p["machine_image"]:
            image_id = resolve_image(connector, p["machine_image"])
        networks = [templates.network_id(connector, ref) for ref in p.get("networks") or []]

    machine = connector.find_machine(p["name"])
    if machine is not None and machine.state not in states.STABLE_MACHINE_STATES:
        machine = module.wait_for_machine(machine.id, states.STABLE_MACHINE_STATES)  # waiting changes nothing
    current = machine.state if machine is not None else None
    initial, operations = plan(current, state, capabilities.initial_states)

    spec = resized = None
    if CREATE in operations:
        if config is None:
            raise InvalidInput("machine_config is required to create machine '%s'" % p["name"],
                               attribute="machineConfig")
        credential = resolve_credential(connector, p.get("credential"))
        spec = machine_spec(p, config, image_id, initial, capabilities, credential, networks)
        if placement is not None:
            spec.location = (properties or {}).get(WISH_LOCATION)
    elif machine is not None and state != "absent" and config is not None and needs_resize(
            machine, config, rounding_sizes(connector, capabilities, config)):
        capabilities.require("machine.resize")
        needs_stop = connector.resize_needs_stop(machine, config)
        operations = with_resize(current, operations, needs_stop, p.get("allow_restart"), p["name"])
        resized = config
    for op in operations:
        capabilities.require("machine." + op)
    if machine is not None and state != "absent":
        # a named size's cpuArch is one of those it runs (EC2 lists i386 before x86_64): only a dictionary's counts
        asked = {"cpuArch": config.cpuArch} if config is not None and config.id is None else None
        for line in differences(machine.to_json(), asked, p["description"], properties, networks):
            module.warn("machine '%s' left unchanged: %s (only creation sets these)" % (p["name"], line))

    final_state = predicted_state(current, initial, operations)
    before = machine.to_json() if machine is not None else {}
    result = dict(changed=bool(operations), actions=list(operations))
    if template is not None:
        result["template"] = template
    if module.check_mode:
        after = predicted_machine(machine, spec, final_state, resized) if final_state else {}
    else:
        after, performed = execute(module, machine, spec, initial, operations, resized)
        result["actions"] = performed
    if state != "absent":
        result["machine"] = after
    if module.diff_mode:
        result["diff"] = dict(before=diff_view(before, DIFF_FIELDS), after=diff_view(after, DIFF_FIELDS))
    return result


def execute(module, machine, spec, initial, operations, config=None):
    """Run the planned operations (``config``: the new hardware of a RESIZE); the machine's JSON afterwards
    ({} once deleted) and the operations performed.

    A provider may only learn at the resize that a running machine exceeds what it resizes live (a CIMI
    endpoint whose host has maximums): with ``allow_restart`` the machine is then stopped, resized and brought
    back; without it the provider's Conflict stands, nothing having changed."""
    connector = module.connector
    machine_id = machine.id if machine is not None else None
    state = machine.state if machine is not None else None
    done = []
    pending = list(operations)
    while pending:
        op = pending.pop(0)
        if op == CREATE:
            machine_id = connector.create_machine(spec).id
            state = initial
        elif op == RESIZE:
            try:
                connector.resize_machine(machine_id, config)
            except Conflict:
                if state == states.STOPPED or not module.params.get("allow_restart"):
                    raise
                back = states.path_to(states.STOPPED, predicted_state(state, None, pending))
                pending = [states.STOP, RESIZE] + list(back)
                continue
        else:
            connector.machine_action(machine_id, op, force=module.params["force"])
            state = states.result_state(state, op)
        done.append(op)
        # Later operations need the machine settled; after the last one, only if asked to.
        if pending or module.params["wait"]:
            module.wait_for_machine(machine_id, state)
    if state is None:
        return {}, done
    return connector.get_machine(machine_id).to_json(), done

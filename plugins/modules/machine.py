#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine
short_description: Create, delete, start, stop, pause, suspend or restart a CIMI Machine on any provider
version_added: 0.1.0
description:
  - Makes a machine (a virtual machine, a cloud instance) exist or not, and brings it to a power state,
    on whichever provider O(provider) selects, through the provider's Sirocco connector.
  - The machine is found by its O(name); names must be unique on the provider.
  - O(state) keeps existence (V(present), V(absent)) apart from power states; a power state implies
    V(present), creating the machine when it does not exist.
  - The module is idempotent; only O(state=restarted) always reports a change.
  - Resizing is not part of the connector contract; when the existing machine differs from
    O(machine_config), O(description) or O(properties), the module leaves it as it is and warns.
  - Every input is checked before anything is changed; a bad size, image or option changes nothing.
  - With O(provider=auto) the module chooses the provider itself among O(providers) (see O(placement_policy)),
    and returns the one chosen in RV(provider) and why in RV(placement).
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Name of the machine.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the machine exists; a new one is left V(stopped), as CIMI prescribes.
      - V(absent) deletes it (stopping it first, if the provider needs that).
      - V(started), V(stopped), V(paused) and V(suspended) bring it to that power state by the shortest
        path of CIMI operations, creating it first if needed (created started when the provider allows).
      - V(restarted) restarts a started machine, starts a stopped one, and stops then starts a paused
        or suspended one; it always reports a change.
    type: str
    choices: [present, absent, started, stopped, paused, suspended, restarted]
    default: present
  provider:
    description:
      - The provider (connector) to talk to, or V(auto) to choose one of O(providers) by O(placement_policy).
      - If not set, the value of the E(SIROCCO_PROVIDER) environment variable is used, else C(libvirt).
    choices: [auto, cimi, ec2, libcloud, libvirt, openstack, vsphere, xenserver]
  machine_config:
    description:
      - The hardware of a new machine, either the name of a size the provider offers
        (see M(sirocco.cimi.provider_info)), or a dictionary giving it by value.
      - Required to create a machine. Ignored when O(state=absent).
      - With O(provider=auto), a dictionary is what the machine needs at least; it gets the smallest fitting size
        of the chosen provider (exactly this hardware on a provider that lists no sizes). A size name limits the
        choice to providers offering a size of that name.
      - An unknown size name is an error that lists the provider's sizes.
      - A dictionary may hold C(cpu) (number of virtual CPUs, required), C(memory_mib) (memory in MiB,
        required), C(disk_gib) (size of the first disk in GiB, default 0 for none) and C(cpu_arch)
        (a CIMI architecture such as C(x86_64)); it must fit the provider's advertised ranges.
    type: raw
  machine_image:
    description:
      - Name or id of the image a new machine boots from, or its generic name, the name
        M(sirocco.cimi.machine_image) registered it under on every provider
        (O(sirocco.cimi.machine_image#module:generic_name)), which the provider keeps with the image
        as its C(sirocco.image) property.
      - A native id or name wins over a generic name. An unknown name, or a generic name several images of the
        provider carry, is an error listing them.
      - Omit it for a diskless machine (useful for tests; such a machine has no guest OS).
      - Ignored when O(state=absent).
    type: str
  description:
    description:
      - Description of a new machine.
    type: str
  properties:
    description:
      - Free-form string pairs (CIMI C(properties)) of a new machine; values are turned into strings.
    type: dict
  user_data:
    description:
      - Data handed to the guest at its first boot, which cloud-init reads (a C(#cloud-config) document, a shell
        script, a MIME multipart document); each provider takes it its own way (a NoCloud seed on libvirt,
        C(guestinfo.userdata) on vSphere, a config drive on XenServer, C(UserData) on EC2, C(user_data) on
        OpenStack, the C(userData) of a CIMI endpoint).
      - Only used when the machine is created. A provider that cannot pass it, or userData over its limit
        (16 KiB on EC2), fails before anything is created.
      - Not logged, since userData often carries secrets.
    type: str
  credential:
    description:
      - The SSH public key a new machine's guest lets in, and the user it lets in as.
      - Only used when the machine is created. A provider that cannot put it into a guest fails before
        anything is created; so does a key that is not an OpenSSH public key.
      - Each provider takes it its own way (the cloud-init seed on libvirt, vSphere and XenServer, a key pair
        named C(sirocco-<digest of the key>) on EC2 and OpenStack, imported once and reused, a Credential on
        a CIMI endpoint); the user name is kept with the machine as its C(sirocco.user) property, where the
        inventory plugin reads C(ansible_user).
    type: dict
    suboptions:
      public_key:
        description:
          - One OpenSSH public key line, for example C({{ lookup('file', '~/.ssh/id_ed25519.pub') }}).
        type: str
        required: true
      user_name:
        description:
          - The user the key is installed for; created in the guest when the image has no such user, with
            password-less sudo.
          - On EC2 and OpenStack the key goes to the image's own default user, and this name is only recorded.
          - If not set, the image's default user (C(debian) on Debian's cloud images and on the images
            M(sirocco.cimi.machine_image) builds), which libvirt records as the machine's user; EC2 and
            OpenStack record none.
        type: str
  force:
    description:
      - Stop or restart the machine hard (power off, reset) rather than asking its guest OS.
      - A graceful stop is an ACPI request that only a running guest OS honours; a machine without one,
        such as a diskless machine, keeps running, and the wait for V(stopped) ends at O(wait_timeout).
    type: bool
    default: false
extends_documentation_fragment:
  - sirocco.cimi.provider
  - sirocco.cimi.wait
  - sirocco.cimi.placement
  - ansible.builtin.action_common_attributes
attributes:
  action_group:
    description: Use C(group/sirocco.cimi.cimi) in C(module_defaults) to set the provider options once.
    support: full
    membership: [sirocco.cimi.cimi]
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the machine's state, hardware, description and properties before and after.
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.machine_info
  - module: sirocco.cimi.provider_info
"""

EXAMPLES = r"""
- name: A running diskless machine of size tiny on the local libvirtd
  sirocco.cimi.machine:
    name: web-1
    machine_config: tiny
    state: started

- name: Hardware by value, with properties
  sirocco.cimi.machine:
    name: db-1
    machine_config:
      cpu: 2
      memory_mib: 512
      disk_gib: 4
    machine_image: debian-12
    properties:
      role: db
    state: started

- name: A Debian guest that lets my key in and runs a command at first boot
  sirocco.cimi.machine:
    name: app-1
    machine_config: {cpu: 1, memory_mib: 1024}
    machine_image: debian-12
    credential:
      user_name: debian
      public_key: "{{ lookup('file', '~/.ssh/id_ed25519.pub') }}"
    user_data: |
      #cloud-config
      runcmd:
        - [touch, /var/lib/first-boot-done]
    state: started

- name: Power off hard (a machine without a guest OS ignores a graceful stop)
  sirocco.cimi.machine:
    name: web-1
    state: stopped
    force: true

- name: Whichever provider has room for 2 vCPUs and 1 GiB and can pause, the cheapest known
  sirocco.cimi.machine:
    name: batch-1
    provider: auto
    providers:
      - label: lab
        uri: qemu:///system
        provider_options:
          sizes:
            - {name: m2, cpu: 2, memory_mib: 1024, price_per_hour: 0.01}
      - label: xen-pool
        provider: xenserver
        uri: https://xenserver.example.org
        username: root
        password: "{{ xen_password }}"
        prices: {large: 0.02, xlarge: 0.04}
    placement_policy: cheapest
    machine_config:
      cpu: 2
      memory_mib: 1024
    properties:
      sirocco.operations: machine.pause
    state: started
  register: batch

- name: Where it went, and why
  ansible.builtin.debug:
    msg: "{{ batch.provider }}: {{ batch.placement.why }}"

- name: Provider options set once for every module of the collection
  module_defaults:
    group/sirocco.cimi.cimi:
      provider: libvirt
      uri: qemu:///system
  block:
    - name: Delete the machine
      sirocco.cimi.machine:
        name: web-1
        state: absent
"""

RETURN = r"""
machine:
  description:
    - The machine as a CIMI Machine JSON document, after the change.
    - In check mode, the machine as it would be (without C(id) when it would be created).
  returned: when O(state) is not V(absent)
  type: dict
  contains:
    id:
      description: The provider's identifier of the machine.
      type: str
      sample: 6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b
    name:
      description: Its name.
      type: str
      sample: web-1
    state:
      description: Its CIMI state.
      type: str
      sample: STARTED
    cpu:
      description: Number of virtual CPUs.
      type: int
      sample: 1
    memory:
      description: Memory in KiB.
      type: int
      sample: 65536
  sample:
    resourceURI: http://schemas.dmtf.org/cimi/2/Machine
    id: 6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b
    name: web-1
    state: STARTED
    cpu: 1
    memory: 65536
    cpuArch: x86_64
actions:
  description: The CIMI operations performed (or, in check mode, that would be), in order.
  returned: always
  type: list
  elements: str
  sample: [create, start]
provider:
  description:
    - The provider used; with O(provider=auto), the label of the one chosen.
    - With O(provider=auto) and O(state=absent), null when the machine exists on none of O(providers).
  returned: always
  type: str
  sample: libvirt
placement:
  description:
    - With O(provider=auto), how the provider was chosen. Also returned on failure when no provider fits.
  returned: when O(provider=auto)
  type: dict
  contains:
    provider:
      description: Label of the chosen provider (null when none).
      type: str
      sample: lab
    connector:
      description: The chosen provider's connector.
      type: str
      sample: libvirt
    policy:
      description: The O(placement_policy) applied, or C(existing) when the machine existed already on that provider.
      type: str
      sample: first
    why:
      description: The choice in one sentence, with the reasons of every rejected provider.
      type: str
      sample: "lab chosen by policy first: the only provider that fits; size 'small' (1 vCPU, 128 MiB, 1 GiB disk).
        Rejected: box: no size with ≥ 96 MiB memory (largest: 'mini' (1 vCPU, 32 MiB))"
    size:
      description: Name of the size the machine is (or would be) created with; null when by value.
      type: str
      sample: small
    candidates:
      description: Labels of the providers that could take the machine.
      type: list
      elements: str
      sample: [lab]
    rejected:
      description: The other providers, each with the reasons it was rejected.
      type: dict
      sample: {"box": ["no size with ≥ 96 MiB memory (largest: 'mini' (1 vCPU, 32 MiB))"]}
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import machine_images
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    InvalidInput,
    NotFound,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import CPU_ARCHS, Machine, MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    KIB_PER_MIB,
    MachineSpec,
    check_guest_inputs,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule, diff_view, string_map
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.match import WISH_LOCATION, Request

POWER_STATES = {"started": states.STARTED, "stopped": states.STOPPED,
                "paused": states.PAUSED, "suspended": states.SUSPENDED}
CREATE = "create"
DELETE = "delete"
DIFF_FIELDS = ("name", "state", "cpu", "memory", "cpuArch", "disks", "description", "properties")
CONFIG_KEYS = ("cpu", "memory_mib", "disk_gib", "cpu_arch")
# CIMI attributes in errors -> the option the user wrote.
ATTRIBUTE_OPTIONS = {"machineConfig": "machine_config", "machineImage": "machine_image", "initialState": "state",
                     "userData": "user_data", "credential": "credential"}
# the credential's CIMI attributes in messages -> its suboptions
CREDENTIAL_WORDS = (("credential.key", "credential.public_key"), ("credential.userName", "credential.user_name"))


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
        state = initial if op == CREATE else states.result_state(state, op)
    return state


def _integer(config, key, minimum):
    value = config[key]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInput("machine_config.%s: expected an integer of at least %d, got %r" % (key, minimum, value),
                           attribute="machineConfig")
    return value


def config_by_value(config):
    """A MachineConfiguration from the dictionary form of ``machine_config``."""
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise InvalidInput("machine_config: unknown key(s) %s (known: %s)"
                           % (", ".join(unknown), ", ".join(CONFIG_KEYS)), attribute="machineConfig")
    for key in ("cpu", "memory_mib"):
        if config.get(key) is None:
            raise InvalidInput("machine_config.%s is required when machine_config is a dictionary" % key,
                               attribute="machineConfig")
    arch = config.get("cpu_arch")
    if arch is not None and arch not in CPU_ARCHS:
        raise InvalidInput("machine_config.cpu_arch: '%s' is not one of %s" % (arch, ", ".join(CPU_ARCHS)),
                           attribute="machineConfig")
    disk_gib = _integer(config, "disk_gib", 0) if config.get("disk_gib") is not None else 0
    return MachineConfiguration(
        cpu=_integer(config, "cpu", 1), memory=_integer(config, "memory_mib", 1) * KIB_PER_MIB, cpuArch=arch,
        disks=[{"capacity": disk_gib * 1024 * 1024}] if disk_gib else None)


def resolve_config(connector, capabilities, value):
    """``machine_config`` (a size name or a dictionary) as a MachineConfiguration the provider accepts."""
    if isinstance(value, str):
        try:
            return connector.get_machine_config(value)
        except Unsupported:
            raise InvalidInput("machine_config: provider '%s' offers no named sizes; give machine_config as a "
                               "dictionary (%s)" % (connector.name, ", ".join(CONFIG_KEYS)),
                               attribute="machineConfig") from None
        except NotFound:
            known = ", ".join(c.name or c.id for c in connector.list_machine_configs()) or "none"
        raise InvalidInput("machine_config: unknown size '%s' on provider '%s' (known: %s)"
                           % (value, connector.name, known), attribute="machineConfig")
    if not isinstance(value, dict):
        raise InvalidInput("machine_config: expected a size name or a dictionary, got %s" % type(value).__name__,
                           attribute="machineConfig")
    config = config_by_value(value)
    reasons = capabilities.fits(cpu=config.cpu, memory_mib=config.memory // KIB_PER_MIB, arch=config.cpuArch)
    if reasons:
        raise InvalidInput("machine_config: does not fit provider '%s': %s" % (connector.name, "; ".join(reasons)),
                           attribute="machineConfig")
    return config


def resolve_image(connector, ref):
    """The native id of the image ``machine_image`` names: a native id or name, else a generic name."""
    return machine_images.resolve_image(connector, ref).id


def machine_spec(params, config, image_id, initial_state, capabilities=None):
    """The MachineSpec a create sends, from the module's options; its guest inputs checked against what the
    provider takes (``capabilities``) before anything is created."""
    credential = None
    if params.get("credential"):
        given = params["credential"]
        credential = {"username": given.get("user_name"), "key": given.get("public_key")}
    spec = MachineSpec(name=params["name"], config=config, image=image_id, initial_state=initial_state,
                       description=params.get("description"),
                       properties=string_map(params.get("properties"), "properties") or {},
                       user_data=params.get("user_data"), credential=credential)
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


def differences(doc, config=None, description=None, properties=None):
    """What the existing machine ``doc`` (CIMI JSON) has other than requested: human-readable lines."""
    found = []
    if config is not None:
        for wire, unit in (("cpu", ""), ("memory", " KiB"), ("cpuArch", "")):
            wanted = config.get(wire)
            if wanted is not None and doc.get(wire) != wanted:
                found.append("%s is %s%s, machine_config asks %s%s" % (wire, doc.get(wire), unit, wanted, unit))
    if description is not None and doc.get("description") != description:
        found.append("description differs")
    for key, value in sorted((properties or {}).items()):
        if (doc.get("properties") or {}).get(key) != value:
            found.append("properties.%s differs" % key)
    return found


def predicted_machine(machine, spec, state):
    """The Machine JSON check mode reports: the existing one in its new state, or the one to create."""
    if machine is not None:
        doc = machine.to_json()
        doc["state"] = state
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


def place(module, properties):
    """``provider: auto``: the Placement chosen among ``providers``; the module now uses its connector."""
    p = module.params
    request = None
    if p["state"] != "absent" and p["machine_config"] is not None:
        request = placement_request(p["machine_config"], p["state"], properties, p["machine_image"] or None)
    placement = module.place(p["name"], request)
    if placement.label is None and p["state"] != "absent":
        raise InvalidInput("machine_config is required to create machine '%s'" % p["name"], attribute="machineConfig")
    return placement


def run(module):
    p = module.params
    state = p["state"]
    properties = string_map(p["properties"], "properties")
    placement = place(module, properties) if module.auto else None
    if placement is not None and placement.label is None:  # absent, and on none of the providers
        return dict(changed=False, actions=[], **(dict(diff=dict(before={}, after={})) if module.diff_mode else {}))
    connector = module.connector
    capabilities = connector.capabilities()
    config = image_id = None
    if state != "absent":
        if placement is not None and placement.size is not None:
            config = placement.size
        elif p["machine_config"] is not None:
            config = resolve_config(connector, capabilities, p["machine_config"])
        if p["machine_image"]:
            image_id = resolve_image(connector, p["machine_image"])

    machine = connector.find_machine(p["name"])
    if machine is not None and machine.state not in states.STABLE_MACHINE_STATES:
        machine = module.wait_for_machine(machine.id, states.STABLE_MACHINE_STATES)  # waiting changes nothing
    current = machine.state if machine is not None else None
    initial, operations = plan(current, state, capabilities.initial_states)

    spec = None
    if CREATE in operations:
        if config is None:
            raise InvalidInput("machine_config is required to create machine '%s'" % p["name"],
                               attribute="machineConfig")
        spec = machine_spec(p, config, image_id, initial, capabilities)
        if placement is not None:
            spec.location = (properties or {}).get(WISH_LOCATION)
    for op in operations:
        capabilities.require("machine." + op)
    if machine is not None and state != "absent":
        for line in differences(machine.to_json(), config.to_json() if config else None, p["description"],
                                properties):
            module.warn("machine '%s' left unchanged: %s (only creation sets these)" % (p["name"], line))

    final_state = predicted_state(current, initial, operations)
    before = machine.to_json() if machine is not None else {}
    result = dict(changed=bool(operations), actions=list(operations))
    if module.check_mode:
        after = predicted_machine(machine, spec, final_state) if final_state else {}
    else:
        after = execute(module, machine, spec, initial, operations)
    if state != "absent":
        result["machine"] = after
    if module.diff_mode:
        result["diff"] = dict(before=diff_view(before, DIFF_FIELDS), after=diff_view(after, DIFF_FIELDS))
    return result


def execute(module, machine, spec, initial, operations):
    """Run the planned operations; the machine's JSON afterwards ({} once deleted)."""
    connector = module.connector
    machine_id = machine.id if machine is not None else None
    state = machine.state if machine is not None else None
    for i, op in enumerate(operations):
        if op == CREATE:
            machine_id = connector.create_machine(spec).id
            state = initial
        else:
            connector.machine_action(machine_id, op, force=module.params["force"])
            state = states.result_state(state, op)
        # Later operations need the machine settled; after the last one, only if asked to.
        if i < len(operations) - 1 or module.params["wait"]:
            module.wait_for_machine(machine_id, state)
    if state is None:
        return {}
    return connector.get_machine(machine_id).to_json()


def main():
    module = SiroccoModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present",
                       choices=["present", "absent", "started", "stopped", "paused", "suspended", "restarted"]),
            machine_config=dict(type="raw"),
            machine_image=dict(type="str"),
            description=dict(type="str"),
            properties=dict(type="dict"),
            force=dict(type="bool", default=False),
            user_data=dict(type="str", no_log=True),
            credential=dict(type="dict", options=dict(
                public_key=dict(type="str", required=True, no_log=False),
                user_name=dict(type="str"),
            )),
        ),
        wait=True,
        placement=True,
        attribute_options=ATTRIBUTE_OPTIONS,
    )
    module.run(run)


if __name__ == "__main__":
    main()

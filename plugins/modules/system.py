#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: system
short_description: Create, start, stop or delete a CIMI System (machines, volumes and networks made together)
version_added: 0.2.0
description:
  - Makes a system exist or not on the provider O(provider) selects, and brings its machines to a power state
    together. A system is a group of machines, volumes and networks made from one O(template), each member with
    its own state.
  - On a provider that makes systems itself (a CIMI endpoint such as C(siroccod), which advertises
    C(system.create)), the system is the provider's CIMI System, created from the template (sent by value, or a
    stored template by reference), started, stopped and deleted by the provider. It names the members as
    DSP0263 Table 14 says, after their component (C(c), or C(c1), C(c2)... when the component has several).
  - On every other provider the module makes the members itself through the provider's machine, volume and
    network operations. Member C(n) of component C(c) of system C(s) is named C(s-c) (C(s-c-n) when the
    component has several members) and, where the provider keeps properties, carries
    C(sirocco.system=s) and C(sirocco.component=c). Members are created in order (networks, volumes, machines,
    then the volumes' attachments); if one fails, the module deletes what this run created (never what existed)
    and fails saying what it undid. A re-run creates only what is missing.
  - Every input is checked before anything changes (an unknown size, image, network or volume, a malformed
    template); a provider lacking an operation the change needs fails naming the provider and the operation.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Name of the system (letters, digits, C(.), C(_) and C(-), at most 63), which its members' names start with.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the system and all its members exist; new machines are left stopped.
      - V(started) and V(stopped) also bring every machine of the system to that power state.
      - V(absent) deletes the system and its members (machines first, then volumes and networks). Client-side,
        members are found by their names when O(template) is given, and by their C(sirocco.system) property;
        on a provider that keeps no volume properties (libvirt) an unattached volume is found by name only, that
        is with O(template).
    type: str
    choices: [present, started, stopped, absent]
    default: present
  template:
    description:
      - What the system is made of, a dictionary in the shape of a CIMI SystemTemplate, or the name of a system
        template stored by the provider (see M(sirocco.cimi.system_template)) or defined client-side under
        C(system_templates) in O(templates_file) or O(templates).
      - 'The dictionary holds C(componentDescriptors), a list of components as in DSP0263 Table 14, each with
        C(name) (what its members are named after), C(type) (V(machine), V(volume) or V(network), or their CIMI
        type URIs), C(quantity) (default 1), C(description) and C(properties) (its members'', over those of its
        template), and the component''s settings under the key named for its type: C(machineTemplate),
        C(volumeTemplate) or C(networkTemplate) (C(component), the key of earlier versions, is still read).'
      - 'A machine component takes C(machine_config) (required: a size name, a C(machine_configs) entry of the
        templates file, or a dictionary of C(cpu), C(memory_mib), C(disk_gib), C(cpu_arch)), C(machine_image),
        C(credential) (C(name) of a registered credential, or C(public_key) and C(user_name)), C(user_data),
        C(networks) and C(volumes) (names of other components of the template, meaning each of their members,
        or of networks and volumes that exist on the provider), C(description) and C(properties), like
        M(sirocco.cimi.machine).'
      - A volume component takes C(size_gib) (required), C(type) (where the provider offers volume types),
        C(description) and C(properties); a network component C(cidr), C(dhcp), C(description) and C(properties).
      - Unlike O(sirocco.cimi.machine#module:user_data), a component's C(user_data) is not hidden from logs
        (hiding the template would mask its every name in the output); keep secrets out of it, or set C(no_log)
        on the task.
      - A provider that makes systems itself wires no member to another member, so there a machine's C(networks)
        and C(volumes) must name resources that exist.
      - Required to create the system; on an existing system only the members it lacks are made from it
        (client-side), or it is not used (on a provider that makes systems itself). Members of a component the
        template no longer lists are left as they are; O(state=absent) deletes them with the rest.
    type: raw
  description:
    description:
      - Description of a new system (on a provider that makes systems itself).
    type: str
  properties:
    description:
      - Free-form string pairs of a new system (on a provider that makes systems itself).
    type: dict
  force:
    description:
      - Stop the machines hard (power off) rather than asking their guest OS.
      - A graceful stop is an ACPI request that only a running guest OS honours; a machine without one, such as
        a diskless machine, keeps running until O(wait_timeout).
    type: bool
    default: false
extends_documentation_fragment:
  - sirocco.cimi.provider
  - sirocco.cimi.wait
  - sirocco.cimi.templates
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
    details: The diff shows the system's state and each member's state before and after.
  platform:
    platforms: all
notes:
  - Client-side, the module waits for each member between the steps that need it settled, whatever O(wait) says.
seealso:
  - module: sirocco.cimi.system_info
  - module: sirocco.cimi.system_template
  - module: sirocco.cimi.machine
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment variables.
- name: A two-tier system on a private network of its own, its machines started (diskless and tiny here)
  sirocco.cimi.system:
    name: sirocco-doc-shop
    template:
      componentDescriptors:
        - name: private
          type: network
          networkTemplate:
            cidr: 10.251.0.0/24
        - name: web
          type: machine
          quantity: 2
          properties:
            role: web
          machineTemplate:
            machine_config: tiny
            networks: [private]
        - name: db
          type: machine
          machineTemplate:
            machine_config: {cpu: 1, memory_mib: 128}
            networks: [private]
            # volumes: [data] would attach the members of a volume component named data (size_gib: 1)
    state: started
    force: true
  register: shop

- name: Each member and its state
  ansible.builtin.debug:
    msg: "{{ shop.system.members | map(attribute='name') | zip(shop.system.members | map(attribute='state')) }}"

- name: Stop all its machines (hard, as they have no guest OS)
  sirocco.cimi.system:
    name: sirocco-doc-shop
    state: stopped
    force: true

- name: Delete the system and its members (found by their sirocco.system tags)
  sirocco.cimi.system:
    name: sirocco-doc-shop
    state: absent
"""

RETURN = r"""
system:
  description:
    - The system as a CIMI System JSON document after the change (in check mode, as it would be, without ids
      for what would be created), with every member under C(members).
    - Client-side, C(id) is absent and C(state) is the machines' common state, or C(MIXED).
  returned: when O(state) is not V(absent)
  type: dict
  contains:
    name:
      description: The system's name.
      type: str
      sample: shop
    state:
      description: The machines' common state (C(STARTED), C(STOPPED)...), or C(MIXED).
      type: str
      sample: STARTED
    machines:
      description: References to the machines (C(href) is the provider's id).
      type: list
      elements: dict
      sample: [{href: 6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b}]
    volumes:
      description: References to the volumes.
      type: list
      elements: dict
    networks:
      description: References to the networks.
      type: list
      elements: dict
    members:
      description: Every member, networks first, then volumes, then machines.
      type: list
      elements: dict
      contains:
        name:
          description: The member's name.
          type: str
          sample: shop-web-1
        type:
          description: C(Machine), C(Volume) or C(Network).
          type: str
          sample: Machine
        component:
          description: The template component it was made from (null when unknown).
          type: str
          sample: web
        id:
          description: The provider's id of the member (null in check mode for a member to create).
          type: str
        state:
          description: Its CIMI state.
          type: str
          sample: STARTED
actions:
  description: What was done (or would be, in check mode), in order, one sentence each.
  returned: always
  type: list
  elements: str
  sample: [create volume shop-data, create machine shop-web-1, attach volume shop-data to machine shop-db]
orchestration:
  description: V(native) when the provider makes the system itself, V(client) when the module made the members.
  returned: always
  type: str
  sample: client
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import systems
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule
from ansible_collections.sirocco.cimi.plugins.module_utils.templates import templates_argument_spec


def main():
    spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "started", "stopped", "absent"]),
        template=dict(type="raw"),
        description=dict(type="str"),
        properties=dict(type="dict"),
        force=dict(type="bool", default=False),
    )
    spec.update(templates_argument_spec())
    module = SiroccoModule(argument_spec=spec, wait=True, attribute_options=systems.ATTRIBUTE_OPTIONS)
    module.run(systems.run)


if __name__ == "__main__":
    main()

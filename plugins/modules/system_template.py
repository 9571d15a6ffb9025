#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: system_template
short_description: Store or delete a CIMI SystemTemplate on a provider that keeps them
version_added: 0.2.0
description:
  - Stores a system template under O(name) on a provider that keeps system templates (a CIMI endpoint such as
    C(siroccod), which advertises C(system_template.list)), for M(sirocco.cimi.system) to name in its
    O(sirocco.cimi.system#module:template); or deletes it.
  - The components' references (sizes, images, credentials, networks, volumes) are resolved on the provider
    first; an unknown one fails before anything is stored.
  - An existing template of that name is left as it is (with a warning when O(template) is given); delete it
    first to store another one.
  - Other providers keep no system templates; the module fails naming the provider and the operation. Define the
    template client-side instead, under C(system_templates) in the templates file of M(sirocco.cimi.system)
    (O(sirocco.cimi.system#module:templates_file)), or give it to M(sirocco.cimi.system) as a dictionary.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Name of the template.
    type: str
    required: true
  state:
    description:
      - V(present) stores the template unless one of that name exists; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  template:
    description:
      - The template, as O(sirocco.cimi.system#module:template) takes it by value (C(componentDescriptors),
        each component's settings under C(machineTemplate), C(volumeTemplate) or C(networkTemplate)); stored as
        a CIMI SystemTemplate (DSP0263 Table 14).
      - A machine component's C(networks) and C(volumes) name resources that exist on the provider.
      - Required to store a new template.
    type: dict
  description:
    description:
      - Description of a new template.
    type: str
extends_documentation_fragment:
  - sirocco.cimi.provider
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
    details: The diff shows the template's name, description and components before and after.
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.system
  - module: sirocco.cimi.system_template_info
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment variables;
# the provider must keep system templates (a siroccod daemon).
- name: A stored template of two tiny machines
  sirocco.cimi.system_template:
    name: sirocco-doc-pair
    description: two tiny machines
    template:
      componentDescriptors:
        - name: node
          type: machine
          quantity: 2
          machineTemplate:
            machine_config: tiny

- name: A system made from it by the daemon
  sirocco.cimi.system:
    name: sirocco-doc-pair-1
    template: sirocco-doc-pair
    state: present

- name: Remove the system
  sirocco.cimi.system:
    name: sirocco-doc-pair-1
    state: absent

- name: Remove the template
  sirocco.cimi.system_template:
    name: sirocco-doc-pair
    state: absent
"""

RETURN = r"""
system_template:
  description:
    - The template as a CIMI SystemTemplate JSON document (in check mode, as it would be stored).
  returned: when O(state=present)
  type: dict
  sample:
    resourceURI: http://schemas.dmtf.org/cimi/2/SystemTemplate
    name: pair
    componentDescriptors:
      - name: node
        type: http://schemas.dmtf.org/cimi/2/Machine
        quantity: 2
        machineTemplate: {machineConfig: {href: http://localhost:8080/cimi/machineConfigs/tiny}}
actions:
  description: What was done (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: [create]
provider:
  description: The provider used.
  returned: always
  type: str
  sample: cimi
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import systems
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def main():
    module = SiroccoModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            template=dict(type="dict"),
            description=dict(type="str"),
        ),
        attribute_options=systems.ATTRIBUTE_OPTIONS,
    )
    module.run(systems.run_template)


if __name__ == "__main__":
    main()

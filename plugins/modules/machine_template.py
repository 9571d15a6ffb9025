#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine_template
short_description: Store or delete a CIMI MachineTemplate on a provider that stores templates
version_added: 0.2.0
description:
  - Makes a machine template (a size, an image, a credential, userData, properties and networks under one name)
    exist or not on a provider that stores templates, a CIMI endpoint such as C(siroccod).
  - M(sirocco.cimi.machine) then creates machines from it with O(sirocco.cimi.machine#module:machine_template).
  - On every other provider templates are defined client-side, in a templates file or inline (see
    O(sirocco.cimi.machine#module:templates_file)); there this module fails, saying so, and changes nothing
    (it never rewrites a user's file).
  - The template is found by its O(name). Every reference (size, image, credential, networks) is resolved on the
    provider before anything is stored; an unknown one changes nothing.
  - A stored template that differs from the options is replaced (deleted, then stored again), as templates have no
    update operation. The module is idempotent.
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
      - V(present) stores the template as the options describe it; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  machine_config:
    description:
      - The hardware, either the name of a size the provider offers (see M(sirocco.cimi.machine_config_info)),
        stored by reference, or a dictionary of C(cpu), C(memory_mib), C(disk_gib), C(cpu_arch), stored by value.
    type: raw
  machine_image:
    description:
      - Name or id of the image machines boot from, or its generic name (see
        O(sirocco.cimi.machine#module:machine_image)).
    type: str
  credential:
    description:
      - The SSH credential machines get; exactly one of O(credential.name) and O(credential.public_key).
    type: dict
    suboptions:
      name:
        description:
          - Name or id of a credential the provider keeps (see M(sirocco.cimi.credential)); stored by reference.
        type: str
      public_key:
        description:
          - One OpenSSH public key line, stored by value.
        type: str
      user_name:
        description:
          - The user the key is installed for, with O(credential.public_key).
        type: str
  user_data:
    description:
      - Data handed to machines' guests at their first boot (see O(sirocco.cimi.machine#module:user_data)).
      - Never shown in results or diffs, only its size and a digest.
    type: str
  networks:
    description:
      - Names or ids of the networks machines get an interface on.
    type: list
    elements: str
  description:
    description:
      - Description of the template (machines made from it get it too).
    type: str
  properties:
    description:
      - Free-form string pairs of the template, which machines made from it get.
    type: dict
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
    details: The diff shows the template's attributes before and after (userData as its size and digest).
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.machine_template_info
  - module: sirocco.cimi.machine_config
  - module: sirocco.cimi.machine
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment
# variables: here a siroccod daemon (provider: cimi), which stores templates.
- name: A stored configuration and a template using it
  sirocco.cimi.machine_config:
    name: sirocco-doc-half
    cpu: 1
    memory_mib: 80

- name: The template
  sirocco.cimi.machine_template:
    name: sirocco-doc-web
    machine_config: sirocco-doc-half
    description: the web tier
    properties:
      role: web

- name: A machine from it, on any provider that stores it
  sirocco.cimi.machine:
    name: sirocco-doc-web-1
    machine_template: sirocco-doc-web
  register: web

- name: Delete the machine, the template and the configuration
  sirocco.cimi.machine:
    name: sirocco-doc-web-1
    state: absent

- name: The template
  sirocco.cimi.machine_template:
    name: sirocco-doc-web
    state: absent

- name: The configuration
  sirocco.cimi.machine_config:
    name: sirocco-doc-half
    state: absent
"""

RETURN = r"""
machine_template:
  description:
    - The template as a CIMI MachineTemplate JSON document (its references as C(href)s), after the change; in
      check mode as it would be. C(userData) is shown as its size and digest.
  returned: when O(state=present)
  type: dict
  sample:
    resourceURI: http://schemas.dmtf.org/cimi/2/MachineTemplate
    id: http://127.0.0.1:8080/cimi/machineTemplates/3
    name: web
    machineConfig: {href: http://127.0.0.1:8080/cimi/machineConfigs/2}
    properties: {role: web}
actions:
  description: The operations performed (or, in check mode, that would be), in order.
  returned: always
  type: list
  elements: str
  sample: [delete, create]
provider:
  description: The provider used.
  returned: always
  type: str
  sample: cimi
"""

from ansible_collections.sirocco.cimi.plugins.module_utils.machines import ATTRIBUTE_OPTIONS
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule
from ansible_collections.sirocco.cimi.plugins.module_utils.templates import run_template


def main():
    module = SiroccoModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            machine_config=dict(type="raw"),
            machine_image=dict(type="str"),
            credential=dict(type="dict", options=dict(
                name=dict(type="str"),
                public_key=dict(type="str", no_log=False),
                user_name=dict(type="str"),
            ), mutually_exclusive=[("name", "public_key")], required_one_of=[("name", "public_key")]),
            user_data=dict(type="str", no_log=True),
            networks=dict(type="list", elements="str"),
            description=dict(type="str"),
            properties=dict(type="dict"),
        ),
        attribute_options=ATTRIBUTE_OPTIONS,
    )
    module.run(run_template)


if __name__ == "__main__":
    main()

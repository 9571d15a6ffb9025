#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine_template_info
short_description: List the machine templates of a provider and the client-side ones
version_added: 0.2.0
description:
  - Returns the machine templates the provider O(provider) selects offers or stores, as CIMI MachineTemplate JSON
    documents, followed by the client-side ones of O(templates) and O(templates_file) (each with the property
    C(sirocco.source) saying where it is defined, and no C(id)).
  - O(name) and O(filter) narrow the list; the module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Only the entries with this name.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) evaluated over each JSON document, for example
        C(property['role']='web').
      - A malformed expression is an error naming O(filter) and the position at fault.
    type: str
extends_documentation_fragment:
  - sirocco.cimi.provider
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
    support: none
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.machine_template
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment
# variables; on a provider that stores no templates, only the client-side ones are listed.
- name: The templates of the provider and of an inline definition
  sirocco.cimi.machine_template_info:
    templates:
      machine_templates:
        sirocco-doc-web:
          machine_config: {cpu: 1, memory_mib: 64}
          properties: {role: web}
  register: found

- name: Only those of role web
  sirocco.cimi.machine_template_info:
    filter: property['role']='web'
    templates:
      machine_templates:
        sirocco-doc-web:
          machine_config: tiny
          properties: {role: web}
  register: web
"""

RETURN = r"""
machine_templates:
  description:
    - The templates as CIMI MachineTemplate JSON documents, sorted by name; the provider's with their C(id) and
      references as C(href)s, client-side ones with references by C(name). C(userData) is shown as its size and
      digest.
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/MachineTemplate
      name: web
      machineConfig: {name: tiny}
      properties: {role: web, sirocco.source: templates}
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import templates
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def run(module):
    return templates.run_info(module, "machine_templates")


def main():
    module = SiroccoModule(
        argument_spec=dict(name=dict(type="str"), filter=dict(type="str"), **templates.templates_argument_spec()),
        attribute_options={"$filter": "filter"},
    )
    module.run(run)


if __name__ == "__main__":
    main()

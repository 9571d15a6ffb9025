#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine_config_info
short_description: List the machine configurations (sizes) of a provider and the client-side ones
version_added: 0.2.0
description:
  - Returns the machine configurations (sizes) the provider O(provider) selects offers or stores, as CIMI
    MachineConfiguration JSON documents, followed by the client-side ones of O(templates) and O(templates_file)
    (each with the property C(sirocco.source) saying where it is defined, and no C(id)).
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
        C(cpu>=2 and memory>=262144).
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
  - module: sirocco.cimi.machine_config
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment
# variables.
- name: Every size of the provider with at least 2 vCPUs, and the client-side ones
  sirocco.cimi.machine_config_info:
    filter: cpu>=2
    templates:
      machine_configs:
        sirocco-doc-double: {cpu: 2, memory_mib: 256}
  register: sizes

- name: Their names
  ansible.builtin.debug:
    msg: "{{ sizes.machine_configs | map(attribute='name') | list }}"
"""

RETURN = r"""
machine_configs:
  description:
    - The configurations as CIMI MachineConfiguration JSON documents (memory in KiB, disk capacities in KB),
      sorted by name; client-side ones have no C(id).
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/MachineConfiguration
      id: medium
      name: medium
      cpu: 2
      memory: 262144
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import templates
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def run(module):
    return templates.run_info(module, "machine_configs")


def main():
    module = SiroccoModule(
        argument_spec=dict(name=dict(type="str"), filter=dict(type="str"), **templates.templates_argument_spec()),
        attribute_options={"$filter": "filter"},
    )
    module.run(run)


if __name__ == "__main__":
    main()

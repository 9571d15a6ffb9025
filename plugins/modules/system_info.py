#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: system_info
short_description: List the CIMI Systems of a provider with each member's state, optionally filtered
version_added: 0.2.0
description:
  - Returns the systems of the provider O(provider) selects as CIMI System JSON documents, each with its
    members (machines, volumes, networks) and their states under C(members).
  - On a provider that makes systems itself (a CIMI endpoint such as C(siroccod)) these are its Systems. On
    every other provider they are the groups M(sirocco.cimi.system) made client-side, found by the
    C(sirocco.system) property of their machines and networks; a volume belongs to one when it carries the
    property or is attached only to its machines (libvirt keeps no volume properties).
  - O(name) and O(filter) narrow the list; the module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Only the system with this name.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) evaluated over each System JSON document, for example
        C(state='STARTED') or C(name='shop').
      - A malformed expression is an error naming O(filter) and the position at fault.
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
    support: N/A
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.system
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment variables.
- name: Every system
  sirocco.cimi.system_info:
  register: all_systems

- name: The systems whose machines all run
  sirocco.cimi.system_info:
    filter: state='STARTED'
  register: running

- name: One system by name (an empty list when there is none)
  sirocco.cimi.system_info:
    name: sirocco-doc-shop
  register: shop
"""

RETURN = r"""
systems:
  description:
    - The systems, as CIMI System JSON documents sorted by name, each with C(members) (name, type, component,
      id, state), as M(sirocco.cimi.system) returns one.
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/System
      name: shop
      state: STARTED
      machines: [{href: 6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b}]
      members:
        - {name: shop-web, type: Machine, component: web, id: 6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b, state: STARTED}
orchestration:
  description: V(native) when the provider makes systems itself, V(client) when they are found by their members' tags.
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


def main():
    module = SiroccoModule(
        argument_spec=dict(name=dict(type="str"), filter=dict(type="str")),
        attribute_options={"$filter": "filter"},
    )
    module.run(systems.run_info)


if __name__ == "__main__":
    main()

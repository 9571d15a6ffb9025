#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network_info
short_description: List the CIMI Networks of a provider, optionally filtered
version_added: 0.2.0
description:
  - Returns every network of the provider O(provider) selects, as CIMI Network JSON documents, with their
    C(cidr) and C(dhcp) where the provider reports them (Sirocco extensions of CIMI's Network).
  - O(name) and O(filter) narrow the list; the module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Only the networks with this name.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) evaluated over each Network JSON document,
        for example C(networkType='PRIVATE') or C(cidr='10.20.0.0/24').
      - Strings are quoted with C(') or C("), and compared with C(=) or C(!=) only; C(and) binds tighter than
        C(or); parentheses group.
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
  - module: sirocco.cimi.network
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment.
- name: Every network
  sirocco.cimi.network_info:
  register: all_networks

- name: The private (isolated) networks
  sirocco.cimi.network_info:
    filter: networkType='PRIVATE'
  register: private_networks

- name: One network by name (an empty list when there is none)
  sirocco.cimi.network_info:
    name: sirocco-doc-net
  register: one_network
"""

RETURN = r"""
networks:
  description: The networks, as CIMI Network JSON documents, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/Network
      id: 8d3e6a8c-2f4b-4d8e-a1c9-6b5f0e7d2a13
      name: backend
      state: STARTED
      networkType: PRIVATE
      cidr: 10.20.0.0/24
      dhcp: true
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import networks
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def main():
    module = SiroccoModule(
        argument_spec=dict(name=dict(type="str"), filter=dict(type="str")),
        attribute_options={"$filter": "filter"},
    )
    module.run(networks.run_info)


if __name__ == "__main__":
    main()

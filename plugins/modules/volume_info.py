#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume_info
short_description: List the CIMI Volumes of a provider, optionally filtered
version_added: 0.2.0
description:
  - Returns every volume of the provider O(provider) selects, as CIMI Volume JSON documents, with the machines
    each is attached to (C(attachedTo)).
  - O(name) and O(filter) narrow the list; the module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Only the volumes with this name.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) evaluated over each Volume JSON document,
        for example C(capacity>=1048576) or C(state='AVAILABLE'). Capacities are in KB (1024 bytes).
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
  - module: sirocco.cimi.volume
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment.
- name: Every volume
  sirocco.cimi.volume_info:
  register: all_volumes

- name: The volumes of 1 GiB or more
  sirocco.cimi.volume_info:
    filter: capacity>=1048576
  register: large_volumes

- name: One volume by name (an empty list when there is none)
  sirocco.cimi.volume_info:
    name: sirocco-doc-data
  register: one_volume
"""

RETURN = r"""
volumes:
  description: The volumes, as CIMI Volume JSON documents, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/Volume
      id: 5f0c3a52-0d1e-4b8e-9f61-3c2b7a9e8d41
      name: data-1
      state: AVAILABLE
      capacity: 1048576
      bootable: false
      attachedTo: [{"href": "3b7c1f7e-43b8-4b4e-9d0a-5f5e2b1c9a10"}]
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import volumes
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def main():
    module = SiroccoModule(
        argument_spec=dict(name=dict(type="str"), filter=dict(type="str")),
        attribute_options={"$filter": "filter"},
    )
    module.run(volumes.run_info)


if __name__ == "__main__":
    main()

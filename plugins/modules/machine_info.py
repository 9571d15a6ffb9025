#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine_info
short_description: List the CIMI Machines of a provider, optionally filtered
version_added: 0.1.0
description:
  - Returns every machine of the provider O(provider) selects, in every state, as CIMI Machine JSON documents.
  - O(name) and O(filter) narrow the list; the module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Only the machines with this name.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) evaluated over each Machine JSON document,
        for example C(state='STARTED' and cpu>=2) or C(property['role']='db').
      - Strings are quoted with C(') or C("), and compared with C(=) or C(!=) only; C(and) binds tighter than
        C(or); parentheses group. Memory is in KiB.
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
  - module: sirocco.cimi.machine
"""

EXAMPLES = r"""
- name: Every machine
  sirocco.cimi.machine_info:
  register: all_machines

- name: The started machines with at least 2 CPUs
  sirocco.cimi.machine_info:
    filter: state='STARTED' and cpu>=2
  register: big

- name: One machine by name
  sirocco.cimi.machine_info:
    name: web-1
  register: web
"""

RETURN = r"""
machines:
  description: The machines, as CIMI Machine JSON documents, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/Machine
      id: 6f1c0b6e-2f5a-4d8e-9a8b-0c2d5e1f3a4b
      name: web-1
      state: STOPPED
      cpu: 1
      memory: 65536
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import parse_filter
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def select(docs, name=None, match=None):
    """The documents called ``name`` that ``match`` (a parsed $filter) accepts, sorted by name then id."""
    chosen = [d for d in docs if (name is None or d.get("name") == name) and (match is None or match.matches(d))]
    return sorted(chosen, key=lambda d: (d.get("name") or "", d.get("id") or ""))


def run(module):
    p = module.params
    match = parse_filter(p["filter"]) if p["filter"] is not None else None  # checked before any call
    docs = [machine.to_json() for machine in module.connector.iter_machines()]
    return dict(changed=False, machines=select(docs, p["name"], match))


def main():
    module = SiroccoModule(
        argument_spec=dict(name=dict(type="str"), filter=dict(type="str")),
        attribute_options={"$filter": "filter"},
    )
    module.run(run)


if __name__ == "__main__":
    main()

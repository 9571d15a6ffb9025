#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: system_template_info
short_description: List the CIMI SystemTemplates a provider keeps, optionally filtered
version_added: 0.2.0
description:
  - Returns the system templates stored by the provider O(provider) selects (a CIMI endpoint such as
    C(siroccod)), as CIMI SystemTemplate JSON documents sorted by name.
  - Other providers keep no system templates; the module fails naming the provider and the operation, and
    points at the client-side templates file of M(sirocco.cimi.system).
  - O(name) and O(filter) narrow the list; the module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Only the template with this name.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) evaluated over each SystemTemplate JSON document.
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
  - module: sirocco.cimi.system_template
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment variables;
# the provider must keep system templates (a siroccod daemon).
- name: Every stored system template
  sirocco.cimi.system_template_info:
  register: stored

- name: One by name
  sirocco.cimi.system_template_info:
    name: sirocco-doc-pair
  register: pair
"""

RETURN = r"""
system_templates:
  description: The templates, as CIMI SystemTemplate JSON documents, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/SystemTemplate
      name: pair
      componentDescriptors: [{name: node, type: "http://schemas.dmtf.org/cimi/2/Machine", quantity: 2}]
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
        argument_spec=dict(name=dict(type="str"), filter=dict(type="str")),
        attribute_options={"$filter": "filter"},
    )
    module.run(systems.run_template_info)


if __name__ == "__main__":
    main()

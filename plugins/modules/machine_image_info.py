#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine_image_info
short_description: List the CIMI MachineImages of a provider, optionally filtered
version_added: 0.1.0
description:
  - Returns every machine image of the provider O(provider) selects, as CIMI MachineImage JSON documents, with
    what the provider keeps of each in its C(properties) (C(sirocco.image) the generic name, C(sirocco.format),
    C(sirocco.size), C(sirocco.arch), C(sirocco.spec)).
  - O(name), O(generic_name) and O(filter) narrow the list; the module never changes anything.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Only the images with this native name.
    type: str
  generic_name:
    description:
      - Only the images registered under this generic name (their C(sirocco.image) property), as
        M(sirocco.cimi.machine_image) wrote it.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) evaluated over each MachineImage JSON document,
        for example C(state='AVAILABLE') or C(property['sirocco.format']='qcow2').
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
  - module: sirocco.cimi.machine_image
"""

EXAMPLES = r"""
- name: Every image
  sirocco.cimi.machine_image_info:
  register: all_images

- name: The images registered as debian-12-web (one per provider at most)
  sirocco.cimi.machine_image_info:
    generic_name: debian-12-web
  register: web

- name: The qcow2 images that are available
  sirocco.cimi.machine_image_info:
    filter: state='AVAILABLE' and property['sirocco.format']='qcow2'
"""

RETURN = r"""
machine_images:
  description: The images, as CIMI MachineImage JSON documents, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/MachineImage
      id: 0c7f3f4e-6c1a-4a57-a4c2-0f5c1d2e3b4a
      name: debian-12-web
      state: AVAILABLE
      type: IMAGE
      properties:
        sirocco.image: debian-12-web
        sirocco.format: qcow2
        sirocco.size: "4294967296"
        sirocco.arch: x86_64
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import machine_images
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def main():
    module = SiroccoModule(
        argument_spec=dict(name=dict(type="str"), generic_name=dict(type="str"), filter=dict(type="str")),
        attribute_options={"$filter": "filter"},
    )
    module.run(machine_images.run_info)


if __name__ == "__main__":
    main()

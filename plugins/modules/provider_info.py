#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: provider_info
short_description: What a provider offers - capabilities, machine sizes, images and networks
version_added: 0.1.0
description:
  - Returns the capabilities the selected provider's connector advertises (operations, hardware ranges,
    architectures, metering, locations) and, for each listing the provider supports, its machine
    configurations (sizes), machine images and networks as CIMI JSON documents.
  - Use it to find the size names O(sirocco.cimi.machine#module:machine_config) accepts.
author:
  - Sirocco engineers (@sirocco-cimi)
options: {}
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
- name: What does the local libvirtd offer?
  sirocco.cimi.provider_info:
    provider: libvirt
    uri: qemu:///system
  register: offer

- name: Show the size names
  ansible.builtin.debug:
    msg: "{{ offer.machine_configs | map(attribute='name') | list }}"
"""

RETURN = r"""
capabilities:
  description:
    - What the provider offers. C(operations) lists contract operations such as C(machine.create) or
      C(machine.pause); C(cpu), C(memoryMiB) and C(cpuSpeedMHz) are C({min, max}) ranges (null when unbounded).
  returned: always
  type: dict
  sample:
    provider: libvirt
    operations: [machine.create, machine.delete, machine.list, machine.start, machine.stop]
    cpu: {min: 1, max: 2}
    memoryMiB: {min: 16, max: 4096}
    cpuArchs: [x86_64]
    metering: true
machine_configs:
  description: The machine sizes, as CIMI MachineConfiguration documents (C(memory) in KiB, disk C(capacity) in KB).
  returned: when the provider lists machine configurations (a listing that fails is a warning instead)
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/MachineConfiguration
      id: tiny
      name: tiny
      cpu: 1
      memory: 65536
machine_images:
  description: The machine images, as CIMI MachineImage documents.
  returned: when the provider lists machine images (a listing that fails is a warning instead)
  type: list
  elements: dict
networks:
  description: The networks, as CIMI Network documents.
  returned: when the provider lists networks (a listing that fails is a warning instead)
  type: list
  elements: dict
provider:
  description: The provider used.
  returned: always
  type: str
  sample: libvirt
"""

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import SiroccoError
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule

# result key -> (contract operation, connector method)
LISTINGS = {
    "machine_configs": ("machine_config.list", "list_machine_configs"),
    "machine_images": ("machine_image.list", "list_machine_images"),
    "networks": ("network.list", "list_networks"),
}


def run(module):
    connector = module.connector
    capabilities = connector.capabilities()
    result = dict(changed=False, capabilities=capabilities.to_json())
    for key, (operation, method) in LISTINGS.items():
        if capabilities.supports(operation):
            try:
                result[key] = [item.to_json() for item in getattr(connector, method)()]
            except SiroccoError as exc:  # one listing failing (e.g. a missing image pool) spoils not the rest
                module.warn("%s not listed: %s" % (key, exc.message))
    return result


def main():
    SiroccoModule(argument_spec={}).run(run)


if __name__ == "__main__":
    main()

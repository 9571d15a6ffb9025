#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: machine_config
short_description: Store or delete a named CIMI MachineConfiguration on a provider that stores them
version_added: 0.2.0
description:
  - Makes a named machine configuration (a size - cpu, memory, disk, architecture) exist or not on a provider
    that stores configurations, a CIMI endpoint such as C(siroccod).
  - M(sirocco.cimi.machine) and M(sirocco.cimi.machine_template) then use it by name as
    O(sirocco.cimi.machine#module:machine_config).
  - Other providers offer fixed sizes (libvirt's from its options, EC2 instance types, OpenStack flavors); there
    configurations are defined client-side (C(machine_configs) of a templates file or of the inline templates, see
    O(sirocco.cimi.machine#module:templates_file)), and this module fails, saying so, and changes nothing.
  - A stored configuration that differs from the options is replaced (deleted, then stored again).
    The module is idempotent.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Name of the configuration.
    type: str
    required: true
  state:
    description:
      - V(present) stores the configuration as the options describe it; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  cpu:
    description:
      - Number of virtual CPUs. Required with O(state=present).
    type: int
  memory_mib:
    description:
      - Memory in MiB. Required with O(state=present).
    type: int
  disk_gib:
    description:
      - Size of the first disk in GiB; none if not set.
    type: int
  cpu_arch:
    description:
      - A CIMI CPU architecture, such as C(x86_64).
    type: str
  description:
    description:
      - Description of the configuration.
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
    support: full
    details: The diff shows the configuration before and after.
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.machine_config_info
  - module: sirocco.cimi.machine_template
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment
# variables: here a siroccod daemon (provider: cimi), which stores configurations.
- name: A size of 2 vCPUs and 256 MiB
  sirocco.cimi.machine_config:
    name: sirocco-doc-double
    cpu: 2
    memory_mib: 256
    cpu_arch: x86_64
    description: two of everything

- name: Delete it
  sirocco.cimi.machine_config:
    name: sirocco-doc-double
    state: absent
"""

RETURN = r"""
machine_config:
  description: The configuration as a CIMI MachineConfiguration JSON document (memory in KiB), after the change.
  returned: when O(state=present)
  type: dict
  sample:
    resourceURI: http://schemas.dmtf.org/cimi/2/MachineConfiguration
    id: http://127.0.0.1:8080/cimi/machineConfigs/7
    name: double
    cpu: 2
    memory: 262144
actions:
  description: The operations performed (or, in check mode, that would be), in order.
  returned: always
  type: list
  elements: str
  sample: [create]
provider:
  description: The provider used.
  returned: always
  type: str
  sample: cimi
"""

from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule
from ansible_collections.sirocco.cimi.plugins.module_utils.templates import run_config


def main():
    module = SiroccoModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            cpu=dict(type="int"),
            memory_mib=dict(type="int"),
            disk_gib=dict(type="int"),
            cpu_arch=dict(type="str"),
            description=dict(type="str"),
        ),
        required_if=[("state", "present", ("cpu", "memory_mib"))],
        attribute_options={"machineConfig": "machine_config"},
    )
    module.run(run_config)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume
short_description: Create, grow, attach, detach or delete a CIMI Volume on any provider
version_added: 0.2.0
description:
  - Makes a volume (a block device a machine can use) exist or not, by O(name), on whichever provider O(provider)
    selects (a libvirt storage volume, an EBS volume, a Cinder volume, a CIMI endpoint's Volume...).
  - An existing volume smaller than O(size) grows to it where the provider offers C(volume.resize); a volume
    never shrinks (a smaller O(size) fails, naming O(size), and nothing changes).
  - O(attached_to) attaches the volume to a machine (moving it off another one it is attached to), and an empty
    string detaches it from every machine; left out, attachments are left as they are.
  - A volume's type, description and properties are set when it is created only. Another O(type) than the
    existing volume's fails, naming O(type); another description or properties are kept, with a warning.
  - Every input, and every operation the change needs, is checked before anything changes. A provider lacking
    one of them fails naming the provider and the operation (for example C(volume.resize)).
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Name of the volume on the provider.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the volume exists (as O(size), O(attached_to) ask); V(absent) deletes it, detaching
        it first from any machine it is attached to.
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - Capacity in GiB. Required to create the volume.
      - On an existing volume, a larger size grows it (C(volume.resize)); a smaller one fails.
    type: int
  type:
    description:
      - The provider's volume type (an EBS type such as V(gp3), a Cinder volume type), where the provider offers
        types; elsewhere giving one fails naming O(type).
    type: str
  description:
    description:
      - Description of a new volume, where the provider keeps one.
    type: str
  properties:
    description:
      - Free-form string pairs (CIMI C(properties)) of a new volume, where the provider keeps them.
    type: dict
  attached_to:
    description:
      - Name (or native id) of the machine the volume is to be attached to. A volume attached to another machine
        is detached from it first.
      - An empty string detaches the volume from every machine.
      - Left out, the volume stays attached where it is.
      - Where the provider does not plug volumes into running machines (its capability C(hotPlug) is false), the
        machines concerned must be stopped; otherwise the module fails before changing anything.
    type: str
  device:
    description:
      - Where the volume appears in the machine when it is attached (CIMI C(initialLocation)), for example V(vdb)
        on libvirt or V(/dev/sdf) on EC2. Default the provider's choice.
      - Used when attaching only; a volume already attached stays where it is.
    type: str
extends_documentation_fragment:
  - sirocco.cimi.provider
  - sirocco.cimi.wait
  - ansible.builtin.action_common_attributes
attributes:
  action_group:
    description: Use C(group/sirocco.cimi.cimi) in C(module_defaults) to set the provider options once.
    support: full
    membership: [sirocco.cimi.cimi]
  check_mode:
    support: full
    details: The provider is read, never changed; RV(volume) is the volume as it would be.
  diff_mode:
    support: full
    details: The diff shows the volume's name, state, capacity, type, description, properties and attachedTo.
  platform:
    platforms: all
notes:
  - The capacity is counted in KB of 1024 bytes, as CIMI C(capacity) is; 1 GiB is 1048576 KB.
seealso:
  - module: sirocco.cimi.volume_info
  - module: sirocco.cimi.machine
"""

EXAMPLES = r"""
# The provider options (provider, uri, username, password...) come from module_defaults
# (group/sirocco.cimi.cimi) or from the SIROCCO_* environment variables.
- name: A machine to attach a data volume to (stopped, diskless)
  sirocco.cimi.machine:
    name: sirocco-doc-vol-vm
    machine_config: tiny
    state: present

- name: A 1 GiB data volume, attached to that machine
  sirocco.cimi.volume:
    name: sirocco-doc-data
    size: 1
    attached_to: sirocco-doc-vol-vm
  register: data_volume

- name: Grown to 2 GiB where the provider resizes volumes
  sirocco.cimi.volume:
    name: sirocco-doc-data
    size: 2

- name: Detached from every machine
  sirocco.cimi.volume:
    name: sirocco-doc-data
    attached_to: ""

- name: Deleted (detached first, were it still attached)
  sirocco.cimi.volume:
    name: sirocco-doc-data
    state: absent

- name: The machine removed
  sirocco.cimi.machine:
    name: sirocco-doc-vol-vm
    state: absent
"""

RETURN = r"""
volume:
  description:
    - The volume as a CIMI Volume JSON document, after the change.
    - In check mode, the volume as it would be (without C(id) when it would be created).
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: The provider's identifier of the volume.
      type: str
      sample: vol-0a1b2c3d4e5f67890
    name:
      description: Its name.
      type: str
      sample: data-1
    state:
      description: Its CIMI state.
      type: str
      sample: AVAILABLE
    capacity:
      description: Its capacity in KB (1024 bytes).
      type: int
      sample: 1048576
    type:
      description: Its type, where the provider has types.
      type: str
      sample: gp3
    attachedTo:
      description: The machines it is attached to, as references (C(href) their native id).
      type: list
      elements: dict
      sample: [{"href": "3b7c1f7e-43b8-4b4e-9d0a-5f5e2b1c9a10"}]
actions:
  description: What was done (or, in check mode, would be), in order, among C(create), C(resize), C(detach),
    C(attach) and C(delete).
  returned: always
  type: list
  elements: str
  sample: [create, attach]
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
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            size=dict(type="int"),
            type=dict(type="str"),
            description=dict(type="str"),
            properties=dict(type="dict"),
            attached_to=dict(type="str"),
            device=dict(type="str"),
        ),
        wait=True,
        attribute_options=volumes.ATTRIBUTE_OPTIONS,
    )
    module.run(volumes.run)


if __name__ == "__main__":
    main()

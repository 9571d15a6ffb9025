#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: network
short_description: Create or delete a CIMI Network on any provider
version_added: 0.2.0
description:
  - Makes a network exist or not, by O(name), on whichever provider O(provider) selects (an isolated libvirt
    network, an EC2 subnet, a Neutron network and subnet, a CIMI endpoint's Network...), with an IPv4 range
    O(cidr) and DHCP O(dhcp) where the provider sets them; a provider that cannot set one fails naming it,
    before anything is created.
  - Networks are not changed in place. An existing network with another O(cidr) or O(dhcp) than the provider
    reports fails, naming the option (delete it with O(state=absent) first); another description or properties
    are kept, with a warning, as is a O(cidr) or O(dhcp) the provider does not report.
  - Machines get an interface on the network through M(sirocco.cimi.machine) (its C(networks) option).
  - On a CIMI endpoint (provider C(cimi)) the network is made from a NetworkTemplate by value (DSP0263 2.0.0
    Table 31, C(initialState) V(STARTED)); O(cidr) and O(dhcp) travel in its C(networkConfig), a Sirocco
    extension siroccod takes (an endpoint without it refuses them).
  - On libvirt the network is isolated (no forwarding to the outside); with O(cidr), libvirtd makes a bridge
    holding the network's first address, and with O(dhcp) it runs dnsmasq on it.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Name of the network on the provider.
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the network exists; V(absent) deletes it (a network machines still use is refused
        by the provider).
    type: str
    choices: [present, absent]
    default: present
  cidr:
    description:
      - The network's IPv4 range, such as V(10.20.0.0/24) (host bits must be zero).
    type: str
  dhcp:
    description:
      - Whether the network serves addresses of O(cidr) by DHCP (default the provider's own).
    type: bool
  description:
    description:
      - Description of a new network, where the provider keeps one.
    type: str
  properties:
    description:
      - Free-form string pairs (CIMI C(properties)) of a new network, where the provider keeps them.
    type: dict
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
    details: The provider is read, never changed; RV(network) is the network as it would be.
  diff_mode:
    support: full
    details: The diff shows the network's name, state, networkType, cidr, dhcp, description and properties.
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.network_info
  - module: sirocco.cimi.machine
"""

EXAMPLES = r"""
# The provider options (provider, uri, username, password...) come from module_defaults
# (group/sirocco.cimi.cimi) or from the SIROCCO_* environment variables.
- name: A private network with a range of its own and DHCP
  sirocco.cimi.network:
    name: sirocco-doc-net
    cidr: 10.254.251.0/24
    dhcp: true
    description: back-end network of the example
  register: doc_net

- name: Deleted
  sirocco.cimi.network:
    name: sirocco-doc-net
    state: absent
"""

RETURN = r"""
network:
  description:
    - The network as a CIMI Network JSON document, after the change; C(cidr) and C(dhcp) are Sirocco extensions,
      present where the provider reports them.
    - In check mode, the network as it would be (without C(id) when it would be created).
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: The provider's identifier of the network.
      type: str
      sample: 8d3e6a8c-2f4b-4d8e-a1c9-6b5f0e7d2a13
    name:
      description: Its name.
      type: str
      sample: sirocco-doc-net
    state:
      description: Its CIMI state.
      type: str
      sample: STARTED
    networkType:
      description: V(PRIVATE) for an isolated network, V(PUBLIC) for one that reaches the outside.
      type: str
      sample: PRIVATE
    cidr:
      description: Its IPv4 range.
      type: str
      sample: 10.254.251.0/24
    dhcp:
      description: Whether it serves DHCP.
      type: bool
      sample: true
actions:
  description: What was done (or, in check mode, would be), C(create) or C(delete).
  returned: always
  type: list
  elements: str
  sample: [create]
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
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            cidr=dict(type="str"),
            dhcp=dict(type="bool"),
            description=dict(type="str"),
            properties=dict(type="dict"),
        ),
        wait=True,
        attribute_options=networks.ATTRIBUTE_OPTIONS,
    )
    module.run(networks.run)


if __name__ == "__main__":
    main()

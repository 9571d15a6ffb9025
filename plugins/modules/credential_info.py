#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: credential_info
short_description: List the CIMI Credentials (SSH public keys) a provider keeps, optionally filtered
version_added: 0.2.0
description:
  - Returns every credential the provider O(provider) selects keeps (EC2 and OpenStack key pairs, a CIMI
    endpoint's Credentials), as CIMI Credential JSON documents with their public C(key) and C(userName) where
    the provider keeps one. Passwords are never returned.
  - O(name) and O(filter) narrow the list; the module never changes anything.
  - A provider that keeps no keys (libvirt, vSphere, XenServer) fails naming the provider and
    C(credential.list).
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Only the credentials with this name.
    type: str
  filter:
    description:
      - A CIMI C($filter) expression (DSP0263 4.1.6.1) evaluated over each Credential JSON document,
        for example C(userName='debian').
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
  - module: sirocco.cimi.credential
"""

EXAMPLES = r"""
# The provider options come from module_defaults (group/sirocco.cimi.cimi) or the SIROCCO_* environment.
- name: Every credential the provider keeps
  sirocco.cimi.credential_info:
  register: all_credentials

- name: The credentials that log in as debian
  sirocco.cimi.credential_info:
    filter: userName='debian'
  register: debian_credentials
"""

RETURN = r"""
credentials:
  description: The credentials, as CIMI Credential JSON documents, sorted by name.
  returned: always
  type: list
  elements: dict
  sample:
    - resourceURI: http://schemas.dmtf.org/cimi/2/Credential
      id: deploy-key
      name: deploy-key
      userName: debian
      key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMPOCOz23URZvUZXU2lW6/i1iQ3yFq7Ts0WOawyViPj deploy@example
provider:
  description: The provider used.
  returned: always
  type: str
  sample: ec2
"""

from ansible_collections.sirocco.cimi.plugins.module_utils import credentials
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def main():
    module = SiroccoModule(
        argument_spec=dict(name=dict(type="str"), filter=dict(type="str")),
        attribute_options={"$filter": "filter"},
    )
    module.run(credentials.run_info)


if __name__ == "__main__":
    main()

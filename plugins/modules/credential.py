#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: credential
short_description: Register or remove an SSH public key (a CIMI Credential) where the provider keeps keys
version_added: 0.2.0
description:
  - Makes a credential, an SSH public key with the user name a machine's guest logs in as, exist or not by
    O(name) where the provider O(provider) selects keeps keys (EC2 and OpenStack key pairs, a CIMI endpoint's
    Credentials). M(sirocco.cimi.machine) uses it by name (its C(credential) option).
  - A provider that keeps no keys (libvirt, vSphere, XenServer) fails naming the provider and
    C(credential.create); on those, M(sirocco.cimi.machine) takes the public key itself.
  - A credential of that name holding the same key (its type and data; the comment may differ) is left as it is.
    One holding another key fails, naming both fingerprints, unless O(force=true), which replaces it (deleted,
    then registered again).
  - Only public keys are taken. A private key given by mistake is refused with a message that does not repeat it,
    and it is masked in the module's result.
author:
  - Sirocco engineers (@sirocco-cimi)
options:
  name:
    description:
      - Name of the credential on the provider (the key pair's name on EC2 and OpenStack).
    type: str
    required: true
  state:
    description:
      - V(present) registers the key; V(absent) removes the credential of that name.
    type: str
    choices: [present, absent]
    default: present
  public_key:
    description:
      - The SSH public key, one OpenSSH line C(<type> <base64> [comment]), for example the content of
        C(~/.ssh/id_ed25519.pub). Its type must be one the provider takes (EC2 takes C(ssh-rsa) and C(ssh-ed25519)).
      - Required with O(state=present).
      - Not a secret, so it is shown in results and logs; that is why private keys are refused.
    type: str
  user_name:
    description:
      - The user the key logs in as on the guests of machines made with this credential, where the provider keeps
        it (a CIMI endpoint does; EC2 keeps it as a tag of the key pair; OpenStack keeps none).
      - Set when the credential is registered; another value on an existing credential is kept, with a warning.
    type: str
  description:
    description:
      - Description of the credential, where the provider keeps one; set when it is registered.
    type: str
  force:
    description:
      - Replace a credential of that O(name) that holds another key.
      - Machines made with the old key keep it; only new machines get the new one.
    type: bool
    default: false
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
    details: The provider is read, never changed; RV(credential) is the credential as it would be.
  diff_mode:
    support: full
    details: The diff shows the credential's name, userName, key and description.
  platform:
    platforms: all
seealso:
  - module: sirocco.cimi.credential_info
  - module: sirocco.cimi.machine
"""

EXAMPLES = r"""
# The provider options (provider, uri, username, password...) come from module_defaults
# (group/sirocco.cimi.cimi) or from the SIROCCO_* environment variables.
# A playbook would read the key from a file: public_key: "{{ lookup('file', '~/.ssh/id_ed25519.pub') }}"
- name: Register a deploy key that logs in as debian
  sirocco.cimi.credential:
    name: sirocco-doc-deploy
    public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMPOCOz23URZvUZXU2lW6/i1iQ3yFq7Ts0WOawyViPj deploy@example
    user_name: debian
  register: deploy_key

- name: Put another key under that name (force replaces the registered one)
  sirocco.cimi.credential:
    name: sirocco-doc-deploy
    public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICij9Ecl/HHyt7OD76FoeUU4qBWjwb4Hr+s5RuzFTSnj deploy2@example
    user_name: debian
    force: true

- name: Remove it
  sirocco.cimi.credential:
    name: sirocco-doc-deploy
    state: absent
"""

RETURN = r"""
credential:
  description:
    - The credential as a CIMI Credential JSON document, after the change (never with a password).
    - In check mode, the credential as it would be (without C(id) when it would be registered).
  returned: when O(state=present)
  type: dict
  contains:
    id:
      description: The provider's identifier of the credential (a key pair's name or id, a CIMI href).
      type: str
      sample: sirocco-doc-deploy
    name:
      description: Its name.
      type: str
      sample: sirocco-doc-deploy
    key:
      description: The public key it holds.
      type: str
      sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMPOCOz23URZvUZXU2lW6/i1iQ3yFq7Ts0WOawyViPj deploy@example
    userName:
      description: The user it logs in as, where the provider keeps one.
      type: str
      sample: debian
fingerprint:
  description: The SHA256 fingerprint of O(public_key), as C(ssh-keygen -l) prints it.
  returned: when O(state=present)
  type: str
  sample: SHA256:JU8D7X+idkCBvk4nif+h0e/+o2hEqgq//rctahb1qeE
actions:
  description: What was done (or, in check mode, would be), in order, among C(delete) and C(create).
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

from ansible_collections.sirocco.cimi.plugins.module_utils import credentials
from ansible_collections.sirocco.cimi.plugins.module_utils.module import SiroccoModule


def run(module):
    key = module.params.get("public_key")
    if credentials.looks_private(key):
        module.mask(key)  # a private key pasted by mistake: never echoed, in the invocation or anywhere else
    return credentials.run(module)


def main():
    module = SiroccoModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            public_key=dict(type="str", no_log=False),
            user_name=dict(type="str"),
            description=dict(type="str"),
            force=dict(type="bool", default=False),
        ),
        required_if=[("state", "present", ("public_key",))],
        attribute_options=credentials.ATTRIBUTE_OPTIONS,
    )
    module.run(run)


if __name__ == "__main__":
    main()

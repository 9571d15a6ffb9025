# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider connection options every sirocco.cimi module takes.

Paired with ``provider_argument_spec()`` in ``plugins/module_utils/module.py``:
change both together (ansible-test's validate-modules compares them).
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  provider:
    description:
      - The provider (connector) to talk to.
      - If not set, the value of the E(SIROCCO_PROVIDER) environment variable is used,
        else C(libvirt).
      - Set it once for every module of the collection with
        C(module_defaults) and the action group C(group/sirocco.cimi.cimi); the group should carry only
        the options of this fragment, which every module of the group takes (set O(sirocco.cimi.machine#module:wait_timeout)
        under C(sirocco.cimi.machine) instead).
    type: str
    choices: [libvirt, xenserver]
    default: libvirt
  uri:
    description:
      - Where the provider is, in the provider's own form.
      - For C(libvirt) a libvirt connection URI; the connector's default is C(qemu:///system).
      - For C(xenserver) the URL of the pool master, like C(https://xenserver.example.org).
      - If not set, the value of the E(SIROCCO_URI) environment variable is used.
    type: str
  username:
    description:
      - User name to authenticate with, for providers that need one.
      - If not set, the value of the E(SIROCCO_USERNAME) environment variable is used.
    type: str
  password:
    description:
      - Password or secret key to authenticate with, for providers that need one.
      - It never appears in results, messages or logs.
      - If not set, the value of the E(SIROCCO_PASSWORD) environment variable is used.
    type: str
  region:
    description:
      - Region or location of the provider account, for providers that have regions.
      - If not set, the value of the E(SIROCCO_REGION) environment variable is used.
    type: str
  validate_certs:
    description:
      - Whether to verify the provider's TLS certificate, for providers reached over HTTPS.
    type: bool
    default: true
  timeout:
    description:
      - Seconds to wait for the provider to answer one request.
    type: int
    default: 60
  provider_options:
    description:
      - Options only one connector understands, as a dictionary.
      - An option the selected provider does not know is an error that lists the ones it knows.
      - See the connector's documentation for the options it takes (for C(libvirt), for
        example, the named sizes it offers).
    type: dict
"""

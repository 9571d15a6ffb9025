# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which connector serves which ``provider`` value.

Each connector is imported by its loader on first use: their SDKs (boto3,
openstacksdk, pyvmomi, libcloud) take up to a second each to import, and a
module run needs one. The imports stay static statements, because Ansible
ships a module's module_utils by finding every import in these files.
"""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput


def _cimi():
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.cimi_http import CimiConnector
    return CimiConnector


def _ec2():
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.ec2 import EC2Connector
    return EC2Connector


def _libcloud():
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libcloud import LibcloudConnector
    return LibcloudConnector


def _libvirt():
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector
    return LibvirtConnector


def _openstack():
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.openstack import OpenStackConnector
    return OpenStackConnector


def _vsphere():
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.vsphere import VSphereConnector
    return VSphereConnector


def _xenserver():
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.xenserver import XenServerConnector
    return XenServerConnector


# One entry per provider: the value of the ``provider`` option -> the loader of its connector class.
PROVIDERS = {
    "cimi": _cimi,
    "ec2": _ec2,
    "libcloud": _libcloud,
    "libvirt": _libvirt,
    "openstack": _openstack,
    "vsphere": _vsphere,
    "xenserver": _xenserver,
}


def provider_names():
    return sorted(PROVIDERS)


def connector_class(provider):
    try:
        loader = PROVIDERS[provider]
    except (KeyError, TypeError):
        raise InvalidInput("provider: unknown provider '%s' (known: %s)" % (provider, ", ".join(provider_names())),
                           attribute="provider") from None
    return loader()


def connect(provider, **params):
    """A connector for ``provider`` opened with the common parameters."""
    return connector_class(provider)(**params)

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which connector serves which ``provider`` value.

Connectors are imported by name here (not discovered at run time) because
Ansible packs a module's module_utils by following its imports.
"""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import cimi_http, ec2, libvirt, vsphere, xenserver
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libcloud as libcloud_connector
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import openstack as openstack_connector

# One entry per provider: the value of the ``provider`` option -> its connector class.
PROVIDERS = {
    "cimi": cimi_http.CimiConnector,
    "ec2": ec2.EC2Connector,
    "libcloud": libcloud_connector.LibcloudConnector,
    "libvirt": libvirt.LibvirtConnector,
    "openstack": openstack_connector.OpenStackConnector,
    "vsphere": vsphere.VSphereConnector,
    "xenserver": xenserver.XenServerConnector,
}


def provider_names():
    return sorted(PROVIDERS)


def connector_class(provider):
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise InvalidInput("provider: unknown provider '%s' (known: %s)" % (provider, ", ".join(provider_names())),
                           attribute="provider") from None


def connect(provider, **params):
    """A connector for ``provider`` opened with the common parameters."""
    return connector_class(provider)(**params)

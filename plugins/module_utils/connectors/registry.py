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

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

if TYPE_CHECKING:  # for the annotations only: base.py is imported with the connector, on first use
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import Connector


@dataclass(frozen=True)
class ConnectionParams:
    """How to reach one provider: what every connector's constructor takes (connectors/base.py), in one
    type for the modules, the inventory and the daemon's hosts and upstreams."""

    provider: str
    uri: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never in a repr, a log or a result
    region: str | None = None
    validate_certs: bool = True
    timeout: float | None = None  # None: the connector's default
    options: Mapping[str, Any] | None = None

    @classmethod
    def from_options(cls, provider: str, options: Mapping[str, Any]) -> ConnectionParams:
        """From the connection options of a module, an inventory source or a ``providers`` entry (uri,
        username, password, region, validate_certs, timeout, provider_options)."""
        return cls(provider=provider, uri=options.get("uri"), username=options.get("username"),
                   password=options.get("password"), region=options.get("region"),
                   validate_certs=options.get("validate_certs", True), timeout=options.get("timeout"),
                   options=options.get("provider_options") or {})


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


def open_connection(params: ConnectionParams) -> Connector:
    """A connector opened with ``params`` (the connector's own default where one is None: timeout)."""
    kwargs: dict[str, Any] = {"uri": params.uri, "username": params.username, "password": params.password,
                              "region": params.region, "validate_certs": params.validate_certs,
                              "options": params.options}
    if params.timeout is not None:
        kwargs["timeout"] = params.timeout
    return connector_class(params.provider)(**kwargs)

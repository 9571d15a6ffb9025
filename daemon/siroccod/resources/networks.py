"""Networks: creation on a host that offers it, from a NetworkTemplate (Table 31), with an optional cidr and
DHCP (its networkConfig: Sirocco extension). The hosts' networks run once made, so a new Network is STARTED
(the Network ResourceMetadata's DefaultInitialState and InitialStates say so); one asked STOPPED is refused."""

from __future__ import annotations

import ipaddress
import logging

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    InvalidInput,
)
from siroccod import cmdb, hrefs
from siroccod.resources import context
from siroccod.store import new_uuid

log = logging.getLogger(__name__)
# the states a new Network may be created in here (5.16.2.1): the hosts' connectors start every network they
# make and none stops one; the first is the default (api/metadata.py advertises both)
INITIAL_STATES = (states.STARTED,)


def checked_cidr(text, path):
    """A network's cidr as the host's connector takes it: an IPv4 network written canonically
    (10.20.0.0/24), with room for a gateway and a guest; else InvalidInput naming ``path``."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidInput("%s: '%s' is not an IPv4 network such as 10.20.0.0/24 (%s)" % (path, text, exc),
                           attribute="cidr") from None
    if net.version != 4 or net.prefixlen > 29:
        raise InvalidInput("%s: '%s' must be an IPv4 network of /29 or larger" % (path, text), attribute="cidr")
    return str(net)


def create_network(ctx, session, p, body, parent=None, name=None, tenant_id=None, template=None):
    template, meta = context.request_template(ctx, session, p, body, model.NetworkCreate, "networkTemplate",
                                              "NetworkTemplate", template, name)
    initial = template.get("initialState") or INITIAL_STATES[0]
    if initial not in INITIAL_STATES:
        raise InvalidInput("NetworkCreate.networkTemplate.initialState: this endpoint's hosts start a network when "
                           "they make it: %s only (a network cannot be made %s)" % (", ".join(INITIAL_STATES), initial),
                           attribute="initialState")
    config = context.by_ref_or_value(ctx, session, p, template.get("networkConfig"), "NetworkConfiguration",
                                     "NetworkCreate.networkTemplate.networkConfig")[0] or {}
    if config.get("cidr") is not None:
        config["cidr"] = checked_cidr(config["cidr"], "NetworkCreate.networkTemplate.networkConfig.cidr")
    elif config.get("dhcp"):  # the hosts lease addresses from the network's own range only
        raise InvalidInput("NetworkCreate.networkTemplate.networkConfig.dhcp: dhcp needs a cidr (the addresses "
                           "it leases): give one, or leave dhcp out", attribute="dhcp")
    host = context.host_for(ctx, session, p, "network.create", meta.get("properties"))
    uuid = new_uuid()
    doc = dict(meta)
    doc.setdefault("name", "network-" + uuid[:8])
    doc.update({k: config[k] for k in ("networkType", "mtu", "classOfService", "cidr", "dhcp")
                if config.get(k) is not None})
    row = cmdb.new_resource(session, "Network", p.tenant_id if tenant_id is None else tenant_id, doc,
                            host_id=host.id, state="CREATING", uuid=uuid,
                            private={"native_name": ctx.pool.get(host.id).native_name(uuid[:18])})
    job = context.queue(session, p, "create", row, affected=[hrefs.ref("networks", uuid)], parent=parent,
                        tenant_id=row.tenant_id)
    return row, job

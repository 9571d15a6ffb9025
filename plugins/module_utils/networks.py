# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The network and network_info modules: plan, execution, predicted result and filtering.

A network is created (with ``cidr`` and ``dhcp`` where the provider sets them) or deleted, by name; an
existing network is never changed in place: a ``cidr`` or ``dhcp`` other than the one it reports fails,
naming the option, and a description or properties that differ are kept, with a warning.
"""

from __future__ import annotations

import ipaddress
import time

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, OperationTimeout
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import Network
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import parse_filter
from ansible_collections.sirocco.cimi.plugins.module_utils.module import diff_view, string_map
from ansible_collections.sirocco.cimi.plugins.module_utils.volumes import info_documents, one_named

CREATE, DELETE = "create", "delete"
DIFF_FIELDS = ("name", "state", "networkType", "cidr", "dhcp", "description", "properties")
ATTRIBUTE_OPTIONS = {"cidr": "cidr", "dhcp": "dhcp", "$filter": "filter"}
# states a network passes through while it is being made
TRANSIENT = (states.CREATING, states.STARTING)
POLL = 0.5


def wanted_cidr(params):
    """``cidr`` as an IPv4 network in its canonical form (None when not given), or InvalidInput."""
    cidr = params.get("cidr")
    if cidr is None:
        return None
    try:
        return str(ipaddress.IPv4Network(cidr, strict=True))
    except ValueError as exc:
        raise InvalidInput("cidr: '%s' is not an IPv4 network such as 10.20.0.0/24 (%s)" % (cidr, exc),
                           attribute="cidr") from None


def check_params(params):
    if not params.get("name"):
        raise InvalidInput("name: a network needs a non-empty name", attribute="name")
    wanted_cidr(params)
    string_map(params.get("properties"), "properties")


def reported(network, attribute):
    """What the provider reports of a network's ``cidr`` or ``dhcp`` (None: not reported)."""
    return network.to_json().get(attribute)


def check_existing(module, network):
    """InvalidInput when the network differs in what only creation sets and matters (cidr, dhcp); warnings for
    what is kept (description, properties, or a cidr/dhcp the provider does not report)."""
    p = module.params
    name = network.name
    cidr = wanted_cidr(p)
    have = reported(network, "cidr")
    if cidr is not None and have is not None and str(ipaddress.IPv4Network(have, strict=False)) != cidr:
        raise InvalidInput("cidr: network '%s' exists with cidr %s, not %s; networks are not changed in place "
                           "(delete it, state=absent, to make it anew)" % (name, have, cidr), attribute="cidr")
    if p.get("dhcp") is not None and reported(network, "dhcp") is not None and reported(network, "dhcp") != p["dhcp"]:
        raise InvalidInput("dhcp: network '%s' exists with dhcp %s; networks are not changed in place "
                           "(delete it, state=absent, to make it anew)"
                           % (name, "on" if reported(network, "dhcp") else "off"), attribute="dhcp")
    for option in ("cidr", "dhcp"):
        if p.get(option) is not None and reported(network, option) is None:
            module.warn("network '%s' exists and provider '%s' reports no %s for it: left as it is"
                        % (name, module.connector.name, option))
    if p.get("description") is not None and network.description != p["description"]:
        module.warn("network '%s' left with its description: only creation sets it" % name)
    for key, value in sorted((string_map(p.get("properties"), "properties") or {}).items()):
        if (network.properties or {}).get(key) != value:
            module.warn("network '%s' left with its properties: only creation sets them (%s differs)" % (name, key))


def plan(module, network):
    """The actions from ``network`` (the one of that name, or None) to the options."""
    if module.params["state"] == "absent":
        return [DELETE] if network is not None else []
    if network is None:
        return [CREATE]
    check_existing(module, network)
    return []


def predicted(module, network, actions):
    p = module.params
    if DELETE in actions:
        return {}
    if network is not None:
        return network.to_json()
    doc = Network(name=p["name"], state=states.STARTED, description=p.get("description"),
                  properties=string_map(p.get("properties"), "properties")).to_json()
    for key, value in (("cidr", wanted_cidr(p)), ("dhcp", p.get("dhcp"))):
        if value is not None:
            doc[key] = value
    return doc


def execute(module, network, actions):
    p = module.params
    connector = module.connector
    if CREATE in actions:
        # cidr and dhcp only when asked: a provider that cannot set them refuses them (InvalidInput)
        extra = {key: value for key, value in (("cidr", wanted_cidr(p)), ("dhcp", p.get("dhcp"))) if value is not None}
        network = connector.create_network(p["name"], description=p.get("description"),
                                           properties=string_map(p.get("properties"), "properties"), **extra)
        return wait_network(module, network.id).to_json()
    if DELETE in actions:
        connector.delete_network(network.id)
        wait_gone(module, network.id)
        return {}
    return network.to_json() if network is not None else {}


def wait_network(module, network_id):
    """The Network once past its transient states (within wait_timeout), or as it is when wait=false."""
    deadline = module.deadline
    while True:
        network = module.connector.get_network(network_id)
        if network.state not in TRANSIENT or not module.params.get("wait"):
            return network
        if deadline.expired:
            raise OperationTimeout("wait_timeout: gave up after %s s: network '%s' is still %s"
                                   % (module.params.get("wait_timeout"), network.name, network.state))
        time.sleep(POLL)


def wait_gone(module, network_id):
    if not module.params.get("wait"):
        return
    deadline = module.deadline
    while network_id in {n.id for n in module.connector.list_networks()}:
        if deadline.expired:
            raise OperationTimeout("wait_timeout: gave up after %s s: network %s is still there"
                                   % (module.params.get("wait_timeout"), network_id))
        time.sleep(POLL)


def run(module):
    """The network module."""
    p = module.params
    check_params(p)
    connector = module.connector
    connector.require("network.list")
    network = one_named(connector.list_networks(), p["name"], "network", connector.name)
    actions = plan(module, network)
    for action in actions:
        connector.require("network." + action)
    if network is not None and network.state == states.ERROR and not actions:
        raise Conflict("network '%s' is in state ERROR on provider '%s'" % (network.name, connector.name))
    before = network.to_json() if network is not None else {}
    after = predicted(module, network, actions) if module.check_mode else execute(module, network, actions)
    result = dict(changed=bool(actions), actions=actions)
    if p["state"] == "present":
        result["network"] = after
    if module.diff_mode:
        result["diff"] = dict(before=diff_view(before, DIFF_FIELDS), after=diff_view(after, DIFF_FIELDS))
    return result


def run_info(module):
    """The network_info module: the provider's networks, by name and CIMI filter; never changes anything."""
    p = module.params
    if p.get("filter") is not None:
        parse_filter(p["filter"])  # a bad filter fails before the provider is asked anything
    module.connector.require("network.list")
    return dict(changed=False,
                networks=info_documents(module.connector.list_networks(), p.get("name"), p.get("filter")))

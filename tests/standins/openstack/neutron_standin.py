"""A small stand-in for Neutron, the OpenStack networking service (NOT the real Neutron).

Sirocco's OpenStack stand-in runs the real Keystone, Glance, Placement and Nova;
Neutron would add an agent, a message bus topic and OVS or Linux bridges for
nothing the tests need. This WSGI app answers the read calls Nova and the
connector make with Neutron's own JSON shapes (API v2.0): one shared network
``private`` with one subnet, no ports (servers are created with
``networks: none``), no security groups, no floating IPs. Any write is refused
with Neutron's error body, so a caller that needs more finds out at once.
Served by gunicorn (``neutron_standin:application``); it trusts any token.
"""

import json
import os
import re
from urllib.parse import parse_qs

PROJECT = os.environ.get("SIROCCO_NEUTRON_PROJECT", "")
NETWORK_ID = "5f0cd6b9-4a5b-4d84-9e83-6b2a4c1d0a01"
SUBNET_ID = "5f0cd6b9-4a5b-4d84-9e83-6b2a4c1d0a02"
CREATED = "2024-01-01T00:00:00Z"

NETWORKS = [{
    "id": NETWORK_ID, "name": "private", "description": "the stand-in's one network",
    "status": "ACTIVE", "admin_state_up": True, "shared": True, "router:external": False,
    "subnets": [SUBNET_ID], "mtu": 1450, "tenant_id": PROJECT, "project_id": PROJECT,
    "availability_zones": ["nova"], "ipv4_address_scope": None, "ipv6_address_scope": None,
    "port_security_enabled": True, "provider:network_type": "vxlan", "tags": [],
    "created_at": CREATED, "updated_at": CREATED, "revision_number": 1,
}]
SUBNETS = [{
    "id": SUBNET_ID, "name": "private-subnet", "network_id": NETWORK_ID, "ip_version": 4,
    "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "enable_dhcp": True,
    "allocation_pools": [{"start": "10.0.0.2", "end": "10.0.0.254"}], "dns_nameservers": [],
    "host_routes": [], "tenant_id": PROJECT, "project_id": PROJECT, "tags": [], "description": "",
    "created_at": CREATED, "updated_at": CREATED, "revision_number": 1,
}]
# collection name -> (singular, items); the empty ones are what Nova asks about a server
COLLECTIONS = {
    "networks": ("network", NETWORKS),
    "subnets": ("subnet", SUBNETS),
    "ports": ("port", []),
    "security-groups": ("security_group", []),
    "floatingips": ("floatingip", []),
    "routers": ("router", []),
    "extensions": ("extension", []),
    "trunks": ("trunk", []),
    "qos/policies": ("policy", []),
}
ROUTE = re.compile(r"^/v2\.0/(?P<coll>[a-z/-]+?)(?:/(?P<id>[0-9a-fA-F-]{36}|[a-z0-9_-]+))?(?:\.json)?/?$")


def _matches(item, query):
    """Neutron's list filters: every ``key=value`` (repeated keys: any of the values) must match."""
    for key, values in query.items():
        if key in ("fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"):
            continue
        if key not in item:
            return False
        have = item[key]
        if isinstance(have, bool):
            have = str(have).lower()
            values = [v.lower() for v in values]
        if str(have) not in values:
            return False
    return True


def _reply(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _error(start_response, status, kind, message):
    return _reply(start_response, status, {"NeutronError": {"type": kind, "message": message, "detail": ""}})


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    method = environ["REQUEST_METHOD"]
    if path in ("", "/"):
        base = "http://%s/v2.0/" % environ.get("HTTP_HOST", "127.0.0.1")
        return _reply(start_response, "200 OK", {"versions": [
            {"id": "v2.0", "status": "CURRENT", "links": [{"href": base, "rel": "self"}]}]})
    if path.rstrip("/") == "/v2.0":
        return _reply(start_response, "200 OK", {"resources": [
            {"name": s, "collection": c, "links": []} for c, (s, _items) in COLLECTIONS.items()]})
    match = ROUTE.match(path)
    if match and match.group("coll") == "quotas":
        return _reply(start_response, "200 OK", {"quota": {
            "network": -1, "subnet": -1, "port": -1, "router": -1, "floatingip": -1,
            "security_group": -1, "security_group_rule": -1}})
    if not match or match.group("coll") not in COLLECTIONS:
        return _error(start_response, "404 Not Found", "HTTPNotFound", "the Neutron stand-in has no %s" % path)
    singular, items = COLLECTIONS[match.group("coll")]
    if method != "GET":
        return _error(start_response, "403 Forbidden", "PolicyNotAuthorized",
                      "the Neutron stand-in is read-only (%s %s)" % (method, path))
    ident = match.group("id")
    if ident:
        for item in items:
            if item.get("id") == ident or item.get("alias") == ident:
                return _reply(start_response, "200 OK", {singular: item})
        return _error(start_response, "404 Not Found", "%sNotFound" % singular.title().replace("_", ""),
                      "%s %s could not be found." % (singular, ident))
    query = parse_qs(environ.get("QUERY_STRING", ""))
    found = [item for item in items if _matches(item, query)]
    fields = query.get("fields")
    if fields:
        found = [{k: v for k, v in item.items() if k in fields} for item in found]
    return _reply(start_response, "200 OK", {match.group("coll").split("/")[-1].replace("-", "_"): found})

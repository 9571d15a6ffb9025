"""A small stand-in for Neutron, the OpenStack networking service (NOT the real Neutron).

Sirocco's OpenStack stand-in runs the real Keystone, Glance, Placement and Nova;
Neutron would add an agent, a message bus topic and OVS or Linux bridges for
nothing the tests need. This WSGI app answers the read calls Nova and the
connector make with Neutron's own JSON shapes (API v2.0): one shared network
``private`` with one subnet and the ``default`` security group; ports are kept in
memory (created, bound and deleted by Nova when a server is plugged into the network,
with a MAC and the next free address of the subnet, and nothing behind them); no
floating IPs or routers. Writes to anything but ports are refused with Neutron's error
body, so a caller that needs more finds out at once. One tenant: project filters are
ignored. Served by gunicorn (``neutron_standin:application``); it trusts any token.
"""

import itertools
import json
import os
import re
import threading
import time
import uuid
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
SECURITY_GROUPS = [{
    "id": "5f0cd6b9-4a5b-4d84-9e83-6b2a4c1d0a03", "name": "default", "description": "default",
    "tenant_id": PROJECT, "project_id": PROJECT, "security_group_rules": [], "stateful": True, "tags": [],
    "created_at": CREATED, "updated_at": CREATED, "revision_number": 1,
}]
PORTS = []
_LOCK = threading.Lock()
_HOSTS = itertools.count(2)
# collection name -> (singular, items); the empty ones are what Nova asks about a server
COLLECTIONS = {
    "networks": ("network", NETWORKS),
    "subnets": ("subnet", SUBNETS),
    "ports": ("port", PORTS),
    "security-groups": ("security_group", SECURITY_GROUPS),
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
        if key in ("fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "tenant_id", "project_id"):
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


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _new_port(body):
    """A port as Neutron returns it: a fresh MAC, the subnet's next free address, bound nowhere yet."""
    network = body.get("network_id")
    if network != NETWORK_ID:
        raise LookupError("network %s could not be found" % network)
    host = next(_HOSTS)
    port = {
        "id": str(uuid.uuid4()), "name": "", "description": "", "network_id": network,
        "tenant_id": body.get("tenant_id") or body.get("project_id") or PROJECT,
        "project_id": body.get("project_id") or body.get("tenant_id") or PROJECT,
        "mac_address": "fa:16:3e:%02x:%02x:%02x" % (host >> 16 & 255, host >> 8 & 255, host & 255),
        "admin_state_up": True, "status": "ACTIVE", "device_id": "", "device_owner": "",
        "fixed_ips": [{"subnet_id": SUBNET_ID, "ip_address": "10.0.%d.%d" % (host // 253, host % 253 + 2)}],
        "security_groups": [SECURITY_GROUPS[0]["id"]], "allowed_address_pairs": [], "extra_dhcp_opts": [],
        "binding:host_id": "", "binding:vif_type": "ovs", "binding:vnic_type": "normal",
        "binding:vif_details": {"port_filter": True}, "binding:profile": {}, "port_security_enabled": True,
        "dns_name": "", "dns_assignment": [], "tags": [], "created_at": _now(), "updated_at": _now(),
        "revision_number": 1,
    }
    port.update({k: v for k, v in body.items() if k in port and k not in ("id", "fixed_ips", "mac_address")})
    return port


def _write_port(environ, start_response, method, ident):
    """POST (one port or a list), PUT (update) or DELETE of ports."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
    except ValueError:
        return _error(start_response, "400 Bad Request", "BadRequest", "the body is not JSON")
    with _LOCK:
        if method == "POST" and not ident:
            try:
                if "ports" in body:
                    made = [_new_port(p) for p in body["ports"]]
                    PORTS.extend(made)
                    return _reply(start_response, "201 Created", {"ports": made})
                port = _new_port(body.get("port") or {})
            except LookupError as exc:
                return _error(start_response, "404 Not Found", "NetworkNotFound", str(exc))
            PORTS.append(port)
            return _reply(start_response, "201 Created", {"port": port})
        found = [p for p in PORTS if p["id"] == ident]
        if not found:
            return _error(start_response, "404 Not Found", "PortNotFound", "Port %s could not be found." % ident)
        if method == "PUT":
            changes = {k: v for k, v in (body.get("port") or {}).items() if k not in ("id", "mac_address")}
            found[0].update(changes, updated_at=_now(), revision_number=found[0]["revision_number"] + 1)
            return _reply(start_response, "200 OK", {"port": found[0]})
        if method == "DELETE":
            PORTS.remove(found[0])
            start_response("204 No Content", [("Content-Length", "0")])
            return [b""]
    return _error(start_response, "405 Method Not Allowed", "HTTPMethodNotAllowed", "%s on a port" % method)


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
    if match.group("coll") == "ports" and method in ("POST", "PUT", "DELETE"):
        return _write_port(environ, start_response, method, match.group("id"))
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

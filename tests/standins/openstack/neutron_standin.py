"""A small stand-in for Neutron, the OpenStack networking service (NOT the real Neutron).

Sirocco's OpenStack stand-in runs the real Keystone, Glance, Placement and Nova;
Neutron would add an agent, a message bus topic and OVS or Linux bridges for
nothing the tests need. This WSGI app speaks Neutron's API v2.0 wire format (its
URLs, JSON shapes, status codes and ``NeutronError`` bodies) for what Nova and the
connector use, keeping everything in memory and wiring nothing:

* networks: list, show, create, delete (409 NetworkInUse while ports remain; a deleted
  network takes its subnets along), and their tags (``PUT``/``GET .../networks/ID/tags``);
* subnets: list, show, create (IPv4; gateway and allocation pool derived from the CIDR as
  Neutron does), delete (409 SubnetInUse while ports hold addresses on it);
* ports: created, updated (bound) and deleted by Nova when a server is plugged into a
  network, each with a MAC and the next free address of the network's first subnet;
* one shared network ``private`` with a subnet and the ``default`` security group exist
  from the start; no floating IPs or routers (their writes are refused with Neutron's error
  body, so a caller that needs more finds out at once).

One tenant: project filters are ignored. Served by gunicorn
(``neutron_standin:application``); it trusts any token (Keystone is not asked).
"""

import ipaddress
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
_MACS = itertools.count(2)
_VNIS = itertools.count(1001)
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
TAGS_ROUTE = re.compile(r"^/v2\.0/(?P<coll>networks|subnets|ports)/(?P<id>[0-9a-fA-F-]{36})/tags(?:\.json)?/?$")


class Refused(Exception):
    """A request Neutron refuses: HTTP status, NeutronError type, message."""

    def __init__(self, status, kind, message):
        super().__init__(message)
        self.status, self.kind = status, kind


def _matches(item, query):
    """Neutron's list filters: every ``key=value`` (repeated keys: any of the values) must match."""
    for key, values in query.items():
        if key in ("fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse", "tenant_id", "project_id"):
            continue
        if key == "tags":  # every tag listed (comma-separated) must be on the item
            if not all(set(v.split(",")) <= set(item.get("tags") or []) for v in values):
                return False
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


def _no_content(start_response):
    start_response("204 No Content", [("Content-Length", "0")])
    return [b""]


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _find(items, ident, kind):
    for item in items:
        if item["id"] == ident:
            return item
    raise Refused("404 Not Found", "%sNotFound" % kind.title(), "%s %s could not be found." % (kind.title(), ident))


def _free_address(subnet):
    """The first address of the subnet's allocation pools that no port holds (None when full)."""
    used = {ip["ip_address"] for p in PORTS for ip in p["fixed_ips"] if ip["subnet_id"] == subnet["id"]}
    for pool in subnet["allocation_pools"]:
        first, last = ipaddress.ip_address(pool["start"]), ipaddress.ip_address(pool["end"])
        for n in range(int(first), int(last) + 1):
            if str(ipaddress.ip_address(n)) not in used:
                return str(ipaddress.ip_address(n))
    return None


def _new_port(body):
    """A port as Neutron returns it: a fresh MAC, the network's next free address, bound nowhere yet."""
    network = _find(NETWORKS, body.get("network_id"), "network")
    fixed_ips = []
    subnets = [s for s in SUBNETS if s["network_id"] == network["id"] and s["ip_version"] == 4]
    if subnets:
        address = _free_address(subnets[0])
        if address is None:
            raise Refused("409 Conflict", "IpAddressGenerationFailure",
                          "No more IP addresses available on network %s." % network["id"])
        fixed_ips = [{"subnet_id": subnets[0]["id"], "ip_address": address}]
    mac = next(_MACS)
    port = {
        "id": str(uuid.uuid4()), "name": "", "description": "", "network_id": network["id"],
        "tenant_id": body.get("tenant_id") or body.get("project_id") or PROJECT,
        "project_id": body.get("project_id") or body.get("tenant_id") or PROJECT,
        "mac_address": "fa:16:3e:%02x:%02x:%02x" % (mac >> 16 & 255, mac >> 8 & 255, mac & 255),
        "admin_state_up": True, "status": "ACTIVE", "device_id": "", "device_owner": "",
        "fixed_ips": fixed_ips,
        "security_groups": [SECURITY_GROUPS[0]["id"]], "allowed_address_pairs": [], "extra_dhcp_opts": [],
        "binding:host_id": "", "binding:vif_type": "ovs", "binding:vnic_type": "normal",
        "binding:vif_details": {"port_filter": True}, "binding:profile": {}, "port_security_enabled": True,
        "dns_name": "", "dns_assignment": [], "tags": [], "created_at": _now(), "updated_at": _now(),
        "revision_number": 1,
    }
    port.update({k: v for k, v in body.items() if k in port and k not in ("id", "fixed_ips", "mac_address")})
    PORTS.append(port)
    return port


def _new_network(body):
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > 255:
        raise Refused("400 Bad Request", "HTTPBadRequest", "Invalid input for name. Reason: not a string of at "
                      "most 255 characters.")
    now = _now()
    network = {
        "id": str(uuid.uuid4()), "name": name, "description": str(body.get("description") or ""),
        "status": "ACTIVE", "admin_state_up": bool(body.get("admin_state_up", True)),
        "shared": bool(body.get("shared", False)), "router:external": False, "subnets": [], "mtu": 1450,
        "tenant_id": body.get("tenant_id") or body.get("project_id") or PROJECT,
        "project_id": body.get("project_id") or body.get("tenant_id") or PROJECT,
        "availability_zones": ["nova"], "ipv4_address_scope": None, "ipv6_address_scope": None,
        "port_security_enabled": bool(body.get("port_security_enabled", True)),
        "provider:network_type": "vxlan", "provider:segmentation_id": next(_VNIS),
        "provider:physical_network": None, "tags": [str(t) for t in body.get("tags") or []],
        "created_at": now, "updated_at": now, "revision_number": 1,
    }
    NETWORKS.append(network)
    return network


def _new_subnet(body):
    network = _find(NETWORKS, body.get("network_id"), "network")
    if int(body.get("ip_version", 4)) != 4:
        raise Refused("400 Bad Request", "HTTPBadRequest", "the Neutron stand-in makes IPv4 subnets only")
    try:
        cidr = ipaddress.ip_network(str(body.get("cidr")), strict=True)
    except ValueError:
        raise Refused("400 Bad Request", "HTTPBadRequest", "Invalid input for cidr. Reason: '%s' is not a valid "
                      "IP subnet." % body.get("cidr")) from None
    if cidr.num_addresses < 4:
        raise Refused("400 Bad Request", "HTTPBadRequest", "Invalid input for cidr: too small a subnet.")
    for other in SUBNETS:
        if other["network_id"] == network["id"] and ipaddress.ip_network(other["cidr"]).overlaps(cidr):
            raise Refused("400 Bad Request", "InvalidInput", "Invalid input for operation: Requested subnet with "
                          "cidr: %s for network: %s overlaps with another subnet." % (cidr, network["id"]))
    hosts = list(itertools.islice(cidr.hosts(), 1)) + [cidr.broadcast_address - 1]
    gateway = body.get("gateway_ip", str(hosts[0]))
    start = hosts[0] + 1 if gateway == str(hosts[0]) else hosts[0]
    now = _now()
    subnet = {
        "id": str(uuid.uuid4()), "name": str(body.get("name") or ""), "network_id": network["id"],
        "ip_version": 4, "cidr": str(cidr), "gateway_ip": gateway,
        "enable_dhcp": bool(body.get("enable_dhcp", True)),
        "allocation_pools": body.get("allocation_pools") or [{"start": str(start), "end": str(hosts[-1])}],
        "dns_nameservers": list(body.get("dns_nameservers") or []), "host_routes": [],
        "tenant_id": network["tenant_id"], "project_id": network["project_id"], "tags": [],
        "description": str(body.get("description") or ""), "subnetpool_id": None,
        "ipv6_ra_mode": None, "ipv6_address_mode": None, "service_types": [],
        "created_at": now, "updated_at": now, "revision_number": 1,
    }
    SUBNETS.append(subnet)
    network["subnets"].append(subnet["id"])
    network["revision_number"] += 1
    return subnet


def _delete(coll, ident):
    if coll == "networks":
        network = _find(NETWORKS, ident, "network")
        if any(p["network_id"] == ident for p in PORTS):
            raise Refused("409 Conflict", "NetworkInUse", "Unable to complete operation on network %s. There are "
                          "one or more ports still in use on the network." % ident)
        SUBNETS[:] = [s for s in SUBNETS if s["network_id"] != ident]
        NETWORKS.remove(network)
    elif coll == "subnets":
        subnet = _find(SUBNETS, ident, "subnet")
        if any(ip["subnet_id"] == ident for p in PORTS for ip in p["fixed_ips"]):
            raise Refused("409 Conflict", "SubnetInUse", "Unable to complete operation on subnet %s: One or more "
                          "ports have an IP allocation from this subnet." % ident)
        network = _find(NETWORKS, subnet["network_id"], "network")
        network["subnets"].remove(ident)
        SUBNETS.remove(subnet)
    else:
        PORTS.remove(_find(PORTS, ident, "port"))


def _write(coll, method, ident, body):
    """(status, reply body or None) of a write; raises Refused."""
    singular = COLLECTIONS[coll][0]
    if method == "POST" and not ident:
        makers = {"networks": _new_network, "subnets": _new_subnet, "ports": _new_port}
        if coll not in makers:
            raise Refused("403 Forbidden", "PolicyNotAuthorized", "the Neutron stand-in makes no %s" % coll)
        if coll in body:  # bulk create
            return "201 Created", {coll: [makers[coll](item) for item in body[coll]]}
        return "201 Created", {singular: makers[coll](body.get(singular) or {})}
    if method == "PUT" and ident and coll in ("networks", "subnets", "ports"):
        item = _find(COLLECTIONS[coll][1], ident, singular)
        frozen = ("id", "mac_address", "network_id", "cidr", "subnets", "tenant_id", "project_id")
        changes = {k: v for k, v in (body.get(singular) or {}).items() if k in item and k not in frozen}
        item.update(changes, updated_at=_now(), revision_number=item["revision_number"] + 1)
        return "200 OK", {singular: item}
    if method == "DELETE" and ident and coll in ("networks", "subnets", "ports"):
        _delete(coll, ident)
        return "204 No Content", None
    raise Refused("405 Method Not Allowed", "HTTPMethodNotAllowed", "%s is not allowed on %s" % (method, coll))


def _tags(method, coll, ident, body):
    item = _find(COLLECTIONS[coll][1], ident, COLLECTIONS[coll][0])
    if method == "PUT":
        tags = body.get("tags")
        if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= 255 for t in tags):
            raise Refused("400 Bad Request", "HTTPBadRequest", "Invalid input for tags: a list of strings of 1 "
                          "to 255 characters.")
        item["tags"] = list(dict.fromkeys(tags))
        item["revision_number"] += 1
    elif method != "GET":
        raise Refused("405 Method Not Allowed", "HTTPMethodNotAllowed", "%s on tags" % method)
    return {"tags": item["tags"]}


def _body(environ):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return json.loads(environ["wsgi.input"].read(length) or b"{}") if length else {}
    except ValueError:
        raise Refused("400 Bad Request", "BadRequest", "the body is not JSON") from None


def application(environ, start_response):
    try:
        return _answer(environ, start_response)
    except Refused as exc:
        return _error(start_response, exc.status, exc.kind, str(exc))


def _answer(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    method = environ["REQUEST_METHOD"]
    if path in ("", "/"):
        base = "http://%s/v2.0/" % environ.get("HTTP_HOST", "127.0.0.1")
        return _reply(start_response, "200 OK", {"versions": [
            {"id": "v2.0", "status": "CURRENT", "links": [{"href": base, "rel": "self"}]}]})
    if path.rstrip("/") == "/v2.0":
        return _reply(start_response, "200 OK", {"resources": [
            {"name": s, "collection": c, "links": []} for c, (s, _items) in COLLECTIONS.items()]})
    tags = TAGS_ROUTE.match(path)
    if tags:
        with _LOCK:
            return _reply(start_response, "200 OK", _tags(method, tags.group("coll"), tags.group("id"),
                                                          _body(environ) if method == "PUT" else {}))
    match = ROUTE.match(path)
    if match and match.group("coll") == "quotas":
        return _reply(start_response, "200 OK", {"quota": {
            "network": -1, "subnet": -1, "port": -1, "router": -1, "floatingip": -1,
            "security_group": -1, "security_group_rule": -1}})
    if not match or match.group("coll") not in COLLECTIONS:
        return _error(start_response, "404 Not Found", "HTTPNotFound", "the Neutron stand-in has no %s" % path)
    coll, ident = match.group("coll"), match.group("id")
    singular, items = COLLECTIONS[coll]
    if method in ("POST", "PUT", "DELETE"):
        body = _body(environ) if method != "DELETE" else {}
        with _LOCK:
            status, reply = _write(coll, method, ident, body)
        return _reply(start_response, status, reply) if reply is not None else _no_content(start_response)
    if method != "GET":
        return _error(start_response, "405 Method Not Allowed", "HTTPMethodNotAllowed", "%s %s" % (method, path))
    with _LOCK:
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
        return _reply(start_response, "200 OK", {coll.split("/")[-1].replace("-", "_"): found})

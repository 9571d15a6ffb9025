"""The cimi connector against a scripted CIMI endpoint: a real HTTP server in a thread answering from a
table, recording every request (what was asked, with which headers), so navigation, error mapping, Jobs,
paging, authentication, TLS and the never-leave-the-endpoint rule are checked on the wire."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    AuthError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    OperationTimeout,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import cimi_http
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import OPERATIONS, MachineSpec
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.cimi_http import CimiConnector
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.registry import connector_class

CIMI = "http://schemas.dmtf.org/cimi/2/"


class Endpoint:
    """A scripted HTTP server: ``routes[(method, path)]`` is a reply (status, headers, body) or a function
    of the request returning one; unknown routes answer 404 with a CIMI error body."""

    def __init__(self, tls=None):
        self.routes = {}
        self.requests = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                req = {"method": self.command, "path": parts.path, "query": parse_qs(parts.query),
                       "headers": dict(self.headers), "body": json.loads(raw) if raw else None}
                endpoint.requests.append(req)
                route = endpoint.routes.get((self.command, parts.path))
                if route is None:
                    reply = (404, {}, {"resourceURI": CIMI + "Job", "state": "FAILED", "returnCode": 404,
                                       "statusMessage": "nothing at %s" % parts.path})
                else:
                    reply = route(req) if callable(route) else route
                status, headers, body = reply
                data = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                if data and "Content-Type" not in headers:
                    self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = "%s://127.0.0.1:%d" % (scheme, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def hits(self, method=None, path=None):
        return [r for r in self.requests if (method is None or r["method"] == method)
                and (path is None or r["path"] == path)]


def cep(url, keys=("machines", "machineConfigs", "machineImages", "volumes", "networks", "meters",
                   "meterConfigs", "resourceMetadata"), **extra):
    doc = {"resourceURI": CIMI + "CloudEntryPoint", "id": url + "/cimi/cloudEntryPoint", "baseURI": url + "/cimi/"}
    for key in keys:
        doc[key] = {"href": url + "/cimi/" + key}
    doc.update(extra)
    return doc


def collection(key, type_name, items, add=True, count=None):
    doc = {"resourceURI": CIMI + type_name + "Collection", "id": key, "count": len(items) if count is None else count,
           key: items}
    if add:
        doc["operations"] = [{"rel": "add", "href": key}]
    return doc


def machine(url, uuid, name, state=states.STOPPED, **extra):
    mid = "%s/cimi/machines/%s" % (url, uuid)
    ops = [{"rel": CIMI + "action/" + op if op not in ("edit", "delete") else op,
            "href": mid + ("/" + op if op not in ("edit", "delete") else "")}
           for op in states.allowed_operations(state)]
    return dict({"resourceURI": CIMI + "Machine", "id": mid, "name": name, "state": state, "cpu": 1,
                 "memory": 65536, "operations": ops}, **extra)


CONFIGS = [{"resourceURI": CIMI + "MachineConfiguration", "id": "/cimi/machineConfigs/tiny", "name": "tiny",
            "cpu": 1, "memory": 65536},
           {"resourceURI": CIMI + "MachineConfiguration", "id": "/cimi/machineConfigs/big", "name": "big",
            "cpu": 4, "memory": 1048576}]


@pytest.fixture
def endpoint():
    ep = Endpoint()
    ep.routes[("GET", "/cimi/cloudEntryPoint")] = (200, {}, cep(ep.url))
    configs = collection("machineConfigs", "MachineConfiguration", CONFIGS, add=False)
    ep.routes[("GET", "/cimi/machineConfigs")] = (200, {}, configs)
    for key, type_name in (("machines", "Machine"), ("volumes", "Volume"), ("networks", "Network"),
                           ("machineImages", "MachineImage"), ("meters", "Meter")):
        ep.routes[("GET", "/cimi/" + key)] = (200, {}, collection(key, type_name, []))
    ep.routes[("GET", "/cimi/meterConfigs")] = (200, {}, collection("meterConfigs", "MeterConfiguration", [
        {"resourceURI": CIMI + "MeterConfiguration", "id": "/cimi/meterConfigs/cpu", "aspect": CIMI + "aspect/cpu"}],
        add=False))
    ep.routes[("GET", "/cimi/resourceMetadata")] = (200, {}, collection("resourceMetadata", "ResourceMetadata", [
        {"resourceURI": CIMI + "ResourceMetadata", "typeURI": CIMI + "Machine",
         "actions": [{"name": v, "uri": CIMI + "action/" + v} for v in ("start", "stop", "capture")]}], add=False))
    yield ep
    ep.stop()


def connect(ep, **kw):
    kw.setdefault("username", "alice")
    kw.setdefault("password", "alice-secret-pw")
    return CimiConnector(uri=ep.url + "/cimi/cloudEntryPoint", timeout=5, **kw)


# -- options ---------------------------------------------------------------------------------------

def test_registered_and_options_checked():
    assert connector_class("cimi") is CimiConnector
    for uri in (None, "", "ftp://x/cep", "not a url"):
        with pytest.raises(InvalidInput) as info:
            CimiConnector(uri=uri)
        assert info.value.attribute == "uri"
    with pytest.raises(InvalidInput):
        CimiConnector(uri="http://x/cep", options={"sizes": []})
    with pytest.raises(InvalidInput):
        CimiConnector(uri="http://x/cep", options={"token": 42})
    for bad in (0, -1, True, "10"):
        with pytest.raises(InvalidInput):
            CimiConnector(uri="http://x/cep", options={"job_timeout": bad})


def test_credentials_in_the_uri_are_used_and_never_shown():
    conn = CimiConnector(uri="http://bob:hunter2-pw@127.0.0.1:9/cimi/cloudEntryPoint")
    assert conn.username == "bob" and "hunter2" not in repr(conn) and "hunter2" not in conn.uri
    with pytest.raises(ProviderUnavailable) as info:
        conn.capabilities()
    assert "hunter2" not in str(info.value)


# -- navigation and capabilities ----------------------------------------------------------------------

def test_capabilities_follow_the_cep_links_and_the_metadata(endpoint):
    caps = connect(endpoint).capabilities()
    assert {"machine.create", "machine.start", "machine.stop", "machine.capture", "volume.create",
            "volume.attach", "network.create", "meter.list"} <= caps.operations
    assert "machine.pause" not in caps.operations and "machine.suspend" not in caps.operations  # not in metadata
    assert caps.cpu.minimum == 1 and caps.cpu.maximum == 4
    assert caps.memory_mib.minimum == 64 and caps.memory_mib.maximum == 1024
    assert caps.meters == (CIMI + "aspect/cpu",)
    assert caps.locations == (endpoint.url + "/cimi/cloudEntryPoint",)
    assert caps.provider == "cimi"


def test_a_minimal_endpoint_advertises_little_and_refuses_the_rest(endpoint):
    endpoint.routes[("GET", "/cimi/cloudEntryPoint")] = (200, {}, cep(endpoint.url, keys=("machines",)))
    endpoint.routes[("GET", "/cimi/machines")] = (200, {}, collection("machines", "Machine", [], add=False))
    conn = connect(endpoint)
    caps = conn.capabilities()
    assert caps.operations == {"machine.list", "machine.get", "machine.delete", "machine.start", "machine.stop",
                               "machine.restart", "machine.pause", "machine.suspend"}
    for operation, method in OPERATIONS.items():
        if operation in caps.operations:
            continue
        args = {"create_machine": (MachineSpec(name="x", config=MachineConfiguration(cpu=1, memory=1024)),),
                "create_volume": ("v", 1), "create_network": ("n",), "capture_machine": ("m", "img"),
                "attach_volume": ("m", "v"), "detach_volume": ("m", "v"),
                "migrate_machine": ("m", "h2"), "resize_machine": ("m", MachineConfiguration(cpu=1, memory=1024)),
                "resize_volume": ("v", 2), "create_credential": ("c", "ssh-ed25519 AAAA"),
                "create_machine_config": (MachineConfiguration(name="c", cpu=1, memory=1024),),
                "create_machine_template": ({"name": "t"},), "create_system": ("s", "t"),
                "create_system_template": ({"name": "st"},),
                "import_machine_image": ("img",)}.get(method, ("x",) if method.startswith(
                    ("delete", "start", "stop", "restart", "pause", "suspend", "get", "list_meters")) else ())
        with pytest.raises(Unsupported) as info:
            getattr(conn, method)(*args)
        assert info.value.provider == "cimi" and info.value.operation == operation


def test_relative_hrefs_are_resolved_against_the_base_uri(endpoint):
    relative = {"resourceURI": CIMI + "CloudEntryPoint", "id": "cloudEntryPoint", "baseURI": endpoint.url + "/cimi/",
                "machines": {"href": "machines"}}
    endpoint.routes[("GET", "/cimi/cloudEntryPoint")] = (200, {}, relative)
    endpoint.routes[("GET", "/cimi/machines")] = (200, {}, collection("machines", "Machine", [
        dict(machine("", "m1", "one"), id="machines/m1")]))
    one = dict(machine("", "m1", "one"), id="machines/m1",
               operations=[{"rel": "delete", "href": "machines/m1"}, {"rel": "edit", "href": "machines/m1"}])
    endpoint.routes[("GET", "/cimi/machines/m1")] = (200, {}, one)  # relative to the base, not to this URL
    endpoint.routes[("DELETE", "/cimi/machines/m1")] = (202, {"CIMI-Job-URI": "jobs/j0"}, None)
    endpoint.routes[("GET", "/cimi/jobs/j0")] = (200, {}, {"resourceURI": CIMI + "Job", "state": "SUCCESS"})
    conn = connect(endpoint)
    [m] = conn.list_machines().items
    assert m.id == endpoint.url + "/cimi/machines/m1"
    assert conn.get_machine(m.id).operations[0]["href"] == m.id
    conn.delete_machine(m.id)
    assert endpoint.hits("DELETE", "/cimi/machines/m1") and endpoint.hits("GET", "/cimi/jobs/j0")


def test_paging_positions_and_name_lookup_on_the_endpoint(endpoint):
    docs = [machine(endpoint.url, "m%d" % i, "vm%d" % i) for i in range(5)]

    def listing(req):
        items = docs
        if "$filter" in req["query"]:
            wanted = req["query"]["$filter"][0]
            items = [d for d in docs if wanted in ("name='%s'" % d["name"], 'name="%s"' % d["name"])]
        count = len(items)
        first = int(req["query"].get("$first", ["1"])[0])
        last = int(req["query"].get("$last", [str(count)])[0])
        return 200, {}, collection("machines", "Machine", items[first - 1:last], count=count)
    endpoint.routes[("GET", "/cimi/machines")] = listing
    conn = connect(endpoint)
    page = conn.list_machines(limit=2)
    assert [m.name for m in page.items] == ["vm0", "vm1"] and page.marker == "2"
    page = conn.list_machines(limit=2, marker=page.marker)
    assert [m.name for m in page.items] == ["vm2", "vm3"] and page.marker == "4"
    page = conn.list_machines(limit=2, marker=page.marker)
    assert [m.name for m in page.items] == ["vm4"] and page.marker is None
    assert [m.name for m in conn.iter_machines(page_size=3)] == ["vm0", "vm1", "vm2", "vm3", "vm4"]
    for bad in (0, -1, True, "2"):
        with pytest.raises(InvalidInput):
            conn.list_machines(limit=bad)
    with pytest.raises(InvalidInput):
        conn.list_machines(limit=2, marker="not-a-position")
    assert conn.find_machine("vm3").id == docs[3]["id"]
    assert endpoint.hits("GET", "/cimi/machines")[-1]["query"]["$filter"] == ["name='vm3'"]
    assert conn.find_machine("it's") is None
    assert endpoint.hits("GET", "/cimi/machines")[-1]["query"]["$filter"] == ['name="it\'s"']


def test_an_endpoint_that_ignores_filter_still_gives_the_right_machine(endpoint):
    docs = [machine(endpoint.url, "m1", "a"), machine(endpoint.url, "m2", "b")]
    endpoint.routes[("GET", "/cimi/machines")] = (200, {}, collection("machines", "Machine", docs))
    assert connect(endpoint).find_machine("b").id == docs[1]["id"]


def test_a_short_listing_is_followed_up_to_its_count(endpoint):
    docs = [machine(endpoint.url, "m%d" % i, "vm%d" % i) for i in range(5)]

    def capped(req):  # an endpoint that sends at most two entries per reply
        first = int(req["query"].get("$first", ["1"])[0])
        return 200, {}, collection("machines", "Machine", docs[first - 1:first + 1], count=len(docs))
    endpoint.routes[("GET", "/cimi/machines")] = capped
    assert [m.name for m in connect(endpoint).list_machines().items] == ["vm0", "vm1", "vm2", "vm3", "vm4"]


# -- ids, origins, redirects ---------------------------------------------------------------------------

def test_ids_outside_the_endpoint_are_not_found_and_never_asked_for(endpoint):
    other = Endpoint()
    try:
        conn = connect(endpoint)
        for ref in ("no-such-machine", "machines/m1", other.url + "/cimi/machines/m1", "file:///etc/passwd"):
            with pytest.raises(NotFound):
                conn.get_machine(ref)
        assert other.requests == []
        # a link of the endpoint that points elsewhere is not followed either
        endpoint.routes[("GET", "/cimi/cloudEntryPoint")] = (200, {}, dict(
            cep(endpoint.url), machines={"href": other.url + "/cimi/machines"}))
        with pytest.raises(ProviderUnavailable) as info:
            connect(endpoint).list_machines()
        assert "outside" in str(info.value) and other.requests == []
    finally:
        other.stop()


def test_a_resource_of_another_type_is_not_a_machine(endpoint):
    endpoint.routes[("GET", "/cimi/volumes/v1")] = (200, {}, {"resourceURI": CIMI + "Volume",
                                                              "id": endpoint.url + "/cimi/volumes/v1"})
    with pytest.raises(NotFound) as info:
        connect(endpoint).get_machine(endpoint.url + "/cimi/volumes/v1")
    assert "Volume" in str(info.value)


def test_redirects_are_followed_only_home_and_only_for_reads(endpoint):
    other = Endpoint()
    try:
        endpoint.routes[("GET", "/cimi/")] = (302, {"Location": endpoint.url + "/cimi/cloudEntryPoint"}, None)
        conn = CimiConnector(uri=endpoint.url + "/cimi/", username="alice", password="alice-secret-pw")
        assert conn.cep["id"] == endpoint.url + "/cimi/cloudEntryPoint"
        endpoint.routes[("GET", "/cimi/machines")] = (302, {"Location": other.url + "/steal"}, None)
        with pytest.raises(ProviderUnavailable) as info:
            conn.list_machines()
        assert "redirected" in str(info.value)
        assert other.requests == []  # the credentials never went there
    finally:
        other.stop()


# -- authentication -----------------------------------------------------------------------------------

def test_basic_auth_and_bearer_tokens(endpoint):
    connect(endpoint).capabilities()
    expected = "Basic " + base64.b64encode(b"alice:alice-secret-pw").decode()
    assert {r["headers"]["Authorization"] for r in endpoint.requests} == {expected}
    endpoint.requests.clear()
    CimiConnector(uri=endpoint.url + "/cimi/cloudEntryPoint", options={"token": "tok-1"}).capabilities()
    CimiConnector(uri=endpoint.url + "/cimi/cloudEntryPoint", password="tok-2").capabilities()
    assert {r["headers"]["Authorization"] for r in endpoint.requests} == {"Bearer tok-1", "Bearer tok-2"}


# -- errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, cls", [
    (400, InvalidInput), (401, AuthError), (403, Forbidden), (404, NotFound), (409, Conflict), (413, InvalidInput),
    (415, InvalidInput), (501, Unsupported), (500, ProviderUnavailable), (502, ProviderUnavailable),
    (503, ProviderUnavailable)])
def test_each_status_is_one_error_class_with_the_endpoint_message(endpoint, status, cls):
    conn = connect(endpoint)
    conn.capabilities()
    endpoint.routes[("GET", "/cimi/machines")] = (status, {}, {
        "resourceURI": CIMI + "Job", "state": "FAILED", "returnCode": status,
        "statusMessage": "the endpoint says %d" % status, "properties": {"error": "x", "attribute": "name"}})
    with pytest.raises(cls) as info:
        conn.list_machines()
    assert "the endpoint says %d" % status in str(info.value)
    assert "alice-secret-pw" not in str(info.value)
    if cls is InvalidInput:
        assert info.value.attribute == "name"
    if cls is Unsupported:
        assert info.value.provider == "cimi" and info.value.operation == "machine.list"


def test_an_error_page_that_is_not_json_keeps_its_status(endpoint):
    endpoint.routes[("GET", "/cimi/machines")] = (502, {"Content-Type": "text/html"}, b"<html>Bad Gateway</html>")
    with pytest.raises(ProviderUnavailable) as info:
        connect(endpoint).list_machines()
    assert "Bad Gateway" in str(info.value)
    endpoint.routes[("GET", "/cimi/machines")] = (200, {"Content-Type": "text/html"}, b"<html>hi</html>")
    with pytest.raises(ProviderUnavailable) as info:
        connect(endpoint).list_machines()
    assert "not JSON" in str(info.value)


def test_unreachable_and_silent_endpoints_are_unavailable():
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderUnavailable) as info:
        CimiConnector(uri="http://127.0.0.1:%d/cimi/cloudEntryPoint" % port).capabilities()
    assert "cannot reach" in str(info.value)
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as info:
            CimiConnector(uri="http://127.0.0.1:%d/cep" % silent.getsockname()[1], timeout=1).capabilities()
        assert time.monotonic() - started < 5


# -- jobs -------------------------------------------------------------------------------------------

def _job(url, uuid, state, code=None, message=None, affected=()):
    doc = {"resourceURI": CIMI + "Job", "id": "%s/cimi/jobs/%s" % (url, uuid), "state": state}
    if code is not None:
        doc["returnCode"] = code
    if message:
        doc["statusMessage"] = message
    if affected:
        doc["affectedResources"] = [{"href": h} for h in affected]
    return doc


def _scripted(*docs):
    """A route answering ``docs`` in turn, then the last one forever."""
    seq = list(docs)
    return lambda req: (200, {}, seq.pop(0) if len(seq) > 1 else seq[0])


def test_an_action_follows_its_job_to_success(endpoint):
    m = machine(endpoint.url, "m1", "one", states.STOPPED)
    started = machine(endpoint.url, "m1", "one", states.STARTED)
    state = {"doc": m}
    endpoint.routes[("GET", "/cimi/machines/m1")] = lambda req: (200, {}, state["doc"])

    def start(req):
        state["doc"] = started
        return 202, {"CIMI-Job-URI": "/cimi/jobs/j1", "Location": "/cimi/jobs/j1"}, _job(endpoint.url, "j1", "QUEUED")
    endpoint.routes[("POST", "/cimi/machines/m1/start")] = start
    endpoint.routes[("GET", "/cimi/jobs/j1")] = _scripted(_job(endpoint.url, "j1", "QUEUED"),
                                                          _job(endpoint.url, "j1", "RUNNING"),
                                                          _job(endpoint.url, "j1", "SUCCESS", 200))
    conn = connect(endpoint)
    assert conn.start_machine(m["id"]).state == states.STARTED
    [post] = endpoint.hits("POST")
    assert post["body"] == {"resourceURI": CIMI + "Action", "action": CIMI + "action/start"}
    assert post["headers"]["Content-Type"] == "application/json"
    assert len(endpoint.hits("GET", "/cimi/jobs/j1")) == 3


def test_a_failed_job_raises_the_class_of_its_return_code(endpoint):
    m = machine(endpoint.url, "m1", "one", states.STARTED)
    endpoint.routes[("GET", "/cimi/machines/m1")] = (200, {}, m)
    endpoint.routes[("POST", "/cimi/machines/m1/stop")] = (202, {"CIMI-Job-URI": "/cimi/jobs/j2"}, None)
    endpoint.routes[("GET", "/cimi/jobs/j2")] = (200, {}, _job(endpoint.url, "j2", "FAILED", 409, "host said no"))
    with pytest.raises(Conflict) as info:
        connect(endpoint).stop_machine(m["id"], force=True)
    assert "host said no" in str(info.value)
    assert endpoint.hits("POST")[0]["body"]["force"] is True
    endpoint.routes[("GET", "/cimi/jobs/j2")] = (200, {}, _job(endpoint.url, "j2", "FAILED", None, "boom"))
    with pytest.raises(ProviderUnavailable):
        connect(endpoint).stop_machine(m["id"])


def test_a_job_that_never_ends_times_out(endpoint):
    m = machine(endpoint.url, "m1", "one", states.STARTED)
    endpoint.routes[("GET", "/cimi/machines/m1")] = (200, {}, m)
    endpoint.routes[("POST", "/cimi/machines/m1/stop")] = (202, {"CIMI-Job-URI": "/cimi/jobs/j3"}, None)
    endpoint.routes[("GET", "/cimi/jobs/j3")] = (200, {}, _job(endpoint.url, "j3", "RUNNING"))
    started = time.monotonic()
    with pytest.raises(OperationTimeout) as info:
        connect(endpoint, options={"job_timeout": 0.5}).stop_machine(m["id"])
    assert "RUNNING" in str(info.value) and time.monotonic() - started < 3


def test_an_action_the_machine_does_not_offer_is_a_conflict_without_a_request(endpoint):
    m = machine(endpoint.url, "m1", "one", states.STOPPED)
    endpoint.routes[("GET", "/cimi/machines/m1")] = (200, {}, m)
    with pytest.raises(Conflict) as info:
        connect(endpoint).stop_machine(m["id"])
    assert "STOPPED" in str(info.value) and not endpoint.hits("POST")


def test_a_create_posts_to_the_add_href_and_a_failed_one_leaves_nothing(endpoint):
    add = endpoint.url + "/cimi/machines/add-here"
    listing = dict(collection("machines", "Machine", []), operations=[{"rel": "add", "href": add}])
    endpoint.routes[("GET", "/cimi/machines")] = (200, {}, listing)
    new = machine(endpoint.url, "m9", "web", states.CREATING)
    headers = {"Location": new["id"], "CIMI-Job-URI": "/cimi/jobs/j4"}
    endpoint.routes[("POST", "/cimi/machines/add-here")] = (202, headers, new)
    endpoint.routes[("GET", "/cimi/jobs/j4")] = (200, {}, _job(endpoint.url, "j4", "FAILED", 409, "no host fits"))
    endpoint.routes[("DELETE", "/cimi/machines/m9")] = (200, {}, None)
    conn = connect(endpoint)
    spec = MachineSpec(name="web", config=conn.get_machine_config("tiny"), properties={"a": "b"})
    with pytest.raises(Conflict) as info:
        conn.create_machine(spec)
    assert "no host fits" in str(info.value)
    [post] = endpoint.hits("POST")
    assert post["body"] == {"resourceURI": CIMI + "MachineCreate", "name": "web", "properties": {"a": "b"},
                            "machineTemplate": {"initialState": "STOPPED",
                                                "machineConfig": {"href": endpoint.url + "/cimi/machineConfigs/tiny"}}}
    assert endpoint.hits("DELETE", "/cimi/machines/m9")  # the failed machine is not left behind
    # a configuration by value, and one that does not fit the endpoint's sizes
    endpoint.requests.clear()
    endpoint.routes[("GET", "/cimi/jobs/j4")] = (200, {}, _job(endpoint.url, "j4", "SUCCESS", 201))
    endpoint.routes[("GET", "/cimi/machines/m9")] = (200, {}, machine(endpoint.url, "m9", "web"))
    made = conn.create_machine(MachineSpec(name="web", config=MachineConfiguration(cpu=2, memory=131072)))
    assert made.id == new["id"] and made.state == states.STOPPED
    assert endpoint.hits("POST")[0]["body"]["machineTemplate"]["machineConfig"] == {"cpu": 2, "memory": 131072}
    with pytest.raises(InvalidInput) as info:
        conn.create_machine(MachineSpec(name="huge", config=MachineConfiguration(cpu=64, memory=131072)))
    assert info.value.attribute == "machineConfig"


KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtQhL8nqS6ApjVYVBrYy8i2kxZgP2jbhcv8fUMTNCLp me@host"


def test_a_credential_goes_as_cimi_user_name_and_bad_guest_inputs_are_refused_before_a_request(endpoint):
    add = endpoint.url + "/cimi/machines/add-here"
    listing = dict(collection("machines", "Machine", []), operations=[{"rel": "add", "href": add}])
    endpoint.routes[("GET", "/cimi/machines")] = (200, {}, listing)
    new = machine(endpoint.url, "m9", "web", states.CREATING)
    headers = {"Location": new["id"], "CIMI-Job-URI": "/cimi/jobs/j4"}
    endpoint.routes[("POST", "/cimi/machines/add-here")] = (202, headers, new)
    endpoint.routes[("GET", "/cimi/jobs/j4")] = (200, {}, _job(endpoint.url, "j4", "SUCCESS", 201))
    endpoint.routes[("GET", "/cimi/machines/m9")] = (200, {}, machine(endpoint.url, "m9", "web"))
    conn = connect(endpoint)
    config = MachineConfiguration(cpu=1, memory=65536)
    # a MachineSpec's "username" (and a CIMI document's "userName") leave as Table 23's userName
    for credential in ({"username": "debian", "key": KEY + "\n"}, {"userName": "debian", "key": KEY}):
        endpoint.requests.clear()
        conn.create_machine(MachineSpec(name="web", config=config, credential=credential, user_data="#cloud-config\n"))
        template = endpoint.hits("POST")[0]["body"]["machineTemplate"]
        assert template["credential"] == {"userName": "debian", "key": KEY}
        assert template["userData"] == "#cloud-config\n"
    endpoint.requests.clear()
    for bad, attribute in (({"username": "debian", "key": "ssh-ed25519 not-base64!"}, "credential.key"),
                           ({"username": "Not A User", "key": KEY}, "credential.userName"),
                           ({"username": "debian"}, "credential.key")):
        with pytest.raises(InvalidInput) as info:
            conn.create_machine(MachineSpec(name="web", config=config, credential=bad))
        assert info.value.attribute == attribute
    with pytest.raises(InvalidInput) as info:
        conn.create_machine(MachineSpec(name="web", config=config, user_data="x" * 65537))
    assert info.value.attribute == "userData"
    assert not endpoint.hits("POST")  # refused before anything was asked for
    document = cimi_http.credential_document({"username": "root", "password": "pw"})
    assert document == {"userName": "root", "password": "pw"}


def test_names_are_unique_per_kind(endpoint):
    endpoint.routes[("GET", "/cimi/volumes")] = (200, {}, collection("volumes", "Volume", [
        {"resourceURI": CIMI + "Volume", "id": endpoint.url + "/cimi/volumes/v1", "name": "data", "capacity": 1}]))
    conn = connect(endpoint)
    with pytest.raises(Conflict):
        conn.create_volume("data", 1024)
    for capacity in (0, -1, "1", True, 1.5):
        with pytest.raises(InvalidInput):
            conn.create_volume("other", capacity)
    assert not endpoint.hits("POST")


# -- TLS -----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_certificates_are_verified_unless_told_not_to(certificate):
    ep = Endpoint(tls=certificate)
    try:
        ep.routes[("GET", "/cimi/cloudEntryPoint")] = (200, {}, cep(ep.url, keys=()))
        with pytest.raises(ProviderUnavailable) as info:
            CimiConnector(uri=ep.url + "/cimi/cloudEntryPoint", username="a", password="b").capabilities()
        assert "CERTIFICATE" in str(info.value).upper()
        conn = CimiConnector(uri=ep.url + "/cimi/cloudEntryPoint", username="a", password="b", validate_certs=False)
        assert conn.cep["baseURI"] == ep.url + "/cimi/"
    finally:
        ep.stop()


def test_helpers():
    assert cimi_http.filter_literal("a") == "'a'" and cimi_http.filter_literal("a'b") == '"a\'b"'
    assert cimi_http.filter_literal("a'\"b") is None
    assert cimi_http.redact("https://u:p@h:1/x") == "https://h:1/x"
    assert cimi_http.error_class(418) is InvalidInput and cimi_http.error_class(504) is ProviderUnavailable
    assert cimi_http.operation_href({"operations": [{"rel": "start", "href": "h"}]}, CIMI + "action/start") == "h"
    assert cimi_http.absolute({"id": "x", "a": [{"href": "y"}], "b": "z"}, "http://e/cimi/") == {
        "id": "http://e/cimi/x", "a": [{"href": "http://e/cimi/y"}], "b": "z"}


def test_cimi_2_collections_on_a_machine_volumes_and_meters(endpoint):
    """A CIMI 2.0 endpoint gives a machine's volumes and meters as collections ({href}), not lists."""
    url = endpoint.url
    mid = url + "/cimi/machines/m1"
    m = machine(url, "m1", "one", volumes={"href": mid + "/vols"}, meters={"href": mid + "/meters"},
                disks={"href": mid + "/disks"})
    vol = {"resourceURI": CIMI + "Volume", "id": url + "/cimi/volumes/v1", "name": "data", "capacity": 1024}
    endpoint.routes[("GET", "/cimi/machines/m1")] = (200, {}, m)
    endpoint.routes[("GET", "/cimi/machines/m1/disks")] = (200, {}, collection("disks", "Disk", [
        {"resourceURI": CIMI + "Disk", "id": mid + "/disks/0", "capacity": 2048}]))
    endpoint.routes[("GET", "/cimi/volumes/v1")] = (200, {}, vol)
    attached = {"resourceURI": CIMI + "MachineVolume", "id": mid + "/vols/a1", "volume": {"href": vol["id"]},
                "operations": [{"rel": "delete", "href": mid + "/vols/a1"}]}
    listing = {"items": []}
    endpoint.routes[("GET", "/cimi/machines/m1/vols")] = lambda req: (200, {}, dict(
        collection("machineVolumes", "MachineVolume", listing["items"]),
        operations=[{"rel": "add", "href": mid + "/vols"}]))

    def attach(req):
        listing["items"] = [attached]
        return 201, {"Location": attached["id"]}, attached
    endpoint.routes[("POST", "/cimi/machines/m1/vols")] = attach

    def detach(req):
        listing["items"] = []
        return 200, {}, None
    endpoint.routes[("DELETE", "/cimi/machines/m1/vols/a1")] = detach
    endpoint.routes[("GET", "/cimi/machines/m1/meters")] = (200, {}, collection("meters", "Meter", [
        {"resourceURI": CIMI + "Meter", "id": url + "/cimi/meters/c1"}]))
    endpoint.routes[("GET", "/cimi/meters/c1")] = (200, {}, {
        "resourceURI": CIMI + "Meter", "id": url + "/cimi/meters/c1", "aspect": CIMI + "aspect/cpu",
        "targetResource": {"href": mid}, "samples": [{"timestamp": "2026-01-01T00:00:00Z", "value": "1.5"}]})
    conn = connect(endpoint)
    got = conn.get_machine(mid)
    # collections are links: followed (this endpoint ignores $expand), their items kept inline
    assert not got.volumes and [d.capacity for d in got.disks] == [2048]
    assert endpoint.hits("GET", "/cimi/machines/m1/disks")
    conn.attach_volume(mid, vol["id"], initial_location="vdb")
    assert endpoint.hits("POST")[0]["body"] == {"resourceURI": CIMI + "locatedVolume", "volume": {"href": vol["id"]},
                                                "initialLocation": "vdb"}
    conn.detach_volume(mid, vol["id"])
    assert endpoint.hits("DELETE", "/cimi/machines/m1/vols/a1")
    with pytest.raises(Conflict):  # not attached any more
        conn.detach_volume(mid, vol["id"])
    [meter] = conn.list_meters(mid)
    assert meter.aspect == CIMI + "aspect/cpu" and meter.samples[0].value == "1.5"


def test_a_refused_capture_leaves_no_image_behind(endpoint):
    url = endpoint.url
    m = machine(url, "m1", "one", states.STOPPED)
    image = {"resourceURI": CIMI + "MachineImage", "id": url + "/cimi/machineImages/i1", "name": "img",
             "state": "ERROR", "operations": [{"rel": "delete", "href": url + "/cimi/machineImages/i1"}]}
    endpoint.routes[("GET", "/cimi/machines/m1")] = (200, {}, m)
    endpoint.routes[("POST", "/cimi/machines/m1/capture")] = (202, {"CIMI-Job-URI": "/cimi/jobs/j5"}, None)
    failed = _job(url, "j5", "FAILED", 409, "no disk to capture", affected=(m["id"], image["id"]))
    endpoint.routes[("GET", "/cimi/jobs/j5")] = (200, {}, failed)
    endpoint.routes[("GET", "/cimi/machineImages/i1")] = (200, {}, image)
    endpoint.routes[("DELETE", "/cimi/machineImages/i1")] = (200, {}, None)
    with pytest.raises(Conflict) as info:
        connect(endpoint).capture_machine(m["id"], "img", description="golden")
    assert "no disk to capture" in str(info.value)
    assert endpoint.hits("POST")[0]["body"]["image"] == {"name": "img", "description": "golden"}
    assert endpoint.hits("DELETE", "/cimi/machineImages/i1")


def test_hosts_shown_to_administrators_are_the_locations(endpoint):
    url = endpoint.url
    endpoint.routes[("GET", "/cimi/cloudEntryPoint")] = (200, {}, dict(cep(url), hosts={"href": url + "/admin/hosts"}))
    endpoint.routes[("GET", "/admin/hosts")] = (200, {}, {"hosts": [{"name": "sim1"}, {"name": "sim2"}]})
    new = machine(url, "m7", "pinned")
    endpoint.routes[("POST", "/cimi/machines")] = (201, {"Location": new["id"]}, new)
    endpoint.routes[("GET", "/cimi/machines/m7")] = (200, {}, new)
    conn = connect(endpoint)
    assert conn.capabilities().locations == ("sim1", "sim2")
    spec = MachineSpec(name="pinned", config=MachineConfiguration(cpu=1, memory=65536), location="sim2")
    assert conn.create_machine(spec).id == new["id"]
    assert endpoint.hits("POST")[0]["body"]["properties"] == {"sirocco.host": "sim2"}
    with pytest.raises(InvalidInput) as info:
        conn.create_machine(MachineSpec(name="x", config=MachineConfiguration(cpu=1, memory=65536), location="sim9"))
    assert info.value.attribute == "location" and "sim1, sim2" in str(info.value)


def test_system_templates_read_in_either_shape_and_sent_in_table14s(endpoint):
    """DSP0263 Table 14: a componentDescriptor holds its template under machineTemplate (volumeTemplate,
    networkTemplate). Templates an endpoint serves in siroccod's former shape (under ``component``) read the
    same; what the connector sends is Table 14's, whatever shape its caller used."""
    url = endpoint.url
    endpoint.routes[("GET", "/cimi/cloudEntryPoint")] = (200, {}, cep(url, keys=(
        "machines", "machineConfigs", "machineTemplates", "systemTemplates", "systems")))
    vt = {"volumeConfig": {"capacity": 1024}}
    stored = [{"resourceURI": CIMI + "SystemTemplate", "id": url + "/cimi/systemTemplates/" + n, "name": n,
               "componentDescriptors": [dict({"type": CIMI + "Volume", "name": "v"}, **{key: vt})]}
              for n, key in (("old", "component"), ("new", "volumeTemplate"))]
    endpoint.routes[("GET", "/cimi/systemTemplates")] = (200, {}, collection("systemTemplates", "SystemTemplate",
                                                                             stored))
    for key, type_name in (("machineTemplates", "MachineTemplate"), ("systems", "System")):
        endpoint.routes[("GET", "/cimi/" + key)] = (200, {}, collection(key, type_name, []))
    conn = connect(endpoint)
    read = {t.name: t.to_json()["componentDescriptors"] for t in conn.list_system_templates()}
    assert read["old"] == read["new"] == [{"type": CIMI + "Volume", "name": "v", "volumeTemplate": vt}]

    made = dict(stored[1], id=url + "/cimi/systemTemplates/made", name="made")
    endpoint.routes[("POST", "/cimi/systemTemplates")] = (201, {"Location": made["id"]}, made)
    endpoint.routes[("GET", "/cimi/systemTemplates/made")] = (200, {}, made)
    for key in ("machineTemplate", "component"):
        endpoint.requests.clear()
        conn.create_system_template({"name": "made", "componentDescriptors": [
            {"type": "Machine", "name": "m", "quantity": 2, "properties": {"a": "b"},
             key: {"machineConfig": {"href": "tiny"}}}]})
        [post] = endpoint.hits("POST")
        assert post["body"]["componentDescriptors"] == [
            {"type": CIMI + "Machine", "name": "m", "quantity": 2, "properties": {"a": "b"},
             "machineTemplate": {"machineConfig": {"href": url + "/cimi/machineConfigs/tiny"}}}]


def _network_endpoint(endpoint, accept):
    """networks whose add takes a NetworkCreate when ``accept(template)`` is None, else answers 400 naming it."""
    add = endpoint.url + "/cimi/networks/add-here"
    endpoint.routes[("GET", "/cimi/networks")] = (200, {}, dict(collection("networks", "Network", []),
                                                                operations=[{"rel": "add", "href": add}]))
    net = {"resourceURI": CIMI + "Network", "id": endpoint.url + "/cimi/networks/n1", "name": "lan",
           "state": states.STARTED}

    def post(req):
        refused = accept(req["body"]["networkTemplate"])
        if refused:
            return (400, {}, {"resourceURI": CIMI + "Job", "state": "FAILED", "returnCode": 400,
                              "statusMessage": "NetworkCreate.networkTemplate: %s" % refused,
                              "properties": {"attribute": refused, "error": "invalid-input"}})
        return (202, {"Location": net["id"], "CIMI-Job-URI": "/cimi/jobs/jn"}, dict(net, state=states.CREATING))
    endpoint.routes[("POST", "/cimi/networks/add-here")] = post
    endpoint.routes[("GET", "/cimi/jobs/jn")] = (200, {}, _job(endpoint.url, "jn", "SUCCESS", 201))
    endpoint.routes[("GET", "/cimi/networks/n1")] = (200, {}, net)


def test_a_network_is_made_from_a_table31_template_and_an_older_siroccod_gets_its_networkconfig(endpoint):
    """Issue 16 clause 7: a NetworkTemplate by value as DSP0263 2.0.0 has it (initialState STARTED: a spec
    endpoint's default is STOPPED), cidr and dhcp in Sirocco's networkConfig extension; an older siroccod (no
    initialState, networkConfig required) refuses that naming the attribute and gets the shape it takes."""
    _network_endpoint(endpoint, lambda template: None)
    conn = connect(endpoint)
    assert conn.create_network("lan").state == states.STARTED
    assert endpoint.hits("POST")[-1]["body"]["networkTemplate"] == {"initialState": states.STARTED}
    conn.create_network("lan2", cidr="10.5.0.0/24", dhcp=True)
    assert endpoint.hits("POST")[-1]["body"]["networkTemplate"] == {
        "initialState": states.STARTED, "networkConfig": {"cidr": "10.5.0.0/24", "dhcp": True}}

    older = Endpoint()
    try:
        older.routes.update(endpoint.routes)
        older.routes[("GET", "/cimi/cloudEntryPoint")] = (200, {}, cep(older.url))
        _network_endpoint(older, lambda t: "initialState" if "initialState" in t else
                          None if "networkConfig" in t else "networkConfig")
        conn = connect(older)
        conn.create_network("lan")
        assert [p["body"]["networkTemplate"] for p in older.hits("POST")] == [
            {"initialState": states.STARTED}, {"networkConfig": {}}]
        older.requests.clear()
        conn.create_network("lan3", cidr="10.6.0.0/24")  # the shape it takes, from the start now
        sent = [p["body"]["networkTemplate"] for p in older.hits("POST")]
        assert sent == [{"networkConfig": {"cidr": "10.6.0.0/24"}}]
    finally:
        older.stop()

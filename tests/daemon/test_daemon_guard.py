"""What every request passes and every reply carries (issue 11, items 7, 11 and 14): the Host header
decides nothing unless it is allowed, query strings are bounded, one Authorization header only, replies
are neither sniffed nor cached."""

from __future__ import annotations

import time

import pytest
from daemon_helpers import ADMIN_PASSWORD, Api, assert_cimi_error, basic, make_app


@pytest.fixture
def app_with(tmp_path):
    made = []

    def make(**settings):
        application = make_app(tmp_path / ("data-%d" % len(made)), **settings)
        made.append(application)
        return application
    yield make
    for application in made:
        application.extensions["siroccod"].close()


def test_a_public_url_makes_every_href(app_with):
    app = app_with(public_url="https://cloud.example.org/sirocco")
    admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
    for host in ("localhost", "evil.example", "127.0.0.1:9"):
        cep = admin.get("/cimi/cloudEntryPoint", base_url="http://%s" % host).json
        assert cep["baseURI"] == "https://cloud.example.org/sirocco/cimi/"
        assert cep["machines"]["href"] == "https://cloud.example.org/sirocco/cimi/machines"
        assert cep["hosts"]["href"] == "https://cloud.example.org/sirocco/admin/hosts"
    spec = app.test_client().get("/cimi/openapi.json", base_url="http://evil.example").json
    assert [s["url"] for s in spec["servers"]] == ["https://cloud.example.org/sirocco"]
    r = admin.post("/admin/users", {"name": "pub", "tenant": "pub", "password": "pub-user-pw"},
                   base_url="http://evil.example")
    assert r.headers["Location"] == "https://cloud.example.org/sirocco/admin/users/pub"


def test_allowed_hosts_decide_which_host_headers_are_used(app_with):
    app = app_with(allowed_hosts=["cloud.example", ".lab.example"])
    client = app.test_client()
    admin = Api(client, "admin", ADMIN_PASSWORD)
    for host in ("cloud.example:8080", "node1.lab.example"):
        doc = admin.get("/cimi/cloudEntryPoint", base_url="http://" + host).json
        assert doc["machines"]["href"] == "http://%s/cimi/machines" % host
    for host in ("evil.example", "cloud.example.evil.example", "127.0.0.1"):
        for r in (admin.get("/cimi/cloudEntryPoint", base_url="http://" + host),
                  client.get("/cimi/openapi.json", base_url="http://" + host)):  # unauthenticated too
            error = assert_cimi_error(r, 400)
            assert error["properties"]["attribute"] == "Host" and host not in r.get_data(as_text=True)
    anything = app_with(allowed_hosts=["*"])
    doc = Api(anything.test_client(), "admin", ADMIN_PASSWORD).get(
        "/cimi/cloudEntryPoint", base_url="http://whatever.example").json
    assert doc["baseURI"] == "http://whatever.example/cimi/"


def test_query_strings_are_bounded(client, alice):
    machines = alice.collection("machines")
    flt = "$filter=" + "name='%s'" % ("x" * 4000)
    started = time.monotonic()
    error = assert_cimi_error(alice.get(machines + "?" + "&".join([flt] * 2000)), 414)  # 8 MB of URL
    error = assert_cimi_error(alice.get(machines + "?" + "&".join(["$filter=name='a'"] * 9)), 400)
    assert error["properties"]["attribute"] == "$filter" and "at most 8 times" in error["statusMessage"]
    assert time.monotonic() - started < 30  # bounded work, not a timing claim: the suite's own guard
    error = assert_cimi_error(alice.get(machines + "?" + "&".join("p%d=1" % i for i in range(40))), 400)
    assert "at most 32 query parameters" in error["statusMessage"]
    error = assert_cimi_error(alice.get(machines + "?$filter=" + "y" * 5000), 400)  # within MAX_URL
    assert error["properties"]["attribute"] == "$filter"
    assert alice.get(machines + "?" + "&".join(["$filter=name='a'"] * 2)).status_code == 200


def test_two_authorization_headers_are_refused(client, alice):
    both = basic("alice", "alice-secret-pw") + ", " + basic("admin", ADMIN_PASSWORD)
    error = assert_cimi_error(client.get("/cimi/cloudEntryPoint", headers={"Authorization": both}), 400)
    assert error["properties"]["attribute"] == "Authorization"


def test_replies_are_neither_sniffed_nor_stored(client, admin, alice):
    for r in (alice.get("/cimi/cloudEntryPoint"), client.get("/cimi/openapi.json"), client.get("/cimi/machines"),
              admin.post("/admin/users", {"name": "gen", "tenant": "gen"}),  # a generated password inside
              admin.post("/admin/users/gen/tokens", {"label": "ci"}),  # a token inside
              admin.put("/admin/users/gen/password", {})):
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in r.headers  # plain HTTP: no HSTS
    secure = alice.get("/cimi/cloudEntryPoint", base_url="https://localhost")
    assert secure.status_code == 200 and secure.headers["Strict-Transport-Security"].startswith("max-age=")

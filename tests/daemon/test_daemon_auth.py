"""Cloud Entry Point, authentication, the admin API and what it never reveals."""

from __future__ import annotations

import json

from daemon_helpers import ADMIN_PASSWORD, CIMI, PASSWORDS, Api, assert_cimi_error, basic

MINIMAL = ("resourceMetadata", "machines", "machineImages", "machineConfigs")
ALL = MINIMAL + ("machineTemplates", "credentials", "volumes", "volumeConfigs", "volumeImages", "volumeTemplates",
                 "networks", "networkTemplates", "systems", "systemTemplates", "jobs", "meters")


def test_cloud_entry_point_links_every_collection(alice):
    cep = alice.cep()
    assert cep["resourceURI"] == CIMI + "CloudEntryPoint"
    assert cep["id"] == "http://localhost/cimi/cloudEntryPoint"
    assert cep["baseURI"] == "http://localhost/cimi/"
    for key in ALL:
        assert cep[key]["href"].startswith("http://localhost/cimi/"), key
        r = alice.get(cep[key]["href"])
        assert r.status_code == 200, key
        assert r.json["resourceURI"].endswith("Collection")
    assert "hosts" not in cep and "users" not in cep  # administration is not for users


def test_hrefs_follow_an_allowed_host_only(alice):
    """The default allowed hosts are this machine's names: another Host is refused, never copied into hrefs
    (test_daemon_guard.py has the configured cases)."""
    r = alice.get("/cimi/cloudEntryPoint", base_url="http://cloud.example:8080")
    assert r.status_code == 400 and "cloud.example" not in r.get_data(as_text=True)
    doc = alice.get("/cimi/cloudEntryPoint", base_url="http://127.0.0.1:8080").json
    assert doc["machines"]["href"] == "http://127.0.0.1:8080/cimi/machines"


def test_admin_sees_administration_links(admin):
    cep = admin.cep()
    assert cep["hosts"]["href"].endswith("/admin/hosts")
    assert cep["users"]["href"].endswith("/admin/users")


def test_unauthenticated_requests_get_401(client):
    for headers in ({}, {"Authorization": basic("alice", "wrong-password")},
                    {"Authorization": basic("nobody", "whatever-pw")}, {"Authorization": "Basic !!!notbase64"},
                    {"Authorization": "Basic " + "YWxpY2U="}, {"Authorization": "Bearer sct_invalid"},
                    {"Authorization": "Digest username=alice"}, {"Authorization": "Bearer "}):
        for url in ("/cimi/cloudEntryPoint", "/cimi/machines", "/admin/hosts", "/cimi/nothing/here"):
            r = client.get(url, headers=headers)
            body = assert_cimi_error(r, 401)
            assert r.headers["WWW-Authenticate"].startswith("Basic")
            assert "password" not in body["statusMessage"].lower() or "wrong" not in body["statusMessage"]


def test_users_get_403_on_administration(alice):
    for method, url, body in (("get", "/admin/hosts", None), ("get", "/admin/users", None),
                              ("post", "/admin/users", {"name": "eve", "tenant": "x"}),
                              ("delete", "/admin/users/bob", None), ("post", "/admin/reconcile", None),
                              ("post", "/admin/users/alice/tokens", {})):
        r = getattr(alice, method)(url, body) if body is not None else getattr(alice, method)(url)
        assert_cimi_error(r, 403)


def test_admin_hosts_show_three_different_simulated_hosts(admin):
    hosts = admin.get("/admin/hosts").json["hosts"]
    assert [h["name"] for h in hosts] == ["sim1", "sim2", "sim3"]
    assert len({(h["cpu"], h["memoryMiB"]) for h in hosts}) == 3
    assert len({(h["powerIdle"], h["powerMax"]) for h in hosts}) == 3
    for host in hosts:
        assert host["state"] == "UP" and host["simulated"] and host["uri"].startswith("test:///")
        assert host["powerIdle"] < host["powerMax"]
    assert admin.get("/admin/hosts/sim2").json["cpu"] == 16
    assert_cimi_error(admin.get("/admin/hosts/nope"), 404)


def test_user_administration_and_tokens(client, admin):
    r = admin.post("/admin/users", {"name": "dave", "tenant": "tenant-d"})
    assert r.status_code == 201
    generated = r.json["password"]
    assert len(generated) >= 16
    dave = Api(client, "dave", generated)
    assert dave.get("/cimi/machines").status_code == 200
    listing = admin.get("/admin/users").json["users"]
    assert any(u["name"] == "dave" and u["tenant"] == "tenant-d" and u["role"] == "user" for u in listing)
    text = json.dumps(listing)
    assert "scrypt" not in text and generated not in text and "hash" not in text
    assert_cimi_error(admin.post("/admin/users", {"name": "dave", "tenant": "x"}), 409)
    assert_cimi_error(admin.post("/admin/users", {"name": "bad name!", "tenant": "x"}), 400)
    assert_cimi_error(admin.post("/admin/users", {"name": "erin", "tenant": "x", "password": "short"}), 400)
    assert_cimi_error(admin.post("/admin/users", {"name": "erin", "tenant": "x", "role": "root"}), 400)
    assert_cimi_error(admin.post("/admin/users", {"name": "erin", "tenant": 7}), 400)

    token = admin.post("/admin/users/dave/tokens", {"label": "ci"}).json["token"]
    r = client.get("/cimi/machines", headers={"Authorization": "Bearer " + token})
    assert r.status_code == 200
    admin.put("/admin/users/dave/password", {"password": "a-new-password"})
    assert_cimi_error(dave.get("/cimi/machines"), 401)
    assert Api(client, "dave", "a-new-password").get("/cimi/machines").status_code == 200
    assert admin.delete("/admin/users/dave").status_code == 200
    assert_cimi_error(client.get("/cimi/machines", headers={"Authorization": "Bearer " + token}), 401)
    assert_cimi_error(Api(client, "dave", "a-new-password").get("/cimi/machines"), 401)
    assert_cimi_error(admin.delete("/admin/users/admin"), 409)  # the last admin stays


def test_passwords_are_stored_salted(app, admin):
    from siroccod.store import User
    daemon = app.extensions["siroccod"]
    with daemon.store.read() as session:
        hashes = {u.name: u.password_hash for u in session.query(User)}
    assert hashes["admin"].startswith("scrypt:")
    assert ADMIN_PASSWORD not in hashes["admin"]
    assert PASSWORDS["alice"] not in "".join(hashes.values())
    assert len(set(hashes.values())) == len(hashes)  # salted: no two alike


def test_resource_metadata(alice):
    coll = alice.get(alice.collection("resourceMetadata")).json
    names = {m["name"] for m in coll["resourceMetadatas"]}  # 5.11.2
    assert {"Machine", "Volume", "Job", "MachineConfiguration"} <= names
    machine = alice.get("/cimi/resourceMetadata/Machine").json
    assert machine["typeURI"] == CIMI + "Machine"
    assert {a["uri"] for a in machine["actions"]} >= {CIMI + "action/start", CIMI + "action/capture"}
    attrs = {a["name"]: a for a in machine["attributes"]}
    # 5.3: a state changes (mutable) but not by the consumer; a name may be changed by either
    assert attrs["state"]["mutable"] is True and attrs["state"]["consumerWritable"] is False
    assert attrs["name"]["mutable"] is True and attrs["name"]["consumerWritable"] is True
    assert_cimi_error(alice.get("/cimi/resourceMetadata/Nothing"), 404)

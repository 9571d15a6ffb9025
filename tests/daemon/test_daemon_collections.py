"""CRUD on every CMDB-only collection, the query parameters on collections, tenant isolation."""

from __future__ import annotations

import pytest
from daemon_helpers import CIMI, assert_cimi_error

# collection -> (a document to create, an attribute to edit, its new value); machineImages are not mere
# records: their creation fetches or captures an image (test_daemon_image_import.py)
SYNC = {
    "machineConfigs": ({"name": "c", "cpu": 2, "memory": 262144, "disks": [{"capacity": 1024}], "cpuArch": "x86_64"},
                       "cpu", 3),
    "machineTemplates": ({"name": "t", "machineConfig": {"cpu": 1, "memory": 65536}, "initialState": "STOPPED"},
                         "initialState", "STARTED"),
    "credentials": ({"name": "cred", "userName": "root", "password": "s3cret-value"}, "userName", "admin"),
    "credentialTemplates": ({"name": "ct", "userName": "root", "password": "s3cret-value"}, "userName", "admin"),
    "volumeConfigs": ({"name": "vc", "capacity": 4096, "format": "qcow2"}, "capacity", 8192),
    "volumeImages": ({"name": "vi", "imageLocation": "http://images.example/v.img", "bootable": True},
                     "bootable", False),
    "volumeTemplates": ({"name": "vt", "volumeConfig": {"capacity": 1024}}, "description", "edited"),
    "networkConfigs": ({"name": "nc", "networkType": "PRIVATE", "mtu": 1500}, "mtu", 9000),
    "networkTemplates": ({"name": "nt", "networkConfig": {"networkType": "PRIVATE"}}, "description", "edited"),
    "systemTemplates": ({"name": "st", "componentDescriptors": []}, "description", "edited"),
}


@pytest.mark.parametrize("key", sorted(SYNC))
def test_crud(alice, bob, key):
    body, attr, value = SYNC[key]
    coll = alice.get(alice.collection(key)).json
    add = [op["href"] for op in coll["operations"] if op["rel"] == "add"][0]
    r = alice.post(add, body)
    assert r.status_code == 201, r.json
    doc = r.json
    assert r.headers["Location"] == doc["id"] and doc["id"].startswith(add + "/")
    assert doc["resourceURI"].startswith(CIMI) and doc["created"] and doc["updated"]
    assert alice.get(doc["id"]).json == doc
    assert "password" not in doc  # write-only
    r = alice.put(alice.ops(doc)["edit"], {attr: value, "id": "http://evil/cimi/x", "created": "2000-01-01T00:00:00Z"})
    assert r.status_code == 200, r.json
    edited = alice.get(doc["id"]).json
    assert edited[attr] == value and edited["id"] == doc["id"] and edited["created"] == doc["created"]
    # another tenant neither sees, reads, changes nor deletes it
    assert doc["id"] not in [d["id"] for d in bob.items(key)]
    assert_cimi_error(bob.get(doc["id"]), 404)
    assert_cimi_error(bob.put(doc["id"], {"name": "mine"}), 404)
    assert_cimi_error(bob.delete(doc["id"]), 404)
    assert alice.get(doc["id"]).json["name"] == body["name"]
    r = alice.delete(alice.ops(doc)["delete"])
    assert r.status_code == 200
    assert_cimi_error(alice.get(doc["id"]), 404)


def test_credential_secret_never_returned(alice):
    r = alice.post(alice.collection("credentials"), {"name": "k", "userName": "u", "password": "very-secret-1"})
    assert "very-secret-1" not in r.get_data(as_text=True)
    assert "very-secret-1" not in alice.get(alice.collection("credentials")).get_data(as_text=True)
    alice.delete(r.json["id"])


def test_public_configs_are_shared_but_only_admins_change_them(alice, bob, admin):
    cfg = [c for c in alice.items("machineConfigs") if c["name"] == "tiny"][0]
    assert cfg in bob.items("machineConfigs")
    assert "operations" not in cfg
    assert_cimi_error(alice.put(cfg["id"], {"cpu": 64}), 403)
    assert_cimi_error(alice.delete(cfg["id"]), 403)
    assert {"edit", "delete"} <= set(admin.ops(admin.get(cfg["id"]).json))


@pytest.fixture(scope="module")
def configs(alice):
    made = []
    for i, (cpu, mem) in enumerate(((4, 1024), (1, 4096), (2, 2048), (8, 512), (2, 8192))):
        r = alice.post(alice.collection("machineConfigs"), {
            "name": "q%d" % i, "cpu": cpu, "memory": mem, "properties": {"tier": "gold" if i % 2 else "silver"}})
        made.append(r.json)
    yield made
    for doc in made:
        alice.delete(doc["id"])


def names(doc, key="machineConfigs"):
    return [d["name"] for d in doc.get(key, [])]


def test_query_filter(alice, configs):
    base = alice.collection("machineConfigs")
    doc = alice.get(base + "?$filter=name='q1' or name='q3'").json
    assert sorted(names(doc)) == ["q1", "q3"] and doc["count"] == 2
    doc = alice.get(base + "?$filter=cpu>=2 and memory<4096 and name!='tiny'").json
    assert {n for n in names(doc) if n.startswith("q")} == {"q0", "q2", "q3"}
    doc = alice.get(base + "?$filter=property['tier']='gold'").json
    assert sorted(names(doc)) == ["q1", "q3"]
    doc = alice.get(base + "?$filter=(cpu=2 or cpu=8) and property['tier']='silver'").json
    assert sorted(names(doc)) == ["q2", "q4"]
    assert alice.get(base + "?$filter=name='nothing'").json["count"] == 0


def test_query_orderby_first_last_select(alice, configs):
    base = alice.collection("machineConfigs") + "?$filter=property['tier']='gold' or property['tier']='silver'"
    doc = alice.get(base + "&$orderby=memory:desc").json
    assert names(doc) == ["q4", "q1", "q2", "q0", "q3"]
    doc = alice.get(base + "&$orderby=cpu,memory:desc").json
    assert names(doc) == ["q1", "q4", "q2", "q0", "q3"]
    doc = alice.get(base + "&$orderby=name&$first=2&$last=3").json
    assert names(doc) == ["q1", "q2"] and doc["count"] == 5
    doc = alice.get(base + "&$orderby=name&$select=name,cpu").json
    assert all(set(d) == {"resourceURI", "name", "cpu"} for d in doc["machineConfigs"])
    beyond = alice.get(base + "&$first=1000").json
    assert beyond["count"] == 5 and "machineConfigs" not in beyond


def test_query_expand(alice, configs):
    tpl = alice.post(alice.collection("machineTemplates"), {"name": "exp", "machineConfig": {"href": configs[0]["id"]}})
    doc = alice.get(alice.collection("machineTemplates") + "?$filter=name='exp'&$expand=machineConfig").json
    assert doc["machineTemplates"][0]["machineConfig"]["cpu"] == 4
    one = alice.get(tpl.json["id"] + "?$expand=*&$select=machineConfig").json
    assert one["machineConfig"]["memory"] == 1024 and "name" not in one
    alice.delete(tpl.json["id"])


@pytest.mark.parametrize("query", ["$filter=name=", "$filter=cpu>'x' and", "$filter=(name='a'", "$first=0",
                                   "$last=-1", "$first=x", "$orderby=name:sideways", "$select=,", "$orderby=",
                                   "$filter=name%3D'a'%20xor%20cpu%3D1", "$expand=a b"])
def test_query_errors_are_400(alice, query):
    for key in ("machines", "machineConfigs", "jobs"):
        assert_cimi_error(alice.get(alice.collection(key) + "?" + query), 400)


def test_machines_are_tenant_private(alice, bob, carol):
    m = alice.create_machine("secret-a", "STARTED")
    # carol shares alice's tenant: she sees and may act on it
    assert m["id"] in [d["id"] for d in carol.items("machines")]
    assert carol.get(m["id"]).status_code == 200
    # bob does not learn it exists
    assert m["id"] not in [d["id"] for d in bob.items("machines")]
    assert bob.get(bob.collection("machines") + "?$filter=name='secret-a'").json["count"] == 0
    assert_cimi_error(bob.get(m["id"]), 404)
    assert_cimi_error(bob.put(m["id"], {"name": "x"}), 404)
    assert_cimi_error(bob.delete(m["id"]), 404)
    for verb in ("stop", "pause", "capture"):
        assert_cimi_error(bob.post(m["id"] + "/" + verb, {"action": CIMI + "action/" + verb}), 404)
    assert_cimi_error(bob.get(m["volumes"]["href"]), 404)
    # nor its jobs, meters, or a reference to it in his own requests
    job = alice.items("jobs")[-1]
    assert_cimi_error(bob.get(job["id"]), 404)
    assert job["id"] not in [j["id"] for j in bob.items("jobs")]
    assert_cimi_error(bob.get(alice.members(m, "meters")[0]["id"]), 404)
    r = bob.post(bob.collection("machineImages"), {"name": "steal", "imageLocation": m["id"]})
    assert_cimi_error(r, 404)
    r = bob.post(bob.collection("machineTemplates"), {"name": "t", "machineConfig": {"href": m["id"]}})
    assert_cimi_error(r, 400)
    # the 404 reads the same as for an id that never existed
    unknown = bob.get(m["id"][:-4] + "0000").json["statusMessage"]
    assert bob.get(m["id"]).json["statusMessage"].replace(m["id"].rsplit("/", 1)[1], "X") == unknown.replace(
        m["id"].rsplit("/", 1)[1][:-4] + "0000", "X")
    assert alice.get(m["id"]).json["state"] == "STARTED"
    alice.remove(alice.get(m["id"]).json)

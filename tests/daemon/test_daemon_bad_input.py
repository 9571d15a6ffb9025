"""Bad input of every kind gets a 4xx with a CIMI error body, never a 5xx, and changes nothing."""

from __future__ import annotations

import json

import pytest
from daemon_helpers import CIMI, action, assert_cimi_error

KEYS = ("machines", "machineConfigs", "machineImages", "machineTemplates", "credentials", "volumes",
        "volumeConfigs", "volumeTemplates", "networks", "systems", "systemTemplates", "jobs", "meters")


@pytest.fixture(scope="module")
def world(alice, bob):
    """A machine of alice's (STOPPED) and a volume of bob's, to aim bad requests at."""
    machine = alice.create_machine("target", "STOPPED")
    r = bob.post(bob.collection("volumes"), {"name": "bobs", "volumeTemplate": {"volumeConfig": {"capacity": 1024}}})
    bob.wait(r.headers["CIMI-Job-URI"])
    return {"machine": machine, "bob_volume": bob.get(r.headers["Location"]).json}


def snapshot(*apis):
    return json.dumps([[api.get(api.collection(k)).json for k in KEYS] for api in apis], sort_keys=True)


def check(api, world, method, url, status, raw=None, content_type="application/json", body=None, others=()):
    before = snapshot(api, *others)
    kwargs = {}
    if body is not None:
        kwargs["json"] = body
    elif raw is not None:
        kwargs["data"] = raw
        kwargs["headers"] = {"Content-Type": content_type} if content_type else {}
    r = getattr(api, method)(url, **kwargs)
    error = assert_cimi_error(r, status)
    assert snapshot(api, *others) == before, "%s %s changed something" % (method, url)
    return error


def test_not_json(alice, world):
    machines = alice.collection("machines")
    check(alice, world, "post", machines, 400, raw=b"{not json")
    check(alice, world, "post", machines, 400, raw=b"")
    check(alice, world, "post", machines, 400, raw=b'["a", "list"]')
    check(alice, world, "post", machines, 400, raw=b'"a string"')
    check(alice, world, "post", machines, 400, raw=b"42")
    check(alice, world, "post", machines, 400, raw=b'{"name": NaN}')
    check(alice, world, "post", machines, 400, raw=b"\xff\xfe{}")
    check(alice, world, "post", machines, 400, raw=b"[" * 100000 + b"]" * 100000)
    check(alice, world, "put", world["machine"]["id"], 400, raw=b"{oops")
    check(alice, world, "post", world["machine"]["id"] + "/start", 400, raw=b"start please")


def test_wrong_media_type(alice, world):
    machines = alice.collection("machines")
    check(alice, world, "post", machines, 415, raw=b'{"name": "x"}', content_type="text/plain")
    check(alice, world, "post", machines, 415, raw=b'name=x', content_type="application/x-www-form-urlencoded")
    check(alice, world, "post", machines, 415, raw=b'{"name": "x"}', content_type=None)
    check(alice, world, "post", world["machine"]["id"] + "/start", 415, raw=b"<Action/>",
          content_type="application/xml")


def test_huge_body(alice, world):
    blob = {"name": "x" * (2 * 1024 * 1024), "machineTemplate": {}}
    check(alice, world, "post", alice.collection("machines"), 413, raw=json.dumps(blob).encode())
    check(alice, world, "put", world["machine"]["id"], 413, raw=json.dumps(blob).encode())


def template(config, **extra):
    return {"resourceURI": CIMI + "MachineCreate", "name": "bad", "machineTemplate": dict(config, **extra)}


def test_wrong_types_and_values(alice, world):
    machines = alice.collection("machines")
    good = {"machineConfig": {"cpu": 1, "memory": 65536}}
    for body in (
        {"name": "nothing"},  # no machineTemplate
        template(good, initialState="FLYING"),
        template({"machineConfig": {"cpu": "two", "memory": 65536}}),
        template({"machineConfig": {"cpu": 0, "memory": 65536}}),
        template({"machineConfig": {"cpu": 1, "memory": -5}}),
        template({"machineConfig": {"cpu": 1.5, "memory": 65536}}),
        template({"machineConfig": {"cpu": True, "memory": 65536}}),
        template({"machineConfig": {"cpu": 1}}),  # no memory
        template({}),  # no configuration at all
        template({"machineConfig": "tiny"}),
        template(good, volumes="none"),
        template(good, volumes=[{"initialLocation": "vdb"}]),
        template(good, interfaceTemplates=["eth0"]),
        {"name": 5, "machineTemplate": good},
        {"name": "x", "properties": {"a": 1}, "machineTemplate": good},
        {"name": "x", "properties": ["a"], "machineTemplate": good},
        {"name": "x", "machineTemplate": good, "unknownAttribute": True},
        {"resourceURI": CIMI + "VolumeCreate", "name": "x", "machineTemplate": good},
        {"resourceURI": 7, "name": "x", "machineTemplate": good},
        {"name": "x", "machineTemplate": []},
    ):
        check(alice, world, "post", machines, 400, body=body)
    # other collections and verbs
    check(alice, world, "post", alice.collection("machineConfigs"), 400, body={"name": "c", "cpu": "1", "memory": 1})
    check(alice, world, "post", alice.collection("machineConfigs"), 400,
          body={"name": "c", "cpuArch": "Z80", "cpu": 1, "memory": 1})
    check(alice, world, "post", alice.collection("volumes"), 400, body={"volumeTemplate": {"volumeConfig": {}}})
    check(alice, world, "post", alice.collection("volumes"), 400, body={"volumeTemplate": {}})
    check(alice, world, "post", alice.collection("systems"), 400, body={"systemTemplate": {"componentDescriptors": [
        {"type": CIMI + "Toaster", "machineTemplate": {}}]}})
    check(alice, world, "put", world["machine"]["id"], 400, body={"name": ["list"]})
    check(alice, world, "post", world["machine"]["id"] + "/start", 400,
          body={"action": CIMI + "action/start", "force": "yes"})
    check(alice, world, "post", world["machine"]["id"] + "/start", 400, body={"action": 17})
    check(alice, world, "post", world["machine"]["volumes"]["href"], 400, body={"volume": "v"})
    check(alice, world, "post", world["machine"]["volumes"]["href"], 400, body={"action": CIMI + "action/insert"})
    check(alice, world, "post", "/admin/users", 403, body={"name": 1})


def test_unknown_hrefs(alice, world):
    machines = alice.collection("machines")
    image = alice.items("machineImages")[0]["id"]
    for href in ("http://localhost/cimi/machineConfigs/00000000-0000-0000-0000-000000000000", image,
                 "not a uri at all", "http://elsewhere.example/foo/bar", "", "/cimi/", "machineConfigs",
                 "http://localhost/cimi/machineConfigs/../../etc/passwd", "x" * 5000):
        check(alice, world, "post", machines, 400, body=template({"machineConfig": {"href": href}}))
    check(alice, world, "post", machines, 400, body={"name": "x", "machineTemplate": {
        "href": alice.collection("machineTemplates") + "/nope"}})
    check(alice, world, "post", machines, 400, body=template(
        {"machineConfig": {"cpu": 1, "memory": 65536}}, credential={"href": world["machine"]["id"]}))
    check(alice, world, "post", alice.collection("machineTemplates"), 400, body={
        "name": "t", "eventLogTemplate": {"href": alice.collection("machines")}})


def test_unknown_resources_and_methods(alice, world):
    mid = world["machine"]["id"]
    for url in ("/cimi/nothing", "/cimi/machines/nope", "/cimi/machines/" + "9" * 300, "/cimi/jobs/nope",
                "/cimi/machines/nope/volumes", mid + "/volumes/nope", "/cimi/a/b/c/d/e"):
        check(alice, world, "get", url, 404)
    check(alice, world, "delete", "/cimi/machines/nope", 404)
    check(alice, world, "put", "/cimi/volumes/nope", 404, body={"name": "x"})
    check(alice, world, "post", "/cimi/machines/nope/start", 404, body=action("start"))
    check(alice, world, "post", mid + "/fly", 404, body=action("fly"))
    check(alice, world, "post", alice.collection("jobs"), 405, body={})
    check(alice, world, "post", alice.collection("meters"), 405, body={})
    check(alice, world, "put", alice.items("jobs")[0]["id"], 405, body={})
    # read-only: no DELETE (a finished job may be deleted, 5.17.1.1: test_cimi_conformance_jobs_select.py)
    check(alice, world, "delete", alice.items("meterConfigs")[0]["id"], 405)
    check(alice, world, "patch", mid, 405, body={"name": "x"})
    check(alice, world, "post", "/cimi/cloudEntryPoint", 405, body={})


def test_actions_not_offered(alice, world):
    mid = world["machine"]["id"]
    for verb in ("stop", "pause", "suspend"):
        check(alice, world, "post", mid + "/" + verb, 409, body=action(verb))
    check(alice, world, "post", mid + "/start", 400, body=action("stop"))
    check(alice, world, "post", mid + "/capture", 400, body=action("capture", image={"href": mid}))


def test_foreign_ids(alice, bob, world):
    mid = world["machine"]["id"]
    vol = world["bob_volume"]["id"]
    check(bob, world, "get", mid, 404, others=(alice,))
    check(bob, world, "put", mid, 404, body={"name": "mine"}, others=(alice,))
    check(bob, world, "delete", mid, 404, others=(alice,))
    check(bob, world, "post", mid + "/start", 404, body=action("start"), others=(alice,))
    check(bob, world, "post", mid + "/volumes", 404, body={"volume": {"href": vol}}, others=(alice,))
    # alice cannot attach bob's volume to her machine, nor base a machine on it
    check(alice, world, "post", mid + "/volumes", 400, body={"volume": {"href": vol}}, others=(bob,))
    check(alice, world, "post", alice.collection("machines"), 400, body=template(
        {"machineConfig": {"cpu": 1, "memory": 65536}}, volumes=[{"volume": {"href": vol}}]), others=(bob,))
    check(alice, world, "delete", vol, 404, others=(bob,))


def test_no_request_above_ever_produced_a_5xx(app):
    """The error handler counts every 5xx it sends; none of the requests above got one."""
    assert app.extensions["siroccod"].server_errors == 0

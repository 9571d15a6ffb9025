"""Text the daemon cannot store and values beyond its bounds are refused up front: a 400 naming the
attribute, nothing written; the bounds are published in ResourceMetadata (vscope) and in the OpenAPI
description (issue 11, items 6 and 10)."""

from __future__ import annotations

import json

import pytest
from daemon_helpers import CIMI, Api, assert_cimi_error


def _machine(api, name="ok", cpu=1, memory=65536, **extra):
    return {"resourceURI": CIMI + "MachineCreate", "name": name, **extra,
            "machineTemplate": {"machineConfig": {"cpu": cpu, "memory": memory}, "initialState": "STOPPED"}}


def _raw(api, url, text, method="post"):
    """A body sent as text, so that it may hold what json.dumps would escape (a lone surrogate)."""
    return getattr(api, method)(url, data=text.encode("utf-8"), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("body, attribute", [
    ('{"resourceURI": "%sMachineCreate", "name": "bad\\ud800name", "machineTemplate": {}}' % CIMI, "name"),
    ('{"resourceURI": "%sMachineCreate", "name": "ok", "description": "\\udfff", "machineTemplate": {}}' % CIMI,
     "description"),
    ('{"name": "ok", "properties": {"k": "v\\u0000"}, "machineTemplate": {}}', "properties.k"),
])
def test_unstorable_text_in_a_resource(alice, body, attribute):
    before = alice.get(alice.collection("machines")).json["count"]
    error = assert_cimi_error(_raw(alice, alice.collection("machines"), body), 400)
    assert error["properties"]["attribute"] == attribute, error
    assert alice.get(alice.collection("machines")).json["count"] == before


def test_unstorable_text_in_users_tokens_and_passwords(client, admin):
    users = "/admin/users"
    for body, attribute in (('{"name": "eve\\ud800", "tenant": "t", "password": "long-enough-pw"}', "name"),
                            ('{"name": "eve", "tenant": "t", "password": "long-\\ud800-enough"}', "password"),
                            ('{"name": "eve", "tenant": "t\\u0000", "password": "long-enough-pw"}', "tenant")):
        error = assert_cimi_error(_raw(admin, users, body), 400)
        assert error["properties"]["attribute"] == attribute, error
    assert "eve" not in {u["name"] for u in admin.get(users).json["users"]}
    r = admin.post(users, {"name": "tokened", "tenant": "tokens", "password": "tokened-pw-1"})
    assert r.status_code == 201, r.json
    error = assert_cimi_error(_raw(admin, users + "/tokened/tokens", '{"label": "x\\udc80y"}'), 400)
    assert error["properties"]["attribute"] == "label"
    error = assert_cimi_error(_raw(admin, users + "/tokened/password", '{"password": "\\ud83dnew-password"}',
                                   method="put"), 400)
    assert error["properties"]["attribute"] == "password"
    Api(client, "tokened", "tokened-pw-1").cep()  # the old password still works: nothing changed


@pytest.mark.parametrize("changes, attribute", [
    ({"name": "n" * 100_000}, "MachineCreate.name"),
    ({"name": "nul\x00inside"}, "name"),  # refused as unstorable text, before the model reads it
    ({"cpu": 2 ** 63}, "MachineCreate.machineTemplate.machineConfig.cpu"),
    ({"cpu": 10 ** 30}, "MachineCreate.machineTemplate.machineConfig.cpu"),
    ({"memory": 2 ** 63}, "MachineCreate.machineTemplate.machineConfig.memory"),
    ({"properties": {"k%d" % i: "v" for i in range(1000)}}, "MachineCreate.properties"),
    ({"userData": "u" * 200_000}, "MachineCreate.machineTemplate.userData"),
])
def test_sizes_and_names_are_bounded(alice, changes, attribute):
    body = _machine(alice)
    for key in ("name", "properties"):
        if key in changes:
            body[key] = changes[key]
    config = body["machineTemplate"]["machineConfig"]
    for key in ("cpu", "memory"):
        if key in changes:
            config[key] = changes[key]
    if "userData" in changes:
        body["machineTemplate"]["userData"] = changes["userData"]
    before = alice.get(alice.collection("machines")).json["count"]
    r = alice.post(alice.collection("machines"), body)
    error = assert_cimi_error(r, 400)
    assert error["properties"]["attribute"] == attribute, error
    assert alice.get(alice.collection("machines")).json["count"] == before


def test_a_volume_beyond_any_disk(alice):
    r = alice.post(alice.collection("volumes"), {"name": "huge", "volumeTemplate": {
        "volumeConfig": {"capacity": 2 ** 60 // 1000}}})  # 2^60 bytes, in kilobytes
    error = assert_cimi_error(r, 400)
    assert error["properties"]["attribute"].endswith("volumeConfig.capacity")


def test_bounds_are_published(client, alice):
    meta = alice.get("/cimi/resourceMetadata/MachineConfiguration").json
    (scope,) = meta["vscope"]
    assert scope["cpu"] == {"minimum": 1, "maximum": 4096}
    assert scope["memory"]["maximum"] == 2 ** 34 and scope["memory"]["units"] == "kibibytes"
    assert scope["name"] == {"maxLength": 255}
    spec = json.loads(client.get("/cimi/openapi.json").get_data(as_text=True))
    schemas = spec["components"]["schemas"]
    config_in = next(schema for name, schema in schemas.items() if name.startswith("MachineConfiguration")
                     and "cpu" in schema.get("properties", {}) and "maximum" in schema["properties"]["cpu"])
    assert config_in["properties"]["cpu"]["maximum"] == 4096
    assert config_in["properties"]["name"]["maxLength"] == 255


def test_no_request_above_produced_a_5xx(app):
    assert app.extensions["siroccod"].server_errors == 0

"""The OpenAPI description: served without credentials, valid OpenAPI 3, true to the routes, derived
from the model's declarations, and the documents the daemon serves conform to it."""

from __future__ import annotations

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from siroccod.kinds import KINDS, READONLY

HIDDEN = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def description(client):
    r = client.get("/cimi/openapi.json")  # no Authorization header
    assert r.status_code == 200 and r.mimetype == "application/json"
    return r.json


def test_valid_openapi_3(description):
    validate(description)
    assert description["openapi"].startswith("3.0")
    assert description["servers"] == [{"url": "http://localhost"}]
    assert set(description["components"]["securitySchemes"]) == {"basic", "bearer"}
    assert description["paths"]["/cimi/openapi.json"]["get"]["security"] == []


def _concrete(path):
    return path.replace("{uuid}", "x").replace("{volume}", "v").replace("{typeName}", "Machine").replace(
        "{name}", "n").replace("{id}", "7")


def test_every_route_described_with_exactly_its_methods(app, description):
    adapter = app.url_map.bind("localhost")
    reached = set()
    for path, item in description["paths"].items():
        methods = {m.upper() for m in item if m != "parameters"}
        concrete = _concrete(path)
        assert set(adapter.allowed_methods(concrete)) - HIDDEN == methods, path
        for method in methods:
            reached.add(adapter.match(concrete, method)[0])
    served = {rule.endpoint for rule in app.url_map.iter_rules()} - {"static", "root"}
    assert served == reached


def test_collections_and_parameters(description):
    paths = description["paths"]
    for key, kind in KINDS.items():
        listing = paths["/cimi/" + key]["get"]
        assert [p["name"] for p in listing["parameters"]] == ["$filter", "$select", "$expand", "$orderby",
                                                              "$first", "$last"]
        assert ("post" in paths["/cimi/" + key]) == (kind.create_cls is not None)
        assert ("put" in paths["/cimi/%s/{uuid}" % key]) == (kind.lifecycle != READONLY)
        one = paths["/cimi/%s/{uuid}" % key]["get"]
        assert [p["name"] for p in one["parameters"]] == ["$select", "$expand"]
        for op in paths["/cimi/" + key].values():
            assert op["responses"]["400"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/CimiError"}
    assert {p for p in paths if p.startswith("/cimi/machines/{uuid}/")} >= {
        "/cimi/machines/{uuid}/" + verb for verb in ("start", "stop", "restart", "pause", "suspend", "capture")}


def test_schemas_derived_from_the_model(description):
    schemas = description["components"]["schemas"]
    for kind in KINDS.values():
        cls = kind.cls
        out = schemas[cls.type_name]["properties"]
        declared = {w for w, a in cls.attributes.items() if not a.write_only}
        assert set(out) - {"resourceURI"} == declared
        for wire, attr in cls.attributes.items():
            if attr.choices and not attr.many and not attr.write_only:
                assert out[wire]["enum"] == list(attr.choices), (cls, wire)
        if kind.create_cls is not None:
            created = schemas[kind.create_cls.type_name + "Input"]
            assert set(created["properties"]) - {"resourceURI"} == {
                w for w, a in kind.create_cls.attributes.items() if not a.read_only}
            assert created.get("required", []) == [w for w, a in kind.create_cls.attributes.items()
                                                   if a.required and not a.read_only]
            assert created["additionalProperties"] is False
    assert "password" not in schemas["Credential"]["properties"]
    assert "password" in schemas["CredentialInput"]["properties"]
    cpu = model.MachineConfiguration.cpu
    assert schemas["MachineConfigurationInput"]["properties"]["cpu"]["minimum"] == cpu.minimum
    # a machine's disks are a collection (5.14.1.1): a reference, its items when expanded
    assert schemas["Machine"]["properties"]["disks"] == {"$ref": "#/components/schemas/DiskCollectionReference"}
    disks = schemas["DiskCollectionReference"]
    assert disks["required"] == ["href"]
    assert disks["properties"]["disks"]["items"] == {"$ref": "#/components/schemas/DiskEntry"}
    assert schemas["MachineConfiguration"]["properties"]["disks"] == {
        "type": "array", "items": {"$ref": "#/components/schemas/Disk"}}  # a configuration's are its own list


def _validator(description, name):
    root = {"$ref": "#/components/schemas/" + name, "components": description["components"]}
    return OAS30Validator(root)


def test_served_documents_conform(alice, description):
    machine = alice.create_machine("openapi-conform", "STARTED")
    for key, kind in KINDS.items():
        doc = alice.get(alice.collection(key)).json
        errors = sorted(str(e.message) for e in _validator(description, kind.type_name + "Collection")
                        .iter_errors(doc))
        assert not errors, (key, errors[:3])
    for url in (machine["id"], machine["id"] + "?$expand=*", alice.collection("machines") + "?$select=state"):
        doc = alice.get(url).json
        name = "MachineCollection" if "$select" in url else "Machine"
        assert not list(_validator(description, name).iter_errors(doc)), url
    error = alice.get("/cimi/machines/nope").json
    assert not list(_validator(description, "CimiError").iter_errors(error))

"""CIMI conformance of SystemTemplates (DSP0263 2.0.0 5.13.4, Table 14) and of the Systems made from them
(5.13.1.1): component descriptors in the spec's shape, members named as Table 14 says, bad descriptors refused
with 400 naming the attribute and nothing written; templates stored in siroccod's former shape still used."""

from __future__ import annotations

from typing import Any

import pytest
from daemon_helpers import CIMI, assert_cimi_error

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model

COUNTED = ("systemTemplates", "systems", "machines", "volumes", "networks", "jobs")


def counts(api) -> dict[str, int]:
    return {key: api.get(api.collection(key)).json["count"] for key in COUNTED}


def machine_template(api, **extra) -> dict[str, Any]:
    return dict({"machineConfig": {"href": api.config_href("tiny")}}, **extra)


def descriptor(kind: str, template: dict, **extra) -> dict[str, Any]:
    """A Table 14 component descriptor: ``kind``'s type URI and its template under the attribute named for it."""
    return dict({"type": CIMI + kind, kind[0].lower() + kind[1:] + "Template": template}, **extra)


def store_template(api, descriptors: list[dict], name: str = "st") -> dict[str, Any]:
    r = api.post(api.collection("systemTemplates"), {"resourceURI": CIMI + "SystemTemplate", "name": name,
                                                     "componentDescriptors": descriptors})
    assert r.status_code == 201, r.json
    return r.json


def make_system(api, template: dict, name: str = "sys") -> dict[str, Any]:
    """A System from ``template`` (a SystemTemplate by reference {href} or by value), its job finished."""
    r = api.post(api.collection("systems"), {"resourceURI": CIMI + "SystemCreate", "name": name,
                                             "systemTemplate": template})
    assert r.status_code == 202, r.json
    job = api.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS", job
    return api.get(r.headers["Location"]).json


def members(api, system: dict, key: str) -> list[dict[str, Any]]:
    """The documents of a System's ``key`` members (machines, volumes, networks), whether the System lists
    them inline ([{href}]) or refers to a collection of them ({href}, Table 9), whose entries are the members
    (by id) or SystemMachine-like items holding one ({"machine": {href}})."""
    value = system.get(key)
    if value is None:
        return []
    if isinstance(value, dict):
        coll = api.get(value["href"]).json
        value = next((v for k, v in coll.items() if isinstance(v, list) and k != "operations"), [])
    singular = key[:-1]
    docs = []
    for item in value:
        ref = item[singular] if isinstance(item.get(singular), dict) else item
        docs.append(api.get(ref.get("href") or ref["id"]).json)
    return docs


def test_table14_spec_shaped_system_template_is_accepted(alice):
    """Table 14: name, description, properties, type, the component's template under machineTemplate /
    volumeTemplate / networkTemplate, quantity: stored and served as given, no private attribute."""
    descriptors = [
        descriptor("Machine", machine_template(alice), name="web", description="front", quantity=2,
                   properties={"tier": "front"}),
        descriptor("Volume", {"volumeConfig": {"capacity": 1024 * 1024}}, name="data"),
        descriptor("Network", {}, name="net"),
    ]
    tpl = store_template(alice, descriptors, "spec-shaped")
    served = alice.get(tpl["id"]).json["componentDescriptors"]
    assert [d["name"] for d in served] == ["web", "data", "net"]
    web = served[0]
    assert web["type"] == CIMI + "Machine" and web["quantity"] == 2 and web["description"] == "front"
    assert web["properties"] == {"tier": "front"}
    assert web["machineTemplate"]["machineConfig"]["href"] == alice.config_href("tiny")
    assert served[1]["volumeTemplate"] == {"volumeConfig": {"capacity": 1024 * 1024}}
    assert "networkTemplate" in served[2]
    assert not any(model.LEGACY_COMPONENT in d for d in served)
    alice.remove(tpl)


def test_table14_machine_template_by_reference_with_override(alice):
    """Table 14: a component's template by reference, with attributes overriding the referenced template's."""
    r = alice.post(alice.collection("machineTemplates"), {"name": "ref-mt", **machine_template(alice)})
    assert r.status_code == 201, r.json
    mt = r.json
    tpl = store_template(alice, [descriptor("Machine", {"href": mt["id"], "initialState": "STARTED"},
                                            name="solo")], "by-ref")
    assert alice.get(tpl["id"]).json["componentDescriptors"][0]["machineTemplate"]["href"] == mt["id"]
    system = make_system(alice, {"href": tpl["id"]}, "byref")
    [machine] = members(alice, system, "machines")
    assert machine["name"] == "solo" and machine["state"] == "STARTED"
    alice.remove(system)
    alice.remove(tpl)
    alice.remove(mt)


def test_table14_machine_template_by_value_in_system_template_by_value(alice):
    """Table 14 within a SystemCreate (5.13.1.2): the SystemTemplate by value, its machineTemplate by value."""
    system = make_system(alice, {"componentDescriptors": [
        descriptor("Machine", machine_template(alice), name="inline")]}, "byvalue")
    [machine] = members(alice, system, "machines")
    assert machine["name"] == "inline" and machine["state"] == "STOPPED"
    alice.remove(system)


def test_table14_volume_and_network_components_with_their_descriptors_metadata(alice):
    """Table 14: volumeTemplate and networkTemplate components; each member takes its descriptor's name,
    description and properties (not its template's)."""
    tpl = store_template(alice, [
        descriptor("Volume", {"name": "not-this", "volumeConfig": {"capacity": 1024 * 1024}}, name="data",
                   description="the data", properties={"role": "data"}),
        descriptor("Network", {}, name="net", properties={"role": "net"}),
        descriptor("Machine", machine_template(alice), name="box", properties={"role": "box"}),
    ], "three-kinds")
    system = make_system(alice, {"href": tpl["id"]}, "kinds")
    [volume], [network], [machine] = (members(alice, system, k) for k in ("volumes", "networks", "machines"))
    assert (volume["name"], volume["description"], volume["properties"]) == ("data", "the data", {"role": "data"})
    assert (network["name"], network["properties"]) == ("net", {"role": "net"})
    assert machine["name"] == "box" and machine["properties"]["role"] == "box"
    assert volume["capacity"] == 1024 * 1024
    alice.remove(system)
    alice.remove(tpl)


def test_table14_members_named_after_descriptor_with_number_when_quantity_2(alice):
    """Table 14, quantity: 2 or more members are named ``name`` with a sequence number appended
    (mymachine1, mymachine2); one member is named ``name`` itself."""
    tpl = store_template(alice, [descriptor("Machine", machine_template(alice), name="node", quantity=2),
                                 descriptor("Volume", {"volumeConfig": {"capacity": 1024 * 1024}}, name="disk")],
                         "pair")
    system = make_system(alice, {"href": tpl["id"]}, "paired")
    assert sorted(m["name"] for m in members(alice, system, "machines")) == ["node1", "node2"]
    assert [v["name"] for v in members(alice, system, "volumes")] == ["disk"]
    alice.remove(system)
    alice.remove(tpl)


@pytest.mark.parametrize("bad, attribute", [
    ({"flavour": "large"}, "flavour"),
    ({"component": {}}, "component"),  # siroccod's former private attribute: Table 14's shape only now
])
def test_table14_unknown_attribute_in_descriptor_is_refused_naming_it(alice, bad, attribute):
    before = counts(alice)
    desc = dict(descriptor("Machine", machine_template(alice), name="x"), **bad)
    template = {"name": "bad", "componentDescriptors": [desc]}
    for url, body in ((alice.collection("systemTemplates"), template),
                      (alice.collection("systems"), {"name": "bad", "systemTemplate": template})):
        err = assert_cimi_error(alice.post(url, body), 400)
        assert "'%s'" % attribute in err["statusMessage"], err
    assert counts(alice) == before


@pytest.mark.parametrize("kind, wrong", [("Machine", "volumeTemplate"), ("Volume", "machineTemplate"),
                                         ("Network", "volumeTemplate")])
def test_table14_template_attribute_other_than_the_types_is_refused(alice, kind, wrong):
    """Table 14: the template's attribute is named for the component's type; another one is a 400 naming it."""
    before = counts(alice)
    templates = {"machineTemplate": machine_template(alice), "volumeTemplate": {"volumeConfig": {"capacity": 1024}}}
    desc = {"type": CIMI + kind, "name": "x", wrong: templates[wrong]}
    err = assert_cimi_error(alice.post(alice.collection("systemTemplates"),
                                       {"name": "bad", "componentDescriptors": [desc]}), 400)
    assert wrong in err["statusMessage"] and err["properties"]["attribute"].endswith(wrong), err
    err = assert_cimi_error(alice.post(alice.collection("systems"), {"name": "bad", "systemTemplate": {
        "componentDescriptors": [descriptor("Machine", machine_template(alice), name="ok"), desc]}}), 400)
    assert wrong in err["statusMessage"], err
    assert counts(alice) == before


@pytest.mark.parametrize("kind", ["Credential", "System"])
def test_table14_component_templates_this_endpoint_cannot_create_are_refused_naming_them(alice, kind):
    """Table 14 allows credentialTemplate and systemTemplate components; siroccod creates neither: 400."""
    before = counts(alice)
    wire = kind[0].lower() + kind[1:] + "Template"
    desc = descriptor(kind, {"href": "somewhere"}, name="x")
    err = assert_cimi_error(alice.post(alice.collection("systemTemplates"),
                                       {"name": "bad", "componentDescriptors": [desc]}), 400)
    assert err["properties"]["attribute"].endswith(wire) and wire in err["statusMessage"], err
    assert counts(alice) == before


def test_table14_missing_template_and_bad_references_are_refused(alice):
    """A descriptor without its template, or with one naming what does not exist: 400, nothing written."""
    before = counts(alice)
    url = alice.collection("systemTemplates")
    err = assert_cimi_error(alice.post(url, {"name": "bad", "componentDescriptors": [
        {"type": CIMI + "Machine", "name": "x"}]}), 400)
    assert "machineTemplate" in err["statusMessage"], err
    err = assert_cimi_error(alice.post(url, {"name": "bad", "componentDescriptors": [
        descriptor("Machine", {"href": alice.collection("machineTemplates") + "/no-such"}, name="x")]}), 400)
    assert "machineTemplate" in err["statusMessage"], err
    assert counts(alice) == before


def test_table14_refused_system_creation_writes_nothing(alice):
    """A SystemCreate refused after its first components were planned (too many members in all) leaves no
    System, member or job behind."""
    before = counts(alice)
    err = assert_cimi_error(alice.post(alice.collection("systems"), {"name": "huge", "systemTemplate": {
        "componentDescriptors": [descriptor("Volume", {"volumeConfig": {"capacity": 1024}}, name="v"),
                                 descriptor("Machine", machine_template(alice), name="m", quantity=100)]}}), 400)
    assert "100" in err["statusMessage"], err
    assert counts(alice) == before


def test_table14_template_stored_in_former_component_shape_still_creates_a_system(app, alice):
    """A SystemTemplate an older siroccod stored (each template under a private ``component``) still makes
    its System, its members named as Table 14 says."""
    from siroccod import cmdb, hrefs
    from siroccod.store import Tenant

    d = app.extensions["siroccod"]
    config = hrefs.relative(alice.config_href("tiny"))
    doc = {"name": "legacy", "componentDescriptors": [
        {"type": CIMI + "Machine", "name": "old", "quantity": 2, "component": {"machineConfig": {"href": config}}},
        {"type": CIMI + "Volume", "name": "olddisk", "component": {"volumeConfig": {"capacity": 1024 * 1024}}}]}
    with d.store.transaction() as session:
        tenant = session.query(Tenant).filter_by(name="tenant-a").one()
        row = cmdb.new_resource(session, "SystemTemplate", tenant.id, doc)
        uuid = row.uuid
    href = alice.collection("systemTemplates") + "/" + uuid
    system = make_system(alice, {"href": href}, "from-legacy")
    assert sorted(m["name"] for m in members(alice, system, "machines")) == ["old1", "old2"]
    assert [v["name"] for v in members(alice, system, "volumes")] == ["olddisk"]
    alice.remove(system)
    alice.remove({"id": href})


def test_table14_former_shape_read_from_another_provider():
    """What the cimi connector reads from a provider (trusted) may be siroccod's former shape: read as Table 14's;
    a client's document in that shape is refused."""
    old = {"componentDescriptors": [{"type": CIMI + "Volume", "name": "v", "component": {"href": "http://x/vt/1"}}]}
    tpl = model.SystemTemplate.from_json(old, trusted=True).to_json()
    assert tpl["componentDescriptors"] == [{"type": CIMI + "Volume", "name": "v",
                                            "volumeTemplate": {"href": "http://x/vt/1"}}]
    with pytest.raises(Exception, match="unknown attribute 'component'"):
        model.SystemTemplate.from_json(old)


def test_table14_openapi_describes_component_descriptors_as_the_spec(alice):
    """The OpenAPI description derives from the model: the descriptor's Table 14 attributes, no private one."""
    schemas = alice.get("/cimi/openapi.json").json["components"]["schemas"]
    found = [s for name, s in schemas.items() if name.startswith("ComponentDescriptor")]
    assert found
    for schema in found:
        props = schema["properties"]
        assert {"name", "description", "properties", "type", "machineTemplate", "volumeTemplate",
                "networkTemplate", "quantity"} <= set(props)
        assert model.LEGACY_COMPONENT not in props


def test_table14_migration_0008_moves_stored_templates_to_the_spec_shape_and_back(database):
    """Migration 0008: a CMDB's SystemTemplates kept in the former shape are served in Table 14's after the
    upgrade (their templates under machineTemplate / volumeTemplate / networkTemplate); downgrade moves every
    one back under component."""
    import sqlalchemy as sa
    from alembic import command

    from siroccod import migrating
    table = sa.table("resources", sa.column("uuid", sa.String), sa.column("type", sa.String),
                     sa.column("name", sa.String), sa.column("doc", sa.JSON), sa.column("private", sa.JSON),
                     sa.column("created", sa.DateTime), sa.column("updated", sa.DateTime))
    engine = sa.create_engine(database)
    assert migrating.upgrade(engine, "0007")[1] == "0007"
    old = {"name": "s", "componentDescriptors": [
        {"type": CIMI + "Machine", "name": "m", "quantity": 2, "component": {"machineConfig": {"href": "c/1"}}},
        {"type": CIMI + "Volume", "component": {"volumeConfig": {"capacity": 1}}},
        {"type": CIMI + "Network", "name": "n", "component": {}}]}
    spec = {"name": "t", "componentDescriptors": [{"type": CIMI + "Machine", "machineTemplate": {"href": "mt/1"}}]}
    with engine.begin() as connection:
        for uuid, doc in (("s1", old), ("s2", spec), ("s3", {"name": "empty"})):
            connection.execute(sa.insert(table).values(uuid=uuid, type="SystemTemplate", name=doc["name"], doc=doc,
                                                       private={}, created=sa.func.now(), updated=sa.func.now()))

    def read():
        with engine.connect() as connection:
            return {r.uuid: r.doc for r in connection.execute(sa.select(table.c.uuid, table.c.doc))}
    try:
        assert migrating.upgrade(engine)[1] == migrating.head()
        after = read()
        assert after["s1"]["componentDescriptors"] == [model.spec_descriptor(d) for d in old["componentDescriptors"]]
        assert [sorted(d) for d in after["s1"]["componentDescriptors"]] == [
            ["machineTemplate", "name", "quantity", "type"], ["type", "volumeTemplate"],
            ["name", "networkTemplate", "type"]]
        assert (after["s2"], after["s3"]) == (spec, {"name": "empty"})
        with engine.begin() as connection:
            command.downgrade(migrating.alembic_config(connection), "0007")
        # what the older daemon reads: every template under component, also those stored after 0008
        legacy = {"name": "t", "componentDescriptors": [{"type": CIMI + "Machine", "component": {"href": "mt/1"}}]}
        assert read() == {"s1": old, "s2": legacy, "s3": {"name": "empty"}}
    finally:
        engine.dispose()

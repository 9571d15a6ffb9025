"""The declared model: JSON out, JSON in with validation naming the attribute."""

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import CIMI_NS, parse_datetime
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput


def test_every_type_has_its_uri_and_collections_their_key():
    for name, cls in model.RESOURCE_TYPES.items():
        assert cls().to_json()["resourceURI"] == CIMI_NS + name
    assert model.COLLECTIONS["machines"] is model.Machine
    assert model.COLLECTIONS["resourceMetadata"] is model.ResourceMetadata
    expected = {"machines", "machineConfigs", "machineImages", "machineTemplates", "credentials", "credentialTemplates",
                "volumes",
                "volumeConfigs", "volumeImages", "volumeTemplates", "networks", "networkTemplates",
                "networkConfigs", "systems", "systemTemplates", "jobs", "meters", "meterConfigs", "resourceMetadata"}
    assert expected == set(model.COLLECTIONS)


def test_machine_round_trip_omits_empty_values():
    machine = model.Machine(id="m1", name="vm", state="STARTED", cpu=2, memory=262144, properties={},
                            disks=[model.Disk(capacity=1024)], operations=[{"rel": "delete", "href": "m1"}])
    doc = machine.to_json()
    assert doc == {"resourceURI": CIMI_NS + "Machine", "id": "m1", "name": "vm", "state": "STARTED", "cpu": 2,
                   "memory": 262144, "disks": [{"capacity": 1024}],
                   "operations": [{"rel": "delete", "href": "m1"}]}
    assert model.Machine.from_json(doc, trusted=True).to_json() == doc


def test_client_input_drops_read_only_and_keeps_writable():
    machine = model.Machine.from_json({"id": "forged", "state": "STARTED", "name": "x", "properties": {"a": "b"}})
    assert machine.to_json() == {"resourceURI": CIMI_NS + "Machine", "name": "x", "properties": {"a": "b"}}


def test_machine_create_by_value_and_by_reference():
    by_value = model.MachineCreate.from_json({
        "resourceURI": CIMI_NS + "MachineCreate", "name": "web",
        "machineTemplate": {"machineConfig": {"cpu": 2, "memory": 524288, "disks": [{"capacity": 10}]},
                            "machineImage": {"href": "images/1"}, "initialState": "STARTED"}})
    template = by_value.machineTemplate
    assert template["machineConfig"] == {"cpu": 2, "memory": 524288, "disks": [{"capacity": 10}]}
    assert template["machineImage"] == {"href": "images/1"}
    by_ref = model.MachineCreate.from_json({"machineTemplate": {"href": "templates/7", "initialState": "STOPPED"}})
    assert by_ref.machineTemplate == {"href": "templates/7", "initialState": "STOPPED"}
    # By reference, required attributes of the referenced config may be left out (overrides only).
    override = model.MachineCreate.from_json({"machineTemplate": {"machineConfig": {"href": "c/1", "cpu": 4}}})
    assert override.machineTemplate["machineConfig"] == {"href": "c/1", "cpu": 4}


@pytest.mark.parametrize("doc,attribute,words", [
    ("not a dict", "MachineCreate", "expected a JSON object"),
    ({"machineTemplate": {}, "name": 3}, "MachineCreate.name", "expected a string"),
    ({"machineTemplate": {"machineConfig": {"cpu": "2", "memory": 1}}},
     "MachineCreate.machineTemplate.machineConfig.cpu", "expected an integer"),
    ({"machineTemplate": {"machineConfig": {"cpu": True, "memory": 1}}},
     "MachineCreate.machineTemplate.machineConfig.cpu", "expected an integer"),
    ({"machineTemplate": {"machineConfig": {"cpu": 0, "memory": 1}}},
     "MachineCreate.machineTemplate.machineConfig.cpu", "at least 1"),
    ({"machineTemplate": {"machineConfig": {"cpu": 1}}},
     "MachineCreate.machineTemplate.machineConfig.memory", "required"),
    ({"machineTemplate": {"initialState": "FLYING"}}, "MachineCreate.machineTemplate.initialState", "not one of"),
    ({"machineTemplate": {"machineImage": {"href": 5}}}, "MachineCreate.machineTemplate.machineImage.href",
     "non-empty string"),
    ({"machineTemplate": {}, "properties": {"a": 1}}, "MachineCreate.properties", "string values"),
    ({"machineTemplate": {}, "cpus": 1}, "cpus", "unknown attribute"),
    ({}, "machineTemplate", "required"),
    ({"machineTemplate": {}, "resourceURI": CIMI_NS + "Machine"}, "resourceURI", "expected"),
    ({"machineTemplate": {"machineConfig": {"cpu": 1, "memory": 1, "disks": {"capacity": 1}}}},
     "MachineCreate.machineTemplate.machineConfig.disks", "expected a list"),
    ({"machineTemplate": {"machineConfig": {"cpu": 1, "memory": 1, "cpuArch": "z80"}}},
     "MachineCreate.machineTemplate.machineConfig.cpuArch", "not one of"),
])
def test_bad_input_names_the_attribute(doc, attribute, words):
    with pytest.raises(InvalidInput) as err:
        model.MachineCreate.from_json(doc)
    assert err.value.attribute == attribute or attribute in str(err.value)
    assert words in str(err.value)


def test_password_is_write_only():
    credential = model.Credential.from_json({"userName": "root", "password": "s3cret"})
    assert credential.password == "s3cret"
    assert "s3cret" not in repr(credential.to_json())
    assert "password" not in credential.to_json()


def test_datetimes_are_validated():
    assert parse_datetime("2026-11-23T10:00:00Z").tzinfo is not None
    with pytest.raises(InvalidInput):
        parse_datetime("yesterday")
    with pytest.raises(InvalidInput):
        model.Job.from_json({"timeOfStatusChange": "now"}, trusted=True)


def test_resource_metadata_derives_from_the_declaration():
    meta = model.resource_metadata(model.MachineConfiguration).to_json()
    attrs = {a["name"]: a for a in meta["attributes"]}
    # Table 6: a CIMI-defined attribute carries no namespace or type; its constraints (5.3) are given
    assert attrs["cpu"] == {"name": "cpu", "providerMandatory": True, "consumerMandatory": True, "mutable": True,
                            "consumerWritable": True, "required": True}
    assert attrs["id"]["mutable"] is False and attrs["id"]["consumerWritable"] is False
    assert attrs["created"]["consumerMandatory"] is False
    unserved = model.resource_metadata(model.Machine, unserved=("snapshots",)).to_json()
    assert {a["name"]: a for a in unserved["attributes"]}["snapshots"]["providerMandatory"] is False
    # an extension names its namespace and type
    action = {a["name"]: a for a in model.resource_metadata(model.Action).to_json()["attributes"]}
    assert action["host"]["namespace"] == model.SIROCCO_ATTRIBUTE_NS and action["host"]["type"] == "string"
    assert "namespace" not in action["force"]
    assert meta["typeURI"] == CIMI_NS + "MachineConfiguration"


def test_collection_document():
    items = [model.Machine(id="a", name="a").to_json()]
    doc = model.collection_json(model.Machine, "machines", items, operations=[{"rel": "add", "href": "machines"}])
    assert doc["resourceURI"] == CIMI_NS + "MachineCollection"
    assert doc["count"] == 1 and doc["machines"] == items
    assert "machines" not in model.collection_json(model.Machine, "machines", [])

"""DSP0263 2.0.0 conformance of siroccod: ResourceMetadata (5.11, Tables 6-7) and a resource's own
collections (5.5.12, 5.14.1.1, 5.17.3.1), each test named by its clause. Over the embedded default (the
libvirt test driver's hosts), as any CIMI client would: every URL from the Cloud Entry Point or a document."""

from __future__ import annotations

from daemon_helpers import CIMI, action, assert_cimi_error

CAPABILITY = CIMI + "capability/"
WITH_DISK = {"cpu": 1, "memory": 131072, "disks": [{"capacity": 1048576}]}


def _metadata(api, type_name):
    coll = api.get(api.cep()["resourceMetadata"]["href"]).json
    return next(m for m in coll["resourceMetadatas"] if m["name"] == type_name)


def _volume(api, name, capacity=1024):
    r = api.post(api.collection("volumes"), {"resourceURI": CIMI + "VolumeCreate", "name": name,
                                             "volumeTemplate": {"volumeConfig": {"capacity": capacity}}})
    assert r.status_code == 202, r.json
    assert api.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    return api.get(r.headers["Location"]).json


# -- ResourceMetadata ------------------------------------------------------------------------------------------
def test_5_11_2_metadata_collection_names_its_entries_resource_metadatas(alice):
    coll = alice.get(alice.cep()["resourceMetadata"]["href"]).json
    assert coll["resourceURI"] == CIMI + "ResourceMetadataCollection"
    assert "resourceMetadata" not in coll
    names = {m["name"] for m in coll["resourceMetadatas"]}
    assert {"CloudEntryPoint", "Machine", "MachineImage", "MachineConfiguration", "Volume", "System"} <= names
    assert coll["count"] == len(coll["resourceMetadatas"])
    one = alice.get(_metadata(alice, "Machine")["id"]).json
    assert one["typeURI"] == CIMI + "Machine" and one["resourceURI"] == CIMI + "ResourceMetadata"


def test_table6_attribute_entries_carry_the_constraints_and_namespace_only_for_extensions(alice):
    machine = {a["name"]: a for a in _metadata(alice, "Machine")["attributes"]}
    for entry in machine.values():  # 7.1: every field of the entry but consumerMandatory (given too)
        assert {"providerMandatory", "consumerMandatory", "mutable", "consumerWritable"} <= set(entry), entry
    for name in ("cpu", "memory", "disks", "cpuArch", "cpuSpeed", "volumes", "interfaces", "state", "id"):
        assert "namespace" not in machine[name] and "type" not in machine[name], machine[name]
    assert machine["id"]["mutable"] is False and machine["id"]["consumerWritable"] is False
    assert machine["name"]["consumerWritable"] is True and machine["state"]["consumerWritable"] is False
    assert machine["snapshots"]["providerMandatory"] is False  # never served here
    # a Sirocco extension names its namespace and type
    volume = {a["name"]: a for a in _metadata(alice, "Volume")["attributes"]}
    assert volume["attachedTo"]["namespace"] == "urn:sirocco:cimi:attribute"
    assert volume["attachedTo"]["type"] == "ref[]"
    assert "namespace" not in volume["capacity"]


def test_5_3_provider_mandatory_attributes_are_in_the_document(alice):
    """What ResourceMetadata calls providerMandatory is in a machine's representation (7.1's minimal
    attributes among them), while it has a value."""
    m = alice.create_machine("pm", state="STARTED")
    mandatory = {a["name"] for a in _metadata(alice, "Machine")["attributes"] if a["providerMandatory"]}
    assert {"cpu", "memory", "disks", "cpuArch", "cpuSpeed"} <= mandatory
    missing = mandatory - set(m) - {"description", "properties", "operations"}  # empty here: omitted (5.5.15)
    assert not missing, missing
    alice.remove(m)


def _probe(alice, type_name, name, value):
    """Whether the daemon does what a capability says, by doing it."""
    if name == "ExpandParameter":
        m = alice.items("machines", "?$expand=disks")
        return all("count" in d["disks"] for d in m)
    if name == "FilterParameter":
        return alice.items("machineConfigs", "?$filter=name='tiny'")[0]["name"] == "tiny"
    if name == "FirstParameter":
        return len(alice.items("machineConfigs", "?$first=1&$last=1")) == 1
    if name == "SelectParameter":
        return set(alice.items("machineConfigs", "?$select=name")[0]) <= {"name", "resourceURI"}
    if name == "OrderByParameter":
        names = [c["name"] for c in alice.items("machineConfigs", "?$orderby=name:desc")]
        return names == sorted(names, reverse=True)
    if name == "MaxPropertyItems":
        body = {"name": "props", "cpu": 1, "memory": 65536, "properties": {"k%d" % i: "v" for i in range(value + 1)}}
        refused = alice.post(alice.collection("machineConfigs"), body).status_code == 400
        body["properties"] = {"k%d" % i: "v" for i in range(value)}
        r = alice.post(alice.collection("machineConfigs"), body)
        alice.remove(alice.get(r.headers["Location"]).json)
        return refused and r.status_code == 201
    if name == "DefaultInitialState" and type_name == "Machine":
        m = alice.create_machine("dis", state=None)
        alice.remove(m)
        return m["state"] == value
    if name == "InitialStates":
        states = []
        for state in value:
            m = alice.create_machine("is-" + state.lower(), state=state)
            states.append(m["state"])
            alice.remove(m)
        return states == list(value)
    if name in ("MachineTemplateByValue", "MachineConfigByValue"):
        m = alice.create_machine("bv", machineConfig={"cpu": 1, "memory": 131072})
        alice.remove(m)
        return m["cpu"] == 1
    if name == "MachineCredentialByValue":
        key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGcGzMDc5fu8fBXIVJeIV0Yj8sV4Ck5+rx3cLnJqQmSa probe"
        m = alice.create_machine("cv", credential={"userName": "probe", "key": key})
        alice.remove(m)
        return m["state"] == "STOPPED"
    if name == "MachineStopForce":
        m = alice.create_machine("sf", state="STARTED")
        m = alice.act(m, "stop", force=True)
        alice.remove(m)
        return m["state"] == "STOPPED"
    if name in ("VolumeTemplateByValue", "VolumeConfigByValue"):
        v = _volume(alice, "vbv")
        alice.remove(v)
        return v["capacity"] == 1024
    if type_name == "Network" and name in ("DefaultInitialState", "InitialStates", "NetworkTemplateByValue"):
        made = []
        for state in ([None] if name != "InitialStates" else value):
            template = {} if state is None else {"initialState": state}  # a NetworkTemplate by value
            r = alice.post(alice.collection("networks"), {"name": "net-probe", "networkTemplate": template})
            assert r.status_code == 202, r.json
            assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
            net = alice.get(r.headers["Location"]).json
            made.append(net["state"])
            alice.remove(net)
        if name == "InitialStates":
            return made == list(value)
        return made == [value if name == "DefaultInitialState" else "STARTED"]
    if name == "SystemComponentTemplateByValue":
        r = alice.post(alice.collection("systems"), {"name": "sys-probe", "systemTemplate": {"componentDescriptors": [
            {"type": CIMI + "Machine", "name": "probe",
             "machineTemplate": {"machineConfig": {"cpu": 1, "memory": 65536}}}]}})
        assert r.status_code == 202, r.json
        ok = alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        alice.remove(alice.get(r.headers["Location"]).json)
        return ok
    if name == "CredentialTemplateByValue":
        key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGcGzMDc5fu8fBXIVJeIV0Yj8sV4Ck5+rx3cLnJqQmSa probe"
        r = alice.post(alice.collection("credentials"), {"resourceURI": CIMI + "CredentialCreate", "name": "cred-probe",
                                                         "credentialTemplate": {"userName": "probe", "key": key}})
        cred = alice.get(r.headers["Location"]).json if r.status_code == 201 else {}
        if cred:
            alice.remove(cred)
        return cred.get("userName") == "probe"
    return None


def test_table7_every_advertised_capability_holds(alice):
    """Each DSP0263 capability in the metadata is one the daemon has: tried here, one by one (a capability
    with no probe fails the test: nothing is advertised untried)."""
    untried, tried = [], []
    coll = alice.get(alice.cep()["resourceMetadata"]["href"]).json
    for meta in coll["resourceMetadatas"]:
        type_name = meta["name"]
        for cap in meta.get("capabilities", []):
            if not cap["uri"].startswith(CAPABILITY):
                continue  # Sirocco's own (guestInputs, ...): tested in test_daemon_guest_inputs
            assert cap["uri"] == CAPABILITY + type_name + "/" + cap["name"]
            result = _probe(alice, type_name, cap["name"], cap["value"])
            if result is None:
                untried.append(cap["uri"])
            else:
                assert result, cap
                tried.append(cap["name"])
    assert not untried, untried
    assert {"ExpandParameter", "DefaultInitialState", "MachineStopForce", "VolumeTemplateByValue",
            "SystemComponentTemplateByValue", "NetworkTemplateByValue", "CredentialTemplateByValue"} <= set(tried)


# -- a machine's collections -----------------------------------------------------------------------------------
def test_5_14_1_1_machine_disks_interfaces_volumes_meters_are_collection_references(alice):
    m = alice.create_machine("coll", state="STARTED", machineConfig=WITH_DISK)
    for attr, item_type, entries in (("disks", "Disk", "disks"),
                                     ("interfaces", "NetworkInterface", "networkInterfaces"),
                                     ("volumes", "locatedVolume", "locatedVolumes"), ("meters", "Meter", "meters")):
        assert set(m[attr]) == {"href"}, m[attr]
        coll = alice.get(m[attr]["href"]).json
        assert coll["resourceURI"] == CIMI + item_type + "Collection" and coll["id"] == m[attr]["href"]
        assert coll["count"] == len(coll.get(entries, []))
        if not coll["count"]:  # 5.5.11: never an empty array
            assert entries not in coll
        for item in coll.get(entries, []):
            assert item["resourceURI"] == CIMI + item_type
            assert alice.get(item["id"]).json == item  # each item has an id of its own (5.5.12)
    disks = alice.get(m["disks"]["href"]).json
    assert disks["count"] >= 1 and disks["disks"][0]["capacity"] > 0
    assert "operations" not in disks  # disks come with the machine
    alice.remove(m)


def test_4_1_6_4_expand_inlines_a_machines_collections(alice):
    m = alice.create_machine("exp", state="STARTED", machineConfig=WITH_DISK)
    doc = alice.get(m["id"] + "?$expand=disks,interfaces").json
    assert "disks" in doc, doc
    assert doc["disks"]["href"] == m["disks"]["href"] and doc["disks"]["count"] == len(doc["disks"]["disks"]) == 1
    assert doc["interfaces"]["href"] == m["interfaces"]["href"]
    assert set(doc["volumes"]) == {"href"}  # not asked for: still a reference
    listed = [d for d in alice.items("machines", "?$expand=*") if d["id"] == m["id"]][0]
    assert listed["disks"]["disks"] == doc["disks"]["disks"]
    alice.remove(m)


def test_5_5_12_add_insert_remove_on_a_machines_volumes_collection(alice):
    m = alice.create_machine("att", state="STOPPED")
    coll = alice.get(m["volumes"]["href"]).json
    ops = {op["rel"]: op["href"] for op in coll["operations"]}
    assert set(ops) == {"add", "insert", "remove"}
    v1, v2 = _volume(alice, "att-1"), _volume(alice, "att-2")
    # insert (5.5.12.2): an Action naming an existing volume, with its accessory attribute
    r = alice.post(ops["insert"], dict(action("insert"), volume={"href": v1["id"]}, initialLocation="vdb"))
    assert r.status_code == 202, r.json
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    # add (5.5.12.1): a new locatedVolume item
    r = alice.post(ops["add"], {"resourceURI": CIMI + "locatedVolume", "volume": {"href": v2["id"]}})
    assert r.status_code == 202, r.json
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    items = alice.get(m["volumes"]["href"]).json["locatedVolumes"]
    assert {i["volume"]["href"] for i in items} == {v1["id"], v2["id"]}
    assert [i["initialLocation"] for i in items if i["volume"]["href"] == v1["id"]] == ["vdb"]
    # remove (5.5.12.3): the reference goes, the volume stays
    r = alice.post(ops["remove"], dict(action("remove"), volume={"href": v1["id"]}))
    assert r.status_code == 202, r.json
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    items = alice.get(m["volumes"]["href"]).json["locatedVolumes"]
    assert [i["volume"]["href"] for i in items] == [v2["id"]]
    assert alice.get(v1["id"]).json["state"] == "AVAILABLE"
    # deleting the item is a remove too (5.5.12.4's reverse: the entry, not the volume)
    r = alice.delete(items[0]["id"])
    assert r.status_code == 202 and alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    assert "locatedVolumes" not in alice.get(m["volumes"]["href"]).json
    # bad input: 400 naming the attribute, nothing queued
    assert_cimi_error(alice.post(ops["insert"], action("insert")), 400)
    assert_cimi_error(alice.post(ops["insert"], dict(action("start"), volume={"href": v1["id"]})), 400)
    assert_cimi_error(alice.post(ops["remove"], dict(action("remove"), volume={"href": m["id"]})), 400)
    for doc in (m, v1, v2):
        alice.remove(doc)


def test_5_14_1_1_another_tenants_machine_collections_are_not_found(alice, bob):
    m = alice.create_machine("iso")
    for attr in ("disks", "interfaces", "volumes", "meters"):
        assert_cimi_error(bob.get(m[attr]["href"]), 404)
    assert_cimi_error(bob.post(m["volumes"]["href"], {"volume": {"href": m["id"]}}), 404)
    assert_cimi_error(alice.get(m["id"] + "/nothing"), 404)
    assert_cimi_error(alice.get(m["disks"]["href"] + "/99"), 404)
    alice.remove(m)


def test_5_17_3_1_a_meters_samples_are_a_collection(alice):
    m = alice.create_machine("met", state="STARTED")
    meters = alice.get(m["meters"]["href"]).json
    assert meters["count"] >= 1
    meter = alice.get(meters["meters"][0]["id"]).json
    assert meter["resourceURI"] == CIMI + "Meter" and set(meter["samples"]) == {"href"}
    samples = alice.get(meter["samples"]["href"]).json
    assert samples["resourceURI"] == CIMI + "SampleCollection" and samples["id"] == meter["samples"]["href"]
    assert samples["count"] == len(samples.get("samples", []))
    for sample in samples.get("samples", []):
        assert {"id", "timestamp", "value"} <= set(sample)
    alice.remove(m)


# -- a system's collections -------------------------------------------------------------------------------------
def test_5_13_1_1_a_systems_members_are_collections_of_their_own_resources(alice, bob):
    r = alice.post(alice.collection("systems"), {"resourceURI": CIMI + "SystemCreate", "name": "members",
                                                 "systemTemplate": {"componentDescriptors": [
                                                     {"type": CIMI + "Machine", "name": "node", "quantity": 2,
                                                      "machineTemplate": {"machineConfig": {
                                                          "href": alice.config_href("tiny")}}}]}})
    assert r.status_code == 202, r.json
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    system = alice.get(r.headers["Location"]).json
    for attr in ("machines", "volumes", "networks"):
        assert set(system[attr]) == {"href"}, system[attr]
    machines = alice.get(system["machines"]["href"]).json
    assert machines["resourceURI"] == CIMI + "MachineCollection" and machines["count"] == 2
    for m in machines["machines"]:  # the members themselves: their own ids and documents
        assert m["resourceURI"] == CIMI + "Machine" and alice.get(m["id"]).json["id"] == m["id"]
    volumes = alice.get(system["volumes"]["href"]).json
    assert volumes == {"resourceURI": CIMI + "VolumeCollection", "id": system["volumes"]["href"], "count": 0}
    expanded = alice.get(system["id"] + "?$expand=machines").json
    assert [m["id"] for m in expanded["machines"]["machines"]] == [m["id"] for m in machines["machines"]]
    assert_cimi_error(bob.get(system["machines"]["href"]), 404)
    assert_cimi_error(alice.get(system["machines"]["href"] + "/" + machines["machines"][0]["id"].rsplit("/", 1)[1]),
                      404)  # the items are resources of their own: no item route under the system
    alice.remove(system)

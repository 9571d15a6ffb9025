"""Machines on the simulated hosts: create (by value, by reference), every action through
Jobs, operations advertised per state, capture, volumes attach/detach, networks, systems, meters."""

from __future__ import annotations

from daemon_helpers import CIMI, action, assert_cimi_error

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import SIROCCO_RESIZE

# What each resting state must advertise (CIMI.md; states.allowed_operations). Sirocco's resize too when stopped,
# and when running since the simulated hosts' connector (libvirt) resizes live within a machine's maximums.
EXPECTED = {
    "STOPPED": {"start", "restart", "capture", "edit", "delete", SIROCCO_RESIZE},
    "STARTED": {"stop", "restart", "pause", "suspend", "capture", "edit", "delete", SIROCCO_RESIZE},
    "PAUSED": {"start", "stop", "edit", "delete"},
    "SUSPENDED": {"start", "stop", "edit", "delete"},
}


def test_create_by_value_goes_through_a_job(alice):
    r = alice.post(alice.collection("machines"), {
        "resourceURI": CIMI + "MachineCreate", "name": "byvalue", "description": "d",
        "properties": {"team": "blue"},
        "machineTemplate": {"machineConfig": {"cpu": 2, "memory": 131072}, "initialState": "STARTED"}})
    assert r.status_code == 202
    assert r.json["state"] == "CREATING" and r.json["name"] == "byvalue"
    assert r.headers["Location"] == r.json["id"]
    job = alice.get(r.headers["CIMI-Job-URI"]).json
    assert job["resourceURI"] == CIMI + "Job" and job["state"] in ("QUEUED", "RUNNING", "SUCCESS")
    # an add job targets the collection, the new machine among its affected resources (Table 46)
    assert job["targetResource"]["href"] == alice.collection("machines")
    assert r.json["id"] in [a["href"] for a in job["affectedResources"]]
    job = alice.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS" and job["progress"] == 100 and job["statusMessage"]
    machine = alice.get(r.json["id"]).json
    assert machine["state"] == "STARTED" and machine["cpu"] == 2 and machine["memory"] == 131072
    assert machine["properties"] == {"team": "blue"} and machine["description"] == "d"
    assert set(alice.ops(machine)) == EXPECTED["STARTED"]
    alice.remove(machine)
    assert_cimi_error(alice.get(machine["id"]), 404)


def test_lifecycle_every_action_and_operations_per_state(alice):
    m = alice.create_machine("life", "STOPPED", config="small")
    assert m["state"] == "STOPPED" and set(alice.ops(m)) == EXPECTED["STOPPED"]
    for verb, state in (("start", "STARTED"), ("pause", "PAUSED"), ("start", "STARTED"), ("suspend", "SUSPENDED"),
                        ("start", "STARTED"), ("restart", "STARTED"), ("stop", "STOPPED"), ("restart", "STARTED"),
                        ("pause", "PAUSED"), ("stop", "STOPPED"), ("start", "STARTED"), ("suspend", "SUSPENDED"),
                        ("stop", "STOPPED")):
        m = alice.act(m, verb, **({"force": True} if verb == "stop" else {}))
        assert m["state"] == state, (verb, m["state"])
        assert set(alice.ops(m)) == EXPECTED[state], (state, alice.ops(m))
        for op in alice.ops(m).values():
            assert op.startswith(m["id"])
    # every job of that story is in the jobs collection, finished
    jobs = alice.items("jobs", "?$filter=state='SUCCESS'")
    # (13 actions on it, and its create, whose target is the collection: Table 46)
    assert len([j for j in jobs if m["id"] in [a["href"] for a in j.get("affectedResources", [])]]) >= 14
    alice.remove(m)


def test_actions_not_offered_are_refused_and_change_nothing(alice):
    m = alice.create_machine("refuse", "STOPPED")
    jobs_before = alice.get(alice.collection("jobs")).json["count"]
    for verb in ("stop", "pause", "suspend"):
        r = alice.post(m["id"] + "/" + verb, action(verb))
        assert_cimi_error(r, 409)
    r = alice.post(m["id"] + "/start", action("stop"))  # body and href disagree
    assert_cimi_error(r, 400)
    assert_cimi_error(alice.post(m["id"] + "/explode", action("explode")), 404)
    assert_cimi_error(alice.post(m["id"] + "/start", {"action": "start"}), 400)
    after = alice.get(m["id"]).json
    assert after["state"] == "STOPPED" and after["updated"] == m["updated"]
    assert alice.get(alice.collection("jobs")).json["count"] == jobs_before
    alice.remove(m)


def test_create_by_reference_with_overrides(alice):
    cfg = alice.post(alice.collection("machineConfigs"), {"name": "two", "cpu": 2, "memory": 65536})
    assert cfg.status_code == 201
    tpl = alice.post(alice.collection("machineTemplates"), {
        "name": "web", "machineConfig": {"href": cfg.json["id"]}, "initialState": "STARTED"})
    assert tpl.status_code == 201, tpl.json
    r = alice.post(alice.collection("machines"), {"name": "fromtpl", "machineTemplate": {"href": tpl.json["id"]}})
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    m = alice.get(r.headers["Location"]).json
    assert (m["state"], m["cpu"]) == ("STARTED", 2)
    # by reference, the initial state overridden
    r = alice.post(alice.collection("machines"), {
        "name": "fromtpl2", "machineTemplate": {"href": tpl.json["id"], "initialState": "STOPPED"}})
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    m2 = alice.get(r.headers["Location"]).json
    assert m2["state"] == "STOPPED"
    for doc in (m, m2):
        alice.remove(doc)


def test_placement_first_fit_and_pinning(app, admin):
    r = admin.post(admin.collection("machines"), {
        "name": "pinned", "properties": {"sirocco.host": "sim3"},
        "machineTemplate": {"machineConfig": {"cpu": 1, "memory": 65536}}})
    assert admin.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    hosts = {h["name"]: h for h in admin.get("/admin/hosts").json["hosts"]}
    assert hosts["sim3"]["machines"] >= 1
    # too big for any host: refused at once, nothing recorded
    count = admin.get(admin.collection("machines")).json["count"]
    r = admin.post(admin.collection("machines"), {
        "name": "huge", "machineTemplate": {"machineConfig": {"cpu": 64, "memory": 65536}}})
    assert_cimi_error(r, 409)
    r = admin.post(admin.collection("machines"), {
        "name": "nohost", "properties": {"sirocco.host": "sim9"},
        "machineTemplate": {"machineConfig": {"cpu": 1, "memory": 65536}}})
    assert_cimi_error(r, 400)
    assert admin.get(admin.collection("machines")).json["count"] == count
    admin.remove(admin.items("machines", "?$filter=name='pinned'")[0])


def test_edit_changes_only_mutable_attributes(alice):
    m = alice.create_machine("editme", "STOPPED")
    r = alice.put(m["id"], {"name": "edited", "description": "new", "properties": {"k": "v"},
                            "state": "STARTED", "cpu": 99})
    assert r.status_code == 200, r.json
    after = alice.get(m["id"]).json
    assert (after["name"], after["description"], after["properties"]) == ("edited", "new", {"k": "v"})
    assert (after["state"], after["cpu"]) == ("STOPPED", m["cpu"])
    assert_cimi_error(alice.put(m["id"], {"bogus": 1}), 400)
    alice.remove(after)


def test_capture_makes_an_image(alice):
    stock = alice.items("machineImages", "?$filter=name='tiny-linux.qcow2'")
    assert len(stock) == 1 and stock[0]["state"] == "AVAILABLE" and "delete" not in alice.ops(stock[0])
    assert stock[0]["type"] == "IMAGE" and stock[0]["imageLocation"].endswith("/tiny-linux.qcow2")
    m = alice.create_machine("cap", "STARTED", machineImage={"href": stock[0]["id"]})
    assert alice.members(m, "disks")[0]["capacity"] == 65536
    r = alice.post(alice.ops(m)["capture"], action("capture", image={"name": "golden"}))
    assert r.status_code == 202
    job = alice.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS", job
    image_href = [a["href"] for a in job["affectedResources"] if "/machineImages/" in a["href"]][0]
    image = alice.get(image_href).json
    # capture makes an IMAGE; only the snapshot action makes SNAPSHOTs (DSP0263 5.14.7.1)
    assert (image["name"], image["state"], image["type"]) == ("golden", "AVAILABLE", "IMAGE")
    assert alice.get(m["id"]).json["state"] == "STARTED"
    # the spec's other way: POST a MachineImage whose imageLocation is the machine
    r = alice.post(alice.collection("machineImages"), {"name": "golden2", "imageLocation": m["id"]})
    assert r.status_code == 202 and r.json["state"] == "CREATING"
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    assert alice.get(r.headers["Location"]).json["state"] == "AVAILABLE"
    # a new machine from the captured image lands on the image's host
    m2 = alice.create_machine("fromimage", "STOPPED", machineImage={"href": image_href})
    assert m2["state"] == "STOPPED"
    for doc in (m2, m):
        alice.remove(doc)
    alice.remove(alice.get(image_href).json)


def test_volumes_create_attach_detach_delete(alice):
    r = alice.post(alice.collection("volumes"), {
        "resourceURI": CIMI + "VolumeCreate", "name": "data",
        "volumeTemplate": {"volumeConfig": {"capacity": 2048}}})
    assert r.status_code == 202
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    vol = alice.get(r.headers["Location"]).json
    assert (vol["state"], vol["capacity"]) == ("AVAILABLE", 2048)
    m = alice.create_machine("withvol", "STOPPED", properties={"sirocco.host": "sim1"})
    mv = alice.get(m["volumes"]["href"]).json
    assert mv["count"] == 0 and mv["operations"][0]["rel"] == "add"
    r = alice.post(mv["operations"][0]["href"], {"volume": {"href": vol["id"]}, "initialLocation": "vdb"})
    assert r.status_code == 202
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    m = alice.get(m["id"]).json
    assert [(e["volume"], e["initialLocation"]) for e in alice.members(m, "volumes")] == [({"href": vol["id"]}, "vdb")]
    vol = alice.get(vol["id"]).json
    assert vol["attachedTo"] == [{"href": m["id"]}]
    assert "delete" not in alice.ops(vol)
    assert_cimi_error(alice.delete(vol["id"]), 409)  # attached
    assert_cimi_error(alice.post(mv["operations"][0]["href"], {"volume": {"href": vol["id"]}}), 409)  # twice
    entry = alice.members(m, "volumes")[0]
    r = alice.delete(entry["id"])
    assert r.status_code == 202 and alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    assert alice.members(alice.get(m["id"]).json, "volumes") == []
    assert "attachedTo" not in alice.get(vol["id"]).json
    alice.remove(m)
    alice.remove(alice.get(vol["id"]).json)
    assert_cimi_error(alice.get(vol["id"]), 404)


def test_networks(alice):
    r = alice.post(alice.collection("networks"), {"name": "net1", "networkTemplate": {"networkConfig": {}}})
    assert r.status_code == 202, r.json
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    net = alice.get(r.headers["Location"]).json
    assert net["state"] == "STARTED"
    alice.remove(net)


def test_systems_create_act_delete(alice):
    tpl = alice.post(alice.collection("systemTemplates"), {"name": "pair", "componentDescriptors": [
        {"type": CIMI + "Machine", "quantity": 2, "name": "node",
         "machineTemplate": {"machineConfig": {"href": alice.config_href("tiny")}, "initialState": "STARTED"}}]})
    assert tpl.status_code == 201, tpl.json
    r = alice.post(alice.collection("systems"), {"name": "sys", "systemTemplate": {"href": tpl.json["id"]}})
    assert r.status_code == 202, r.json
    job = alice.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS" and len(job["nestedJobs"]) == 2
    system = alice.get(r.headers["Location"]).json
    members = alice.members(system, "machines")
    assert system["state"] == "STARTED" and len(members) == 2
    names = sorted(alice.get(h["id"]).json["name"] for h in members)
    assert names == ["node1", "node2"]  # Table 14: the descriptor's name, numbered when quantity >= 2
    r = alice.post(alice.ops(system)["stop"], action("stop", force=True))
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    system = alice.get(system["id"]).json
    assert system["state"] == "STOPPED"
    alice.remove(system)
    for h in members:
        assert_cimi_error(alice.get(h["id"]), 404)


def test_meters_follow_machines(alice):
    m = alice.create_machine("metered", "STARTED")
    meters = alice.members(m, "meters")
    assert len(meters) == 5
    meter = alice.get(meters[0]["id"]).json
    assert meter["targetResource"]["href"] == m["id"]
    assert alice.members(meter, "samples")[0]["value"]
    listed = alice.items("meters", "?$filter=aspect='%saspect/memory'" % CIMI)
    assert any(x["targetResource"]["href"] == m["id"] for x in listed)
    assert_cimi_error(alice.delete(meter["id"]), 405)
    alice.remove(m)
    assert_cimi_error(alice.get(meter["id"]), 404)


def test_meter_configs_say_what_machines_are_metered_on(alice, admin):
    """meterConfigs (DSP0263 5.17.7): the aspects, known before any machine exists; public and read-only."""
    cep = alice.cep()
    configs = alice.items("meterConfigs")
    aspects = {c["aspect"] for c in configs}
    assert cep["meterConfigs"]["href"].endswith("/meterConfigs")
    assert aspects == {CIMI + "aspect/" + a for a in ("cpu", "memory", "disk", "inputBandwidth", "outputBandwidth")}
    for c in configs:
        assert c["resourceURI"] == CIMI + "MeterConfiguration" and c["associatedResources"] == [CIMI + "Machine"]
        assert "operations" not in c and "operations" not in admin.get(c["id"]).json
    coll = alice.get(cep["meterConfigs"]["href"]).json
    assert "operations" not in coll  # no add
    assert_cimi_error(alice.post(cep["meterConfigs"]["href"], {"aspect": CIMI + "aspect/cpu"}), 405)
    assert_cimi_error(admin.delete(configs[0]["id"]), 405)
    m = alice.create_machine("metered2", "STOPPED")
    assert {x["aspect"] for x in alice.members(m, "meters")} == aspects
    alice.remove(m)

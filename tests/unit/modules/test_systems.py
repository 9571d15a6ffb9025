"""sirocco.cimi.system and its siblings' logic (module_utils/systems.py), against libvirt's test driver.

The test driver (``test:///default``, in-process, a fresh one per connection) really defines the domains,
networks and storage volumes: systems are made client-side there (libvirt makes none itself), re-run, started,
stopped, found by their tags and deleted; a member failing mid-way (two machines given one volume, which libvirt
refuses) rolls back what the run made. Templates are checked here without any provider; their CIMI form (what a
CIMI endpoint receives) is built against the test driver's sizes. Native systems on a daemon are proved by the
integration target system_siroccod, the Ansible side by the targets system and system_siroccod.
"""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils import systems
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, Unsupported
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector
from ansible_collections.sirocco.cimi.plugins.module_utils.module import Deadline

DEFAULTS = dict(name="shop", state="present", template=None, description=None, properties=None, force=True,
                wait=True, wait_timeout=30, templates=None, templates_file=None, filter=None)
TEMPLATE = {"componentDescriptors": [
    {"name": "net", "type": "network", "networkTemplate": {}},
    {"name": "data", "type": "volume", "volumeTemplate": {"size_gib": 1}},
    {"name": "web", "type": "machine", "quantity": 2, "machineTemplate": {"machine_config": "tiny",
                                                                          "properties": {"tier": "web"}}},
    {"name": "db", "type": "http://schemas.dmtf.org/cimi/2/Machine",
     "machineTemplate": {"machine_config": {"cpu": 1, "memory_mib": 64}, "volumes": ["data"]}},
]}
NAMES = ["shop-net", "shop-data", "shop-web-1", "shop-web-2", "shop-db"]


class Module:
    """What systems.run uses of a SiroccoModule."""

    def __init__(self, connector, check_mode=False, **params):
        self.connector = connector
        self.check_mode = check_mode
        self.diff_mode = True
        self.params = dict(DEFAULTS, **params)
        self.deadline = Deadline(self.params["wait_timeout"])
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)

    def wait_for_machine(self, machine_id, wanted):
        return self.connector.wait_for_machine(machine_id, wanted, timeout=self.deadline.remaining())


@pytest.fixture
def conn():
    connector = LibvirtConnector(uri="test:///default", options={"image_pool": "default-pool"})
    yield connector
    connector.close()


def run(conn, check_mode=False, **params):
    return systems.run(Module(conn, check_mode, **params))


def held(conn):
    """Names of what the test driver holds of system 'shop'."""
    names = [m.name for m in conn.iter_machines()] + [v.name for v in conn.list_volumes()]
    names += [n.name for n in conn.list_networks()]
    return sorted(n for n in names if n.startswith("shop-"))


# -- templates ------------------------------------------------------------------------------------------------
def test_template_components_and_member_names():
    comps = systems.parse_template(TEMPLATE)
    assert [(c.name, c.kind, c.quantity) for c in comps] == [
        ("net", "network", 1), ("data", "volume", 1), ("web", "machine", 2), ("db", "machine", 1)]
    assert [n for c in comps for n in c.member_names("shop")] == NAMES
    assert comps[2].options["properties"] == {"tier": "web"}


@pytest.mark.parametrize("template, words", [
    ({}, ["template.componentDescriptors", "non-empty list"]),
    ({"components": []}, ["template", "unknown key(s) components"]),
    ({"componentDescriptors": [{"name": "a", "type": "router"}]}, ["componentDescriptors[0].type", "router"]),
    ({"componentDescriptors": [{"name": "a b", "type": "volume"}]}, ["componentDescriptors[0].name", "'a b'"]),
    ({"componentDescriptors": [{"name": "a", "type": "volume", "volumeTemplate": {"size_gib": 1}}] * 2},
     ["componentDescriptors[1].name", "named twice"]),
    ({"componentDescriptors": [{"name": "a", "type": "volume", "volumeTemplate": {}}]},
     ["componentDescriptors[0].volumeTemplate.size_gib", "at least 1"]),
    ({"componentDescriptors": [{"name": "a", "type": "volume", "volumeTemplate": {"size": 1}}]},
     ["componentDescriptors[0].volumeTemplate", "unknown key(s) size", "size_gib"]),
    ({"componentDescriptors": [{"name": "m", "type": "machine", "machineTemplate": {}}]},
     ["componentDescriptors[0].machineTemplate.machine_config", "required"]),
    ({"componentDescriptors": [{"name": "n", "type": "network", "networkTemplate": {}},
                               {"name": "m", "type": "machine", "machineTemplate": {"machine_config": "tiny",
                                                                                    "volumes": ["n"]}}]},
     ["componentDescriptors[1].machineTemplate.volumes", "'n' is a network"]),
    ({"componentDescriptors": [{"name": "m", "type": "machine", "machineTemplate": {
        "machine_config": "tiny", "credential": {"name": "k", "public_key": "ssh-ed25519 AAAA"}}}]},
     ["componentDescriptors[0].machineTemplate.credential", "either name"]),
    ({"componentDescriptors": [{"name": "m", "type": "machine", "quantity": 101,
                                "machineTemplate": {"machine_config": "tiny"}}]}, ["at most 100 members"]),
])
def test_bad_templates_name_their_path(template, words):
    with pytest.raises(InvalidInput) as err:
        systems.parse_template(template)
    assert err.value.attribute == "template"
    for word in words:
        assert word in err.value.message


def test_template_from_the_templates_file(tmp_path, conn):
    path = tmp_path / "templates.yaml"
    path.write_text("system_templates:\n  pair:\n    componentDescriptors:\n"
                    "      - {name: node, type: machine, quantity: 2, component: {machine_config: tiny}}\n")
    library = systems.templates.Library(path=str(path))
    comps = systems.load_template(conn, "pair", library)
    assert [n for c in comps for n in c.member_names("p")] == ["p-node-1", "p-node-2"]
    with pytest.raises(InvalidInput) as err:
        systems.load_template(conn, "trio", library)
    assert "trio" in err.value.message and str(path) in err.value.message and "pair" in err.value.message


# -- client-side, on the test driver -----------------------------------------------------------------------------
def test_check_mode_then_created_in_order_then_nothing_to_do(conn):
    check = run(conn, check_mode=True, template=TEMPLATE)
    assert held(conn) == []
    assert check["changed"] and check["orchestration"] == "client"
    assert check["actions"] == ["create network shop-net", "create volume shop-data", "create machine shop-web-1",
                                "create machine shop-web-2", "create machine shop-db",
                                "attach volume shop-data to machine shop-db"]
    assert check["diff"]["before"] == {}
    assert check["system"]["state"] == "STOPPED"

    real = run(conn, template=TEMPLATE)
    assert real["actions"] == check["actions"]
    assert held(conn) == sorted(NAMES)
    members = {m["name"]: m for m in real["system"]["members"]}
    assert [m["name"] for m in real["system"]["members"]] == NAMES
    assert members["shop-db"]["state"] == "STOPPED" and members["shop-data"]["component"] == "data"
    web = conn.find_machine("shop-web-2")
    assert web.properties["sirocco.system"] == "shop" and web.properties["sirocco.component"] == "web"
    assert web.properties["tier"] == "web"
    data = conn.get_volume("shop-data")
    assert data.attachedTo == [{"href": conn.find_machine("shop-db").id}]

    again = run(conn, template=TEMPLATE)
    assert (again["changed"], again["actions"]) == (False, [])
    assert again["diff"]["before"] == again["diff"]["after"]


def test_started_stopped_absent_converge(conn):
    assert run(conn, template=TEMPLATE, state="started")["system"]["state"] == "STARTED"
    assert run(conn, template=TEMPLATE, state="started")["changed"] is False
    stopped = run(conn, template=TEMPLATE, state="stopped")
    assert stopped["actions"] == ["stop machine shop-web-1", "stop machine shop-web-2", "stop machine shop-db"]
    assert stopped["system"]["state"] == "STOPPED"
    check = run(conn, check_mode=True, template=TEMPLATE, state="absent")
    assert check["actions"] == ["delete machine shop-web-1", "delete machine shop-web-2", "delete machine shop-db",
                                "delete volume shop-data", "delete network shop-net"]
    assert len(held(conn)) == 5
    assert run(conn, template=TEMPLATE, state="absent")["changed"] is True
    assert held(conn) == []
    assert run(conn, template=TEMPLATE, state="absent")["changed"] is False


def test_a_rerun_makes_only_what_is_missing(conn):
    run(conn, template=TEMPLATE)
    conn.delete_machine(conn.find_machine("shop-web-1").id)
    again = run(conn, template=TEMPLATE)
    assert again["actions"] == ["create machine shop-web-1"]
    assert held(conn) == sorted(NAMES)


def test_found_by_tags_without_the_template(conn):
    run(conn, template=TEMPLATE)
    info = systems.run_info(Module(conn, name=None))
    assert info["orchestration"] == "client"
    assert [s["name"] for s in info["systems"]] == ["shop"]
    assert sorted(m["name"] for m in info["systems"][0]["members"]) == sorted(NAMES)  # data: attached to db
    assert systems.run_info(Module(conn, name=None, filter="state='STARTED'"))["systems"] == []
    gone = run(conn, state="absent")  # by tags: the volume is attached to a tagged machine
    assert len(gone["actions"]) == 5 and held(conn) == []


def test_a_member_failing_rolls_back_what_the_run_made(conn):
    existing = conn.create_volume("shop-keep", 1024)  # not the run's: left alone
    shared = {"componentDescriptors": [
        {"name": "data", "type": "volume", "volumeTemplate": {"size_gib": 1}},
        {"name": "db", "type": "machine", "quantity": 2,
         "machineTemplate": {"machine_config": "tiny", "volumes": ["data"]}}]}
    with pytest.raises(Conflict) as err:
        run(conn, template=shared)
    message = err.value.message
    assert message.startswith("system 'shop': ")
    assert "rolled back what this run made: deleted machine shop-db-2, deleted machine shop-db-1, " \
           "deleted volume shop-data" in message
    assert held(conn) == ["shop-keep"]
    conn.delete_volume(existing.id)


def test_bad_input_and_missing_operations_change_nothing(conn):
    bad = {"componentDescriptors": [{"name": "net", "type": "network", "networkTemplate": {}},
                                    {"name": "m", "type": "machine", "machineTemplate": {"machine_config": "huge"}}]}
    with pytest.raises(InvalidInput) as err:
        run(conn, template=bad)
    assert "template.componentDescriptors[1].machineTemplate: machine_config: unknown size 'huge'" in err.value.message
    with pytest.raises(InvalidInput) as err:
        run(conn, template={"componentDescriptors": [{"name": "m", "type": "machine", "machineTemplate": {
            "machine_config": "tiny", "networks": ["no-such-net"]}}]})
    assert "machineTemplate.networks" in err.value.message and "no-such-net" in err.value.message
    with pytest.raises(InvalidInput) as err:
        run(conn, state="started")
    assert "template is required" in err.value.message
    with pytest.raises(InvalidInput) as err:
        run(conn, name="bad name", template=TEMPLATE)
    assert err.value.attribute == "name"
    assert held(conn) == []


def test_system_templates_are_not_libvirts(conn):
    with pytest.raises(Unsupported) as err:
        systems.run_template(Module(conn, template=TEMPLATE))
    assert (err.value.provider, err.value.operation) == ("libvirt", "system_template.list")
    assert "templates_file" in err.value.message
    with pytest.raises(Unsupported):
        systems.run_template_info(Module(conn))


# -- what a CIMI endpoint receives -------------------------------------------------------------------------------
def test_cimi_template_by_value(conn):
    """DSP0263 Table 14: each template under the attribute named for its component's type; the descriptor's
    name, description and properties are the members' (the template's by value keep none of them)."""
    comps = systems.parse_template({"componentDescriptors": [
        {"name": "data", "type": "volume", "volumeTemplate": {"size_gib": 2}},
        {"name": "net", "type": "network", "quantity": 1, "networkTemplate": {"cidr": "10.9.0.0/24"},
         "properties": {"role": "net"}},
        {"name": "m", "type": "machine", "quantity": 3, "description": "nodes", "properties": {"c": "d"},
         "machineTemplate": {"machine_config": "tiny", "description": "a node", "properties": {"a": "b"}}}]})
    doc = systems.cimi_template(conn, conn.capabilities(), comps, name="t", description="d").to_json()
    uri = "http://schemas.dmtf.org/cimi/2/"
    assert doc["name"] == "t" and doc["description"] == "d"
    assert doc["componentDescriptors"] == [
        {"name": "data", "type": uri + "Volume", "quantity": 1,
         "volumeTemplate": {"volumeConfig": {"capacity": 2097152}}},
        {"name": "net", "type": uri + "Network", "quantity": 1, "properties": {"role": "net"},
         "networkTemplate": {"networkConfig": {"cidr": "10.9.0.0/24"}}},
        {"name": "m", "description": "nodes", "properties": {"a": "b", "c": "d"}, "type": uri + "Machine",
         "quantity": 3, "machineTemplate": {"machineConfig": {"href": "tiny"}}}]


def test_table14_template_key_of_earlier_versions_is_still_read():
    """``component``, the template's key before Table 14's shape, is read as the type's template attribute."""
    old = systems.parse_template({"componentDescriptors": [
        {"name": "data", "type": "volume", "component": {"size_gib": 2}}]})
    new = systems.parse_template({"componentDescriptors": [
        {"name": "data", "type": "volume", "volumeTemplate": {"size_gib": 2}}]})
    assert old[0].options == new[0].options == {"size_gib": 2}


@pytest.mark.parametrize("desc, words", [
    ({"name": "m", "type": "machine", "volumeTemplate": {"size_gib": 1}},
     ["componentDescriptors[0].volumeTemplate", "given as machineTemplate"]),
    ({"name": "m", "type": "volume", "volumeTemplate": {"size_gib": 1}, "component": {"size_gib": 1}},
     ["componentDescriptors[0]", "once, as volumeTemplate"]),
])
def test_table14_template_under_another_key_is_refused(desc, words):
    with pytest.raises(InvalidInput) as err:
        systems.parse_template({"componentDescriptors": [desc]})
    for word in words:
        assert word in err.value.message


def test_guest_inputs_the_provider_cannot_take_are_refused(conn):
    comps = systems.parse_template({"componentDescriptors": [
        {"name": "m", "type": "machine",
         "machineTemplate": {"machine_config": "tiny", "user_data": "#cloud-config\n"}}]})
    with pytest.raises(InvalidInput) as err:  # the test driver boots no guest: it takes no userData
        systems.cimi_template(conn, conn.capabilities(), comps)
    assert err.value.message.startswith("template.componentDescriptors[0].machineTemplate: ")
    assert "userData" in err.value.message


def test_cimi_template_wires_no_member_to_another(conn):
    comps = systems.parse_template(TEMPLATE)
    with pytest.raises(InvalidInput) as err:
        systems.cimi_template(conn, conn.capabilities(), comps)
    assert "componentDescriptors[3].machineTemplate.volumes" in err.value.message
    assert "data" in err.value.message


def test_an_existing_volume_is_attached_once_and_never_deleted(conn):
    outside = conn.create_volume("outside-vol", 1024)
    template = {"componentDescriptors": [{"name": "db", "type": "machine", "machineTemplate": {
        "machine_config": "tiny", "volumes": ["outside-vol"]}}]}
    assert run(conn, template=template)["actions"] == ["create machine shop-db",
                                                       "attach volume outside-vol to machine shop-db"]
    assert run(conn, template=template)["changed"] is False
    gone = run(conn, template=template, state="absent")
    assert gone["actions"] == ["delete machine shop-db"]
    assert held(conn) == [] and conn.get_volume("outside-vol").attachedTo in (None, [])
    conn.delete_volume(outside.id)

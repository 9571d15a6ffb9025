"""The cimi connector on what siroccod stores and runs beyond machines, volumes and networks: credentials,
machine configurations and templates, system templates, systems (with their members), jobs, and meters over
a time window. Against the real ``siroccod serve`` of the contract suite (standins/siroccod.py), read back
through plain HTTP as the daemon serves it (not through the connector under test).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from standins.siroccod import STANDINS

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, NotFound
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
    MachineConfiguration,
    MachineTemplate,
    SystemTemplate,
)

pytestmark = pytest.mark.parametrize("standin", STANDINS, indirect=True, ids=lambda s: s.id)

STORED_OPERATIONS = {"credential.list", "credential.create", "credential.delete", "machine_config.create",
                     "machine_config.delete", "machine_template.list", "machine_template.create",
                     "machine_template.delete", "system.list", "system.create", "system.start", "system.stop",
                     "system.delete", "system_template.list", "system_template.create", "system_template.delete",
                     "job.list"}
UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


def new_key(comment="ci@sirocco"):
    private = ed25519.Ed25519PrivateKey.generate()
    line = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode("ascii")
    return "%s %s" % (line, comment)


@pytest.fixture
def http(standin):
    """The test user's session on the daemon, beside the connector: reads what the daemon holds."""
    return standin.cleaner.session


def names(items):
    return {item.name for item in items}


def ours(http, standin, key):
    """Names of the test's resources of a collection, as the daemon lists them."""
    cep = http.get(standin.daemon.cep, timeout=10).json()
    listed = http.get(cep[key]["href"], timeout=10).json().get(key, [])
    return {d["name"] for d in listed if (d.get("name") or "").startswith(standin.prefix)}


def test_credential_round_trip(connector, caps, standin, http):
    assert STORED_OPERATIONS <= caps.operations
    key, name = new_key(), standin.name("c")
    cred = connector.create_credential(name, key, user_name="ops", description="deploy key")
    assert (cred.name, cred.key, cred.userName, cred.description) == (name, key, "ops", "deploy key")
    held = http.get(cred.id, timeout=10).json()
    assert (held["name"], held["key"], held["userName"]) == (name, key, "ops") and "password" not in held
    assert connector.get_credential(name).id == cred.id and connector.get_credential(cred.id).name == name
    assert name in names(connector.list_credentials())
    with pytest.raises(Conflict):
        connector.create_credential(name, new_key())
    connector.delete_credential(cred.id)
    assert http.get(cred.id, timeout=10).status_code == 404
    assert name not in names(connector.list_credentials())
    with pytest.raises(NotFound):
        connector.delete_credential(cred.id)


@pytest.mark.parametrize("kwargs, attribute", [
    ({"key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP/e"}, "key"),  # truncated
    ({"key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"},
     "key"),
    ({"key": new_key(), "user_name": "Root!"}, "userName"),
    ({"key": new_key(), "description": 7}, "description"),
], ids=["truncated-key", "private-key", "user-name", "description"])
def test_credential_bad_input_creates_nothing(connector, standin, http, kwargs, attribute):
    with pytest.raises(InvalidInput) as err:
        connector.create_credential(standin.name("c"), **kwargs)
    assert err.value.attribute == attribute
    assert not ours(http, standin, "credentials")


def test_machine_config_and_template_round_trip(connector, caps, standin, http):
    config = connector.create_machine_config(MachineConfiguration(
        name=standin.name("cfg"), description="one cpu", cpu=1, memory=131072))
    assert (config.cpu, config.memory, config.description) == (1, 131072, "one cpu")
    assert connector.get_machine_config(config.name).id == config.id
    cred = connector.create_credential(standin.name("c"), new_key(), user_name="ops")
    image = connector.get_machine_image(standin.image)
    template = connector.create_machine_template(MachineTemplate(
        name=standin.name("t"), description="web", initialState=states.STARTED, userData="#cloud-config\n",
        machineConfig={"href": config.name}, machineImage={"href": image.name}, credential={"href": cred.id}))
    held = http.get(template.id, timeout=10).json()
    assert held["machineConfig"] == {"href": config.id} and held["machineImage"] == {"href": image.id}
    assert held["credential"] == {"href": cred.id} and held["initialState"] == states.STARTED
    assert template.machineConfig == {"href": config.id} and template.userData == "#cloud-config\n"
    assert connector.get_machine_template(template.name).id == template.id
    assert template.name in names(connector.list_machine_templates())
    with pytest.raises(Conflict):
        connector.create_machine_template(MachineTemplate(name=template.name, machineConfig={"href": config.id}))
    with pytest.raises(Conflict):
        connector.create_machine_config(MachineConfiguration(name=config.name, cpu=1, memory=131072))

    connector.delete_machine_template(template.id)
    connector.delete_machine_config(config.id)
    assert http.get(template.id, timeout=10).status_code == 404 and http.get(config.id, timeout=10).status_code == 404
    assert config.name not in names(connector.list_machine_configs())
    with pytest.raises(NotFound):
        connector.delete_machine_template(template.id)


def test_templates_bad_input_creates_nothing(connector, standin, http):
    config_id = connector.get_machine_config(standin.size).id
    unknown = config_id.rsplit("/", 1)[0] + "/" + UNKNOWN_UUID  # a URI of the endpoint's configs, of none
    cases = [
        (lambda: connector.create_machine_config(MachineConfiguration(name=standin.name("cfg"), cpu=0, memory=1)),
         "machineConfig.cpu"),
        (lambda: connector.create_machine_config(MachineConfiguration(cpu=1, memory=1024)), "name"),
        (lambda: connector.create_machine_template(MachineTemplate(
            name=standin.name("t"), machineConfig={"href": standin.name("no-such-config")})),
         "machineTemplate.machineConfig"),
        (lambda: connector.create_machine_template(MachineTemplate(
            name=standin.name("t"), machineConfig={"href": config_id}, credential={"href": "no-such-key"})),
         "machineTemplate.credential"),
        (lambda: connector.create_machine_template(MachineTemplate(
            name=standin.name("t"), machineConfig={"href": unknown})), "machineConfig.href"),  # the daemon's 400
        (lambda: connector.create_system_template(SystemTemplate(name=standin.name("st"), componentDescriptors=[
            {"type": "Machine", "machineTemplate": {"href": "no-such-template"}}])),
         "systemTemplate.componentDescriptors[0].machineTemplate"),
    ]
    for make, attribute in cases:
        with pytest.raises(InvalidInput) as err:
            make()
        assert err.value.attribute.endswith(attribute), (attribute, err.value)
    for key in ("machineConfigs", "machineTemplates", "systemTemplates"):
        assert not ours(http, standin, key), key


def node_template(standin, quantity=2):
    """A SystemTemplate by value: ``quantity`` machines of the stand-in's small size and image (by name)."""
    return SystemTemplate(componentDescriptors=[
        {"type": "Machine", "quantity": quantity, "name": "node",
         "machineTemplate": {"machineConfig": {"href": standin.size}, "machineImage": {"href": standin.image}}}])


def test_system_from_a_template_by_value(connector, standin, http):
    name = standin.name("s")
    system = connector.create_system(name, node_template(standin), description="two nodes",
                                     initial_state=states.STARTED)
    assert system.name == name and system.state == states.STARTED and len(system.machines) == 2
    members = [http.get(ref["href"], timeout=10).json() for ref in system.machines]
    assert sorted(m["name"] for m in members) == ["node1", "node2"]  # DSP0263 Table 14, quantity
    assert {m["state"] for m in members} == {states.STARTED}
    assert connector.get_system(name).id == system.id and name in names(connector.list_systems())
    with pytest.raises(Conflict):
        connector.create_system(name, node_template(standin, 1))

    # the create Job and its nested Jobs, one a member, as list_jobs gives them; each an add (Table 46): its
    # targetResource the collection, the new resource among its affectedResources
    jobs = {job.id: job for job in connector.list_jobs()}
    [created] = [j for j in jobs.values() if {"href": system.id} in (j.affectedResources or [])
                 and j.action.endswith("/create")]
    nested = {j.id for j in jobs.values() if j.parentJob == {"href": created.id}}
    assert created.state == "SUCCESS" and len(nested) == 2
    assert {ref["href"] for ref in created.nestedJobs} == nested
    machines = {ref["href"] for ref in system.machines}
    assert [len({ref["href"] for ref in jobs[i].affectedResources} & machines) for i in nested] == [1, 1]
    assert {ref["href"] for i in nested for ref in jobs[i].affectedResources} >= machines

    system = connector.stop_system(system.id, force=True)
    assert system.state == states.STOPPED
    assert {http.get(ref["href"], timeout=10).json()["state"] for ref in system.machines} == {states.STOPPED}
    with pytest.raises(Conflict):  # nothing left to stop
        connector.stop_system(system.id)
    connector.delete_system(system.id)
    for ref in system.machines:
        assert http.get(ref["href"], timeout=10).status_code == 404
    with pytest.raises(NotFound):
        connector.get_system(system.id)
    assert not ours(http, standin, "machines")


def test_system_from_a_stored_template(connector, standin, http):
    config = connector.get_machine_config(standin.size)
    machine_template = connector.create_machine_template(MachineTemplate(
        name=standin.name("t"), machineConfig={"href": config.id}))
    template = connector.create_system_template(SystemTemplate(name=standin.name("st"), componentDescriptors=[
        {"type": "Machine", "name": "solo", "machineTemplate": {"href": machine_template.name}}]))
    held = http.get(template.id, timeout=10).json()
    assert held["componentDescriptors"][0]["machineTemplate"] == {"href": machine_template.id}
    assert connector.get_system_template(template.name).id == template.id
    assert template.name in names(connector.list_system_templates())

    name = standin.name("s")
    system = connector.create_system(name, template.name)  # members as their template says: stopped
    assert system.state == states.STOPPED and len(system.machines) == 1
    system = connector.start_system(system.id)
    assert system.state == states.STARTED
    connector.delete_system(system.id)
    assert http.get(system.machines[0]["href"], timeout=10).status_code == 404
    connector.delete_system_template(template.id)
    connector.delete_machine_template(machine_template.id)
    assert template.name not in names(connector.list_system_templates())


def test_system_bad_input_creates_nothing(connector, standin, http):
    config_id = connector.get_machine_config(standin.size).id
    unknown = config_id.rsplit("/", 1)[0] + "/" + UNKNOWN_UUID
    jobs_before = len(connector.list_jobs())
    bad = SystemTemplate(componentDescriptors=[{"type": "Machine",
                                                "machineTemplate": {"machineConfig": {"href": unknown}}}])
    disk = SystemTemplate(componentDescriptors=[{"type": "Disk", "name": "d"}])
    cases = [
        (lambda: connector.create_system(standin.name("s"), standin.name("no-such-template")), "systemTemplate"),
        (lambda: connector.create_system(standin.name("s"), node_template(standin), initial_state="RUNNING"),
         "initialState"),
        (lambda: connector.create_system(standin.name("s"), bad), "machineConfig.href"),  # the daemon's 400
        (lambda: connector.create_system(standin.name("s"), disk), "type"),  # the daemon's 400
        (lambda: connector.create_system("", node_template(standin)), "name"),
    ]
    for make, attribute in cases:
        with pytest.raises(InvalidInput) as err:
            make()
        assert err.value.attribute.endswith(attribute), (attribute, err.value)
    assert not ours(http, standin, "systems") and not ours(http, standin, "machines")
    assert len(connector.list_jobs()) == jobs_before


def test_meters_over_a_time_window(connector, machine, standin, http):
    m = machine(states.STARTED)
    now = datetime.now(UTC)
    latest = connector.list_meters(m.id)
    assert latest and all(len(meter.samples) == 1 for meter in latest)
    window = connector.list_meters(m.id, start=now - timedelta(hours=1), end=now + timedelta(minutes=5))
    for meter in window:
        # a Meter's samples are a collection (5.17.3.1): expanded here
        held = http.get(meter.id, params={"$expand": "samples"}, timeout=10).json()["samples"]["samples"]
        kept = [s.timestamp for s in meter.samples]
        assert kept and set(kept) <= {s["timestamp"] for s in held}
    assert all(not meter.samples for meter in connector.list_meters(m.id, start=now + timedelta(hours=1)))
    assert all(not meter.samples for meter in connector.list_meters(m.id, end=now - timedelta(hours=1)))
    for start, end, attribute in ((now, now - timedelta(seconds=1), "start"),
                                  (datetime.now(), None, "start"), (None, "tomorrow", "end")):  # noqa: DTZ005
        with pytest.raises(InvalidInput) as err:
            connector.list_meters(m.id, start=start, end=end)
        assert err.value.attribute == attribute

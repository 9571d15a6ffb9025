"""Issue 16 clauses 6-9 against the embedded default: a Network's initial state (5.16.2.1) and DSP0263 2.0.0's
NetworkTemplate (Table 31, NetworkConfiguration only a declared extension), Credentials made through a
CredentialTemplate (Tables 22-25, 5.14.10.1) with passwords never served, cpuSpeed (7.1, Tables 16 and 20)."""

from __future__ import annotations

import pytest
from daemon_helpers import CIMI, assert_cimi_error

CAPABILITY = CIMI + "capability/"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHUqsLTMZRA7TWgYv7/3XdjByah9BL/NJmihXK7XDOg alice@example"
SECRET = "conformance-s3cret-pw"


def metadata(api, type_name):
    r = api.get(api.cep()["resourceMetadata"]["href"] + "/" + type_name)
    assert r.status_code == 200, r.json
    return r.json


def capability(api, type_name, name):
    found = {c["name"]: c for c in metadata(api, type_name).get("capabilities", [])}
    assert name in found, sorted(found)
    assert found[name]["uri"] == CAPABILITY + type_name + "/" + name
    return found[name]["value"]


def counts(api, *keys):
    return {key: api.get(api.collection(key)).json["count"] for key in keys}


def new_network(api, template, name="net", **extra):
    body = dict({"resourceURI": CIMI + "NetworkCreate", "name": name, "networkTemplate": template}, **extra)
    r = api.post(api.collection("networks"), body)
    assert r.status_code == 202, r.json
    assert api.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    return api.get(r.headers["Location"]).json


def refused(api, url, body, attribute, *keys):
    """``body`` POSTed to ``url`` is a 400 naming ``attribute``, and no collection of ``keys`` grew."""
    before = counts(api, *keys)
    error = assert_cimi_error(api.post(url, body), 400)
    assert attribute in error["statusMessage"], error
    assert counts(api, *keys) == before
    return error


# -- 6. a Network's initial state (5.16.2.1) -----------------------------------------------------------------
def test_5_16_2_1_network_default_initial_state_advertised(alice):
    default = capability(alice, "Network", "DefaultInitialState")
    assert default == "STARTED"  # the hosts' networks run once made
    assert capability(alice, "Network", "InitialStates") == ["STARTED"]
    net = new_network(alice, {}, name="default-state")  # no initialState: the advertised default
    assert net["state"] == default
    alice.remove(net)


def test_5_16_2_1_network_initial_state_honoured_or_refused(alice):
    net = new_network(alice, {"initialState": "STARTED"}, name="started")
    assert net["state"] == "STARTED"
    alice.remove(net)
    # a state the hosts cannot make a network in: creation fails (5.16.2.1), before anything is recorded
    refused(alice, alice.collection("networks"), {"name": "stopped", "networkTemplate": {"initialState": "STOPPED"}},
            "initialState", "networks", "jobs")
    refused(alice, alice.collection("networks"), {"name": "x", "networkTemplate": {"initialState": "PAUSED"}},
            "initialState", "networks", "jobs")


# -- 7. DSP0263 2.0.0's NetworkTemplate (Table 31) -----------------------------------------------------------
def test_table31_spec_shaped_network_template_accepted(alice):
    assert capability(alice, "Network", "NetworkTemplateByValue") is True
    r = alice.post(alice.collection("networkTemplates"), {
        "resourceURI": CIMI + "NetworkTemplate", "name": "spec-nt", "description": "Table 31",
        "initialState": "STARTED", "segments": [], "services": [], "subnetworks": [], "meterTemplates": []})
    assert r.status_code == 201, r.json  # no networkConfig: DSP0263 2.0.0 has none
    template = alice.get(r.headers["Location"]).json
    assert template["initialState"] == "STARTED" and "networkConfig" not in template
    by_ref = new_network(alice, {"href": template["id"]}, name="by-ref", description="from a template")
    assert by_ref["state"] == "STARTED" and by_ref["description"] == "from a template"
    by_value = new_network(alice, {"initialState": "STARTED"}, name="by-value")
    assert by_value["state"] == "STARTED"
    for doc in (by_ref, by_value, template):
        alice.remove(doc)


def test_table31_network_config_is_a_declared_extension(alice):
    """cidr and dhcp (what the hosts' connectors set up) travel in networkConfig, a Sirocco extension: so
    declared in the ResourceMetadata (namespace and type: Table 6), and still taken by reference or by value."""
    entries = {a["name"]: a for a in metadata(alice, "NetworkTemplate")["attributes"]}
    assert entries["networkConfig"]["namespace"].startswith("urn:sirocco") and "type" in entries["networkConfig"]
    assert "namespace" not in entries["initialState"] and "segments" in entries
    network_entries = {a["name"]: a for a in metadata(alice, "Network")["attributes"]}
    assert all("namespace" in network_entries[n] for n in ("cidr", "dhcp", "networkType", "mtu", "classOfService"))
    assert "namespace" not in network_entries["state"]
    config = alice.post(alice.collection("networkConfigs"), {"name": "nc", "cidr": "10.61.0.0/24", "dhcp": True})
    assert config.status_code == 201, config.json
    net = new_network(alice, {"initialState": "STARTED", "networkConfig": {"href": config.json["id"]}}, name="cidr")
    assert (net["cidr"], net["dhcp"], net["state"]) == ("10.61.0.0/24", True, "STARTED")
    legacy = new_network(alice, {"networkConfig": {"cidr": "10.62.0.0/24"}}, name="legacy")  # as 1.x clients send
    assert legacy["cidr"] == "10.62.0.0/24" and legacy["state"] == "STARTED"
    for doc in (net, legacy, config.json):
        alice.remove(doc)


def test_table31_unknown_attribute_and_wrong_reference_refused(alice):
    networks, templates = alice.collection("networks"), alice.collection("networkTemplates")
    refused(alice, networks, {"name": "n", "networkTemplate": {"forwardingGroup": {"href": "x"}}},
            "forwardingGroup", "networks", "jobs")  # CIMI 1.x's, gone from Table 31
    refused(alice, networks, {"name": "n", "networkTemplate": {"href": alice.config_href("tiny")}},
            "networkTemplate.href", "networks", "jobs")  # a MachineConfiguration is no NetworkTemplate
    refused(alice, networks, {"name": "n", "networkTemplate": {"networkConfig": {"cidr": "10.0.0.1/24"}}},
            "cidr", "networks", "jobs")
    # resources siroccod has none of: refused, naming the attribute, rather than ignored
    for attribute in ("segments", "services", "subnetworks", "segmentTemplates"):
        refused(alice, templates, {"name": "nt", attribute: [{"href": templates + "/nope"}]}, attribute,
                "networkTemplates")
        refused(alice, networks, {"name": "n", "networkTemplate": {attribute: [{"href": templates + "/nope"}]}},
                attribute, "networks", "jobs")
    refused(alice, templates, {"name": "nt", "segments": [{"protocol": "IPv4"}]}, "segments", "networkTemplates")


def test_5_13_system_network_component_from_a_spec_shaped_template(alice):
    tpl = alice.post(alice.collection("systemTemplates"), {"name": "net-sys", "componentDescriptors": [
        {"type": CIMI + "Network", "name": "lan", "networkTemplate": {"initialState": "STARTED"}}]})
    assert tpl.status_code == 201, tpl.json
    r = alice.post(alice.collection("systems"), {"name": "ns", "systemTemplate": {"href": tpl.json["id"]}})
    assert r.status_code == 202, r.json
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    members = [n for n in alice.items("networks") if n["name"] == "lan"]
    assert [n["state"] for n in members] == ["STARTED"]
    alice.remove(alice.get(r.headers["Location"]).json)
    alice.remove(tpl.json)


# -- 8. Credentials and CredentialTemplates (Tables 22-25, 5.14.10.1) ----------------------------------------
def sealed_password(app, credential):
    """The password the host would get for ``credential`` (opened from the CMDB, as the worker does)."""
    from siroccod.store import Resource
    daemon = app.extensions["siroccod"]
    with daemon.store.read() as session:
        machine = Resource(uuid="m", type="Machine", name="m", doc={},
                           private={"spec": {"credential": credential["id"].rsplit("/", 1)[1]}})
        return daemon.worker.machine_spec(session, machine).credential.get("password")


def test_table25_credential_templates_collection_in_the_cloud_entry_point(alice, bob):
    assert alice.cep()["credentialTemplates"]["href"].endswith("/credentialTemplates")
    r = alice.post(alice.collection("credentialTemplates"), {
        "resourceURI": CIMI + "CredentialTemplate", "name": "ct", "userName": "debian", "password": SECRET,
        "key": KEY, "parameters": {"shell": "/bin/sh"}})
    assert r.status_code == 201, r.json
    assert SECRET not in r.get_data(as_text=True)
    template = alice.get(r.headers["Location"]).json
    assert (template["userName"], template["key"], template["parameters"]) == ("debian", KEY, {"shell": "/bin/sh"})
    assert "password" not in template
    # CRUD, and a tenant's own (a template may hold a password)
    assert alice.put(template["id"], {"description": "edited", "password": "another-" + SECRET}).status_code == 200
    assert alice.get(template["id"]).json["description"] == "edited"
    assert template["id"] not in [t["id"] for t in bob.items("credentialTemplates")]
    assert_cimi_error(bob.get(template["id"]), 404)
    for url in (alice.collection("credentialTemplates"), alice.collection("credentialTemplates") + "?$select=password",
                template["id"] + "?$select=password"):
        text = alice.get(url).get_data(as_text=True)
        assert SECRET not in text and '"password"' not in text
    alice.remove(template)


def test_table25_credential_created_from_a_credential_template(app, alice, bob):
    template = alice.post(alice.collection("credentialTemplates"), {
        "name": "ct-ref", "userName": "debian", "password": SECRET, "key": KEY, "parameters": {"a": "1"}}).json
    r = alice.post(alice.collection("credentials"), {
        "resourceURI": CIMI + "CredentialCreate", "name": "from-ref", "description": "by reference",
        "properties": {"p": "q"}, "credentialTemplate": {"href": template["id"], "userName": "admin"}})
    assert r.status_code == 201, r.json
    assert SECRET not in r.get_data(as_text=True)
    cred = alice.get(r.headers["Location"]).json
    assert cred["resourceURI"] == CIMI + "Credential"
    assert (cred["name"], cred["description"], cred["properties"]) == ("from-ref", "by reference", {"p": "q"})
    assert (cred["userName"], cred["key"], cred["parameters"]) == ("admin", KEY, {"a": "1"})  # the override wins
    assert "password" not in cred and "username" not in cred
    assert sealed_password(app, cred) == SECRET  # the template's password, kept for the host
    # an override of null erases the template's value (4.2.1.1)
    erased = alice.post(alice.collection("credentials"), {
        "name": "no-pw", "credentialTemplate": {"href": template["id"], "password": None, "parameters": None}}).json
    assert "parameters" not in erased and sealed_password(app, erased) is None
    # another tenant cannot use it: nothing made
    refused(bob, bob.collection("credentials"), {"name": "stolen", "credentialTemplate": {"href": template["id"]}},
            "credentialTemplate.href", "credentials")
    for doc in (cred, erased, template):
        alice.remove(doc)


def test_table25_credential_created_from_a_credential_template_by_value(app, alice):
    assert capability(alice, "Credential", "CredentialTemplateByValue") is True
    r = alice.post(alice.collection("credentials"), {
        "resourceURI": CIMI + "CredentialCreate", "name": "from-value",
        "credentialTemplate": {"userName": "debian", "password": SECRET, "key": KEY}})
    assert r.status_code == 201, r.json
    cred = alice.get(r.headers["Location"]).json
    assert (cred["userName"], cred["key"]) == ("debian", KEY) and "password" not in cred
    assert sealed_password(app, cred) == SECRET
    assert not [t for t in alice.items("credentialTemplates") if t.get("userName") == "debian"]  # no template kept
    alice.remove(cred)


def test_table23_credential_given_directly_still_taken_and_user_name_served(app, alice):
    r = alice.post(alice.collection("credentials"), {"resourceURI": CIMI + "Credential", "name": "direct",
                                                     "userName": "debian", "password": SECRET, "key": KEY})
    assert r.status_code == 201, r.json
    cred = alice.get(r.headers["Location"]).json
    assert cred["userName"] == "debian" and "username" not in cred and "password" not in cred
    assert sealed_password(app, cred) == SECRET
    listed = alice.get(alice.collection("credentials") + "?$filter=name='direct'").json["credentials"]
    assert [c["userName"] for c in listed] == ["debian"]
    assert {a["name"] for a in metadata(alice, "Credential")["attributes"]} >= {"userName", "key", "parameters"}
    alice.remove(cred)


def test_5_14_10_1_bad_credential_creations_refused(alice):
    creds, templates = alice.collection("credentials"), alice.collection("credentialTemplates")
    refused(alice, creds, {"name": "c", "credentialTemplate": {"userName": "u", "username": "u"}}, "username",
            "credentials")
    refused(alice, creds, {"name": "c", "credentialTemplate": {"href": alice.config_href("tiny")}},
            "credentialTemplate.href", "credentials")  # a MachineConfiguration is no CredentialTemplate
    refused(alice, creds, {"resourceURI": CIMI + "CredentialCreate", "name": "c", "userName": "u"}, "userName",
            "credentials")
    refused(alice, creds, {"resourceURI": CIMI + "Credential", "name": "c", "credentialTemplate": {}},
            "credentialTemplate", "credentials")
    refused(alice, creds, {"name": "c", "credentialTemplate": {"key": "not a key"}}, "key", "credentials")
    refused(alice, creds, {"name": "c", "credentialTemplate": {"parameters": {"password": SECRET}}}, "parameters",
            "credentials")
    refused(alice, templates, {"name": "t", "parameters": {"password": SECRET}}, "parameters", "credentialTemplates")
    refused(alice, templates, {"name": "t", "key": "ssh-rsa nope"}, "key", "credentialTemplates")


@pytest.mark.parametrize("kind", ["Credential", "CredentialTemplate"])
def test_table25_password_is_write_only_in_openapi_and_metadata(alice, kind):
    doc = alice.get("/cimi/openapi.json").json
    assert "password" not in doc["components"]["schemas"][kind]["properties"]
    assert "password" in doc["components"]["schemas"][kind + "Input"]["properties"]
    assert "password" not in {a["name"] for a in metadata(alice, kind)["attributes"]}
    if kind == "Credential":  # a POST takes a CredentialCreate or, as before, the Credential itself
        body = doc["paths"]["/cimi/credentials"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        refs = [s["$ref"] for s in doc["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["anyOf"]]
        assert refs == ["#/components/schemas/CredentialCreateInput", "#/components/schemas/CredentialInput"]


# -- 9. cpuSpeed (7.1, Tables 16 and 20) -----------------------------------------------------------------------
def host_mhz(admin):
    """Each simulated host's CPU speed, as its libvirt test driver reports it (getInfo()[3])."""
    return {h["name"]: h["cpuMHz"] for h in admin.get("/admin/hosts").json["hosts"]}


def test_7_1_machine_config_reports_cpu_speed(admin, alice):
    """Every host offers the stock sizes: each says the slowest host's speed (what a machine of it gets, at least)."""
    slowest = min(host_mhz(admin).values())
    configs = alice.items("machineConfigs")
    assert {c["name"] for c in configs} >= {"tiny", "small"}
    assert all(c["cpuSpeed"] == slowest for c in configs)
    entry = {a["name"]: a for a in metadata(alice, "MachineConfiguration")["attributes"]}["cpuSpeed"]
    assert "namespace" not in entry  # DSP0263's own (Table 20)


@pytest.mark.parametrize("host", ["sim2", "sim3"])
def test_7_1_machine_reports_cpu_speed(admin, alice, host):
    """A machine says the speed of the host it runs on, whatever its configuration said."""
    machine = alice.create_machine(name="speedy", properties={"sirocco.host": host})
    assert machine["cpuSpeed"] == host_mhz(admin)[host]
    assert alice.get(machine["id"] + "?$select=cpuSpeed").json["cpuSpeed"] == host_mhz(admin)[host]
    alice.remove(machine)

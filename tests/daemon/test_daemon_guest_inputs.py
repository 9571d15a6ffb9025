"""A Credential (SSH public key and user name) and userData reach the guest through the host's connector
(issue 13), and what cannot reach it is refused before anything is made (HTTP 400, no job, no row).

The embedded default's simulated hosts (libvirt's test driver) take neither; here one of them, sim2, is made
to say it takes both (its capabilities, with a userData limit) and to record the MachineSpec its connector
receives, which it then makes without them (no guest boots on the test driver) and reports as a connector
that put them into a guest does: the credential's user, the guest's SSH host key, an address with the
forwarded SSH port. The same on a real QEMU host, through libvirt, is test_real_qemu_guest_inputs below.
"""

from __future__ import annotations

import dataclasses
import email
import io
import logging
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pycdlib
import pytest
from daemon_helpers import ADMIN_PASSWORD, CIMI, PASSWORDS, Api, add_users, assert_cimi_error, make_app

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import NetworkInterface
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import HOST_KEY_PROPERTY, USER_PROPERTY

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHUqsLTMZRA7TWgYv7/3XdjByah9BL/NJmihXK7XDOg alice@example"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtQhL8nqS6ApjVYVBrYy8i2kxZgP2jbhcv8fUMTNCLp"
RSA_PRIVATE = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----"
LIMIT = 200  # bytes of userData sim2 says it takes
SECRET = "credential-pw-never-shown-7f3a"


class GuestHost:
    """sim2 made to take guest inputs: what its connector was given, machine by machine."""

    def __init__(self, handle):
        self.handle = handle
        self.specs = []
        real_caps = handle.capabilities()
        handle._caps = dataclasses.replace(real_caps, guest_inputs=frozenset({"userData", "credential"}),
                                           user_data_limit=LIMIT)
        self._create = handle.create_machine
        handle.create_machine = self.create_machine

    def create_machine(self, spec):
        self.specs.append(dataclasses.replace(spec, credential=dict(spec.credential or {}) or None))
        machine = self._create(dataclasses.replace(spec, credential=None, user_data=None))
        if spec.credential:  # what a connector that made a seed reports
            machine.properties = dict(machine.properties or {}, **{USER_PROPERTY: spec.credential.get("username")
                                                                   or "debian", HOST_KEY_PROPERTY: HOST_KEY})
            machine.interfaces = [NetworkInterface(macAddress="52:54:00:aa:bb:cc", networkType="user", addresses=[
                {"ip": "127.0.0.1", "sshPort": 42201, "allocation": "forwarded"}])]
        return machine


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("guest-inputs"))
    service = app.extensions["siroccod"]
    admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
    add_users(admin)
    [sim2] = [h for h in service.pool.handles.values() if h.name == "sim2"]
    host = GuestHost(sim2)
    yield app, service, host
    service.close()


@pytest.fixture(scope="module")
def alice(daemon):
    return Api(daemon[0].test_client(), "alice", PASSWORDS["alice"])


def _count(api):
    return len(api.items("machines")), len(api.items("jobs")), len(api.items("credentials"))


def _create(api, template, properties=None, name="guest"):
    body = {"resourceURI": CIMI + "MachineCreate", "name": name,
            "machineTemplate": dict({"machineConfig": {"href": api.config_href("tiny")}, "initialState": "STOPPED"},
                                    **template)}
    if properties:
        body["properties"] = properties
    return api.post(api.collection("machines"), body)


def _refused(api, response, attribute, words):
    error = assert_cimi_error(response, 400)
    assert error["properties"]["attribute"] == attribute, error
    assert words in error["statusMessage"], error
    return error


def _machine_capabilities(api):
    """The Sirocco capabilities of the Machine ResourceMetadata: name -> value."""
    meta = api.get(api.cep()["resourceMetadata"]["href"] + "/Machine").json
    return {c["name"]: c["value"] for c in meta.get("capabilities", [])}


def test_the_machine_metadata_publishes_what_the_hosts_take(alice):
    """The union over the hosts (only sim2 takes them here) and the largest userData limit: what a CIMI
    client (the cimi connector) advertises as its guest inputs."""
    published = _machine_capabilities(alice)
    assert (published["guestInputs"], published["userDataLimit"]) == ("credential userData", str(LIMIT))


# -- Credential: userName, a public key that is one --------------------------------------------------------
def test_a_credential_has_a_user_name_and_its_key_normalised(alice):
    r = alice.post(alice.collection("credentials"), {"name": "mine", "userName": "debian", "key": "  %s\n" % KEY})
    assert r.status_code == 201, r.json
    assert r.json["userName"] == "debian" and r.json["key"] == KEY  # the public key may be shown
    assert alice.get(r.json["id"]).json["userName"] == "debian"
    meta = next(m for m in alice.get(alice.cep()["resourceMetadata"]["href"]).json["resourceMetadatas"]
                if m["typeURI"] == CIMI + "Credential")
    assert "userName" in [a["name"] for a in meta["attributes"]]
    # the attribute before DSP0263's name is refused, naming it
    _refused(alice, alice.post(alice.collection("credentials"), {"name": "old", "username": "debian", "key": KEY}),
             "username", "unknown attribute 'username'")
    alice.remove(r.json)


@pytest.mark.parametrize("key, words", [
    ("ssh-ed25519 not-base64!", "not base64"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not an OpenSSH public key"),
    ("ssh-rsa " + KEY.split()[1], "does not match its type ssh-rsa"),
    (RSA_PRIVATE, "not an OpenSSH public key"),
    (KEY + "\n" + KEY, "not an OpenSSH public key"),
    ("", "an SSH public key is required"),
])
def test_a_credential_with_a_malformed_key_is_refused(alice, key, words):
    before = _count(alice)
    _refused(alice, alice.post(alice.collection("credentials"), {"name": "bad", "userName": "u", "key": key}),
             "key", words)
    assert _count(alice) == before


def test_a_credential_changed_to_a_malformed_key_is_refused_and_kept(alice):
    cred = alice.post(alice.collection("credentials"), {"name": "edit", "userName": "u", "key": KEY}).json
    _refused(alice, alice.put(cred["id"], {"key": "ssh-ed25519 AAAA"}), "key", "Credential.key")
    assert alice.get(cred["id"]).json["key"] == KEY
    r = alice.put(cred["id"], {"userName": "admin2"})
    assert r.status_code == 200 and r.json["userName"] == "admin2"
    alice.remove(cred)


# -- machines: refused before a job ------------------------------------------------------------------------
def test_a_credential_without_a_key_is_refused(alice):
    by_ref = alice.post(alice.collection("credentials"), {"name": "pw-only", "userName": "u",
                                                          "password": SECRET}).json
    before = _count(alice)
    for credential in ({"href": by_ref["id"]}, {"userName": "u"}, {"userName": "u", "password": SECRET}):
        error = _refused(alice, _create(alice, {"credential": credential}), "credential.key",
                         "a machine's credential needs an SSH public key")
        assert SECRET not in str(error)
    assert _count(alice) == before
    alice.remove(by_ref)


@pytest.mark.parametrize("credential, attribute, words", [
    ({"userName": "u", "key": "ssh-ed25519 AAAAC3Nz"}, "credential.key", "credential.key"),
    ({"userName": "Not Valid", "key": KEY}, "credential.userName", "is not a user name a guest OS takes"),
    ({"username": "u", "key": KEY}, "username", "unknown attribute 'username'"),
])
def test_a_credential_by_value_is_checked(alice, credential, attribute, words):
    before = _count(alice)
    _refused(alice, _create(alice, {"credential": credential}), attribute, words)
    assert _count(alice) == before


def test_a_credential_recorded_before_the_checks_is_checked_when_a_machine_uses_it(daemon, alice):
    """A row kept by an earlier version (``username``, a key nobody checked) still reads, and is checked
    when a machine would use it."""
    from sqlalchemy import select

    from siroccod.store import Resource, User, new_uuid, utcnow
    service = daemon[1]
    uuid, now = new_uuid(), utcnow()
    with service.store.transaction() as session:
        tenant = session.scalar(select(User.tenant_id).where(User.name == "alice"))
        session.add(Resource(uuid=uuid, type="Credential", name="legacy", tenant_id=tenant,
                             doc={"name": "legacy", "username": "u", "key": "ssh-ed25519 AAAA"}, private={},
                             created=now, updated=now))
    href = alice.collection("credentials") + "/" + uuid
    assert alice.get(href).json["key"] == "ssh-ed25519 AAAA"
    before = _count(alice)
    _refused(alice, _create(alice, {"credential": {"href": href}}), "credential.key", "credential.key")
    assert _count(alice) == before
    # the user name it kept is read: with a good key, the host gets it
    r = alice.put(href, {"key": KEY})
    assert r.status_code == 200, r.json
    made = alice.create_machine("legacy-user", credential={"href": href})
    assert daemon[2].specs[-1].credential == {"username": "u", "key": KEY}
    alice.remove(made)
    alice.remove(alice.get(href).json)


def test_user_data_over_the_hosts_limit_is_refused(alice):
    before = _count(alice)
    big = "#cloud-config\n" + "#" * LIMIT
    error = _refused(alice, _create(alice, {"userData": big}), "userData",
                     "no host of this daemon can put userData into a guest")
    assert "userData is %d bytes; host sim2 takes at most %d" % (len(big.encode()), LIMIT) in error["statusMessage"]
    _refused(alice, _create(alice, {"userData": big}, {"sirocco.host": "sim2"}), "userData",
             "host sim2 takes at most %d" % LIMIT)
    # the model's own bound holds on every host: 65536 characters
    _refused(alice, _create(alice, {"userData": "x" * 65537}), "MachineCreate.machineTemplate.userData", "userData")
    assert _count(alice) == before


@pytest.mark.parametrize("template, attribute", [
    ({"userData": "#cloud-config\n"}, "userData"),
    ({"credential": {"userName": "u", "key": KEY}}, "credential"),
])
def test_a_host_that_cannot_take_them_is_refused_when_pinned(alice, template, attribute):
    before = _count(alice)
    _refused(alice, _create(alice, template, {"sirocco.host": "sim1"}), attribute,
             "host sim1 cannot put %s into a guest" % attribute)
    assert _count(alice) == before


def test_a_password_is_refused_on_the_hosts_and_never_shown(alice, caplog):
    cred = alice.post(alice.collection("credentials"), {"name": "both", "userName": "u", "key": KEY,
                                                        "password": SECRET})
    assert cred.status_code == 201 and SECRET not in cred.get_data(as_text=True)
    before = _count(alice)
    with caplog.at_level(logging.DEBUG):
        for credential in ({"href": cred.json["id"]}, {"userName": "u", "key": KEY, "password": SECRET}):
            r = _create(alice, {"credential": credential})
            _refused(alice, r, "credential.password", "takes no password credential")
            assert SECRET not in r.get_data(as_text=True)
    assert SECRET not in caplog.text
    assert _count(alice) == before
    alice.remove(cred.json)


# -- placement and the pass-down -----------------------------------------------------------------------------
def test_only_a_host_that_can_take_them_is_chosen_and_its_connector_gets_them(daemon, alice, caplog):
    _app, service, host = daemon
    cred = alice.post(alice.collection("credentials"), {"name": "key", "userName": "debian", "key": KEY + "\n",
                                                        "password": SECRET}).json
    user_data = "#cloud-config\nwrite_files: [{path: /etc/marker, content: ok}]\n"
    host.specs.clear()
    with caplog.at_level(logging.DEBUG):
        r = _create(alice, {"credential": {"userName": "debian", "key": KEY}, "userData": user_data}, name="placed")
        assert r.status_code == 202, r.json
        job = alice.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS", job
    machine = alice.get(r.headers["Location"]).json
    assert machine["properties"][USER_PROPERTY] == "debian"  # what the connector reported reaches clients
    assert machine["properties"][HOST_KEY_PROPERTY] == HOST_KEY
    assert alice.members(machine, "interfaces")[0]["addresses"] == [{"ip": "127.0.0.1", "sshPort": 42201,
                                                                     "allocation": "forwarded"}]
    [spec] = host.specs  # sim1 and sim3 take neither: sim2, the only one that does, was chosen
    assert spec.credential == {"username": "debian", "key": KEY} and spec.user_data == user_data
    with service.store.read() as session:
        from siroccod.store import Resource
        row = session.get(Resource, machine["id"].rsplit("/", 1)[1])
        assert row.host.name == "sim2"
        assert "guest" not in row.private["spec"] and "allowed" not in row.private["spec"]
    # the user's own properties are theirs to change; what the connector reported stays
    edited = alice.put(machine["id"], {"properties": {"role": "web", USER_PROPERTY: "mallory"}})
    assert edited.status_code == 200, edited.json
    assert edited.json["properties"] == {"role": "web", USER_PROPERTY: "debian", HOST_KEY_PROPERTY: HOST_KEY}
    # by reference: the Credential's userName and key (one with a password is refused: see above)
    key_only = alice.post(alice.collection("credentials"), {"name": "key-only", "userName": "admin2",
                                                            "key": KEY}).json
    made = alice.create_machine("by-ref", credential={"href": key_only["id"]})
    assert host.specs[-1].credential == {"username": "admin2", "key": KEY} and host.specs[-1].user_data is None
    assert made["properties"][USER_PROPERTY] == "admin2"
    for doc in (machine, made, job):
        assert SECRET not in str(doc)
    assert SECRET not in caplog.text
    for doc in (machine, made):
        alice.remove(alice.get(doc["id"]).json)
    for doc in (cred, key_only):
        alice.remove(doc)


def test_a_system_component_with_a_credential_goes_to_a_host_that_takes_it(daemon, alice):
    _app, _service, host = daemon
    host.specs.clear()
    body = {"resourceURI": CIMI + "SystemCreate", "name": "sys", "systemTemplate": {"componentDescriptors": [
        {"type": CIMI + "Machine", "name": "web", "machineTemplate": {
            "machineConfig": {"href": alice.config_href("tiny")}, "initialState": "STOPPED",
            "credential": {"userName": "web", "key": KEY}, "userData": "#!/bin/sh\necho hi\n"}}]}}
    r = alice.post(alice.collection("systems"), body)
    assert r.status_code == 202, r.json
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    expected = [({"username": "web", "key": KEY}, "#!/bin/sh\necho hi\n")]
    assert [(s.credential, s.user_data) for s in host.specs] == expected
    system = alice.get(r.headers["Location"]).json
    for m in alice.members(system, "machines"):
        alice.remove(alice.get(m["id"]).json)
    alice.remove(alice.get(system["id"]).json)


def test_without_a_capable_host_among_those_allowed_it_is_refused(daemon, alice):
    """Every candidate refuses: none takes a credential (sim2 made unable for this test)."""
    _app, _service, host = daemon
    caps = host.handle._caps
    host.handle._caps = dataclasses.replace(caps, guest_inputs=frozenset({"userData"}))
    try:
        before = _count(alice)
        _refused(alice, _create(alice, {"credential": {"userName": "u", "key": KEY}}), "credential",
                 "no host of this daemon can put credential into a guest")
        r = _create(alice, {"userData": "#cloud-config\n"}, name="ud-only")  # userData still goes to sim2
        assert r.status_code == 202 and alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
        assert host.specs[-1].user_data == "#cloud-config\n" and host.specs[-1].credential is None
        assert _count(alice)[0] == before[0] + 1
        alice.remove(alice.get(r.headers["Location"]).json)
    finally:
        host.handle._caps = caps


@pytest.fixture
def esx():
    """A daemon host on an ESX stand-in (govmomi's vcsim): its connector counts userData base64-encoded."""
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "standins" / "vcsim" / "standin.py"
    spec = importlib.util.spec_from_file_location("sirocco_vcsim_standin_guest_inputs", path)
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    try:
        sim = helper.Vcsim("esx").start()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the vcsim stand-in cannot start: %s\nrun `bash scripts/setup-system.sh` as root" % exc,
                    pytrace=False)
    try:
        yield {"name": "esx1", "provider": "vsphere", "uri": sim.url, "username": sim.username,
               "password": sim.password, "validate_certs": False}
    finally:
        sim.stop()


def test_user_data_over_a_real_connectors_limit_is_refused_before_a_job(tmp_path, esx):
    """The vSphere connector takes 64 KiB of guestinfo once base64-encoded (less than the model's 65,536
    characters): the daemon refuses more with 400, before a job that would fail; less goes through."""
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import vsphere
    app = make_app(tmp_path / "data", hosts=[esx])
    try:
        add_users(Api(app.test_client(), "admin", ADMIN_PASSWORD), ("alice",))
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        big = "#!/bin/sh\n" + "#" * 50000 + "\n"
        encoded = 4 * -(-len(big) // 3)
        assert encoded > vsphere.GUESTINFO_LIMIT and len(big) < 65536
        before = _count(alice)
        _refused(alice, _create(alice, {"userData": big}), "userData", "userData is %d bytes once base64-encoded; "
                 "host esx1 takes at most %d" % (encoded, vsphere.GUESTINFO_LIMIT))
        assert _count(alice) == before
        made = alice.create_machine("fits", credential={"userName": "alice", "key": KEY}, userData=big[:40000])
        assert made["state"] == states.STOPPED and made["properties"][USER_PROPERTY] == "alice"
        alice.remove(made)
    finally:
        app.extensions["siroccod"].close()


def test_routing_leaves_out_the_providers_that_cannot_take_them():
    """With upstreams, the matchmaking sees only the providers that can put the inputs into the guest
    (``local`` when one of the hosts can); a wish for only those that cannot, or none that can, is a 400."""
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import Capabilities
    from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match
    from siroccod import routing
    from siroccod.plans import MachinePlan

    class Upstream:
        def __init__(self, name, provider, inputs, limit=None):
            self.name, self.provider = name, provider
            self.caps = Capabilities(provider=provider, operations=frozenset(), guest_inputs=frozenset(inputs),
                                     user_data_limit=limit)

        def capabilities(self):
            return self.caps

    ups = [Upstream("aws", "ec2", {"userData"}), Upstream("os", "openstack", {"userData", "credential"}),
           Upstream("small", "cimi", {"userData", "credential"}, limit=8)]
    local = match.Offer(label="local", provider="siroccod", capabilities=Capabilities(
        provider="siroccod", operations=frozenset(), locations=()))  # local_offer found no capable host
    offers = [local] + [match.Offer(label=u.name, provider=u.provider, capabilities=u.caps) for u in ups]
    plan = MachinePlan(config={"cpu": 1, "memory": 65536}, credential_value={"userName": "u", "key": KEY},
                       user_data="#cloud-config\n",
                       guest={"credential": {"username": "u", "key": KEY, "password": None}})
    request = match.Request(cpu=1, memory_mib=64)
    kept, _request, refused = routing._guest_capable(offers, request, plan, ups)
    assert [o.label for o in kept] == ["os"]
    assert set(refused) == {"local", "aws", "small"}
    assert refused["aws"] == ["upstream aws cannot put credential into a guest"]
    assert refused["small"] == ["userData is 14 bytes; upstream small takes at most 8"]
    # a wish naming only providers that cannot: 400 naming what they cannot take
    for wish in (("aws",), ("ec2", "small")):
        with pytest.raises(InvalidInput) as info:
            routing._guest_capable(offers, match.Request(cpu=1, memory_mib=64, providers=wish), plan, ups)
        assert "no provider can put credential or userData into this machine's guest" in str(info.value)
    # one of several wishes can: the others are left out of the wish
    assert routing._guest_capable(offers, match.Request(cpu=1, memory_mib=64, providers=("aws", "os")),
                                  plan, ups)[1].providers == ("os",)
    # none can
    with pytest.raises(InvalidInput) as info:
        routing._guest_capable([offers[0], offers[1], offers[3]], request, plan, ups)
    assert info.value.attribute in ("credential", "userData")
    # no guest inputs: nothing changes
    assert routing._guest_capable(offers, request, MachinePlan(config={"cpu": 1, "memory": 65536}),
                                  ups) == (offers, request, {})


# -- a CMDB that kept "username" (migration 0006) ----------------------------------------------------------
def test_migration_0006_renames_username_in_place_and_back(database, tmp_path):
    import sqlalchemy as sa

    from siroccod import migrating
    table = sa.table("resources", sa.column("uuid", sa.String), sa.column("type", sa.String),
                     sa.column("name", sa.String), sa.column("doc", sa.JSON), sa.column("private", sa.JSON),
                     sa.column("created", sa.DateTime), sa.column("updated", sa.DateTime))
    engine = sa.create_engine(database)
    assert migrating.upgrade(engine, "0005")[1] == "0005"
    old_cred = {"name": "old", "username": "legacy", "key": KEY}
    old_template = {"name": "t", "initialState": "STOPPED", "credential": {"username": "tpl", "key": KEY}}
    rows = [
        ("c1", "Credential", old_cred, {"password": "fernet:sealed"}),
        ("t1", "MachineTemplate", old_template, {}),
        ("s1", "SystemTemplate", {"name": "s", "componentDescriptors": [
            {"type": CIMI + "Machine", "component": old_template}, {"type": CIMI + "Volume", "component": {}}]}, {}),
        ("m1", "Machine", {"name": "m"}, {"spec": {"credential_value": {
            "username": "val", "key": KEY, "password": "fernet:sealed"}}}),
        ("m2", "Machine", {"name": "n"}, {"spec": {"credential": "c1", "credential_value": None}}),
        ("c2", "Credential", {"name": "new", "userName": "already"}, {}),
    ]
    with engine.begin() as connection:
        now = sa.func.now()
        for uuid, kind, doc, private in rows:
            connection.execute(sa.insert(table).values(uuid=uuid, type=kind, name=doc.get("name"), doc=doc,
                                                       private=private, created=now, updated=now))

    def read():
        with engine.connect() as connection:
            found = connection.execute(sa.select(table.c.uuid, table.c.doc, table.c.private))
            return {r.uuid: (r.doc, r.private) for r in found}
    assert migrating.upgrade(engine)[1] == migrating.head()
    after = read()
    assert after["c1"] == ({"name": "old", "userName": "legacy", "key": KEY}, {"password": "fernet:sealed"})
    assert after["t1"][0]["credential"] == {"userName": "tpl", "key": KEY}
    # (and migration 0008 moved the components' templates to Table 14's attributes)
    assert after["s1"][0]["componentDescriptors"][0]["machineTemplate"]["credential"] == {"userName": "tpl",
                                                                                          "key": KEY}
    assert after["s1"][0]["componentDescriptors"][1] == {"type": CIMI + "Volume", "volumeTemplate": {}}
    assert after["m1"][1]["spec"]["credential_value"] == {"userName": "val", "key": KEY, "password": "fernet:sealed"}
    assert after["m2"] == (rows[4][2], rows[4][3]) and after["c2"] == (rows[5][2], {})
    with engine.begin() as connection:  # downgrade: as it was
        from alembic import command
        command.downgrade(migrating.alembic_config(connection), "0005")
    before = read()
    assert before["c1"][0] == old_cred and before["t1"][0] == old_template
    assert before["s1"][0]["componentDescriptors"][0]["component"] == old_template
    assert before["m1"][1]["spec"]["credential_value"]["username"] == "val"
    engine.dispose()


# -- on a real QEMU host, through libvirt ---------------------------------------------------------------------
def _seed_files(path):
    """name -> text of the files on a NoCloud seed ISO (its Rock Ridge names), read with pycdlib."""
    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        out = {}
        for name in ("meta-data", "user-data", "network-config"):
            data = io.BytesIO()
            try:
                iso.get_file_from_iso_fp(data, rr_path="/" + name)
            except pycdlib.pycdlibexception.PyCdlibInvalidInput:
                continue
            out[name] = data.getvalue().decode("utf-8")
        return out, iso.pvd.volume_identifier.decode("ascii").strip()
    finally:
        iso.close()


def _parts(user_data):
    """The decoded texts of a user-data: its MIME parts, or itself."""
    if not user_data.lstrip().lower().startswith("content-type:"):
        return [user_data]
    return [part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
            for part in email.message_from_string(user_data).walk() if not part.is_multipart()]


def test_real_qemu_guest_inputs(tmp_path, qemu):
    """A daemon with a simulated host (takes neither) and a real QEMU host (libvirtd, TCG): a machine with a
    credential and userData goes to the QEMU host, whose domain has the NoCloud seed as a CD-ROM holding the
    key, the user and the userData, and the Machine served reports the forwarded SSH address and the user."""
    kvm = qemu.host_config("kvm")
    pool_name = qemu.prefix + "pool"  # a transient dir pool of this run for the seed ISOs
    target = Path("/tmp") / pool_name
    target.mkdir(mode=0o755)
    pool = qemu.conn.storagePoolCreateXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                          % (pool_name, target), 0)
    # QEMU user-mode networking, SSH forwarded to 127.0.0.1
    kvm["options"] = dict(kvm["options"], network="user", volume_pool=pool_name, image_pool=pool_name)
    sim = {"name": "sim", "simulated": {"cpu": 8, "memory_mib": 16384, "mhz": 2400}, "power_idle": 60,
           "power_max": 180}
    app = make_app(tmp_path / "data", hosts=[sim, kvm])  # first-fit: sim first, unless it cannot
    try:
        add_users(Api(app.test_client(), "admin", ADMIN_PASSWORD), ("alice",))
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        cred = alice.post(alice.collection("credentials"), {"name": "alice-key", "userName": "alice", "key": KEY,
                                                            "password": SECRET}).json
        marker = "#!/bin/sh\necho from-user-data > /etc/sirocco-marker\n"
        # its password: refused on these hosts, before anything is made
        assert _create(alice, {"credential": {"href": cred["id"]}, "userData": marker}).status_code == 400
        assert qemu.domains() == {}
        key_only = alice.post(alice.collection("credentials"), {"name": "k", "userName": "alice", "key": KEY}).json
        machine = alice.create_machine("guest", states.STARTED, credential={"href": key_only["id"]}, userData=marker)
        [(_name, (uuid, _state))] = qemu.domains().items()  # on the QEMU host, sim could not take it
        dom = qemu.conn.lookupByUUIDString(uuid)
        root = ET.fromstring(dom.XMLDesc(0))
        cdroms = [d.find("source").get("file") for d in root.findall("devices/disk") if d.get("device") == "cdrom"]
        assert len(cdroms) == 1 and "-seed-" in cdroms[0], ET.tostring(root)[:2000]
        files, label = _seed_files(cdroms[0])
        assert label == "cidata" and {"meta-data", "user-data"} <= set(files)
        texts = _parts(files["user-data"])
        assert marker in texts  # the userData, as given
        config = "\n".join(t for t in texts if t.startswith("#cloud-config"))
        assert KEY.split()[1] in config and '"alice"' in config  # the user, with the key authorized
        # what the connector reports reaches the daemon's clients
        interfaces = alice.members(machine, "interfaces")
        [address] = [a for i in interfaces for a in i.get("addresses") or [] if "sshPort" in a]
        assert address["ip"] == "127.0.0.1" and isinstance(address["sshPort"], int), machine
        assert machine["properties"][USER_PROPERTY] == "alice"
        assert machine["properties"][HOST_KEY_PROPERTY].startswith("ssh-ed25519 ")
        expanded = alice.get(machine["id"] + "?$expand=interfaces").json["interfaces"]["networkInterfaces"]
        listed = [m for m in alice.items("machines", "?$expand=interfaces") if m["id"] == machine["id"]]
        assert expanded == interfaces and listed[0]["properties"][USER_PROPERTY] == "alice"
        assert listed[0]["interfaces"]["networkInterfaces"] == interfaces
        with socket.create_connection(("127.0.0.1", address["sshPort"]), timeout=10):
            pass  # QEMU listens there for the guest's SSH
        assert SECRET not in str(machine)
        alice.act(machine, "stop", force=True)
        alice.remove(alice.get(machine["id"]).json)
        assert qemu.domains() == {}
        assert not Path(cdroms[0]).exists()  # the seed goes with the machine
        # without guest inputs, first-fit takes sim
        plain = alice.create_machine("plain")
        assert qemu.domains() == {} and plain["state"] == states.STOPPED
        alice.remove(plain)
    finally:
        app.extensions["siroccod"].close()
        qemu.clean()
        for vol in pool.listAllVolumes(0):  # a failed run leaves no seed behind
            vol.delete(0)
        pool.destroy()
        target.rmdir()

"""Guest inputs on the cloud peers: what a provider received of a machine's credential and userData, read back
through the provider's own API (not through the connector under test), and bad input refused before anything
is created.

The tests run on every stand-in of the suite (the ``connector``/``standin`` fixtures) and skip, saying why,
where the capabilities do not offer an input or where this file has no way to read the provider back
(``READERS``: EC2 on moto, OpenStack's Nova, and libcloud's EC2 and OpenStack drivers on the same services).
Other providers read theirs back in their own files.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import USER_PROPERTY, key_pair_name

USER_DATA = "#cloud-config\nwrite_files:\n  - path: /etc/sirocco-marker\n    content: \"déjà vu\\n\"\n"


def new_key(kind="ed25519", comment="ci@sirocco"):
    """A fresh OpenSSH public key line (a new key every call: no test meets another's key pair)."""
    if kind == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    elif kind == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        private = ec.generate_private_key(ec.SECP256R1())
    line = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode("ascii")
    return "%s %s" % (line, comment)


def blob(key):
    return key.split()[1]


# -- reading a provider back -------------------------------------------------------------------------------------
class MotoReader:
    """EC2 as moto's server answers it, through boto3 on the stand-in's endpoint."""

    user_data_limit = 16384  # EC2: bytes before base64
    user_data_encoded = False
    key_types = ("rsa", "ed25519")  # what ImportKeyPair takes

    def __init__(self, standin):
        import boto3

        self.ec2 = boto3.client("ec2", endpoint_url=standin.server.url, region_name="us-east-1",
                                **standin.server.credentials)

    def user_data(self, machine_id):
        """(base64 text EC2 keeps, its decoded bytes) of the instance's userData attribute."""
        value = self.ec2.describe_instance_attribute(InstanceId=machine_id, Attribute="userData")["UserData"]
        text = value.get("Value")
        return text, base64.b64decode(text) if text else None

    def key_name(self, machine_id):
        reply = self.ec2.describe_instances(InstanceIds=[machine_id])
        return reply["Reservations"][0]["Instances"][0].get("KeyName")

    def key_pairs(self):
        """key pair name -> its public key line as the provider holds it."""
        return {p["KeyName"]: p.get("PublicKey") for p in
                self.ec2.describe_key_pairs(IncludePublicKey=True)["KeyPairs"]}

    def delete_key_pair(self, name):
        self.ec2.delete_key_pair(KeyName=name)

    def close(self):
        self.ec2.close()


class NovaReader:
    """Nova as the OpenStack stand-in answers it (admin), raw API calls at an explicit microversion."""

    user_data_limit = 65535  # Nova: bytes of base64
    user_data_encoded = True
    key_types = ("rsa", "ed25519", "ecdsa")

    def __init__(self, standin):
        self.conn = standin.sdk_connector()
        self.compute = self.conn.conn.compute

    def _server(self, machine_id):
        # OS-EXT-SRV-ATTR:user_data is shown to admins from microversion 2.3
        reply = self.compute.get("/servers/%s" % machine_id, microversion="2.3")
        assert reply.status_code == 200, reply.text
        return reply.json()["server"]

    def user_data(self, machine_id):
        text = self._server(machine_id).get("OS-EXT-SRV-ATTR:user_data")
        return text, base64.b64decode(text) if text else None

    def key_name(self, machine_id):
        return self._server(machine_id).get("key_name")

    def key_pairs(self):
        reply = self.compute.get("/os-keypairs", microversion="2.2")
        assert reply.status_code == 200, reply.text
        pairs = {}
        for item in reply.json()["keypairs"]:
            pair = item["keypair"]
            pairs[pair["name"]] = pair["public_key"]
            # Nova's fingerprint of an SSH key: MD5 of its blob, as colon-separated hex
            digest = hashlib.md5(base64.b64decode(blob(pair["public_key"])), usedforsecurity=False).hexdigest()
            assert pair["fingerprint"] == ":".join(digest[i:i + 2] for i in range(0, 32, 2))
        return pairs

    def delete_key_pair(self, name):
        self.compute.delete("/os-keypairs/%s" % name)

    def close(self):
        self.conn.close()


# stand-in id -> (how to read that provider back, whether its connector takes a password credential: only the
# openstack one does, as Nova's admin_password; libcloud's drivers are given key pairs only)
READERS = {"ec2-moto": (MotoReader, False), "libcloud-ec2-moto": (MotoReader, False), "openstack": (NovaReader, True),
           "libcloud-openstack": (NovaReader, False)}


@pytest.fixture
def reader(standin):
    """The provider's own API for this stand-in; the key pairs the test's keys made are deleted afterwards."""
    if standin.id not in READERS:
        pytest.skip("%s: this file reads back EC2 and OpenStack (native and libcloud); the other providers' guest "
                    "inputs are read back in their own files" % standin.id)
    kind, passwords = READERS[standin.id]
    peer = kind(standin)
    peer.made = set()
    peer.passwords = passwords
    before = set(peer.key_pairs())
    try:
        yield peer
    finally:
        try:
            for name in (set(peer.key_pairs()) - before) | (peer.made - before):
                peer.delete_key_pair(name)
        finally:
            peer.close()


def offered(caps, *inputs):
    missing = [i for i in inputs if i not in caps.guest_inputs]
    if missing:
        pytest.skip("provider '%s' does not offer %s (capabilities: guestInputs %s)"
                    % (caps.provider, " and ".join(missing), sorted(caps.guest_inputs) or "none"))


def key_type(key):
    return key.split()[0].replace("ssh-", "").split("-")[0]


# -- what the provider received ---------------------------------------------------------------------------------
def test_credential_and_user_data_reach_the_provider(reader, connector, caps, make_spec):
    offered(caps, "userData", "credential")
    key = new_key()
    name = key_pair_name(key)
    reader.made.add(name)
    m = connector.create_machine(make_spec(initial_state=states.STARTED, user_data=USER_DATA,
                                           credential={"username": "ci-user", "key": key}))
    text, data = reader.user_data(m.id)
    assert data == USER_DATA.encode("utf-8")
    assert text == base64.b64encode(USER_DATA.encode("utf-8")).decode("ascii")  # encoded once, not twice
    assert reader.key_name(m.id) == name
    held = reader.key_pairs()[name]
    assert held.split()[:2] == key.split()[:2]
    assert connector.get_machine(m.id).properties[USER_PROPERTY] == "ci-user"
    listed = [x for x in connector.list_machines().items if x.id == m.id]
    assert listed and listed[0].properties[USER_PROPERTY] == "ci-user"


def test_a_key_is_one_key_pair_for_every_machine(reader, connector, caps, make_spec):
    offered(caps, "credential")
    key = new_key("rsa", comment="first@sirocco")
    name = key_pair_name(key)
    reader.made.add(name)
    before = set(reader.key_pairs())
    first = connector.create_machine(make_spec(initial_state=states.STARTED, credential={"key": key}))
    # the same key pasted with another comment: the same key pair
    second = connector.create_machine(make_spec(initial_state=states.STARTED,
                                                credential={"key": " ".join(key.split()[:2]) + " second@sirocco"}))
    assert reader.key_name(first.id) == reader.key_name(second.id) == name
    assert set(reader.key_pairs()) - before == {name}
    assert USER_PROPERTY not in (connector.get_machine(first.id).properties or {})  # no user name given
    connector.delete_machine(first.id)
    assert name in reader.key_pairs()  # kept while (and after) other machines use it
    other = new_key()
    reader.made.add(key_pair_name(other))
    third = connector.create_machine(make_spec(initial_state=states.STARTED, credential={"key": other}))
    assert reader.key_name(third.id) == key_pair_name(other) != name


@pytest.mark.parametrize("kind", ["rsa", "ed25519", "ecdsa"])
def test_every_key_type_the_provider_imports(reader, connector, caps, make_spec, kind):
    offered(caps, "credential")
    if kind not in reader.key_types:
        pytest.skip("provider '%s' imports no %s key (refused before anything is created: see the bad input "
                    "cases)" % (caps.provider, kind))
    key = new_key(kind)
    reader.made.add(key_pair_name(key))
    m = connector.create_machine(make_spec(initial_state=states.STARTED, credential={"key": key}))
    assert reader.key_name(m.id) == key_pair_name(key)
    assert blob(reader.key_pairs()[key_pair_name(key)]) == blob(key)


def test_user_data_at_the_providers_limit(reader, connector, caps, make_spec):
    offered(caps, "userData")
    size = reader.user_data_limit // 4 * 3 if reader.user_data_encoded else reader.user_data_limit
    text = "#!/bin/sh\n" + "#" * (size - 11) + "\n"
    m = connector.create_machine(make_spec(initial_state=states.STARTED, user_data=text))
    assert reader.user_data(m.id)[1] == text.encode("ascii")


# -- refused before anything is created ----------------------------------------------------------------------------
def _private_key():
    return ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()).decode("ascii")


BAD = {
    # case: (guest inputs it needs, spec fields (a function of the reader), attribute named)
    "user-data-over-limit": (("userData",), lambda r: {"user_data": "x" * (
        r.user_data_limit // 4 * 3 + 1 if r.user_data_encoded else r.user_data_limit + 1)}, "userData"),
    "credential-without-key": (("credential",), lambda r: {"credential": {"username": "ci-user"}}, "credential.key"),
    "malformed-key": (("credential",), lambda r: {"credential": {"key": "ssh-ed25519 AAAA!!not-base64"}},
                      "credential.key"),
    "key-of-another-type": (("credential",), lambda r: {"credential": {"key": "ssh-rsa " + blob(new_key())}},
                            "credential.key"),
    "private-key-pasted": (("credential",), lambda r: {"credential": {"key": _private_key()}}, "credential.key"),
    "two-keys": (("credential",), lambda r: {"credential": {"key": new_key() + "\n" + new_key()}},
                 "credential.key"),
    "bad-user-name": (("credential",), lambda r: {"credential": {"username": "Root Admin", "key": new_key()}},
                      "credential.userName"),
    "password": (("credential",), lambda r: {"credential": {"username": "ci-user", "password": "s3cret!"}},
                 "credential.password"),
    "ecdsa-key": (("credential",), lambda r: {"credential": {"key": new_key("ecdsa")}}, "credential.key"),
    "key-and-userdata-over": (("userData", "credential"), lambda r: {
        "credential": {"key": new_key()}, "user_data": "y" * (r.user_data_limit * 2)}, "userData"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_guest_input_creates_nothing(reader, connector, caps, make_spec, case):
    needs, fields, attribute = BAD[case]
    offered(caps, *needs)
    if case == "password" and reader.passwords:
        pytest.skip("provider '%s' takes a password credential (Nova's admin_password; a password cannot be read "
                    "back)" % caps.provider)
    if case == "ecdsa-key" and "ecdsa" in reader.key_types:
        pytest.skip("provider '%s' imports ECDSA keys" % caps.provider)
    machines = {m.id for m in connector.list_machines().items}
    pairs = set(reader.key_pairs())
    spec = make_spec(initial_state=states.STARTED, **fields(reader))
    with pytest.raises(InvalidInput) as info:
        connector.create_machine(spec)
    assert info.value.attribute == attribute, str(info.value)
    assert "s3cret" not in str(info.value)
    assert {m.id for m in connector.list_machines().items} == machines
    assert set(reader.key_pairs()) == pairs
    assert not connector.find_machines(spec.name)


def test_a_credential_and_a_configured_key_pair_are_refused(reader, connector, caps, make_spec):
    """Provider option key_name (libcloud: ex_keyname in create_kwargs) and a credential both name the
    instance's one key pair: refused, naming the credential, before anything is created."""
    offered(caps, "credential")
    if connector.name == "libcloud":
        connector.options["create_kwargs"] = dict(connector.options.get("create_kwargs") or {},
                                                  ex_keyname="someone-elses")
    else:
        connector.options["key_name"] = "someone-elses"
    machines = {m.id for m in connector.list_machines().items}
    pairs = set(reader.key_pairs())
    with pytest.raises(InvalidInput) as info:
        connector.create_machine(make_spec(credential={"key": new_key()}))
    assert info.value.attribute == "credential"
    assert {m.id for m in connector.list_machines().items} == machines
    assert set(reader.key_pairs()) == pairs

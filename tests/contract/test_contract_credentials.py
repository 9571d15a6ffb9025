"""Credentials: SSH public keys a provider keeps (EC2 and Nova key pairs, a CIMI endpoint's Credentials).

Create, list and get, a second one of the same name refused, delete; a bad key refused before anything is
made; Unsupported where the capabilities do not advertise the operations. ``userName`` and ``description``
are kept where the provider keeps them, else refused with InvalidInput naming them (nothing made): both are
accepted outcomes here, what the connector's docstring says decides which.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unsupported,
)

USER = "ci-user"
DESCRIPTION = "contract credential"


def new_key(comment="ci@sirocco"):
    """A fresh ed25519 public key line (every provider with key pairs imports ed25519)."""
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")
    return "%s %s" % (line, comment)


def blob(key):
    return (key or "").split()[1:2]


def _names(connector):
    return {c.name for c in connector.list_credentials()}


def _need_credentials(connector, standin, caps):
    if not caps.supports("credential.create"):
        with pytest.raises(Unsupported):
            connector.create_credential(standin.name("c"), new_key())
        if not caps.supports("credential.list"):
            with pytest.raises(Unsupported):
                connector.list_credentials()
        pytest.skip("%s does not advertise credential.create (and refuses it)" % caps.provider)


def _create(connector, name, key):
    """The credential made with a user name and a description, or without them where the connector refuses
    them (InvalidInput naming one of them, nothing made); (credential, whether they were kept)."""
    try:
        return connector.create_credential(name, key, user_name=USER, description=DESCRIPTION), True
    except InvalidInput as exc:
        assert exc.attribute in ("userName", "description"), exc
        assert name not in _names(connector)
    return connector.create_credential(name, key), False


def test_credential_lifecycle(connector, standin, caps):
    _need_credentials(connector, standin, caps)
    name, key = standin.name("c"), new_key()
    created, kept = _create(connector, name, key)
    assert created.name == name and blob(created.key) == blob(key)
    listed = [c for c in connector.list_credentials() if c.id == created.id]
    assert len(listed) == 1 and listed[0].name == name and blob(listed[0].key) == blob(key)
    for ref in (created.id, name):
        got = connector.get_credential(ref)
        assert got.id == created.id and blob(got.key) == blob(key)
        if kept:
            assert got.userName == USER and got.description == DESCRIPTION
    assert "password" not in created.to_json()

    with pytest.raises(Conflict):  # the name is taken: the first key stays
        connector.create_credential(name, new_key())
    assert blob(connector.get_credential(created.id).key) == blob(key)

    connector.delete_credential(created.id)
    assert name not in _names(connector)
    with pytest.raises(NotFound):
        connector.get_credential(created.id)
    with pytest.raises(NotFound):
        connector.delete_credential(created.id)


BAD_KEYS = {
    "empty": "",
    "not a key": "hello world",
    "private key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    "truncated": None,  # a real key with its data cut short, made below
    "two keys": None,
}


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_bad_key_refused_before_anything(connector, standin, caps, case):
    _need_credentials(connector, standin, caps)
    good = new_key()
    bad = {"truncated": good[:40], "two keys": "%s\n%s" % (good, new_key())}.get(case, BAD_KEYS[case])
    name = standin.name("c")
    with pytest.raises(InvalidInput) as caught:
        connector.create_credential(name, bad)
    assert caught.value.attribute == "key"
    assert name not in _names(connector)


def test_a_machine_uses_a_registered_key(connector, standin, caps, make_spec):
    """A machine given the key of a credential made here is created (the key pair is not imported twice
    under a clash), and the credential is still there, unchanged, afterwards."""
    _need_credentials(connector, standin, caps)
    if "credential" not in caps.guest_inputs:
        pytest.skip("%s puts no credential into a guest" % caps.provider)
    name, key = standin.name("c"), new_key()
    created = connector.create_credential(name, key)
    m = connector.create_machine(make_spec(credential={"key": key}))
    assert connector.get_machine(m.id).id == m.id
    assert blob(connector.get_credential(created.id).key) == blob(key)
    connector.delete_machine(m.id)

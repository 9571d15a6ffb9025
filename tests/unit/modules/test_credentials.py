"""sirocco.cimi.credential and credential_info (module_utils/credentials.py).

Round trips run on moto's EC2 server (key pairs: ImportKeyPair, DescribeKeyPairs, DeleteKeyPair through the ec2
connector), started once for this file; libvirt's test driver is the provider that keeps no keys. The module
runs through ``credentials.run`` with the stand-in of SiroccoModule of test_volumes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from test_volumes import Module

from ansible_collections.sirocco.cimi.plugins.module_utils import credentials
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, Unsupported
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.ec2 import EC2Connector
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMPOCOz23URZvUZXU2lW6/i1iQ3yFq7Ts0WOawyViPj deploy@example"
OTHER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICij9Ecl/HHyt7OD76FoeUU4qBWjwb4Hr+s5RuzFTSnj deploy2@example"
PRIVATE = ("-----BEGIN OPENSSH PRIVATE KEY-----\n"
           "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
           "-----END OPENSSH PRIVATE KEY-----\n")
DEFAULTS = dict(state="present", public_key=None, user_name=None, description=None, force=False, filter=None)

_spec = importlib.util.spec_from_file_location(
    "sirocco_moto_standin", Path(__file__).resolve().parents[2] / "standins" / "moto" / "standin.py")
moto_standin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(moto_standin)


@pytest.fixture(scope="module")
def moto():
    with moto_standin.MotoServer() as server:
        yield server


@pytest.fixture
def ec2(moto):
    connector = EC2Connector(uri=moto.url, username=moto.access_key, password=moto.secret_key, region="us-east-1",
                             timeout=30, options={"instance_types": ["t2.*"]})
    yield connector
    for credential in connector.list_credentials():
        connector.delete_credential(credential.id)
    connector.close()


def run(conn, check_mode=False, **params):
    module = Module(conn, check_mode=check_mode, defaults=DEFAULTS, **params)
    return credentials.run(module), module


def names(conn):
    return sorted(c.name for c in conn.list_credentials())


def test_registered_in_check_mode_then_for_real_then_nothing_to_do(ec2):
    predicted, _warnings = run(ec2, check_mode=True, name="deploy", public_key=KEY, user_name="debian")
    assert predicted["actions"] == ["create"] and names(ec2) == []
    assert predicted["credential"]["key"] == KEY and predicted["credential"]["userName"] == "debian"
    assert predicted["fingerprint"] == "SHA256:JU8D7X+idkCBvk4nif+h0e/+o2hEqgq//rctahb1qeE"  # as ssh-keygen -l says
    made, _warnings = run(ec2, name="deploy", public_key=KEY, user_name="debian")
    assert made["changed"] and names(ec2) == ["deploy"]
    assert credentials.key_data(made["credential"]["key"]) == credentials.key_data(KEY)
    # the same key with another comment is the same credential
    again, module = run(ec2, name="deploy", public_key=KEY.replace("deploy@example", "laptop"), user_name="debian")
    assert not again["changed"] and again["actions"] == [] and module.warnings == []


def test_another_key_under_the_name_fails_without_force_and_is_replaced_with_it(ec2):
    run(ec2, name="rotated", public_key=KEY)
    with pytest.raises(Conflict) as info:
        run(ec2, name="rotated", public_key=OTHER)
    assert "force=true" in info.value.message and "SHA256:JU8D7X" in info.value.message
    assert credentials.key_data(ec2.get_credential("rotated").key) == credentials.key_data(KEY)
    predicted, _warnings = run(ec2, check_mode=True, name="rotated", public_key=OTHER, force=True)
    assert predicted["actions"] == ["delete", "create"]
    assert credentials.key_data(ec2.get_credential("rotated").key) == credentials.key_data(KEY)
    replaced, _warnings = run(ec2, name="rotated", public_key=OTHER, force=True)
    assert replaced["changed"]
    assert credentials.key_data(ec2.get_credential("rotated").key) == credentials.key_data(OTHER)


def test_absent_removes_it_once(ec2):
    run(ec2, name="gone", public_key=KEY)
    gone, _warnings = run(ec2, name="gone", state="absent")
    assert gone["actions"] == ["delete"] and "credential" not in gone and names(ec2) == []
    assert not run(ec2, name="gone", state="absent")[0]["changed"]


def test_info_by_name_and_filter(ec2):
    run(ec2, name="one", public_key=KEY)
    run(ec2, name="two", public_key=OTHER)
    module = Module(ec2, defaults=DEFAULTS, name=None, filter="name='two'")
    assert [c["name"] for c in credentials.run_info(module)["credentials"]] == ["two"]
    assert [c["name"] for c in credentials.run_info(Module(ec2, defaults=DEFAULTS, name=None))["credentials"]] == [
        "one", "two"]


def test_a_private_key_is_refused_without_being_repeated(ec2):
    with pytest.raises(InvalidInput) as info:
        run(ec2, name="oops", public_key=PRIVATE)
    assert info.value.attribute == "public_key" and "private key" in info.value.message
    assert "b3BlbnNza" not in info.value.message and names(ec2) == []


@pytest.mark.parametrize("bad, words", [
    ("ssh-ed25519", "not an OpenSSH public key"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKMPOCOz23URZvUZXU2lW6/i", "incomplete"),
    ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not an OpenSSH public key"),
])
def test_a_malformed_public_key_is_refused_naming_public_key(bad, words):
    with pytest.raises(InvalidInput) as info:
        credentials.check_params(dict(DEFAULTS, name="bad", public_key=bad))
    assert info.value.attribute == "public_key" and words in info.value.message
    assert info.value.message.startswith("public_key: ")


def test_a_bad_user_name_is_refused():
    with pytest.raises(InvalidInput) as info:
        credentials.check_params(dict(DEFAULTS, name="bad", public_key=KEY, user_name="Root User"))
    assert info.value.attribute == "user_name"


def test_a_provider_keeping_no_keys_fails_naming_provider_and_operation():
    conn = LibvirtConnector(uri="test:///default")
    try:
        for state, operation in (("present", "credential.create"), ("absent", "credential.delete")):
            with pytest.raises(Unsupported) as info:
                run(conn, name="k", public_key=KEY, state=state)
            assert info.value.message == "provider 'libvirt' does not support operation '%s'" % operation
        with pytest.raises(Unsupported):
            credentials.run_info(Module(conn, defaults=DEFAULTS, name=None))
    finally:
        conn.close()

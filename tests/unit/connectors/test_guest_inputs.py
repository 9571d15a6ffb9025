"""base.py's guest inputs: public_key, key_fingerprint, key_pair_name and check_guest_inputs.

Keys are made here, by the ``cryptography`` package (ansible-core's own dependency) and, where
installed, cross-checked with OpenSSH's ``ssh-keygen``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import shutil
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    MachineSpec,
    check_guest_inputs,
    key_fingerprint,
    key_pair_name,
    public_key,
)

BOTH = frozenset({"userData", "credential"})


def _private(kind):
    if kind == "ssh-ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if kind == "ssh-rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    curve = {"ecdsa-sha2-nistp256": ec.SECP256R1, "ecdsa-sha2-nistp384": ec.SECP384R1,
             "ecdsa-sha2-nistp521": ec.SECP521R1}[kind]
    return ec.generate_private_key(curve())


def _openssh(private, comment="me@host"):
    line = private.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                             serialization.PublicFormat.OpenSSH).decode("ascii")
    return "%s %s" % (line, comment) if comment else line


def _string(data):
    return struct.pack(">I", len(data)) + data


def _sk_ed25519():
    """A FIDO (security key) ed25519 public key line: no device needed to write one, only its wire format."""
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    blob = _string(b"sk-ssh-ed25519@openssh.com") + _string(raw) + _string(b"ssh:")
    return "sk-ssh-ed25519@openssh.com %s yubi" % base64.b64encode(blob).decode("ascii")


KINDS = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521")


@pytest.fixture(scope="module")
def keys():
    """type -> a public key line of that type (with a comment)."""
    found = {kind: _openssh(_private(kind)) for kind in KINDS}
    found["sk-ssh-ed25519@openssh.com"] = _sk_ed25519()
    return found


def _spec(**kw):
    return MachineSpec(name="m", config=MachineConfiguration(cpu=1, memory=1024), **kw)


# -- public_key ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS + ("sk-ssh-ed25519@openssh.com",))
def test_every_key_type_is_taken_as_one_line(keys, kind):
    line = keys[kind]
    assert public_key(line) == line
    assert public_key("\n  %s  \n\n" % line.replace(" ", "   ")) == line  # blank lines and spacing normalised


def test_a_key_without_comment(keys):
    bare = " ".join(keys["ssh-ed25519"].split()[:2])
    assert public_key(bare) == bare


@pytest.mark.parametrize("text", [None, "", "   \n", 42])
def test_no_key_at_all(text):
    with pytest.raises(InvalidInput) as info:
        public_key(text)
    assert info.value.attribute == "credential.key" and "public key is required" in str(info.value)


def test_the_attribute_is_the_callers():
    with pytest.raises(InvalidInput) as info:
        public_key("", attribute="credential.publicKey")
    assert info.value.attribute == "credential.publicKey"


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.OpenSSH, serialization.PrivateFormat.PKCS8])
def test_a_private_key_pasted_instead(fmt):
    pem = _private("ssh-ed25519").private_bytes(serialization.Encoding.PEM, fmt,
                                                serialization.NoEncryption()).decode("ascii")
    with pytest.raises(InvalidInput) as info:
        public_key(pem)
    assert info.value.attribute == "credential.key"
    assert "PRIVATE" not in str(info.value) and pem.splitlines()[1] not in str(info.value)  # never echoed


def test_a_private_key_body_pasted_on_one_line():
    body = "".join(_private("ssh-ed25519").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()).decode("ascii").splitlines()[1:-1])
    with pytest.raises(InvalidInput):
        public_key("ssh-ed25519 " + body)  # base64, but of "openssh-key-v1", not of a public ed25519 key


def test_truncated_base64_is_refused(keys):
    kind, blob, _comment = keys["ssh-rsa"].split()
    cut = blob[:len(blob) // 2]
    cut = cut[:-1] if len(cut) % 4 == 0 else cut  # a length no base64 text has
    with pytest.raises(InvalidInput) as info:
        public_key("%s %s" % (kind, cut))
    assert info.value.attribute == "credential.key" and "base64" in str(info.value)


def test_truncated_at_a_base64_boundary_is_refused(keys):
    kind, blob, _comment = keys["ssh-rsa"].split()
    with pytest.raises(InvalidInput):
        public_key("%s %s" % (kind, blob[:len(blob) // 8 * 4]))


def test_fields_must_fill_the_blob_exactly(keys):
    kind, data, _comment = keys["ssh-ed25519"].split()
    raw = base64.b64decode(data)
    for bad in (raw + _string(b"extra"), raw + b"\0", _string(b"ssh-ed25519") + _string(b"k" * 31),
                _string(b"ssh-ed25519"), _string(b"ssh-ed25519") + struct.pack(">I", 99) + raw[-32:]):
        with pytest.raises(InvalidInput) as info:
            public_key("%s %s" % (kind, base64.b64encode(bad).decode("ascii")))
        assert info.value.attribute == "credential.key"


def test_type_and_data_must_agree(keys):
    ed_blob = keys["ssh-ed25519"].split()[1]
    with pytest.raises(InvalidInput) as info:
        public_key("ssh-rsa " + ed_blob)
    assert "does not match its type ssh-rsa" in str(info.value)


@pytest.mark.parametrize("text", ["ssh-dss AAAAB3NzaC1kc3MAAACBAP", "ed25519 AAAAC3NzaC1lZDI1NTE5",
                                  "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
                                  "ssh-ed25519", "ssh-ed25519 not*base64!"])
def test_malformed_keys(text):
    with pytest.raises(InvalidInput) as info:
        public_key(text)
    assert info.value.attribute == "credential.key"


def test_two_keys_are_refused(keys):
    with pytest.raises(InvalidInput) as info:
        public_key(keys["ssh-ed25519"] + "\n" + keys["ssh-rsa"])
    assert "one line" in str(info.value)


# -- fingerprint and key pair name ---------------------------------------------------------------------
def test_fingerprint_is_opensshs(keys, tmp_path):
    for kind in KINDS:
        expected_hash = hashlib.sha256(base64.b64decode(keys[kind].split()[1])).digest()
        assert key_fingerprint(keys[kind]) == "SHA256:" + base64.b64encode(expected_hash).decode().rstrip("=")
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed: checked against the SHA256 definition only")
    for kind in KINDS:
        path = tmp_path / ("%s.pub" % kind)
        path.write_text(keys[kind] + "\n")
        listed = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], capture_output=True,
                                text=True, check=True).stdout.split()
        assert listed[1] == key_fingerprint(keys[kind])


def test_fingerprint_of_a_key_made_by_ssh_keygen(tmp_path):
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "made@here", "-f", str(tmp_path / "k")],
                   check=True, capture_output=True)
    line = public_key((tmp_path / "k.pub").read_text())
    listed = subprocess.run(["ssh-keygen", "-l", "-f", str(tmp_path / "k.pub")], capture_output=True, text=True,
                            check=True).stdout.split()
    assert key_fingerprint(line) == listed[1]
    with pytest.raises(InvalidInput):
        public_key((tmp_path / "k").read_text())  # the private half


def test_key_pair_name_is_the_keys_not_its_comments(keys):
    line = keys["ssh-ed25519"]
    name = key_pair_name(line)
    assert re.fullmatch(r"sirocco-[0-9a-f]{16}", name)
    assert key_pair_name(" ".join(line.split()[:2]) + " another@comment") == name
    assert key_pair_name(line) == name
    assert len({key_pair_name(keys[kind]) for kind in keys}) == len(keys)


# -- check_guest_inputs ------------------------------------------------------------------------------------
def test_nothing_to_check():
    spec = _spec()
    check_guest_inputs(spec, "p", frozenset())
    assert spec.credential is None and spec.user_data is None


def test_a_credential_is_normalised_on_a_copy(keys):
    given = {"username": "debian", "key": "\n" + keys["ssh-ed25519"] + "\n"}
    spec = _spec(credential=given)
    check_guest_inputs(spec, "p", BOTH)
    assert spec.credential == {"username": "debian", "key": keys["ssh-ed25519"]}
    assert given["key"].startswith("\n")  # the caller's dict is left as it was


@pytest.mark.parametrize("accepts, kw, attribute", [
    (frozenset(), {"user_data": "#cloud-config\n"}, "userData"),
    (frozenset({"credential"}), {"user_data": ""}, "userData"),
    (frozenset({"userData"}), {"credential": {"username": "debian"}}, "credential"),
])
def test_what_a_provider_does_not_take(keys, accepts, kw, attribute):
    if kw.get("credential"):
        kw["credential"]["key"] = keys["ssh-ed25519"]
    with pytest.raises(InvalidInput) as info:
        check_guest_inputs(_spec(**kw), "prov", accepts)
    assert info.value.attribute == attribute and "'prov'" in str(info.value)


def test_user_data_must_be_text():
    with pytest.raises(InvalidInput) as info:
        check_guest_inputs(_spec(user_data=b"#!/bin/sh\n"), "p", BOTH)
    assert info.value.attribute == "userData"


@pytest.mark.parametrize("name", ["debian", "_svc", "a", "ci-user_2", "a" * 32])
def test_user_names_taken(keys, name):
    check_guest_inputs(_spec(credential={"username": name, "key": keys["ssh-ed25519"]}), "p", BOTH)


@pytest.mark.parametrize("name", ["", "Root", "1abc", "-abc", "a" * 33, "with space", "a.b", "émile", "a:b", 7])
def test_user_names_refused(keys, name):
    with pytest.raises(InvalidInput) as info:
        check_guest_inputs(_spec(credential={"username": name, "key": keys["ssh-ed25519"]}), "p", BOTH)
    assert info.value.attribute == "credential.userName"


def test_a_credential_without_key(keys):
    for credential in ({"username": "debian"}, {"username": "debian", "key": None}, {"key": ""}):
        with pytest.raises(InvalidInput) as info:
            check_guest_inputs(_spec(credential=credential), "p", BOTH)
        assert info.value.attribute == "credential.key"


def test_an_empty_credential_is_none():
    spec = _spec(credential={})
    check_guest_inputs(spec, "p", frozenset())  # nothing given: nothing refused, not even by a provider without


def test_passwords(keys):
    with pytest.raises(InvalidInput) as info:
        check_guest_inputs(_spec(credential={"username": "debian", "password": "s3cret"}), "p", BOTH)
    assert info.value.attribute == "credential.password" and "s3cret" not in str(info.value)
    spec = _spec(credential={"username": "debian", "password": "s3cret"})
    check_guest_inputs(spec, "p", BOTH, passwords=True)
    assert spec.credential.get("key") is None
    spec = _spec(credential={"password": "s3cret", "key": keys["ssh-rsa"]})
    check_guest_inputs(spec, "p", BOTH, passwords=True)
    assert spec.credential["key"] == keys["ssh-rsa"]
    with pytest.raises(InvalidInput) as info:  # a password does not excuse a malformed key
        check_guest_inputs(_spec(credential={"password": "s3cret", "key": "ssh-rsa nope"}), "p", BOTH,
                           passwords=True)
    assert info.value.attribute == "credential.key"


@pytest.mark.parametrize("size, fits", [(16384, True), (16385, False), (0, True)])
def test_user_data_limit_before_base64(size, fits):
    spec = _spec(user_data="x" * size)
    if fits:
        check_guest_inputs(spec, "p", BOTH, user_data_limit=16384)
    else:
        with pytest.raises(InvalidInput) as info:
            check_guest_inputs(spec, "p", BOTH, user_data_limit=16384)
        assert info.value.attribute == "userData"
        assert "16385 bytes" in str(info.value) and "at most 16384" in str(info.value)
        assert "base64" not in str(info.value)


def test_user_data_limit_counts_utf8_bytes():
    check_guest_inputs(_spec(user_data="é" * 8), "p", BOTH, user_data_limit=16)
    with pytest.raises(InvalidInput) as info:
        check_guest_inputs(_spec(user_data="é" * 9), "p", BOTH, user_data_limit=17)  # 18 bytes, 9 characters
    assert "18 bytes" in str(info.value)


@pytest.mark.parametrize("size, encoded_size", [(1, 4), (2, 4), (3, 4), (4, 8), (49149, 65532), (49150, 65536)])
def test_user_data_limit_once_base64_encoded(size, encoded_size):
    text = "y" * size
    assert len(base64.b64encode(text.encode())) == encoded_size
    spec = _spec(user_data=text)
    if encoded_size <= 65535:
        check_guest_inputs(spec, "p", BOTH, user_data_limit=65535, user_data_encoded=True)
    else:
        with pytest.raises(InvalidInput) as info:
            check_guest_inputs(spec, "p", BOTH, user_data_limit=65535, user_data_encoded=True)
        assert info.value.attribute == "userData"
        assert "%d bytes once base64-encoded" % encoded_size in str(info.value)


def test_no_limit_means_none():
    check_guest_inputs(_spec(user_data="z" * 300000), "p", BOTH)

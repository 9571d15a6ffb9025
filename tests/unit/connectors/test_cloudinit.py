"""cloudinit.py: the user-data, meta-data and NoCloud seed ISO every connector that feeds cloud-init shares."""

from __future__ import annotations

import base64
import email
import io
import json
import struct
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

import pytest
import yaml

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import ProviderUnavailable
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import cloudinit
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import DEFAULT_GUEST_USER


def ed25519_key(seed: int = 1, comment: str = "me@host") -> str:
    """An OpenSSH ed25519 public key line (a well-formed blob; no private half exists for it)."""
    blob = struct.pack(">I", 11) + b"ssh-ed25519" + struct.pack(">I", 32) + bytes([seed]) * 32
    return "ssh-ed25519 %s %s" % (base64.b64encode(blob).decode("ascii"), comment)


KEY = ed25519_key()


def parts(text):
    """[(content type, headers, decoded text)] of the leaf parts of a MIME multipart user-data."""
    message = email.message_from_string(text)
    assert message.get_content_type() == "multipart/mixed"
    return [(p.get_content_type(), dict(p.items()), p.get_payload(decode=True).decode("utf-8"))
            for p in message.walk() if not p.is_multipart()]


def cloud_config(text):
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def test_nothing_to_add_leaves_user_data_as_it_is():
    assert cloudinit.guest_user_data(None, None) is None
    assert cloudinit.guest_user_data("#!/bin/sh\necho hi\n", None) == "#!/bin/sh\necho hi\n"
    # the image's default user (or none named) gets the key from the datasource's metadata
    assert cloudinit.guest_user_data("#!/bin/sh\n", {"username": None, "key": KEY}) == "#!/bin/sh\n"
    assert cloudinit.guest_user_data(None, {"username": DEFAULT_GUEST_USER, "key": KEY}) is None


def test_another_user_gets_a_cloud_config_part_then_the_callers_part():
    script = "#!/bin/sh\necho marker > /var/tmp/marker\n"
    found = parts(cloudinit.guest_user_data(script, {"username": "alice", "key": KEY}))
    assert [ctype for ctype, _h, _t in found] == ["text/cloud-config", "text/x-shellscript"]
    config = cloud_config(found[0][2])
    assert config["users"][0] == "default"
    assert config["users"][1] == {"name": "alice", "ssh_authorized_keys": [KEY], "sudo": "ALL=(ALL) NOPASSWD:ALL",
                                  "shell": "/bin/bash"}
    assert found[1][2] == script


def test_the_users_part_alone_without_user_data():
    found = parts(cloudinit.guest_user_data(None, {"username": "alice", "key": KEY}))
    assert [ctype for ctype, _h, _t in found] == ["text/cloud-config"]


def test_a_callers_cloud_config_appends_to_our_users():
    mine = "#cloud-config\nusers:\n  - name: bob\nruncmd: [[touch, /tmp/x]]\n"
    found = parts(cloudinit.guest_user_data(mine, {"username": "alice", "key": KEY}))
    assert [ctype for ctype, _h, _t in found] == ["text/cloud-config", "text/cloud-config"]
    assert found[1][1]["Merge-Type"] == cloudinit.APPEND_MERGE
    assert cloud_config(found[1][2])["users"] == [{"name": "bob"}]
    assert "Merge-Type" not in found[0][1]


@pytest.mark.parametrize("text, ctype", [
    ("#cloud-config-archive\n- type: text/cloud-config\n", "text/cloud-config-archive"),
    ("#include\nhttps://example.org/x\n", "text/x-include-url"),
    ("#include-once\nhttps://example.org/x\n", "text/x-include-once-url"),
    ("#cloud-boothook\n#!/bin/sh\n", "text/cloud-boothook"),
    ("## template: jinja\n#cloud-config\n", "text/jinja2"),
    ("just words\n", "text/plain"),
])
def test_the_callers_part_is_typed_by_its_first_line(text, ctype):
    found = parts(cloudinit.guest_user_data(text, {"username": "alice", "key": KEY}))
    assert found[1][0] == ctype and found[1][2] == text


def test_a_callers_multipart_is_nested_whole():
    inner = MIMEMultipart()
    inner.attach(MIMEText("#!/bin/sh\necho one\n", "x-shellscript"))
    inner.attach(MIMEText("#cloud-config\nruncmd: [ls]\n", "cloud-config"))
    found = parts(cloudinit.guest_user_data(inner.as_string(), {"username": "alice", "key": KEY}))
    assert [ctype for ctype, _h, _t in found] == ["text/cloud-config", "text/x-shellscript", "text/cloud-config"]


def test_non_ascii_user_data_survives():
    text = "#!/bin/sh\necho 'héllo wörld'\n"
    found = parts(cloudinit.guest_user_data(text, {"username": "alice", "key": KEY}))
    assert found[1][2] == text


def test_host_keys_alone_make_a_part():
    found = parts(cloudinit.guest_user_data(None, {"username": DEFAULT_GUEST_USER, "key": KEY},
                                            host_keys={"ed25519_private": "-----BEGIN X-----\nabc\n-----END X-----\n",
                                                       "ed25519_public": KEY}))
    config = cloud_config(found[0][2])
    assert "users" not in config
    assert config["ssh_keys"]["ed25519_private"].endswith("-----END X-----\n")


def test_meta_data_is_yaml():
    text = cloudinit.nocloud_meta_data("9f0c-42", "Web_1.example", [KEY])
    assert yaml.safe_load(text) == {"instance-id": "9f0c-42", "local-hostname": "web-1-example",
                                    "public-keys": [KEY]}
    tricky = cloudinit.nocloud_meta_data("i: d", "x", None)  # values quoted: a colon stays in the value
    assert yaml.safe_load(tricky) == {"instance-id": "i: d", "local-hostname": "x"}


@pytest.mark.parametrize("name, host", [("Web01", "web01"), ("a_b c", "a-b-c"), ("---", "sirocco"),
                                        ("x" * 80, "x" * 63)])
def test_host_name(name, host):
    assert cloudinit.host_name(name) == host


def test_credential_user():
    assert cloudinit.credential_user(None) is None
    assert cloudinit.credential_user({"key": KEY}) == DEFAULT_GUEST_USER
    assert cloudinit.credential_user({"username": "alice", "key": KEY}) == "alice"


def read_iso(data):
    pycdlib = pytest.importorskip("pycdlib")
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(data))
    return iso


def iso_file(iso, name, kind="rr_path"):
    out = io.BytesIO()
    iso.get_file_from_iso_fp(out, **{kind: "/" + name})
    return out.getvalue().decode("utf-8")


def test_nocloud_iso_holds_the_three_files_under_every_name():
    meta = cloudinit.nocloud_meta_data("iid-1", "guest", [KEY])
    user = cloudinit.guest_user_data("#!/bin/sh\necho hi\n", {"username": "alice", "key": KEY})
    network = json.dumps({"version": 2, "ethernets": {"all": {"match": {"name": "e*"}, "dhcp4": True}}})
    iso = read_iso(cloudinit.nocloud_iso(meta, user, network))
    try:
        assert iso.pvd.volume_identifier.decode("ascii").strip() == "cidata"
        for kind in ("rr_path", "joliet_path"):
            assert iso_file(iso, "meta-data", kind) == meta
            assert iso_file(iso, "user-data", kind) == user
            assert iso_file(iso, "network-config", kind) == network
        names = sorted(child.rock_ridge.name().decode() for child in iso.list_children(rr_path="/")
                       if child.rock_ridge is not None and not child.is_dot() and not child.is_dotdot())
        assert names == ["meta-data", "network-config", "user-data"]
    finally:
        iso.close()


def test_nocloud_iso_without_user_data_or_network_config():
    iso = read_iso(cloudinit.nocloud_iso(cloudinit.nocloud_meta_data("iid-2", "g"), None))
    try:
        assert iso_file(iso, "user-data") == ""  # NoCloud needs the file, even empty
        names = [child.rock_ridge.name().decode() for child in iso.list_children(rr_path="/")
                 if child.rock_ridge is not None and not child.is_dot() and not child.is_dotdot()]
        assert sorted(names) == ["meta-data", "user-data"]
    finally:
        iso.close()


def test_nocloud_iso_without_pycdlib_names_the_package(monkeypatch):
    monkeypatch.setattr(cloudinit, "pycdlib", None)
    monkeypatch.setattr(cloudinit, "PYCDLIB_IMPORT_ERROR", ImportError("No module named 'pycdlib'"))
    with pytest.raises(ProviderUnavailable, match="pycdlib") as info:
        cloudinit.nocloud_iso("instance-id: x\n", None, provider="xenserver")
    assert "xenserver" in str(info.value)

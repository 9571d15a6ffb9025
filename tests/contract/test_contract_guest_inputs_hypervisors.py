"""Guest inputs on the hypervisors that hand cloud-init its data themselves: vSphere (``guestinfo.*`` in the
VM's extraConfig, for cloud-init's VMware datasource) and XenServer (a config drive VDI holding a NoCloud seed
ISO). What the provider received is read back through its own API, not through the connector under test:
pyvmomi on vcsim, and XenAPI plus XAPI's HTTP ``GET /export_raw_vdi`` on the XAPI stand-in (the ISO parsed
with pycdlib). Bad input is refused before anything is created; deleting a XenServer machine takes its config
drive with it, and nothing else.

The tests run on every stand-in of the suite (the ``connector``/``standin`` fixtures) and skip, saying why, on
the others: their guest inputs are read back in test_contract_guest_inputs.py or their connector's own files.
"""

from __future__ import annotations

import base64
import email
import io
import json
import ssl
import urllib.request
from urllib.parse import urlencode, urlsplit

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import DEFAULT_GUEST_USER, USER_PROPERTY

USER_DATA = "#!/bin/sh\necho 'déjà vu' > /var/tmp/sirocco-marker\n"


def new_key(comment="ci@sirocco"):
    """A fresh OpenSSH ed25519 public key line."""
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")
    return "%s %s" % (line, comment)


def leaf_parts(text):
    """[(content type, decoded text)] of a MIME multipart user-data's leaf parts."""
    message = email.message_from_string(text)
    assert message.get_content_type() == "multipart/mixed", text[:200]
    return [(p.get_content_type(), p.get_payload(decode=True).decode("utf-8"))
            for p in message.walk() if not p.is_multipart()]


def users_part(parts):
    ctype, text = parts[0]
    assert ctype == "text/cloud-config" and text.startswith("#cloud-config\n")
    return yaml.safe_load(text)["users"]


# -- reading a provider back -------------------------------------------------------------------------------------
class VsphereReader:
    """vcsim through pyvmomi: a machine's extraConfig, and the machines (by name) the provider has."""

    user_data_limit = 64 * 1024  # bytes of base64 in guestinfo.userdata

    def __init__(self, standin):
        from pyVim.connect import SmartConnect
        from pyVmomi import vim

        self.vim = vim
        parts = urlsplit(standin.sim.url)
        self.si = SmartConnect(host=parts.hostname, port=parts.port or 443, user=standin.sim.username,
                               pwd=standin.sim.password, disableSslCertValidation=True)
        self.content = self.si.RetrieveContent()

    def _vm(self, machine_id):
        vm = self.content.searchIndex.FindByUuid(None, machine_id, True, True)
        return vm or self.content.searchIndex.FindByUuid(None, machine_id, True, False)

    def extra_config(self, machine_id):
        return {o.key: o.value for o in self._vm(machine_id).config.extraConfig}

    def guestinfo(self, machine_id):
        """(metadata as a dict or None, user-data text or None), decoded as cloud-init's datasource does."""
        config = self.extra_config(machine_id)
        found = []
        for key in ("guestinfo.metadata", "guestinfo.userdata"):
            value = config.get(key) or None
            if value is not None:
                assert config.get(key + ".encoding") == "base64"
                value = base64.b64decode(value).decode("utf-8")
            found.append(value)
        return (json.loads(found[0]) if found[0] else None), found[1]

    def names(self):
        view = self.content.viewManager.CreateContainerView(self.content.rootFolder, [self.vim.VirtualMachine], True)
        try:
            return {vm.name for vm in view.view}
        finally:
            view.Destroy()

    def close(self):
        from pyVim.connect import Disconnect

        Disconnect(self.si)


class XapiReader:
    """The XAPI stand-in through the XenAPI package and XAPI's HTTP handler GET /export_raw_vdi."""

    user_data_limit = 1024 * 1024  # CONFIG_DRIVE_USER_DATA_LIMIT, bytes of UTF-8

    def __init__(self, standin):
        import XenAPI

        self.url = standin.server.url
        self.session = XenAPI.Session(self.url)
        self.session.xenapi.login_with_password(standin.server.username, standin.server.password, "2.21",
                                                "contract-guest-inputs")
        self.api = self.session.xenapi

    def drives(self, machine_id):
        """[(VBD record, VDI record)] of the machine's config drives (VDIs tagged sirocco-config-drive)."""
        vm = self.api.VM.get_by_uuid(machine_id)
        found = []
        for vbd in self.api.VM.get_VBDs(vm):
            record = self.api.VBD.get_record(vbd)
            if record["VDI"] != "OpaqueRef:NULL":
                vdi = self.api.VDI.get_record(record["VDI"])
                if "sirocco-config-drive" in vdi["other_config"]:
                    found.append((record, vdi))
        return found

    def vdi_bytes(self, vdi_uuid):
        """The VDI's contents, as XAPI exports them (raw)."""
        query = urlencode({"session_id": self.session.handle, "vdi": vdi_uuid, "format": "raw"})
        context = ssl.create_default_context() if self.url.startswith("https") else None
        with urllib.request.urlopen(self.url.rstrip("/") + "/export_raw_vdi?" + query, timeout=30,
                                    context=context) as reply:
            assert reply.status == 200
            return reply.read()

    def seed(self, vdi_uuid):
        """{name: text} of the files of the NoCloud seed ISO in the VDI, and its volume label."""
        import pycdlib

        iso = pycdlib.PyCdlib()
        iso.open_fp(io.BytesIO(self.vdi_bytes(vdi_uuid)))
        try:
            files = {}
            for child in iso.list_children(rr_path="/"):
                if child.is_dot() or child.is_dotdot() or child.rock_ridge is None:
                    continue
                name = child.rock_ridge.name().decode("utf-8")
                out = io.BytesIO()
                iso.get_file_from_iso_fp(out, rr_path="/" + name)
                files[name] = out.getvalue().decode("utf-8")
            return iso.pvd.volume_identifier.decode("ascii").strip(), files
        finally:
            iso.close()

    def vdi_uuids(self):
        return {r["uuid"] for r in self.api.VDI.get_all_records().values()}

    def names(self):
        return {r["name_label"] for r in self.api.VM.get_all_records().values()}

    def close(self):
        self.api.session.logout()


READERS = {"vsphere-esx": VsphereReader, "vsphere-vc": VsphereReader, "xenserver-xapi": XapiReader}


@pytest.fixture
def reader(standin, caps):
    if standin.id not in READERS:
        pytest.skip("%s: this file reads back the hypervisors that carry cloud-init's data themselves (vSphere, "
                    "XenServer); the other providers' guest inputs are read back in test_contract_guest_inputs.py "
                    "or their connector's own tests" % standin.id)
    assert {"userData", "credential"} <= set(caps.guest_inputs), caps.guest_inputs
    peer = READERS[standin.id](standin)
    try:
        yield peer
    finally:
        peer.close()


def delivered(standin, reader, machine):
    """(meta-data dict, user-data text or None) as the provider holds them for the machine."""
    if standin.id.startswith("vsphere"):
        return reader.guestinfo(machine.id)
    drives = reader.drives(machine.id)
    assert len(drives) == 1, drives
    vbd, vdi = drives[0]
    assert (vbd["type"], vbd["mode"], vbd["bootable"], vdi["type"]) == ("Disk", "RO", False, "system")
    assert vdi["other_config"]["sirocco-config-drive"] == machine.id
    label, files = reader.seed(vdi["uuid"])
    assert label == "cidata"
    assert set(files) == {"meta-data", "user-data"}
    return yaml.safe_load(files["meta-data"]), files["user-data"] or None


@pytest.mark.parametrize("from_image", [False, True], ids=["blank", "from-image"])
def test_another_users_key_and_user_data_reach_the_provider(standin, connector, reader, make_spec, from_image):
    key = new_key()
    image = standin.image if from_image else None
    spec = make_spec(image=image, user_data=USER_DATA, credential={"username": "alice", "key": key + "\n"})
    m = connector.create_machine(spec)
    metadata, user_data = delivered(standin, reader, m)
    assert metadata["instance-id"] and metadata["local-hostname"] == spec.name
    keys = metadata.get("public-keys-data") or metadata.get("public-keys")
    assert key in (keys if isinstance(keys, list) else [keys])
    parts = leaf_parts(user_data)
    assert users_part(parts)[1] == {"name": "alice", "ssh_authorized_keys": [key], "shell": "/bin/bash",
                                    "sudo": "ALL=(ALL) NOPASSWD:ALL"}
    assert parts[1] == ("text/x-shellscript", USER_DATA)
    assert m.properties[USER_PROPERTY] == "alice"
    assert connector.get_machine(m.id).properties[USER_PROPERTY] == "alice"
    # the config drive is no disk of the machine: a blank one has none, one from an image its image's
    assert len(m.disks) == (1 if from_image else 0)


def test_the_default_users_key_goes_in_the_metadata_only(standin, connector, reader, make_spec):
    key = new_key()
    m = connector.create_machine(make_spec(user_data=USER_DATA, credential={"key": key}))
    metadata, user_data = delivered(standin, reader, m)
    keys = metadata.get("public-keys-data") or metadata.get("public-keys")
    assert key in (keys if isinstance(keys, list) else [keys])
    assert user_data == USER_DATA  # nothing added: the caller's userData as it was
    assert m.properties[USER_PROPERTY] == DEFAULT_GUEST_USER


def test_user_data_alone(standin, connector, reader, make_spec):
    m = connector.create_machine(make_spec(user_data=USER_DATA))
    metadata, user_data = delivered(standin, reader, m)
    assert user_data == USER_DATA
    assert not (metadata or {}).get("public-keys-data") and not (metadata or {}).get("public-keys")
    assert USER_PROPERTY not in (m.properties or {})


def test_a_started_machine_with_its_config_drive(standin, connector, reader, make_spec):
    m = connector.create_machine(make_spec(initial_state=states.STARTED, credential={"key": new_key()}))
    m = connector.wait_for_machine(m.id, states.STABLE_MACHINE_STATES, timeout=60)
    assert m.state == states.STARTED
    assert delivered(standin, reader, m)[0]


@pytest.mark.parametrize("case", ["user_data_too_long", "credential_without_key", "credential_with_password",
                                  "bad_user_name"])
def test_bad_input_is_refused_before_anything_is_made(standin, connector, reader, make_spec, case):
    names = reader.names()
    vdis = reader.vdi_uuids() if hasattr(reader, "vdi_uuids") else None
    kwargs, attribute = {
        "user_data_too_long": ({"user_data": "#!/bin/sh\n" + "x" * reader.user_data_limit}, "userData"),
        "credential_without_key": ({"credential": {"username": "alice"}}, "credential.key"),
        "credential_with_password": ({"credential": {"username": "alice", "password": "s3cret"}},
                                     "credential.password"),
        "bad_user_name": ({"credential": {"username": "Root User", "key": new_key()}}, "credential.userName"),
    }[case]
    spec = make_spec(**kwargs)
    with pytest.raises(InvalidInput) as info:
        connector.create_machine(spec)
    assert info.value.attribute == attribute
    assert attribute.split(".")[-1] in str(info.value)
    assert spec.name not in reader.names() and reader.names() == names
    if vdis is not None:
        assert reader.vdi_uuids() == vdis


def test_user_data_with_the_users_part_over_the_limit_is_refused(standin, connector, reader, make_spec):
    """vSphere's limit holds for what guestinfo.userdata gets, the credential's part included."""
    if not standin.id.startswith("vsphere"):
        pytest.skip("%s: the config drive's limit is on the caller's userData only" % standin.id)
    names = reader.names()
    near = reader.user_data_limit * 3 // 4 - 64  # within the limit alone, not with the users part
    spec = make_spec(user_data="#!/bin/sh\n" + "x" * near, credential={"username": "alice", "key": new_key()})
    with pytest.raises(InvalidInput) as info:
        connector.create_machine(spec)
    assert info.value.attribute == "userData"
    assert reader.names() == names


def test_deleting_the_machine_deletes_its_config_drive_only(standin, connector, reader, make_spec):
    if not standin.id.startswith("xenserver"):
        pytest.skip("%s: guest inputs live in the machine's own configuration (nothing apart to delete)"
                    % standin.id)
    before = reader.vdi_uuids()
    keep = connector.create_machine(make_spec(user_data=USER_DATA))
    m = connector.create_machine(make_spec(image=standin.image, user_data=USER_DATA, credential={"key": new_key()}))
    drive = reader.drives(m.id)[0][1]["uuid"]
    kept_drive = reader.drives(keep.id)[0][1]["uuid"]
    assert len(m.disks) == len(connector.get_machine(m.id).disks) == 1  # the image's disk, not the drive
    connector.delete_machine(m.id)
    after = reader.vdi_uuids()
    assert drive not in after and kept_drive in after
    assert after - before == {kept_drive}


def test_a_captured_image_keeps_no_guest_inputs(standin, connector, reader, make_spec):
    """An image made from a machine carries neither its key nor its userData: a machine made from it gets its
    own (XenServer: the config drive stays out of the snapshot; vCenter: the template's extraConfig has no
    guestinfo and no user property)."""
    if standin.id == "vsphere-esx":
        pytest.skip("vsphere-esx: an ESX image is a copy of the machine's disk file, which holds no extraConfig")
    m = connector.create_machine(make_spec(image=standin.image, user_data=USER_DATA,
                                           credential={"username": "alice", "key": new_key()}))
    image = connector.capture_machine(m.id, standin.name("img"))
    try:
        assert USER_PROPERTY not in (image.properties or {})
        if standin.id.startswith("xenserver"):
            template = reader.api.VM.get_by_uuid(image.id)
            vdis = [reader.api.VBD.get_VDI(v) for v in reader.api.VM.get_VBDs(template)]
            assert vdis and not any("sirocco-config-drive" in reader.api.VDI.get_other_config(v) for v in vdis)
        else:
            kept = {k: v for k, v in reader.extra_config(image.id).items() if v}
            assert not [k for k in kept if k.startswith("guestinfo.") or k == "sirocco." + USER_PROPERTY], kept
        again = connector.create_machine(make_spec(image=image.id))
        assert USER_PROPERTY not in (again.properties or {})
        if standin.id.startswith("xenserver"):
            assert reader.drives(again.id) == []
        else:
            assert reader.guestinfo(again.id) == (None, None)
        connector.delete_machine(again.id)
    finally:
        connector.delete_machine(m.id)
        connector.delete_machine_image(image.id)

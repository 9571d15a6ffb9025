"""xenserver connector, machine_image.import against the XAPI stand-in: what the contract does not check.

The bytes the stand-in keeps for the VDI (read back with XAPI's GET /export_raw_vdi) are the raw disk, whatever
the file uploaded (raw, fixed VHD, dynamic VHD); the template boots from that VDI with the firmware asked;
a machine cloned from it carries the disk; what is refused is refused before anything is left behind.
"""

import hashlib
import http.client
import importlib.util
import struct
import subprocess
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import XenAPI

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    ProviderUnavailable,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import xenserver
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    IMAGE_NAME_PROPERTY,
    DiskImage,
    MachineSpec,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.xenserver import XenServerConnector

CONTROL = Path(__file__).resolve().parents[2] / "standins" / "xapi" / "control.py"
MIB = 1024 * 1024
SIZE = 6 * MIB


@pytest.fixture(scope="module")
def server():
    spec = importlib.util.spec_from_file_location("sirocco_xapi_standin_control", CONTROL)
    control = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(control)
    standin = control.start(password="s3cret")
    yield standin
    standin.stop()


@pytest.fixture
def conn(server):
    with XenServerConnector(uri=server.url, username="root", password="s3cret", timeout=30) as connector:
        yield connector


@pytest.fixture
def api(server):
    session = XenAPI.Session(server.url)
    session.xenapi.login_with_password("root", "s3cret", "2.21", "unit-test")
    yield session
    session.xenapi.session.logout()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 6 MiB raw disk (data in its first sector and further on), its fixed and dynamic VHDs by qemu-img."""
    root = tmp_path_factory.mktemp("image")
    raw = root / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(SIZE)
        handle.write(hashlib.sha256(b"boot").digest() * 16)
        handle.seek(510)
        handle.write(b"\x55\xaa")
        handle.seek(4 * MIB + 1024)
        handle.write(hashlib.sha256(b"data").digest() * 4096)
    out = {"raw": raw}
    for name, subformat in (("fixed", "fixed"), ("dynamic", "dynamic")):
        out[name] = root / ("%s.vhd" % name)
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=%s,force_size=on" % subformat,
                        str(raw), str(out[name])], check=True, capture_output=True)
    return out


def exported(server, api, vdi):
    """The VDI's bytes as the stand-in keeps them (GET /export_raw_vdi)."""
    conn = http.client.HTTPConnection(urlsplit(server.url).netloc, timeout=30)
    try:
        conn.request("GET", "/export_raw_vdi?" + urlencode({"session_id": api._session, "vdi": vdi, "format": "raw"}))
        response = conn.getresponse()
        assert response.status == 200
        return response.read()
    finally:
        conn.close()


def template_disk(api, image):
    """(template record, its VBD record, the VDI ref) of an imported image."""
    vm = api.xenapi.VM.get_by_uuid(image.id)
    record = api.xenapi.VM.get_record(vm)
    (vbd,) = record["VBDs"]
    vbd = api.xenapi.VBD.get_record(vbd)
    return record, vbd, vbd["VDI"]


@pytest.mark.parametrize("kind", ["raw", "fixed", "dynamic"])
def test_the_vdi_holds_the_raw_disk(server, conn, api, files, kind):
    fmt = "raw" if kind == "raw" else "vhd"
    image = DiskImage(name="ut-import-%s" % kind, files={fmt: str(files[kind])}, virtual_size=SIZE,
                      generic_name="ut-generic-%s" % kind, properties={"owner": "unit"})
    got = conn.import_machine_image(image)
    try:
        assert got.properties == {"sirocco.image": "ut-generic-%s" % kind, "sirocco.format": fmt,
                                  "sirocco.size": str(SIZE), "sirocco.arch": "x86_64", "owner": "unit"}
        record, vbd, vdi = template_disk(api, got)
        assert exported(server, api, vdi) == files["raw"].read_bytes()
        assert api.xenapi.VDI.get_virtual_size(vdi) == str(SIZE)
        assert record["is_a_template"] and record["HVM_boot_params"] == {"order": "c", "firmware": "bios"}
        assert vbd["bootable"] and vbd["userdevice"] == "0" and vbd["mode"] == "RW"
        assert record["other_config"]["sirocco:" + IMAGE_NAME_PROPERTY] == "ut-generic-%s" % kind
        assert not any(task["name_label"].startswith("sirocco: import")
                       for task in api.xenapi.task.get_all_records().values())  # our task is gone
    finally:
        conn.delete_machine_image(got.id)
    assert not api.xenapi.VDI.get_by_name_label(image.name)  # delete_machine_image destroyed its VDI


def test_uefi_template_and_a_machine_made_from_it(server, conn, api, files):
    image = DiskImage(name="ut-import-uefi", files={"raw": str(files["raw"])}, virtual_size=SIZE, boot="uefi")
    got = conn.import_machine_image(image)
    record = template_disk(api, got)[0]
    assert record["HVM_boot_params"] == {"order": "c", "firmware": "uefi"}
    assert record["platform"]["secureboot"] == "false"
    config = MachineConfiguration(cpu=1, memory=128 * 1024)
    machine = conn.create_machine(MachineSpec(name="ut-from-import", config=config, image=got.id))
    try:
        assert [d.capacity for d in machine.disks] == [SIZE // 1024] and not machine.volumes
        assert not machine.properties  # the image's facts stay on the image
        vm = api.xenapi.VM.get_by_uuid(machine.id)
        (vbd,) = api.xenapi.VM.get_VBDs(vm)
        assert exported(server, api, api.xenapi.VBD.get_VDI(vbd)) == files["raw"].read_bytes()
        with pytest.raises(Conflict):  # in use by the machine
            conn.delete_machine_image(got.id)
    finally:
        conn.delete_machine(machine.id)
        conn.delete_machine_image(got.id)


def test_refused_before_anything_is_made(server, conn, api, files, tmp_path):
    def vdis():
        return set(api.xenapi.VDI.get_all())

    before = vdis()
    vhd = str(files["dynamic"])
    with pytest.raises(InvalidInput, match="more than its virtual_size"):  # the VHD holds a bigger disk
        conn.import_machine_image(DiskImage(name="ut-too-big", files={"vhd": vhd}, virtual_size=SIZE - MIB))
    with pytest.raises(InvalidInput, match="checksum"):
        conn.import_machine_image(DiskImage(name="ut-bad-sum", files={"vhd": vhd}, virtual_size=SIZE,
                                            checksums={"vhd": "0" * 64}))
    with pytest.raises(InvalidInput, match="no valid VHD footer"):
        conn.import_machine_image(DiskImage(name="ut-not-vhd", files={"vhd": str(files["raw"])}, virtual_size=SIZE))
    with pytest.raises(InvalidInput):
        conn.import_machine_image(DiskImage(name="ut-arm", files={"raw": str(files["raw"])}, virtual_size=SIZE,
                                            arch="aarch64"))
    assert vdis() == before


def damaged(files, tmp_path, name, at, data):
    """A copy of the dynamic VHD with ``data`` written at byte ``at`` (negative: from the end)."""
    copy = bytearray(files["dynamic"].read_bytes())
    at = at if at >= 0 else len(copy) + at
    copy[at:at + len(data)] = data
    path = tmp_path / name
    path.write_bytes(bytes(copy))
    return str(path)


def test_a_damaged_vhd_is_refused_before_the_upload(server, conn, api, files, tmp_path):
    """Whatever vhd-tool could not read (it would fail after the 200, as VDI_IO_ERROR) is refused first."""
    before = set(api.xenapi.VDI.get_all())
    raw = files["dynamic"].read_bytes()
    (tmp_path / "truncated.vhd").write_bytes(raw[:-4096] + raw[-512:])  # the last block cut off
    header = struct.unpack_from(">Q", raw, 16)[0]
    table = struct.unpack_from(">Q", raw, header + 16)[0]
    cases = {
        damaged(files, tmp_path, "header.vhd", header, b"notavhd!"): "header is damaged",
        damaged(files, tmp_path, "nohead.vhd", 0, bytes(512)): "no copy of its footer",
        damaged(files, tmp_path, "bat.vhd", table, struct.pack(">I", 0x00FFFFFF)): "outside the file",
        str(tmp_path / "truncated.vhd"): "outside the file",
    }
    for path, why in cases.items():
        with pytest.raises(InvalidInput, match=why):
            conn.import_machine_image(DiskImage(name="ut-damaged", files={"vhd": path}, virtual_size=SIZE))
    assert set(api.xenapi.VDI.get_all()) == before


def test_a_failed_upload_leaves_nothing(server, conn, api, files, tmp_path, monkeypatch):
    """The file changes between the connector's checks and the upload (its header damaged): the stand-in's
    vhd-tool reader fails the task after the 200 (VDI_IO_ERROR, as xapi); the connector reports it and removes
    its VDI and task."""
    path = tmp_path / "changing.vhd"
    path.write_bytes(files["dynamic"].read_bytes())
    checked = xenserver.vhd_upload

    def check_then_damage(name):
        result = checked(name)
        with open(name, "r+b") as handle:
            handle.seek(512)
            handle.write(b"notavhd!")
        return result

    monkeypatch.setattr(xenserver, "vhd_upload", check_then_damage)
    tasks = set(api.xenapi.task.get_all())
    with pytest.raises(ProviderUnavailable, match="VDI_IO_ERROR"):
        conn.import_machine_image(DiskImage(name="ut-broken", files={"vhd": str(path)}, virtual_size=SIZE))
    assert not api.xenapi.VDI.get_by_name_label("ut-broken")
    assert "ut-broken" not in {i.name for i in conn.list_machine_images()}
    assert set(api.xenapi.task.get_all()) <= tasks

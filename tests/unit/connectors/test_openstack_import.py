"""openstack connector, machine_image.import: the pure helpers (Glance properties written and read back, the
disk file checked before any upload) and what is refused before Glance is asked anything."""

from __future__ import annotations

import hashlib
import struct

import openstack.image.v2.image as sdk_image
import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, Unsupported
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import openstack as osc
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    IMAGE_ARCH_PROPERTY,
    IMAGE_FORMAT_PROPERTY,
    IMAGE_NAME_PROPERTY,
    IMAGE_SIZE_PROPERTY,
    DiskImage,
)

MIB = 1024 * 1024


def _qcow2(path, virtual, backing_offset=0):
    """The 32 first bytes of a qcow2 header (magic, version 3, backing file offset and size, cluster bits,
    virtual size) and some padding: all disk_file_facts reads."""
    header = b"QFI\xfb" + struct.pack(">IQIIQ", 3, backing_offset, 0, 16, virtual)
    path.write_bytes(header + b"\0" * 4064)
    return path


def test_glance_archs_are_known_both_ways():
    for cimi, glance in osc.GLANCE_ARCHS.items():
        assert osc.ARCHS[glance] == cimi  # what an import writes reads back as the same cpuArch


def test_import_properties_hold_the_facts_the_firmware_and_the_description():
    image = DiskImage(name="web", files={"qcow2": "x"}, virtual_size=8 * MIB, boot="uefi", generic_name="debian-12",
                      description="a web server", properties={"os_distro": "debian"})
    props = osc.import_properties(image, "qcow2")
    assert props == {IMAGE_FORMAT_PROPERTY: "qcow2", IMAGE_SIZE_PROPERTY: str(8 * MIB), IMAGE_ARCH_PROPERTY: "x86_64",
                     IMAGE_NAME_PROPERTY: "debian-12", "hw_firmware_type": "uefi", "description": "a web server",
                     "os_distro": "debian"}
    bare = osc.import_properties(DiskImage(name="web", virtual_size=MIB), "raw")
    assert bare["hw_firmware_type"] == "bios" and "description" not in bare and IMAGE_NAME_PROPERTY not in bare


@pytest.mark.parametrize("properties", [
    {"min_disk": "1"}, {"visibility": "public"}, {"architecture": "x86_64"}, {"hw_firmware_type": "uefi"},
    {"os_glance_import_task": "x"}, {"owner_specified.openstack.md5": "x"}, {"stores": "file"},
    {"instance_uuid": "x"}, {"k": 1}, {"k" * 256: "v"},
])
def test_import_properties_refuse_names_glance_or_the_import_owns(properties):
    with pytest.raises(InvalidInput) as info:
        osc.import_properties(DiskImage(name="web", virtual_size=MIB, properties=properties), "raw")
    assert info.value.attribute == "properties"


def test_a_long_description_is_refused():
    with pytest.raises(InvalidInput):
        osc.import_properties(DiskImage(name="web", virtual_size=MIB, description="d" * 256), "raw")


def test_glance_properties_by_their_wire_names():
    """openstacksdk files some properties as attributes of its own (typed), the others in ``properties``:
    both read back, as the strings Glance keeps; Glance's own attributes are not properties."""
    image = sdk_image.Image.existing(**{
        "id": "i-1", "name": "web", "status": "active", "disk_format": "qcow2", "container_format": "bare",
        "min_disk": 1, "min_ram": 0, "size": 123, "virtual_size": 8 * MIB, "checksum": "abc", "visibility": "private",
        "protected": False, "os_hidden": False, "tags": [], "owner": "p-1", "file": "/v2/images/i-1/file",
        "schema": "/v2/schemas/image", "architecture": "x86_64", "os_distro": "debian", "hw_cpu_sockets": "2",
        "hw_vif_multiqueue_enabled": "true", "sirocco.image": "debian-12", "hw_firmware_type": "uefi",
        "owner_specified.openstack.md5": "abc", "stores": "file", "description": "d"})
    props = osc.glance_properties(image)
    assert {"architecture": "x86_64", "os_distro": "debian", "hw_cpu_sockets": "2",
            "hw_vif_multiqueue_enabled": "true", "sirocco.image": "debian-12",
            "hw_firmware_type": "uefi"}.items() <= props.items()
    assert not props.keys() & {"id", "name", "status", "disk_format", "min_disk", "size", "virtual_size",
                               "visibility", "protected", "os_hidden", "tags", "owner", "file", "schema",
                               "properties"}
    owned = osc.image_properties(props)
    assert owned == {"architecture": "x86_64", "os_distro": "debian", "hw_cpu_sockets": "2",
                     "hw_vif_multiqueue_enabled": "true", "sirocco.image": "debian-12", "hw_firmware_type": "uefi"}


def test_image_properties_leave_the_bookkeeping_out():
    props = {"sirocco.format": "raw", "os_glance_importing_to_stores": "", "owner_specified.openstack.sha256": "x",
             "base_image_ref": "i-0", "image_type": "snapshot", "instance_uuid": "s-1", "user_id": "u",
             "owner_id": "p", "boot_roles": "member", "description": "d", "stores": "file", "not_a_string": 3}
    assert osc.image_properties(props) == {"sirocco.format": "raw"}
    assert osc.image_properties(None) == {}


def test_disk_file_facts_of_a_raw_disk(tmp_path):
    data = hashlib.sha256(b"tiny").digest() * 32768  # 1 MiB
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    virtual, md5, sha256, size = osc.disk_file_facts("raw", str(path))
    assert (virtual, size) == (MIB, MIB)
    assert md5 == hashlib.md5(data).hexdigest() and sha256 == hashlib.sha256(data).hexdigest()


def test_disk_file_facts_of_a_qcow2_read_its_header(tmp_path):
    path = _qcow2(tmp_path / "disk.qcow2", 8 * MIB)
    virtual, _md5, _sha, size = osc.disk_file_facts("qcow2", str(path))
    assert (virtual, size) == (8 * MIB, 4096)


@pytest.mark.parametrize("fmt, content", [
    ("qcow2", b"not a qcow2 at all" * 4),
    ("qcow2", b"QFI\xfb"),  # a truncated header
    ("raw", b"QFI\xfb" + b"\0" * 60),  # a qcow2 uploaded as raw: Nova would hand its backing file to QEMU
    ("raw", b"KDMV" + b"\0" * 60),
    ("raw", b"vhdxfile" + b"\0" * 60),
    ("raw", b"conectix" + b"\0" * 60),
])
def test_disk_file_facts_refuse_a_file_in_another_format(tmp_path, fmt, content):
    path = tmp_path / "disk"
    path.write_bytes(content)
    with pytest.raises(InvalidInput) as info:
        osc.disk_file_facts(fmt, str(path))
    assert info.value.attribute == "files"


def test_disk_file_facts_refuse_a_qcow2_with_a_backing_file(tmp_path):
    path = _qcow2(tmp_path / "overlay.qcow2", 8 * MIB, backing_offset=512)
    with pytest.raises(InvalidInput, match="backing file"):
        osc.disk_file_facts("qcow2", str(path))


def test_disk_file_facts_of_a_missing_file(tmp_path):
    with pytest.raises(InvalidInput) as info:
        osc.disk_file_facts("raw", str(tmp_path / "absent.raw"))
    assert info.value.attribute == "files" and "absent.raw" in str(info.value)


def test_import_is_refused_before_glance_is_asked(tmp_path):
    """Everything is checked before any call to Glance: the connector here has no reachable Keystone, and a
    bad image must fail with InvalidInput, not ProviderUnavailable."""
    conn = osc.OpenStackConnector(uri="http://127.0.0.1:1/v3", username="u", password="p")
    conn._catalog = frozenset({"identity", "compute", "image"})
    raw = tmp_path / "disk.raw"
    raw.write_bytes(b"\1" * MIB)
    good = {"name": "web", "files": {"raw": str(raw)}, "virtual_size": MIB}
    for bad, attribute in (({"files": {"vmdk": str(raw)}}, "files"), ({"virtual_size": 2 * MIB}, "virtual_size"),
                           ({"checksums": {"raw": "0" * 64}}, "checksums"), ({"arch": "sparc"}, "arch"),
                           ({"boot": "coreboot"}, "boot"), ({"name": "n" * 256}, "name"),
                           ({"properties": {"visibility": "public"}}, "properties")):
        with pytest.raises(InvalidInput) as info:
            conn.import_machine_image(DiskImage(**dict(good, **bad)))
        assert info.value.attribute == attribute, bad
    conn._catalog = frozenset({"identity", "compute"})  # no image service: no import
    assert "machine_image.import" not in conn.implemented_operations()
    assert conn.import_formats() == ()
    with pytest.raises(Unsupported):
        conn.import_machine_image(DiskImage(**good))
    conn._catalog = frozenset({"identity", "compute", "image"})
    assert conn.import_formats() == ("qcow2", "raw")

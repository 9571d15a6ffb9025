"""vSphere connector, machine_image.import: the OVF descriptor builder, the streamOptimized vmdk check, the
lease's device URL, and what is refused before any endpoint is asked (no vSphere endpoint needed)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import types
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    InvalidInput,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import vsphere
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import DiskImage

pytest.importorskip("pyVmomi")

MIB = 1024 * 1024
NS = {"ovf": "http://schemas.dmtf.org/ovf/envelope/1",
      "rasd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData",
      "vssd": "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData",
      "vmw": "http://www.vmware.com/schema/ovf"}


def _attr(element, name, ns="ovf"):
    return element.get("{%s}%s" % (NS[ns], name))


def _descriptor(name="web", firmware="efi", guest=("otherLinux64Guest", 101)):
    return ET.fromstring(vsphere.ovf_descriptor(name, name + "-disk1.vmdk", 138752, 8 * MIB, guest[0], guest[1],
                                                firmware).encode("utf-8"))


def test_ovf_descriptor_of_one_streamoptimized_disk():
    env = _descriptor()
    assert env.tag == "{%s}Envelope" % NS["ovf"]
    (ref,) = env.findall("ovf:References/ovf:File", NS)
    assert (_attr(ref, "href"), _attr(ref, "id"), _attr(ref, "size")) == ("web-disk1.vmdk", "file1", "138752")
    (disk,) = env.findall("ovf:DiskSection/ovf:Disk", NS)
    assert _attr(disk, "fileRef") == "file1" and _attr(disk, "diskId") == "vmdisk1"
    assert (_attr(disk, "capacity"), _attr(disk, "capacityAllocationUnits")) == (str(8 * MIB), "byte")
    assert _attr(disk, "format").endswith("vmdk.html#streamOptimized")
    system = env.find("ovf:VirtualSystem", NS)
    assert _attr(system, "id") == "web" and system.find("ovf:Name", NS).text == "web"
    os_section = system.find("ovf:OperatingSystemSection", NS)
    assert _attr(os_section, "id") == "101" and _attr(os_section, "osType", "vmw") == "otherLinux64Guest"
    hardware = system.find("ovf:VirtualHardwareSection", NS)
    assert hardware.find("ovf:System/vssd:VirtualSystemType", NS).text == vsphere.OVF_HARDWARE
    (config,) = hardware.findall("vmw:Config", NS)
    assert (_attr(config, "key", "vmw"), _attr(config, "value", "vmw"), _attr(config, "required")) == \
        ("firmware", "efi", "false")
    assert env.find("ovf:NetworkSection", NS) is None  # a machine made from the template gets its own


def test_ovf_descriptor_hardware_items():
    items = {}
    for item in _descriptor().findall("ovf:VirtualSystem/ovf:VirtualHardwareSection/ovf:Item", NS):
        fields = {child.tag.split("}", 1)[1]: child.text for child in item}
        # the RASD schema is a sequence in alphabetical order; vCenter refuses another order
        assert list(fields) == sorted(fields)
        items[fields["ResourceType"]] = fields
    assert set(items) == {"3", "4", "6", "17"}  # CPU, memory, SCSI controller, disk
    assert items["3"]["VirtualQuantity"] == str(vsphere.OVF_CPUS)
    assert (items["4"]["VirtualQuantity"], items["4"]["AllocationUnits"]) == (str(vsphere.OVF_MEMORY_MB),
                                                                              "byte * 2^20")
    assert items["6"]["ResourceSubType"] == "VirtualSCSI"  # paravirtual, like the connector's own machines
    disk = items["17"]
    assert disk["Parent"] == items["6"]["InstanceID"] and disk["HostResource"] == "ovf:/disk/vmdisk1"
    assert disk["AddressOnParent"] == "0"
    assert len({i["InstanceID"] for i in items.values()}) == 4


def test_ovf_descriptor_bios_and_32_bit():
    env = _descriptor(firmware="bios", guest=vsphere.IMPORT_GUESTS["x86"])
    config = env.find("ovf:VirtualSystem/ovf:VirtualHardwareSection/vmw:Config", NS)
    assert _attr(config, "value", "vmw") == "bios"
    os_section = env.find("ovf:VirtualSystem/ovf:OperatingSystemSection", NS)
    assert (_attr(os_section, "id"), _attr(os_section, "osType", "vmw")) == ("36", "otherLinuxGuest")


def test_ovf_descriptor_escapes_what_it_is_given():
    env = _descriptor(name='a&b<"c">')  # the connector refuses such names; the builder stays well-formed
    assert env.find("ovf:VirtualSystem/ovf:Name", NS).text == 'a&b<"c">'
    assert _attr(env.find("ovf:References/ovf:File", NS), "href") == 'a&b<"c">-disk1.vmdk'


def test_guest_and_firmware_tables():
    assert set(vsphere.IMPORT_GUESTS) <= {"x86_64", "x86"}  # the architectures ESX runs
    assert vsphere.FIRMWARES == {"bios": "bios", "uefi": "efi"}


@pytest.mark.parametrize("url, expected", [
    ("https://*/nfc/52a1/disk-0.vmdk", ("https", "127.0.0.1", 8989, "/nfc/52a1/disk-0.vmdk")),
    ("https://*:443/nfc/52a1/disk-0.vmdk?x=1", ("https", "127.0.0.1", 8989, "/nfc/52a1/disk-0.vmdk?x=1")),
    ("https://10.0.0.7/nfc/52a1/disk-0.vmdk", ("https", "10.0.0.7", 443, "/nfc/52a1/disk-0.vmdk")),
    ("https://esx1.example.com:902/nfc/x/y", ("https", "esx1.example.com", 902, "/nfc/x/y")),
])
def test_nfc_url_replaces_the_star_with_the_endpoint(url, expected):
    assert vsphere.nfc_url(url, "127.0.0.1", 8989) == expected


@pytest.mark.parametrize("url", ["", "ftp://*/nfc/x", "/nfc/x/y"])
def test_nfc_url_refuses_what_is_no_device_url(url):
    with pytest.raises(ProviderUnavailable):
        vsphere.nfc_url(url, "127.0.0.1", 8989)


def _qemu_img(tmp_path, fmt, *options, size=4 * MIB):
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed")
    raw = tmp_path / "disk.raw"
    with open(raw, "wb") as handle:
        handle.truncate(size)
        handle.write(hashlib.sha256(b"sirocco").digest() * 1024)
    out = tmp_path / ("image." + fmt)
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, *options, str(raw), str(out)], check=True,
                   capture_output=True)
    return out


def test_vmdk_facts_of_a_stream_optimized_disk(tmp_path):
    path = _qemu_img(tmp_path, "vmdk", "-o", "subformat=streamOptimized")
    capacity, size, sha256 = vsphere.vmdk_facts(str(path))
    data = path.read_bytes()
    assert capacity == 4 * MIB and size == len(data) and sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("fmt, options", [("vmdk", ("-o", "subformat=monolithicSparse")), ("qcow2", ()),
                                          ("raw", ())])
def test_vmdk_facts_refuse_anything_else(tmp_path, fmt, options):
    path = _qemu_img(tmp_path, fmt, *options)
    with pytest.raises(InvalidInput) as info:
        vsphere.vmdk_facts(str(path))
    assert info.value.attribute == "files"


def test_vmdk_facts_refuse_a_truncated_header_and_a_missing_file(tmp_path):
    short = tmp_path / "short.vmdk"
    short.write_bytes(b"KDMV\x03\x00")
    for path in (short, tmp_path / "absent.vmdk"):
        with pytest.raises(InvalidInput) as info:
            vsphere.vmdk_facts(str(path))
        assert info.value.attribute == "files" and path.name in str(info.value)


def _offline(api_type):
    """A connector whose endpoint says it is ``api_type`` and answers nothing else (every further call fails,
    as ProviderUnavailable)."""
    conn = vsphere.VSphereConnector(uri="https://127.0.0.1:1/sdk", username="u", password="p", timeout=5)
    conn._content = types.SimpleNamespace(about=types.SimpleNamespace(apiType=api_type))
    conn._used = time.monotonic() + 3600  # no session check while the test runs
    return conn


def test_import_is_refused_before_anything_is_made(tmp_path):
    """A bad image fails with InvalidInput naming the field before the endpoint is asked anything but what it is
    (asking more fails here: ProviderUnavailable)."""
    vmdk = _qemu_img(tmp_path, "vmdk", "-o", "subformat=streamOptimized")
    conn = _offline("VirtualCenter")
    good = {"name": "web", "files": {"vmdk": str(vmdk)}, "virtual_size": 4 * MIB}
    for bad, attribute in (({"files": {"qcow2": str(vmdk)}}, "files"), ({"virtual_size": 8 * MIB}, "virtual_size"),
                           ({"checksums": {"vmdk": "0" * 64}}, "checksums"), ({"arch": "aarch64"}, "arch"),
                           ({"boot": "coreboot"}, "boot"), ({"name": "bad name"}, "name"),
                           ({"properties": {"bad key": "v"}}, "properties")):
        with pytest.raises(InvalidInput) as info:
            conn.import_machine_image(DiskImage(**dict(good, **bad)))
        assert info.value.attribute == attribute, bad
    with pytest.raises(ProviderUnavailable):  # a good image goes on to the endpoint
        conn.import_machine_image(DiskImage(**good))
    assert "machine_image.import" in conn.implemented_operations()
    assert conn.import_formats() == ("vmdk",)


def test_an_esx_host_imports_nothing(tmp_path):
    """An ESX host keeps no templates: the operation is not advertised, and refused whatever the image."""
    conn = _offline("HostAgent")
    assert "machine_image.import" not in conn.implemented_operations() and conn.import_formats() == ()
    for image in (DiskImage(name="web", virtual_size=MIB), DiskImage(name="bad name")):
        with pytest.raises(Unsupported) as info:
            conn.import_machine_image(image)
        assert "vsphere" in str(info.value) and "machine_image.import" in str(info.value)


def test_import_advertised_with_its_format_before_connecting():
    conn = vsphere.VSphereConnector(uri="https://vc/sdk")
    assert "machine_image.import" in conn.implemented_operations()  # the class's operations; capabilities() connects
    assert conn.import_formats() == ("vmdk",)

"""images/disks.py on real qemu-img files: what a given image is, and refusals of images that are not
self-contained (qemu-img would read other files of the machine into them)."""

from __future__ import annotations

import subprocess

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.images.disks import convert_disk, disk_facts

MIB = 1024 * 1024


def qemu_img(*args):
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture
def raw(tmp_path):
    path = tmp_path / "disk.raw"
    path.write_bytes(bytes(range(256)) * (2 * MIB // 256))
    return path


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk", "vhd"])
def test_each_format_is_read_and_converted_back(raw, tmp_path, fmt):
    out = convert_disk(str(raw), "raw", fmt, str(tmp_path / ("disk." + fmt)))
    assert disk_facts(out) == (fmt, 2 * MIB)  # a fixed vhd too, told from raw by its footer
    back = convert_disk(out, fmt, "raw", str(tmp_path / "back.raw"))
    assert open(back, "rb").read() == raw.read_bytes()


def test_a_backing_file_is_refused(raw, tmp_path):
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-f", "qcow2", "-F", "raw", "-b", str(raw), str(overlay))
    with pytest.raises(InvalidInput, match="not self-contained") as info:
        disk_facts(str(overlay), "imageLocation", shown="the image fetched")
    assert info.value.attribute == "imageLocation" and str(tmp_path) not in str(info.value)


def test_a_vmdk_whose_extent_is_another_file_is_refused(tmp_path):
    descriptor = tmp_path / "flat.vmdk"
    qemu_img("create", "-f", "vmdk", "-o", "subformat=monolithicFlat", str(descriptor), "1M")
    with pytest.raises(InvalidInput, match="extents are other files"):
        disk_facts(str(descriptor))


def test_missing_file_and_qemu_img_errors_name_the_option_not_the_path(tmp_path):
    with pytest.raises(InvalidInput, match="^url: ") as info:
        disk_facts(str(tmp_path / "absent"), "url")
    assert info.value.attribute == "url"
    with pytest.raises(InvalidInput) as info:
        convert_disk(str(tmp_path / "absent"), "raw", "qcow2", str(tmp_path / "x.qcow2"), "imageLocation",
                     shown="the image fetched")
    assert str(tmp_path) not in str(info.value) and info.value.attribute == "imageLocation"

"""The full-size build: every format checked by qemu-img, the spec's files and commands in the image, the
provenance record, the cache hit, and bad specs refused before anything is built.

The image's file system is read without mounting it: debugfs at the root partition's offset in the raw file.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from image_specs import SPEC

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.images import builder, convert, factory
from ansible_collections.sirocco.cimi.plugins.module_utils.images.cache import ImageCache
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec


def debugfs(raw, request):
    proc = subprocess.run(["debugfs", "-R", request, "%s?offset=%d" % (raw, builder.ROOT_START * builder.SECTOR)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("fmt", ["qcow2", "raw", "vmdk", "vhd"])
def test_each_format_is_checked_by_qemu_img(built, fmt):
    result = built[0]
    raw = result.image.files["raw"]
    path = result.image.files[fmt]
    info = convert.info(path, fmt)
    assert info["format"] == convert.FORMATS[fmt][1]
    assert info["virtual-size"] == result.image.virtual_size == SPEC["size_gib"] << 30
    if fmt == "vmdk":
        assert info["format-specific"]["data"]["create-type"] == "streamOptimized"
    if fmt == "qcow2":
        assert os.path.getsize(path) <= 400 << 20, "qcow2 above the 400 MB target"
    done = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", convert.FORMATS[fmt][1], raw, path],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert result.image.checksums[fmt] == result.provenance["files"][fmt]["sha256"]


def test_disk_image_for_the_connectors(built):
    result = built[0]
    image = result.image
    assert image.generic_name == image.name == SPEC["name"]
    assert image.arch == "x86_64" and image.boot == "bios"
    assert image.validate(["vhd", "qcow2"]) == ("vhd", image.files["vhd"])


def test_partition_table_and_bootloaders(built):
    result = built[0]
    raw = result.image.files["raw"]
    table = json.loads(subprocess.run(["sfdisk", "-J", raw], capture_output=True, text=True, check=True).stdout)
    parts = table["partitiontable"]["partitions"]
    assert table["partitiontable"]["label"] == "gpt"
    assert [p["type"] for p in parts] == ["21686148-6449-6E6F-744E-656564454649",
                                          "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                                          "0FC63DAF-8483-4772-8E79-3D69D8477DE4"]
    with open(raw, "rb") as handle:
        mbr = handle.read(512)
        handle.seek(builder.BIOS_START * 512)
        core = handle.read(512)
    assert mbr[510:512] == b"\x55\xaa" and mbr[0x64] == 0xFF
    assert int.from_bytes(mbr[0x5C:0x64], "little") == builder.BIOS_START
    assert int.from_bytes(core[500:508], "little") == builder.BIOS_START + 1
    esp = "%s@@%d" % (raw, builder.ESP_START * 512)
    listing = subprocess.run(["mdir", "-i", esp, "::/EFI/BOOT"], capture_output=True, text=True, check=False,
                             env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    assert "BOOTX64" in listing.stdout, listing.stdout + listing.stderr


def test_spec_files_run_and_first_boot_state(built):
    result = built[0]
    raw = result.image.files["raw"]
    assert debugfs(raw, "cat /etc/sirocco/hello.txt") == "hello from the spec\n"
    assert "0640" in debugfs(raw, "stat /etc/sirocco/hello.txt").split("Mode:")[1][:12]
    assert "0755" in debugfs(raw, "stat /usr/local/bin/sirocco-hello").split("Mode:")[1][:12]
    assert debugfs(raw, "cat /etc/sirocco/run-marker") == "built-by-run\n"
    # no SSH host key, an empty machine-id: every guest makes its own at first boot
    assert "ssh_host_" not in debugfs(raw, "ls /etc/ssh")
    assert "sshd_config" in debugfs(raw, "ls /etc/ssh")
    assert debugfs(raw, "cat /etc/machine-id") == ""
    cfg = debugfs(raw, "cat /etc/cloud/cloud.cfg.d/90_sirocco.cfg")
    for datasource in ("NoCloud", "ConfigDrive", "Ec2", "OpenStack", "VMware"):
        assert datasource in cfg
    assert "root=UUID=" in debugfs(raw, "cat /boot/grub/grub.cfg")
    assert "127.0.1.1\tsirocco-images-test\n" in debugfs(raw, "cat /etc/hosts")


def test_provenance(built, spec):
    result = built[0]
    record = result.provenance
    assert record["spec_hash"] == spec.spec_hash()
    assert record["builder"]["name"] == factory.BUILDER_NAME
    assert record["builder"]["versions"]["mmdebstrap"] and record["builder"]["versions"]["qemu-img"]
    for package in ("openssh-server", "cloud-init", "open-vm-tools", "qemu-guest-agent", "curl", "dbus",
                    "linux-image-cloud-amd64"):
        assert record["packages"].get(package), package
    assert "URIs:" in record["mirror"]
    assert record["built_at"] <= time.time()
    for fmt, path in result.image.files.items():
        assert record["files"][fmt]["sha256"] == convert.sha256(path)
    with open(os.path.join(os.path.dirname(result.image.files["qcow2"]), "provenance.json"),
              encoding="utf-8") as handle:
        assert json.load(handle)["spec_hash"] == record["spec_hash"]


def test_same_spec_is_a_cache_hit(built, spec):
    first = built[0]
    assert factory.plan(spec) == "cached"
    started = time.monotonic()
    again = factory.build(parse_spec(dict(SPEC)))
    assert again.cached and not again.stale
    assert time.monotonic() - started < 30  # the package-index check aside, nothing is done
    assert again.image.files == first.image.files
    assert again.provenance["built_at"] == first.provenance["built_at"]
    # a maximum age the entry exceeds makes it stale (plan only: no second full build here)
    assert factory.plan(spec, max_age_days=-1) == "stale"
    assert factory.plan(spec, rebuild=True) == "build"


@pytest.mark.parametrize("change, attribute", [
    ({"packages": ["curl", "no-such-package-sirocco"]}, "packages"),
    ({"formats": ["qcow2", "iso"]}, "formats"),
    ({"size_gib": 1}, "size_gib"),
    ({"files": {"/etc/x": {"content": "x", "mode": "rwx"}}}, "files"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_specs_fail_before_anything_is_built(tmp_path, change, attribute):
    cache = ImageCache(str(tmp_path / "cache"))
    with pytest.raises(InvalidInput) as failure:
        factory.build(parse_spec(dict(SPEC, **change)), cache_dir=cache)
    assert failure.value.attribute == attribute
    assert attribute in str(failure.value)
    assert not os.path.exists(cache.directory) or not os.listdir(cache.directory)

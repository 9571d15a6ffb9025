"""The recipe's disk steps on a tiny tree, with the real tools and no root: GPT by sfdisk, ext4 by
``mke2fs -d`` at the partition's offset, GRUB's BIOS core embedded and its EFI image on the ESP. GRUB's
own file-system code (grub-fstest) reads the result; qemu-img converts and checks it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.images import builder, convert
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec

TOOLS = ("sfdisk", "mke2fs", "grub-mkimage", "mkfs.fat", "mcopy", "grub-fstest", "qemu-img")
pytestmark = pytest.mark.skipif(any(shutil.which(t) is None for t in TOOLS) or
                                not os.path.exists(builder.GRUB_PC + "/boot.img"),
                                reason="needs %s (scripts/setup-system.sh)" % ", ".join(TOOLS))


@pytest.fixture(scope="module")
def tiny_disk(tmp_path_factory):
    """A 96 MiB raw disk whose root file system holds a grub.cfg and a marker (a few MB allocated)."""
    work = tmp_path_factory.mktemp("tiny-disk")
    root = work / "root"
    (root / "boot/grub").mkdir(parents=True)
    spec = parse_spec({"name": "tiny"}, check_packages=False)
    files = builder.image_files(spec, "0b6c0c8e-7c1f-4a4e-9d11-3c3b5e0e0001")
    (root / "boot/grub/grub.cfg").write_text(files["/boot/grub/grub.cfg"][0])
    (root / "etc").mkdir()
    (root / "etc/marker").write_text("sirocco\n")
    raw = str(work / "disk.raw")
    sectors = builder.partition(raw, 96 << 20)
    builder.root_fs(raw, str(root), "0b6c0c8e-7c1f-4a4e-9d11-3c3b5e0e0001", sectors)
    builder.grub_bios(raw, str(work))
    builder.grub_efi(raw, str(work))
    return raw


def fstest(raw, *command):
    done = subprocess.run(["grub-fstest", raw] + list(command), capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_grub_reads_the_root_file_system(tiny_disk):
    assert fstest(tiny_disk, "cat", "(loop0,gpt3)/etc/marker") == "sirocco\n"
    assert "root=UUID=0b6c0c8e-7c1f-4a4e-9d11-3c3b5e0e0001" in fstest(tiny_disk, "cat",
                                                                      "(loop0,gpt3)/boot/grub/grub.cfg")
    assert "BOOTX64.EFI" in fstest(tiny_disk, "ls", "(loop0,gpt2)/EFI/BOOT/").upper()


def test_layout_and_boot_sectors(tiny_disk):
    table = json.loads(subprocess.run(["sfdisk", "-J", tiny_disk], capture_output=True, text=True,
                                      check=True).stdout)["partitiontable"]
    starts = [int(p["start"]) for p in table["partitions"]]
    assert starts == [builder.BIOS_START, builder.ESP_START, builder.ROOT_START]
    with open(tiny_disk, "rb") as handle:
        mbr = handle.read(512)
        handle.seek(builder.BIOS_START * 512)
        core = handle.read(512)
    with open(builder.GRUB_PC + "/boot.img", "rb") as handle:
        boot = handle.read()
    assert mbr[0x5A:0x5C] == boot[0x5A:0x5C] and mbr[0x68:0x1B8] == boot[0x68:0x1B8]  # GRUB's code
    assert int.from_bytes(mbr[0x5C:0x64], "little") == builder.BIOS_START
    assert mbr[0x64] == 0xFF and mbr[0x66:0x68] == b"\x90\x90"
    assert mbr[0x1C2] == 0xEE and mbr[510:] == b"\x55\xaa"  # the protective MBR entry kept
    start, length, segment = (int.from_bytes(core[500:508], "little"), int.from_bytes(core[508:510], "little"),
                              int.from_bytes(core[510:512], "little"))
    assert (start, segment) == (builder.BIOS_START + 1, 0x820) and 0 < length < builder.BIOS_SECTORS
    assert core[488:500] == b"\0" * 12  # the list's terminator


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk", "vhd", "raw"])
def test_conversions_are_checked(tiny_disk, tmp_path, fmt):
    dest = str(tmp_path / ("tiny." + convert.FORMATS[fmt][0]))
    convert.convert(tiny_disk, fmt, dest)
    assert convert.info(dest, fmt)["virtual-size"] == 96 << 20


def test_a_corrupted_conversion_is_caught(tiny_disk, tmp_path):
    dest = str(tmp_path / "tiny.raw")
    convert.convert(tiny_disk, "raw", dest)
    with open(dest, "r+b") as handle:
        handle.seek(builder.ROOT_START * 512 + 4096)
        handle.write(b"corrupt")
    with pytest.raises(convert.ConversionError, match="compare"):
        convert.check(tiny_disk, "raw", dest)


def test_image_files_and_overlay(tmp_path):
    spec = parse_spec({"name": "web.example", "files": {"/etc/motd": {"content": "hi\n", "mode": "0600"},
                                                        "/etc/hosts": "overridden\n"}}, check_packages=False)
    files = builder.image_files(spec, "u-u-i-d")
    assert files["/etc/fstab"][0].startswith("UUID=u-u-i-d / ext4")
    assert "datasource_list: [NoCloud, ConfigDrive, Ec2, OpenStack, VMware, None]" in \
        files["/etc/cloud/cloud.cfg.d/90_sirocco.cfg"][0]
    assert "HandlePowerKey=poweroff" in files["/etc/systemd/logind.conf.d/50-sirocco-power-button.conf"][0]
    assert files["/etc/hostname"][0] == "web-example\n"
    assert "127.0.1.1\tweb-example\n" in builder.image_files(
        parse_spec({"name": "web.example"}, check_packages=False), "u")["/etc/hosts"][0]
    assert "manage_etc_hosts: true" in files["/etc/cloud/cloud.cfg.d/90_sirocco.cfg"][0]
    # first-boot work that delays SSH under TCG: e2scrub masked, no RSA host key made
    assert files["/etc/systemd/system/e2scrub_reap.service"] == ("/dev/null", builder.SYMLINK)
    assert "ssh_genkeytypes: [ed25519, ecdsa]" in files["/etc/cloud/cloud.cfg.d/90_sirocco.cfg"][0]
    no_ci = builder.image_files(parse_spec({"name": "x", "cloud_init": False}, check_packages=False), "u")
    assert "/etc/cloud/cloud.cfg.d/90_sirocco.cfg" not in no_ci and "/etc/network/interfaces.d/50-sirocco-dhcp" in no_ci
    tar_path = builder.overlay_tar(spec, "u-u-i-d", str(tmp_path / "o.tar"))
    with tarfile.open(tar_path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["etc/motd"].mode == 0o600 and members["etc/motd"].uid == 0
        assert tar.extractfile("etc/hosts").read() == b"overridden\n"  # the spec's file wins
        link = members["etc/systemd/system/multi-user.target.wants/sirocco-ssh-keygen.service"]
        assert link.issym() and link.linkname == "/etc/systemd/system/sirocco-ssh-keygen.service"

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The recipe: mmdebstrap -> a root directory -> a partitioned raw disk, with no loop device and no mount.

1. ``mmdebstrap`` (minbase + the spec's packages) builds the root file system in a directory, from the
   ``.sources`` file made of this machine's apt sources; the spec's files and image configuration are
   unpacked into it and its ``run`` commands run in it (mmdebstrap's customize hooks, with its own
   /proc, /dev, /sys);
2. ``sfdisk`` writes a GPT on a sparse raw file: 1 MiB BIOS boot partition, a 62 MiB EFI system partition,
   then the root partition to the end of the disk (last, so cloud-init's growpart can grow it);
3. ``mke2fs -d`` creates the ext4 root file system *from the directory*, at the partition's offset in the file;
4. GRUB: ``grub-mkimage`` makes a BIOS core image (embedded in the BIOS boot partition; ``boot.img`` in the MBR,
   both patched the way ``grub-bios-setup`` patches them, which cannot run on a plain file) and an x86-64 EFI
   image (``\\EFI\\BOOT\\BOOTX64.EFI`` on the ESP, written with ``mkfs.fat --offset`` and mtools). Both find
   ``/boot/grub/grub.cfg`` on partition 3 of the disk they booted from; the menu boots ``/vmlinuz`` and
   ``/initrd.img``, the symlinks Debian's kernel packages keep current, so kernel upgrades in the guest
   need no bootloader update (no bootloader package is installed in the guest).
"""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import struct
import subprocess
import tarfile
import time
import uuid

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, ProviderUnavailable
from ansible_collections.sirocco.cimi.plugins.module_utils.images import mirror
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import CLOUD_INIT_DATASOURCES

SECTOR = 512
BIOS_START, BIOS_SECTORS = 2048, 2048  # 1 MiB at 1 MiB
ESP_START, ESP_SECTORS = 4096, 126976  # 62 MiB
ROOT_START = 131072  # 64 MiB
GRUB_PC = "/usr/lib/grub/i386-pc"
GRUB_EFI = "/usr/lib/grub/x86_64-efi"
GRUB_MODULES_COMMON = ["part_gpt", "part_msdos", "ext2", "fat", "normal", "linux", "serial", "terminal", "gzio",
                       "search", "search_fs_uuid", "search_label", "configfile", "echo", "test", "boot",
                       "minicmd", "ls", "cat", "sleep", "halt", "reboot"]
GRUB_MODULES_BIOS = ["biosdisk"] + GRUB_MODULES_COMMON
GRUB_MODULES_EFI = GRUB_MODULES_COMMON + ["efi_gop", "efi_uga", "all_video"]
KERNEL_CMDLINE = "ro console=tty0 console=ttyS0,115200 consoleblank=0"

SYMLINK = None  # the "mode" of a symbolic link in image_files (a spec's files are always regular files)

# tool -> the Debian package that ships it (for the "missing" error and scripts/setup-system.sh)
TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "mke2fs": "e2fsprogs",
    "sfdisk": "fdisk",
    "mkfs.fat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "grub-mkimage": "grub-common",
    "qemu-img": "qemu-utils",
    "dpkg-query": "dpkg",
}
FILES = {
    GRUB_PC + "/boot.img": "grub-pc-bin",
    GRUB_PC + "/moddep.lst": "grub-pc-bin",
    GRUB_EFI + "/moddep.lst": "grub-efi-amd64-bin",
}
# Dropped from the image (as Debian's minimal images do): manual pages, translations, documentation but
# copyright files. mmdebstrap also leaves these rules in /etc/dpkg/dpkg.cfg.d/ so later installs keep them.
DPKG_EXCLUDES = ["path-exclude=/usr/share/man/*", "path-exclude=/usr/share/locale/*",
                 "path-include=/usr/share/locale/locale.alias", "path-exclude=/usr/share/doc/*",
                 "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/info/*"]


def preflight():
    """``ProviderUnavailable`` naming what is missing: root, a tool, or a GRUB platform directory."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root (building an image runs mmdebstrap, which installs packages into a chroot; "
                        "use become: true or sudo)")
    missing = {}
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            missing.setdefault(package, []).append(tool)
    for path, package in FILES.items():
        if not os.path.exists(path):
            missing.setdefault(package, []).append(path)
    for package, what in sorted(missing.items()):
        problems.append("%s (Debian package %s)" % (", ".join(what), package))
    if problems:
        raise ProviderUnavailable("cannot build images on this machine: missing " + "; ".join(problems),
                                  missing=problems)


def tool_versions():
    versions = {}
    for package in ("mmdebstrap", "e2fsprogs", "grub-pc-bin", "grub-efi-amd64-bin", "dosfstools", "qemu-utils",
                    "fdisk"):
        proc = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True,
                              check=False)
        versions[package] = proc.stdout.strip() if proc.returncode == 0 else None
    return versions


def _run(args, log, timeout=3600, what=None, **kwargs):
    started = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if log:
        log("%s: %.1f s" % (what or os.path.basename(args[0]), time.monotonic() - started))
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-25:]
        message = "%s failed (exit %d):\n%s" % (what or args[0], proc.returncode, "\n".join(tail))
        if what == "mmdebstrap" and ("Unable to locate package" in message or "has no installation candidate"
                                     in message):
            raise InvalidInput(message, attribute="packages")
        raise ProviderUnavailable(message)
    return proc.stdout


# -- the configuration written into the image -------------------------------------------------------------
def image_files(spec, root_uuid):
    """{path: (content, mode)} the recipe writes into every image, before the spec's own files."""
    cmdline = "root=UUID=%s %s" % (root_uuid, KERNEL_CMDLINE)
    hostname = spec.name.replace("_", "-").replace(".", "-")[:63]
    files = {
        "/etc/fstab": ("UUID=%s / ext4 errors=remount-ro 0 1\n" % root_uuid, 0o644),
        "/etc/hostname": ("%s\n" % hostname, 0o644),
        # the host name resolves (sudo asks); cloud-init rewrites this for the name its datasource gives
        "/etc/hosts": ("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\t\tlocalhost ip6-localhost ip6-loopback\n"
                       % hostname, 0o644),
        "/boot/grub/grub.cfg": (
            "# written by the Sirocco image factory: boots the kernel Debian's packages link as /vmlinuz\n"
            "serial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n"
            "set timeout=1\nset default=0\n"
            "search --no-floppy --fs-uuid --set=root %s\n"
            "menuentry 'Debian GNU/Linux (%s)' {\n  linux /vmlinuz %s\n  initrd /initrd.img\n}\n"
            "menuentry 'Debian GNU/Linux (%s, previous kernel)' {\n  linux /vmlinuz.old %s\n"
            "  initrd /initrd.img.old\n}\n" % (root_uuid, spec.name, cmdline, spec.name, cmdline), 0o644),
        # host keys are made at first boot (the image ships none); cloud-init makes them when it runs
        "/etc/systemd/system/sirocco-ssh-keygen.service": (
            "[Unit]\nDescription=Generate SSH host keys missing at first boot\n"
            "After=cloud-init.service\nBefore=ssh.service\n"
            "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n\n"
            "[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n\n"
            "[Install]\nWantedBy=multi-user.target ssh.service\n", 0o644),
        "/etc/systemd/system/multi-user.target.wants/sirocco-ssh-keygen.service": (
            "/etc/systemd/system/sirocco-ssh-keygen.service", SYMLINK),
        "/etc/systemd/system/ssh.service.wants/sirocco-ssh-keygen.service": (
            "/etc/systemd/system/sirocco-ssh-keygen.service", SYMLINK),
        # e2scrub checks LVM snapshots, which a cloud guest has none of; its first-boot run competes for the
        # guest's one vCPU with cloud-init (11 s of a 60 s boot under TCG): masked
        "/etc/systemd/system/e2scrub_reap.service": ("/dev/null", SYMLINK),
        "/etc/systemd/system/e2scrub_all.timer": ("/dev/null", SYMLINK),
        # logind powers off on the ACPI power button (its default, written down so a package cannot drift it)
        "/etc/systemd/logind.conf.d/50-sirocco-power-button.conf": (
            "[Login]\nHandlePowerKey=poweroff\nPowerKeyIgnoreInhibited=yes\n", 0o644),
        "/etc/network/interfaces": ("# cloud-init writes the NICs' configuration in interfaces.d\n"
                                    "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n",
                                    0o644),
    }
    if spec.cloud_init:
        files["/etc/cloud/cloud.cfg.d/90_sirocco.cfg"] = (
            "# Sirocco image factory: every datasource a Sirocco provider offers\n"
            "datasource_list: [%s]\n"
            "# the image has no locales package: C.UTF-8 is the one locale always there\n"
            "locale: C.UTF-8\n"
            "# /etc/hosts names the host the datasource names (sudo resolves it)\n"
            "manage_etc_hosts: true\n"
            "# host keys made at first boot: no RSA (several seconds of a vCPU under TCG, before SSH answers)\n"
            "ssh_genkeytypes: [ed25519, ecdsa]\n" % ", ".join(CLOUD_INIT_DATASOURCES), 0o644)
    else:
        # no cloud-init: DHCP on the first NIC, eth0 (net.ifnames=0 on the kernel command line)
        files["/etc/network/interfaces.d/50-sirocco-dhcp"] = (
            "allow-hotplug eth0\niface eth0 inet dhcp\n", 0o644)
    return files


def overlay_tar(spec, root_uuid, path):
    """A tar of the recipe's files and the spec's (which win), owned by root, unpacked into the root tree."""
    entries = dict(image_files(spec, root_uuid))
    for name, item in spec.files.items():
        entries[name] = (item["content"], item["mode"])
    return _write_tar(path, entries)


def _write_tar(path, entries):
    """A tar of {path: (content, mode)} owned by root; mode ``SYMLINK`` makes a symbolic link to content."""
    with tarfile.open(path, "w") as tar:
        for name, (content, mode) in sorted(entries.items()):
            info = tarfile.TarInfo(name.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = int(time.time())
            if mode is SYMLINK:
                info.type = tarfile.SYMTYPE
                info.linkname = content
                info.mode = 0o777
                tar.addfile(info)
                continue
            data = content.encode("utf-8")
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return path


def _cmdline_for(spec):
    return KERNEL_CMDLINE if spec.cloud_init else KERNEL_CMDLINE + " net.ifnames=0"


# -- steps ------------------------------------------------------------------------------------------------
def mmdebstrap(spec, rootdir, workdir, log=None):
    sources = os.path.join(workdir, "mirror.sources")
    with open(sources, "w", encoding="utf-8") as handle:
        handle.write(mirror.sources_for(spec.distro))
    root_uuid = str(uuid.uuid4())
    tar = overlay_tar(spec, root_uuid, os.path.join(workdir, "overlay.tar"))
    # before any package is installed: the fstab, and the root file system's type for initramfs-tools'
    # fsck hook (it probes the root device otherwise, which a chroot does not have, and leaves fsck out)
    early = os.path.join(workdir, "early.tar")
    _write_tar(early, {"/etc/fstab": image_files(spec, root_uuid)["/etc/fstab"],
                       "/etc/initramfs-tools/conf.d/sirocco-fstype": ("FSTYPE=ext4\n", 0o644)})
    setup_hooks = ['tar -C "$1" --no-overwrite-dir -xpf %s' % shlex.quote(early)]
    hooks = ['tar -C "$1" --no-overwrite-dir -xpf %s' % shlex.quote(tar)]
    for cmd in spec.run:
        hooks.append('chroot "$1" /bin/sh -ec %s' % shlex.quote(cmd))
    # no host key, no machine id, no random seed: each guest makes its own at first boot
    hooks.append('rm -f "$1"/etc/ssh/ssh_host_*; : > "$1"/etc/machine-id; rm -f "$1"/var/lib/dbus/machine-id'
                 ' "$1"/var/lib/systemd/random-seed; rm -rf "$1"/var/lib/cloud/*')
    args = ["mmdebstrap", "--variant=minbase", "--architectures=" + spec.distro["arch"],
            "--include=" + ",".join(spec.all_packages()),
            "--aptopt=APT::Install-Recommends \"false\""]
    args += ["--dpkgopt=" + rule for rule in DPKG_EXCLUDES]
    args += ["--setup-hook=" + hook for hook in setup_hooks]
    args += ["--customize-hook=" + hook for hook in hooks]
    args += [spec.distro["codename"], rootdir, sources]
    env = dict(os.environ, TMPDIR=workdir)
    try:
        _run(args, log, what="mmdebstrap", env=env)
    except ProviderUnavailable as exc:
        # a spec's command that fails is the spec's fault: say which, with its output
        if 'command failed: chroot "$1" /bin/sh -ec' in exc.message:
            failed = [cmd for cmd in spec.run if shlex.quote(cmd) in exc.message]
            raise InvalidInput("image spec: run: %s failed in the image:\n%s"
                               % (repr(failed[-1]) if failed else "a command", exc.message),
                               attribute="run") from None
        raise
    return root_uuid


def packages_of(rootdir):
    out = subprocess.run(["dpkg-query", "--admindir=" + os.path.join(rootdir, "var/lib/dpkg"), "-W",
                          "-f", "${Package}\t${Version}\t${db:Status-Abbrev}\n"],
                         capture_output=True, text=True, check=True).stdout
    return {name: version for name, version, status in (line.split("\t") for line in out.splitlines())
            if status.startswith("ii")}


def partition(raw, size_bytes, log=None):
    with open(raw, "wb") as handle:
        handle.truncate(size_bytes)
    table = ("label: gpt\n"
             "start=%d, size=%d, type=21686148-6449-6E6F-744E-656564454649, name=bios\n"
             "start=%d, size=%d, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=esp\n"
             "start=%d, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root\n"
             % (BIOS_START, BIOS_SECTORS, ESP_START, ESP_SECTORS, ROOT_START))
    _run(["sfdisk", "--no-reread", "--no-tell-kernel", "-q", raw], log, input=table, what="sfdisk")
    # the root partition's size as sfdisk made it (it aligns the end; GPT keeps a backup at the end)
    layout = json.loads(_run(["sfdisk", "-J", raw], None, what="sfdisk -J"))
    root = layout["partitiontable"]["partitions"][2]
    if int(root["start"]) != ROOT_START:
        raise ProviderUnavailable("sfdisk put the root partition at sector %s, not %d" % (root["start"], ROOT_START))
    root_sectors = int(root["size"])
    return root_sectors - root_sectors % 8  # whole 4 KiB blocks


def root_fs(raw, rootdir, root_uuid, root_sectors, log=None):
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-U", root_uuid, "-L", "root", "-d", rootdir,
          "-E", "offset=%d,root_owner=0:0" % (ROOT_START * SECTOR), raw, "%dk" % (root_sectors // 2)],
         log, what="mke2fs -d")


def grub_bios(raw, workdir, log=None):
    core = os.path.join(workdir, "core.img")
    _run(["grub-mkimage", "-O", "i386-pc", "-d", GRUB_PC, "-o", core, "-p", "(,gpt3)/boot/grub"]
         + GRUB_MODULES_BIOS, log, what="grub-mkimage i386-pc")
    with open(core, "rb") as handle:
        image = bytearray(handle.read())
    sectors = -(-len(image) // SECTOR)
    if sectors > BIOS_SECTORS:
        raise ProviderUnavailable("GRUB core image is %d sectors; the BIOS boot partition holds %d"
                                  % (sectors, BIOS_SECTORS))
    image += b"\0" * (sectors * SECTOR - len(image))
    # diskboot.img's block list (the end of the core image's first sector, read downwards until an entry
    # of length 0): the rest of the core image, loaded at segment 0x820
    struct.pack_into("<QHH", image, SECTOR - 12, BIOS_START + 1, sectors - 1, 0x820)
    struct.pack_into("<QHH", image, SECTOR - 24, 0, 0, 0)
    with open(os.path.join(GRUB_PC, "boot.img"), "rb") as handle:
        boot = bytearray(handle.read())
    with open(raw, "r+b") as disk:
        mbr = disk.read(SECTOR)
        boot[0x03:0x5a] = mbr[0x03:0x5a]  # the BIOS parameter block, as grub-bios-setup keeps it
        boot[0x1b8:0x1fe] = mbr[0x1b8:0x1fe]  # disk signature and the (protective) partition table
        struct.pack_into("<Q", boot, 0x5c, BIOS_START)  # where the core image starts
        boot[0x64] = 0xFF  # boot from the drive the BIOS booted
        boot[0x66:0x68] = b"\x90\x90"  # a hard disk: no floppy check (grub-bios-setup does the same)
        disk.seek(0)
        disk.write(boot)
        disk.seek(BIOS_START * SECTOR)
        disk.write(image)


def grub_efi(raw, workdir, log=None):
    efi = os.path.join(workdir, "BOOTX64.EFI")
    _run(["grub-mkimage", "-O", "x86_64-efi", "-d", GRUB_EFI, "-o", efi, "-p", "(,gpt3)/boot/grub"]
         + GRUB_MODULES_EFI, log, what="grub-mkimage x86_64-efi")
    offset = ESP_START * SECTOR
    _run(["mkfs.fat", "-F", "32", "-s", "1", "-S", str(SECTOR), "-n", "ESP", "--offset=%d" % ESP_START,
          raw, str(ESP_SECTORS // 2)], log, what="mkfs.fat")
    target = "%s@@%d" % (raw, offset)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    _run(["mmd", "-i", target, "::/EFI", "::/EFI/BOOT"], log, what="mmd", env=env)
    _run(["mcopy", "-i", target, efi, "::/EFI/BOOT/BOOTX64.EFI"], log, what="mcopy", env=env)


def build_raw(spec, workdir, log=None):
    """Build the spec's raw disk in ``workdir``; returns (raw path, {package: version}, seconds per step)."""
    rootdir = os.path.join(workdir, "root")
    raw = os.path.join(workdir, "disk.raw")
    steps = {}
    started = time.monotonic()
    root_uuid = mmdebstrap(spec, rootdir, workdir, log)
    steps["mmdebstrap"] = round(time.monotonic() - started, 1)
    packages = packages_of(rootdir)
    if not spec.cloud_init:
        _set_cmdline(rootdir, KERNEL_CMDLINE, _cmdline_for(spec))
    mark = time.monotonic()
    root_sectors = partition(raw, spec.size_gib << 30, log)
    root_fs(raw, rootdir, root_uuid, root_sectors, log)
    steps["filesystem"] = round(time.monotonic() - mark, 1)
    mark = time.monotonic()
    grub_bios(raw, workdir, log)
    grub_efi(raw, workdir, log)
    steps["bootloader"] = round(time.monotonic() - mark, 1)
    shutil.rmtree(rootdir, ignore_errors=True)
    for name in ("core.img", "BOOTX64.EFI", "early.tar", "overlay.tar"):
        os.unlink(os.path.join(workdir, name))
    return raw, packages, steps


def _set_cmdline(rootdir, old, new):
    path = os.path.join(rootdir, "boot/grub/grub.cfg")
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.replace(old, new))

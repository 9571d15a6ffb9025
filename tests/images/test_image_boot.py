"""The factory's image boots on the real libvirtd under QEMU (TCG): a login prompt on the serial console,
an SSH banner on port 22, and an ACPI shutdown (virDomainShutdown) that powers the guest off.

The guest gets its network and hostname from a NoCloud seed (a FAT disk labelled CIDATA, made with
mkfs.fat and mtools: no ISO tool needed), as every provider gives cloud-init a datasource; port 22 is
reached through QEMU user networking with a host forward on 127.0.0.1 (libvirt 9.0 has no passt
backend, so the netdev is passed with <qemu:commandline>). The guest disk is a qcow2 overlay on the
cached image, which stays untouched. UEFI: the same image boots to a login prompt with OVMF.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

libvirt = pytest.importorskip("libvirt")
libvirt_qemu = pytest.importorskip("libvirt_qemu")
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # lookups of absent domains are expected

URI = "qemu:///system"
BOOT_TIMEOUT = 420  # TCG on a loaded 2-core machine; a quiet one reaches login in ~45 s
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nocloud_seed(path, hostname):
    """A FAT disk labelled CIDATA holding meta-data and user-data (cloud-init's NoCloud datasource)."""
    files = {"meta-data": "instance-id: %s\nlocal-hostname: %s\n" % (hostname, hostname),
             "user-data": "#cloud-config\nssh_pwauth: false\n"}
    with open(path, "wb") as handle:
        handle.truncate(4 << 20)
    subprocess.run(["mkfs.fat", "-n", "CIDATA", str(path)], check=True, capture_output=True)
    for name, content in files.items():
        src = os.path.join(os.path.dirname(path), name)
        with open(src, "w", encoding="utf-8") as handle:
            handle.write(content)
        subprocess.run(["mcopy", "-i", str(path), src, "::/" + name], check=True, capture_output=True,
                       env=dict(os.environ, MTOOLS_SKIP_CHECK="1"))
    return path


def domain_xml(name, disk, seed, console, port, uefi=False):
    loader = ""
    if uefi:
        loader = ("<loader readonly='yes' type='pflash'>%s</loader><nvram template='%s'>%s</nvram>"
                  % (OVMF_CODE, OVMF_VARS, os.path.join(os.path.dirname(disk), "vars.fd")))
    fields = {"name": name, "disk": disk, "console": console, "port": port, "loader": loader,
              "seed": SEED_DISK % seed if seed else ""}
    return """<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>%(name)s</name><memory unit='MiB'>1024</memory><vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>%(loader)s<boot dev='hd'/></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='%(disk)s'/>
      <target dev='vda' bus='virtio'/></disk>
%(seed)s
    <serial type='file'><source path='%(console)s'/><target port='0'/></serial>
    <console type='file'><source path='%(console)s'/><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-netdev'/><qemu:arg value='user,id=sirocconet,hostfwd=tcp:127.0.0.1:%(port)d-:22'/>
    <qemu:arg value='-device'/><qemu:arg value='virtio-net-pci,netdev=sirocconet,bus=pci.0,addr=0x1e'/>
  </qemu:commandline>
</domain>""" % fields


SEED_DISK = """    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='%s'/>
      <target dev='vdb' bus='virtio'/><readonly/></disk>"""


def read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return ""


def ssh_banner(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(10)
            return sock.recv(64).decode("ascii", errors="replace")
    except OSError:
        return ""


@pytest.fixture
def guest(request, tmp_path):
    """Start a domain on a factory image (``built``'s, or ``built_plain``'s without a seed); yields (domain,
    console path, port, started); removes it."""
    conn = libvirt.open(URI)
    domains = []

    def start(uefi=False, plain=False):
        result = request.getfixturevalue("built_plain") if plain else request.getfixturevalue("built")[0]
        name = "sirocco-images-test-%d-%s" % (os.getpid(), "plain" if plain else "uefi" if uefi else "bios")
        disk = str(tmp_path / "disk.qcow2")
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", result.image.files["qcow2"],
                        disk], check=True)
        seed = None if plain else str(nocloud_seed(tmp_path / "seed.img", "siroccotest"))
        console = str(tmp_path / "console.log")
        port = free_port()
        try:
            old = conn.lookupByName(name)
            if old.isActive():
                old.destroy()
            old.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError:
            pass
        dom = conn.defineXML(domain_xml(name, disk, seed, console, port, uefi))
        domains.append(dom)
        started = time.monotonic()
        dom.create()
        return dom, console, port, started

    yield start
    for dom in domains:
        try:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        except libvirt.libvirtError:
            pass
    conn.close()


def wait_for(predicate, timeout, what, console):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(1)
    pytest.fail("no %s within %d s; console tail:\n%s" % (what, timeout, read(console)[-3000:]))


def test_boots_to_login_and_ssh_then_acpi_shutdown(guest):
    dom, console, port, started = guest()
    login = wait_for(lambda: "login:" in read(console), BOOT_TIMEOUT, "login prompt on the serial console", console)
    banner = {}

    def has_banner():
        banner["text"] = ssh_banner(port)
        return banner["text"].startswith("SSH-2.0-OpenSSH")

    ssh = wait_for(has_banner, 120, "SSH banner on 127.0.0.1:%d" % port, console)
    log = read(console)
    assert "GRUB" in log or "Linux version" in log
    assert "siroccotest login:" in log, "cloud-init's NoCloud hostname was not applied"
    print("BIOS boot: login prompt after %.0f s, SSH banner after %.0f s (%s)"
          % (login - started, ssh - started, banner["text"].strip()))
    # the QEMU guest agent answers on its virtio channel
    agent = {}

    def agent_answers():
        try:
            agent["reply"] = libvirt_qemu.qemuAgentCommand(dom, '{"execute": "guest-ping"}', 10, 0)
        except libvirt.libvirtError as exc:
            agent["reply"] = str(exc)
            return False
        return True

    wait_for(agent_answers, 120, "an answer of qemu-guest-agent (%s)" % agent.get("reply"), console)
    assert json.loads(agent["reply"]) == {"return": {}}
    # logind turns the ACPI power button into a clean poweroff
    dom.shutdown()
    wait_for(lambda: dom.info()[0] == libvirt.VIR_DOMAIN_SHUTOFF, 180, "power-off after virDomainShutdown", console)
    state, reason = dom.state()
    assert state == libvirt.VIR_DOMAIN_SHUTOFF and reason == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN, (state, reason)


@pytest.mark.skipif(not os.path.exists(OVMF_CODE), reason="no OVMF firmware (Debian package ovmf)")
def test_boots_with_uefi(guest):
    dom, console, _port, started = guest(uefi=True)
    login = wait_for(lambda: "login:" in read(console), BOOT_TIMEOUT, "login prompt (UEFI)", console)
    print("UEFI boot: login prompt after %.0f s" % (login - started))
    dom.destroy()


def test_without_cloud_init_boots_to_login_and_ssh(guest):
    """No datasource at all: the image's own DHCP on eth0 and its first-boot host keys."""
    _dom, console, port, started = guest(plain=True)
    login = wait_for(lambda: "login:" in read(console), BOOT_TIMEOUT, "login prompt (no cloud-init)", console)
    ssh = wait_for(lambda: ssh_banner(port).startswith("SSH-2.0-OpenSSH"), 120, "SSH banner (no cloud-init)",
                   console)
    assert "cloud-init" not in read(console)
    print("without cloud-init: login prompt after %.0f s, SSH banner after %.0f s" % (login - started, ssh - started))

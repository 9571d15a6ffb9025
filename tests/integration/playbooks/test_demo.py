"""playbooks/demo.yml as `make demo` runs it, on the real libvirtd: usable guests end to end.

The playbook builds (or takes from the factory's cache) a Debian 12 image, starts three guests from it with a
key of this run and userData, and configures them over SSH through the dynamic inventory; it stops one
gracefully, captures it and boots a fourth machine from the capture. It runs with ``demo_cleanup=false``, so
this test can look at what it left, through libvirt and SSH rather than through Sirocco:

* the stopped machine was shut down by its guest (libvirt's shut-off reason), not destroyed;
* the four guests have four forwarded ports, which the inventory hands to Ansible with the credential's user;
* SSH checks host keys: the inventory's known_hosts file lets each guest in, and a wrong key there is refused;
* a CPU load inside a guest shows in its CPU meter;

then the playbook's own teardown (``demo_state=absent``) runs and leaves no domain, disk, seed ISO, image or
pool behind, and a second teardown changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "demo.yml"
INVENTORY = REPO / "playbooks" / "inventory" / "demo.cimi.yml"
BIN = Path(sys.executable).parent
POOL = "sirocco-demo"
POOL_DIR = Path("/var/tmp/sirocco-demo-pool")
NAMES = ("sirocco-demo-web-1", "sirocco-demo-web-2", "sirocco-demo-db-1", "sirocco-demo-copy-1")
TIMEOUT = 1800  # the first run on a machine builds the image (about 2 minutes cold on 2 cores)
BUSY = 0.5  # a busy loop on the guest's one vCPU shows at least this share of it in the CPU meter


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """ansible-playbook / ansible-inventory with the demo's inventory, a key and a known_hosts file of this run."""
    home = tmp_path_factory.mktemp("demo")
    env = dict(os.environ, SIROCCO_KNOWN_HOSTS=str(home / "known_hosts"), ANSIBLE_HOST_KEY_CHECKING="True",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    extra = ["-e", "demo_key=%s" % (home / "id_ed25519")]

    def call(*args, tool="ansible-playbook", check=True):
        argv = [str(BIN / tool), "-i", str(INVENTORY)] + list(args)
        if tool == "ansible-playbook":
            argv += [str(PLAYBOOK)] + extra
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=TIMEOUT, cwd=REPO, check=False)
        if check and proc.returncode != 0:
            pytest.fail("%s failed (%d):\n%s\n%s" % (" ".join(argv), proc.returncode, proc.stdout[-6000:],
                                                     proc.stderr[-3000:]), pytrace=False)
        return proc

    call.home = home
    call.env = env
    return call


@pytest.fixture(scope="module")
def kept(run):
    """The demo run with its machines kept; torn down (by the playbook, or by force) afterwards."""
    proc = run("-e", "demo_cleanup=false")
    yield proc
    if POOL in _pool_names():
        run("-e", "demo_state=absent", check=False)


def _pool_names():
    conn = libvirt.open("qemu:///system")
    try:
        return [p.name() for p in conn.listAllStoragePools(0)]
    finally:
        conn.close()


def _connector():
    return LibvirtConnector("qemu:///system", options={"image_pool": POOL, "network": "user"})


def _ssh(run, host, command, known_hosts=None, timeout=60):
    """``command`` in the guest over SSH, as Ansible would connect (the inventory's host variables)."""
    hostvars = json.loads(run("--host", host, tool="ansible-inventory").stdout)
    args = shlex.split(hostvars["ansible_ssh_common_args"])
    if known_hosts is not None:
        args = [a if not a.startswith("UserKnownHostsFile=") else "UserKnownHostsFile=%s" % known_hosts for a in args]
    argv = ["ssh", "-i", str(run.home / "id_ed25519"), "-p", str(hostvars["ansible_port"]), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"] + args
    argv += ["%s@%s" % (hostvars["ansible_user"], hostvars["ansible_host"]), command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def test_play_ran_inside_the_three_guests(kept):
    out = kept.stdout
    reached = re.findall(r"reached at 127\.0\.0\.1:(\d+) as sirocco \(host key checked\)", out)
    assert len(reached) == 3 and len(set(reached)) == 3, out[-4000:]
    for name in NAMES[:3]:
        assert "/var/lib/sirocco-demo/marker: userData ran on %s" % name in out
    assert out.count("Debian GNU/Linux 12 (bookworm)") == 3
    assert "This message was configured by Sirocco on sirocco-demo-web-2" in out  # read on the copy
    assert re.search(r"sirocco-demo-copy-1\s+: ok=\d+ +changed=0 +unreachable=0 +failed=0", out)


def test_graceful_stop_was_the_guests_own_shutdown(kept):
    conn = libvirt.open("qemu:///system")
    try:
        state, reason = conn.lookupByName("sirocco-demo-web-2").state(0)
    finally:
        conn.close()
    assert (state, reason) == (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN)


def test_inventory_reaches_each_guest_with_its_own_port_user_and_host_key(kept, run):
    with _connector() as conn:
        machines = {m.name: m for m in conn.iter_machines() if m.name in NAMES}
    assert sorted(machines) == sorted(NAMES)
    assert machines["sirocco-demo-web-2"].state == states.STOPPED
    ports = {name: m.interfaces[0].addresses[0]["sshPort"] for name, m in machines.items()}
    assert len(set(ports.values())) == 4
    for name in ("sirocco-demo-web-1", "sirocco-demo-copy-1"):
        hostvars = json.loads(run("--host", name, tool="ansible-inventory").stdout)
        assert (hostvars["ansible_host"], hostvars["ansible_port"], hostvars["ansible_user"]) == (
            "127.0.0.1", ports[name], "sirocco")
        done = _ssh(run, name, "id -un; sudo -n true && echo sudo-ok")
        assert done.returncode == 0 and done.stdout.split() == ["sirocco", "sudo-ok"], done.stderr


def test_a_wrong_host_key_is_refused(kept, run):
    known = Path(run.env["SIROCCO_KNOWN_HOSTS"])
    wrong = run.home / "wrong_known_hosts"
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(run.home / "other")],
                           check=True)
    assert other.returncode == 0
    fake = (run.home / "other.pub").read_text().split()[:2]
    wrong.write_text("".join("%s %s\n" % (line.split()[0], " ".join(fake))
                             for line in known.read_text().splitlines() if line.strip()))
    refused = _ssh(run, "sirocco-demo-web-1", "true", known_hosts=wrong)
    assert refused.returncode == 255 and "Host key verification failed" in refused.stderr


def test_cpu_load_in_a_guest_shows_in_its_meter(kept, run):
    with _connector() as conn:
        machine = conn.find_machine("sirocco-demo-db-1")

        def cpu():
            return next(float(m.samples[0].value) for m in conn.list_meters(machine.id) if m.name == "cpu")

        idle = min(cpu() for _n in range(3))
        hostvars = json.loads(run("--host", "sirocco-demo-db-1", tool="ansible-inventory").stdout)
        argv = ["ssh", "-i", str(run.home / "id_ed25519"), "-p", str(hostvars["ansible_port"]), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes"] + shlex.split(hostvars["ansible_ssh_common_args"])
        load = subprocess.Popen(argv + ["sirocco@127.0.0.1", "timeout 12 sh -c 'while :; do :; done'; true"])
        try:
            time.sleep(4)  # SSH login, then the loop runs
            busy = max(cpu() for _n in range(5))
        finally:
            load.wait(60)
    assert busy >= BUSY * 100 and busy > idle + 25, (idle, busy)


def test_teardown_leaves_nothing_and_is_idempotent(kept, run):
    gone = run("-e", "demo_state=absent")
    assert re.search(r"localhost\s+: ok=\d+ +changed=[1-9]", gone.stdout)
    conn = libvirt.open("qemu:///system")
    try:
        assert not [d.name() for d in conn.listAllDomains(0) if d.name() in NAMES]
        assert POOL not in [p.name() for p in conn.listAllStoragePools(0)]
    finally:
        conn.close()
    assert not POOL_DIR.exists()
    again = run("-e", "demo_state=absent")
    assert re.search(r"localhost\s+: ok=\d+ +changed=0 ", again.stdout), again.stdout[-2000:]

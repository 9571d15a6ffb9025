# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Guest start-up benchmark: image in the pool -> SSH answers with the key, for 1 and 3 guests (a table).

    python tests/bench/guests/run.py                 # 3 runs of each row under TCG (~10 min on 2 cores)
    python tests/bench/guests/run.py --runs 5
    python tests/bench/guests/run.py --kvm           # also probe KVM and, if a guest boots, measure it

Each run creates the guests through the libvirt connector (1 vCPU, 1 GiB, a copy-on-write disk on the
factory's Debian 12 image, a NoCloud seed with a key of the run and userData writing a marker) and starts them
together; a guest is SSH-ready when `ssh` logs in with the key, checking the host key the connector handed to
cloud-init, and runs `true`; userData is done when the marker is there. The table gives medians over the runs
(the slowest guest of each run) and the ratio to the baseline row, one guest alone, measured in the same
process. Target (issue 13): three guests together SSH-ready in <= 60 s under TCG; KVM is informational.
The image comes from the factory's cache (built first if absent, which needs root and ~2 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import libvirt

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import SiroccoError
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import DiskImage, MachineSpec
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector
from ansible_collections.sirocco.cimi.plugins.module_utils.images import factory
from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec

# the spec of playbooks/demo.yml and playbooks/images.yml: the same cached build
SPEC = {"name": "debian-12-minimal", "distribution": "debian-12", "packages": [], "size_gib": 2,
        "formats": ["qcow2", "raw", "vmdk", "vhd"]}
TARGET_SECONDS = 60
USER_DATA = "#cloud-config\nwrite_files:\n  - {path: /var/tmp/sirocco-bench, content: ready}\n"
URI = "qemu:///system"


def table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
    print("| " + " | ".join("%-*s" % (w, h) for w, h in zip(widths, head, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join("%-*s" % (w, c) for w, c in zip(widths, row, strict=True)) + " |")
    print()


class Bench:
    def __init__(self, work, image_path):
        self.work = work
        self.pool = "sirocco-bench-%s" % secrets.token_hex(3)
        self.conn = libvirt.open(URI)
        os.makedirs(os.path.join(work, "pool"))
        self.conn.storagePoolCreateXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                       % (self.pool, os.path.join(work, "pool")), 0)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(work, "key")], check=True)
        with open(os.path.join(work, "key.pub"), encoding="ascii") as handle:
            self.key = handle.read().strip()
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", image_path], check=True,
                                         capture_output=True, text=True).stdout)
        with self.connector("qemu") as conn:
            self.image = conn.import_machine_image(DiskImage(name="bench", files={"qcow2": image_path},
                                                             virtual_size=info["virtual-size"])).id

    def connector(self, domain_type):
        return LibvirtConnector(URI, options={"image_pool": self.pool, "network": "user",
                                              "domain_type": domain_type})

    def ssh(self, machine, command, timeout=10):
        address = machine.interfaces[0].addresses[0]
        known = os.path.join(self.work, "known_hosts-" + machine.id)
        with open(known, "w", encoding="ascii") as handle:
            handle.write("[127.0.0.1]:%d %s\n" % (address["sshPort"], machine.properties["sirocco.sshHostKey"]))
        argv = ["ssh", "-i", os.path.join(self.work, "key"), "-p", str(address["sshPort"]), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=" + known, "-o",
                "ConnectTimeout=%d" % timeout, "debian@127.0.0.1", command]
        return subprocess.run(argv, capture_output=True, timeout=timeout + 5, check=False).returncode == 0

    def run(self, count, domain_type, deadline=300):
        """Seconds from creation to SSH-ready and to userData done, for the slowest of ``count`` guests."""
        with self.connector(domain_type) as conn:
            specs = [MachineSpec(name="%s-%d" % (self.pool, i), image=self.image, initial_state="STARTED",
                                 config=MachineConfiguration(cpu=1, memory=1024 * 1024), user_data=USER_DATA,
                                 credential={"username": "debian", "key": self.key}) for i in range(count)]
            started = time.monotonic()
            machines = [conn.create_machine(spec) for spec in specs]
            try:
                with ThreadPoolExecutor(count) as pool:
                    times = list(pool.map(lambda m: self.wait(m, started, deadline), machines))
            finally:
                for machine in machines:
                    conn.delete_machine(machine.id)
        return max(t[0] for t in times), max(t[1] for t in times)

    def wait(self, machine, started, deadline):
        ready = done = None
        while time.monotonic() - started < deadline:
            if ready is None and self.ssh(machine, "true", timeout=5):
                ready = time.monotonic() - started
            if ready is not None and self.ssh(machine, "test -s /var/tmp/sirocco-bench"):
                done = time.monotonic() - started
                return ready, done
            time.sleep(0.5)
        raise TimeoutError("guest %s: no SSH (or no userData marker) within %d s" % (machine.name, deadline))

    def close(self):
        pool = self.conn.storagePoolLookupByName(self.pool)
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
        self.conn.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kvm", action="store_true", help="probe KVM and measure it when a guest boots with it")
    parser.add_argument("--cache-dir", default=None, help="the factory's cache (default: its usual one)")
    args = parser.parse_args()

    spec = parse_spec(SPEC)
    result = factory.build(spec, args.cache_dir)
    image_path = result.image.files["qcow2"]
    print("image: %s (%s)\n" % (image_path, "factory cache" if result.cached else "built now"))
    work = tempfile.mkdtemp(prefix="sirocco-bench-guests-")
    bench = Bench(work, image_path)
    rows, baseline = [], None
    try:
        plan = [("qemu", 1), ("qemu", 3)]
        if args.kvm:
            if not os.path.exists("/dev/kvm"):
                print("KVM: /dev/kvm absent, not measured\n")
            else:
                try:
                    bench.run(1, "kvm", deadline=120)
                    plan += [("kvm", 1), ("kvm", 3)]
                except (TimeoutError, SiroccoError) as exc:
                    print("KVM: a probe guest did not reach SSH (%s): not measured; TCG it is\n" % exc)
        for domain_type, count in plan:
            samples = [bench.run(count, domain_type) for _n in range(args.runs)]
            ssh = statistics.median(s[0] for s in samples)
            done = statistics.median(s[1] for s in samples)
            if baseline is None:
                baseline = ssh
            rows.append(["TCG" if domain_type == "qemu" else "KVM", count, args.runs, "%.1f" % ssh,
                         "%.1f-%.1f" % (min(s[0] for s in samples), max(s[0] for s in samples)), "%.1f" % done,
                         "%.2f" % (ssh / baseline),
                         ("%s (<= %d s)" % ("yes" if ssh <= TARGET_SECONDS else "no", TARGET_SECONDS))
                         if (domain_type, count) == ("qemu", 3) else "-"])
    finally:
        bench.close()
        shutil.rmtree(work, ignore_errors=True)
    print("Guests from image in pool to SSH-ready (1 vCPU, 1 GiB each; %d CPUs here; median of the slowest guest "
          "per run)\n" % os.cpu_count())
    table(["accel", "guests", "runs", "SSH-ready s", "range s", "userData done s", "x baseline", "target met"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

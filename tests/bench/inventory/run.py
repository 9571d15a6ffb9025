"""Benchmark of the sirocco.cimi.cimi inventory plugin: wall-clock seconds of `ansible-inventory --list`.

    .venv/bin/python tests/bench/inventory/run.py [--runs 5] [--instances 2000]

1. EC2: ``--instances`` instances on one moto server, listed by sirocco.cimi.cimi (this tree, the dev venv)
   and by amazon.aws.aws_ec2 (the ``ansible`` package from PyPI with boto3, in a SEPARATE venv, made on
   first use under ~/.cache/sirocco/bench-aws-venv), in the same run, alternately. Target: no slower.
2. Four providers in one source (ec2 on moto, a libvirt test-driver host, the XAPI stand-in, vcsim as a
   vCenter), against each of them alone. Target: four at once <= 1.2 x the slowest alone.

Each figure is the median of ``--runs`` runs of the real CLI (a new process each time, so Python and Ansible
start-up are included, as a user sees them). Benchmarks print tables; they assert nothing. Without the ec2
connector (or boto3) in the dev venv, part 1 is skipped and part 2 uses a second libvirt host instead.
Every server is started here on a free port and stopped by its own PID.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
STANDINS = REPO / "tests" / "standins"
AWS_VENV = Path(os.environ.get("SIROCCO_BENCH_AWS_VENV", Path.home() / ".cache" / "sirocco" / "bench-aws-venv"))
AWS_PACKAGES = ["ansible>=11,<13", "boto3", "moto[server]>=5,<6"]
# boto3, moto and ansible-core at the versions of the dev venv (the lock as constraints): the two plugins
# compared run on the same libraries; the `ansible` package (amazon.aws) is the one version the lock leaves free
AWS_LOCK = REPO / "locks" / "ansible-core-2.19.txt"
ACCESS_KEY, SECRET_KEY, REGION = "AKIDSIROCCOBENCH0001", "sirocco-bench-secret", "us-east-1"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def log(text):
    print(text, file=sys.stderr, flush=True)


# -- the separate venv with amazon.aws (and moto's server) --------------------------------------------

def aws_venv():
    python = AWS_VENV / "bin" / "python"
    ready = AWS_VENV / ".sirocco-bench-ready"
    wanted = " ".join(AWS_PACKAGES) + " -c %s\n" % hashlib.sha256(AWS_LOCK.read_bytes()).hexdigest()
    if not ready.exists() or ready.read_text() != wanted:
        log("creating %s (ansible, boto3, moto from PyPI; about a minute)" % AWS_VENV)
        AWS_VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["python3.11", "-m", "venv", "--clear", str(AWS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-c", str(AWS_LOCK), *AWS_PACKAGES], check=True)
        ready.write_text(wanted)
    return AWS_VENV / "bin"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Moto:
    """moto's server from the aws venv, on a free port, stopped by its PID."""

    def __init__(self, aws_bin):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen([str(aws_bin / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.2)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)


POPULATE = r"""
import sys, boto3
url, count = sys.argv[1], int(sys.argv[2])
ec2 = boto3.client("ec2", endpoint_url=url, region_name="%s", aws_access_key_id="%s", aws_secret_access_key="%s")
image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
made = 0
while made < count:
    n = min(500, count - made)
    role = ("web", "db", "batch", "cache")[made // 500 %% 4]
    ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=n, MaxCount=n, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "role", "Value": role}, {"Key": "bench", "Value": "sirocco"}]}])
    made += n
ids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
ec2.stop_instances(InstanceIds=ids[: len(ids) // 4])  # a quarter stopped: every state is listed
print(len(ids))
""" % (REGION, ACCESS_KEY, SECRET_KEY)


# -- the other providers ----------------------------------------------------------------------------

def libvirt_host(directory, count, name):
    domains = "".join(
        "<domain type='test'><name>%s-%05d</name><uuid>%s</uuid><memory>65536</memory><vcpu>1</vcpu>"
        "<os><type>hvm</type></os>%s</domain>"
        % (name, i, uuid.uuid4(), "<test:runstate>5</test:runstate>" if i % 4 == 0 else "") for i in range(count))
    path = Path(directory) / ("%s.xml" % name)
    path.write_text("<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'><cpu><mhz>2400</mhz>"
                    "<model>i686</model><active>4</active><nodes>1</nodes><sockets>1</sockets><cores>4</cores>"
                    "<threads>1</threads></cpu><memory>67108864</memory>%s</node>" % domains)
    return "test://%s" % path


def vcsim_with(count):
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.vsphere import VSphereConnector

    sim = _load("sirocco_bench_vcsim", STANDINS / "vcsim" / "standin.py").Vcsim("vc").start()
    with VSphereConnector(**sim.params) as conn:
        for i in range(count):
            conn.create_machine(MachineSpec(name="bench-vm-%04d" % i, config=MachineConfiguration(cpu=1, memory=32768)))
    return sim


def has_ec2():
    probe = ("import boto3; from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry; "
             "assert 'ec2' in registry.PROVIDERS")
    return subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False).returncode == 0


# -- timing -------------------------------------------------------------------------------------------

def run_list(binary, source, env):
    started = time.monotonic()
    proc = subprocess.run([str(binary), "-i", str(source), "--list"], env=env, capture_output=True, text=True,
                          check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError("%s -i %s failed:\n%s" % (binary, source, proc.stderr[-3000:]))
    hosts = len(json.loads(proc.stdout)["_meta"]["hostvars"])
    warned = "[WARNING]" in proc.stderr
    return seconds, hosts, warned


def measure(cases, runs):
    """{name: [seconds...]} running every case once per round, round after round (load drifts evenly)."""
    times = {name: [] for name in cases}
    hosts = {}
    for round_no in range(runs):
        for name, (binary, source, env) in cases.items():
            seconds, count, warned = run_list(binary, source, env)
            if warned:
                log("  warning in %s (see its source %s)" % (name, source))
            times[name].append(seconds)
            hosts[name] = count
        log("  round %d/%d: %s" % (round_no + 1, runs, ", ".join("%s %.2f s" % (n, t[-1]) for n, t in times.items())))
    return times, hosts


def table(title, rows):
    print("\n%s\n" % title)
    print("| %-44s | %6s | %8s | %6s | %6s |" % ("case", "hosts", "median s", "min", "max"))
    print("|%s|%s|%s|%s|%s|" % ("-" * 46, "-" * 8, "-" * 10, "-" * 8, "-" * 8))
    for name, count, values in rows:
        print("| %-44s | %6d | %8.2f | %6.2f | %6.2f |" % (name, count, statistics.median(values), min(values),
                                                           max(values)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--instances", type=int, default=2000, help="EC2 instances on moto")
    parser.add_argument("--libvirt", type=int, default=1000, help="machines of the libvirt test-driver host")
    parser.add_argument("--xapi", type=int, default=500, help="VMs of the XAPI stand-in")
    parser.add_argument("--vcsim", type=int, default=100, help="VMs created on vcsim (besides its own 4)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sirocco-bench-inventory-"))
    collections = work / "collections"
    (collections / "ansible_collections" / "sirocco").mkdir(parents=True)
    (collections / "ansible_collections" / "sirocco" / "cimi").symlink_to(REPO, target_is_directory=True)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SIROCCO_", "AWS_"))}
    base_env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_FAILED="1",
                    ANSIBLE_CONFIG=str(work / "none.cfg"), ANSIBLE_LOCAL_TEMP=str(work / "tmp"))
    ours_env = dict(base_env, ANSIBLE_COLLECTIONS_PATH=str(collections))
    ours = BIN / "ansible-inventory"

    def source(name, data):
        path = work / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    ec2 = has_ec2()
    servers = []
    try:
        providers = {}
        results_ec2 = None
        if ec2:
            aws_bin = aws_venv()
            moto = Moto(aws_bin)
            servers.append(moto)
            log("moto at %s: making %d instances" % (moto.url, args.instances))
            made = subprocess.run([str(aws_bin / "python"), "-c", POPULATE, moto.url, str(args.instances)],
                                  capture_output=True, text=True, check=True).stdout.strip()
            log("  %s instances" % made)
            ec2_entry = dict(name="ec2", provider="ec2", uri=moto.url, region=REGION, username=ACCESS_KEY,
                             password=SECRET_KEY, timeout=300)
            providers["ec2"] = ec2_entry
            aws_source = source("bench.aws_ec2.yml", {
                "plugin": "amazon.aws.aws_ec2", "regions": [REGION], "endpoint_url": moto.url,
                "aws_access_key_id": ACCESS_KEY, "aws_secret_access_key": SECRET_KEY, "hostnames": ["instance-id"]})
            cimi_source = source("ec2.cimi.yml", {"plugin": "sirocco.cimi.cimi", "providers": [ec2_entry],
                                                  "hostnames": ["id"]})
            log("EC2: %d runs each of sirocco.cimi.cimi and amazon.aws.aws_ec2" % args.runs)
            results_ec2 = measure({"sirocco.cimi.cimi": (ours, cimi_source, ours_env),
                                   "amazon.aws.aws_ec2": (aws_bin / "ansible-inventory", aws_source, base_env)},
                                  args.runs)
        else:
            log("the ec2 connector (or boto3) is not in %s yet: EC2 part skipped, a 2nd libvirt host instead"
                % sys.prefix)
            providers["libvirt2"] = dict(name="libvirt2", provider="libvirt",
                                         uri=libvirt_host(work, args.instances, "libvirt2"), timeout=300)

        log("starting the XAPI stand-in (%d VMs) and vcsim (+%d VMs)" % (args.xapi, args.vcsim))
        xapi = _load("sirocco_bench_xapi", STANDINS / "xapi" / "control.py").start(seed_vms=args.xapi, timeout=300)
        servers.append(xapi)
        sim = vcsim_with(args.vcsim)
        servers.append(sim)
        providers["libvirt"] = dict(name="libvirt", provider="libvirt", uri=libvirt_host(work, args.libvirt, "kvm"),
                                    timeout=300)
        providers["xenserver"] = dict(name="xen", provider="xenserver", uri=xapi.url, username=xapi.username,
                                      password=xapi.password, timeout=300)
        providers["vsphere"] = dict(name="vc", provider="vsphere", uri=sim.url, username=sim.username,
                                    password=sim.password, validate_certs=False, timeout=300)
        cases = {}
        for name, entry in providers.items():
            alone = source("%s.cimi.yml" % name, {"plugin": "sirocco.cimi.cimi", "providers": [entry]})
            cases["%s alone" % name] = (ours, alone, ours_env)
        cases["all four at once"] = (ours, source("four.cimi.yml", {"plugin": "sirocco.cimi.cimi",
                                                                    "providers": list(providers.values())}),
                                     ours_env)
        log("four providers: %d runs of each case" % args.runs)
        results_four = measure(cases, args.runs)
    finally:
        for server in reversed(servers):
            server.stop()

    print("\n## sirocco.cimi.cimi inventory benchmark (%s, %d CPUs, load %.1f, median of %d runs)"
          % (time.strftime("%Y-%m-%d"), os.cpu_count(), os.getloadavg()[0], args.runs))
    if results_ec2:
        times, hosts = results_ec2
        table("EC2 on one moto server, `ansible-inventory --list`",
              [(name, hosts[name], values) for name, values in times.items()])
        ratio = statistics.median(times["sirocco.cimi.cimi"]) / statistics.median(times["amazon.aws.aws_ec2"])
        print("\nsirocco.cimi.cimi / amazon.aws.aws_ec2 = %.2f (target <= 1.00)" % ratio)
    times, hosts = results_four
    table("Four providers in one source vs each alone, `ansible-inventory --list`",
          [(name, hosts[name], values) for name, values in times.items()])
    alone = {name: statistics.median(v) for name, v in times.items() if name.endswith(" alone")}
    slowest = max(alone, key=alone.get)
    ratio = statistics.median(times["all four at once"]) / alone[slowest]
    print("\nall four / slowest alone (%s) = %.2f (target <= 1.20)" % (slowest, ratio))
    print("sum of the four alone = %.2f s" % sum(alone.values()))


if __name__ == "__main__":
    main()

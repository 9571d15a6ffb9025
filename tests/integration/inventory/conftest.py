"""Fixtures of the inventory tests: providers on the wire, and the real ``ansible-inventory`` CLI to ask them.

Providers: libvirt's test driver (one XML file per host; every process that opens it re-reads it, so the
plugin, in its own process, sees the machines written here), the XAPI wire-protocol stand-in
(tests/standins/xapi) and govmomi's vcsim (tests/standins/vcsim), each started by its own PID; a port
nobody listens on (a provider that is down) and a TCP server that accepts and never answers (a slow one).
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from inventory_helpers import BIN, Result, ansible_env

REPO = Path(__file__).resolve().parents[3]
STANDINS = REPO / "tests" / "standins"
NS = "urn:sirocco:cimi:libvirt:1"


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- libvirt test-driver hosts ---------------------------------------------------------------------

def domain_xml(name, uuid, running=True, properties=None, vcpus=1, memory_mib=64):
    """One test-driver domain; ``properties`` go into Sirocco's metadata as the connector writes them."""
    props = "".join("<s:property name='%s'>%s</s:property>" % (k, v) for k, v in (properties or {}).items())
    meta = "<metadata><s:machine xmlns:s='%s'>%s</s:machine></metadata>" % (NS, props) if props else ""
    state = "" if running else "<test:runstate>5</test:runstate>"
    return ("<domain type='test'><name>%s</name><uuid>%s</uuid><memory>%d</memory><vcpu>%d</vcpu>"
            "<os><type>hvm</type></os>%s%s</domain>" % (name, uuid, memory_mib * 1024, vcpus, meta, state))


def host_xml(domains):
    return ("<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>"
            "<cpu><mhz>2400</mhz><model>i686</model><active>4</active><nodes>1</nodes><sockets>1</sockets>"
            "<cores>4</cores><threads>1</threads></cpu><memory>4194304</memory>%s</node>" % "".join(domains))


@pytest.fixture(scope="session")
def libvirt_hosts(tmp_path_factory):
    """Two test-driver hosts: ``a`` and ``b`` both have a ``web1`` (a duplicate across providers)."""
    root = tmp_path_factory.mktemp("libvirt-hosts")
    hosts = {
        "a": [domain_xml("web1", "00000000-0000-4000-8000-00000000000a", properties={"role": "web", "env": "prod"}),
              domain_xml("db1", "00000000-0000-4000-8000-00000000000b", running=False,
                         properties={"role": "db", "env": "prod", "team": "a.b c"}, vcpus=4, memory_mib=256),
              domain_xml("batch1", "00000000-0000-4000-8000-00000000000c", running=False)],
        "b": [domain_xml("web1", "00000000-0000-4000-8000-0000000000b1", properties={"role": "web", "env": "dev"}),
              domain_xml("cache1", "00000000-0000-4000-8000-0000000000b2", properties={"role": "cache"})],
    }
    uris = {}
    for name, domains in hosts.items():
        path = root / ("host-%s.xml" % name)
        path.write_text(host_xml(domains))
        uris[name] = "test://%s" % path
    return uris


# -- the XAPI and vcsim stand-ins -----------------------------------------------------------------------

@pytest.fixture(scope="session")
def xapi_control():
    return _load("sirocco_inv_xapi_control", STANDINS / "xapi" / "control.py")


@pytest.fixture(scope="session")
def xapi(xapi_control):
    """A two-host pool with 4 seed VMs: seed-vm-000 and -002 running, -001 and -003 halted; -001 gets a
    network interface and is started, so that its guest metrics report an address."""
    import XenAPI

    server = xapi_control.start(hosts=2, seed_vms=4)
    session = XenAPI.Session(server.url)
    session.xenapi.login_with_password(server.username, server.password, "2.21", "sirocco-inventory-tests")
    try:
        api = session.xenapi
        vm = api.VM.get_by_name_label("seed-vm-001")[0]
        network = api.network.get_by_name_label("Pool-wide network associated with eth0")[0]
        api.VIF.create({"device": "0", "network": network, "VM": vm, "MAC": "", "MTU": "1500",
                        "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
        api.VM.start(vm, False, False)
    finally:
        session.xenapi.session.logout()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def vcsim():
    """vcsim as a standalone ESX host (its stock VMs, DC0_H0_VM0 and DC0_H0_VM1)."""
    module = _load("sirocco_inv_vcsim", STANDINS / "vcsim" / "standin.py")
    try:
        sim = module.Vcsim("esx").start()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the vcsim stand-in cannot start: %s (run `bash scripts/setup-system.sh` as root)" % exc,
                    pytrace=False)
    yield sim
    sim.stop()


# -- providers that are down or slow, at the wire level -----------------------------------------------

@pytest.fixture(scope="session")
def closed_port():
    """A local port nobody listens on: connections are refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class StallServer:
    """Accepts TCP connections and never answers (a provider that hangs); counts the connections."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.accepted = 0
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.held.append(conn)

    def close(self):
        self._stop = True
        self.thread.join(2)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture(scope="session")
def stall():
    server = StallServer()
    yield server
    server.close()


# -- running ansible-inventory ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def collections_path(tmp_path_factory):
    """A collections path whose ansible_collections/sirocco/cimi is this working tree."""
    root = tmp_path_factory.mktemp("collections")
    link = root / "ansible_collections" / "sirocco" / "cimi"
    link.parent.mkdir(parents=True)
    link.symlink_to(REPO, target_is_directory=True)
    return root


@pytest.fixture
def inventory(collections_path, tmp_path):
    """``inventory(config, *args, env=None)``: write ``config`` (a dict) as a .cimi.yml source, run
    ``ansible-inventory -i it --list`` (or ``args``), return a Result. A source that fails to parse makes the
    command fail (ANSIBLE_INVENTORY_UNPARSED_FAILED), so errors cannot pass as an empty inventory."""
    counter = iter(range(1, 1000))

    def run(config, *args, env=None, name=None, timeout=60):
        path = tmp_path / (name or "src%d.cimi.yml" % next(counter))
        path.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
        environ = ansible_env(collections_path, tmp_path)
        environ.update(env or {})
        command = [str(BIN / "ansible-inventory"), "-i", str(path), *(args or ("--list",))]
        started = time.monotonic()
        proc = subprocess.run(command, env=environ, cwd=tmp_path, capture_output=True, text=True, timeout=timeout,
                              check=False)
        return Result(proc, time.monotonic() - started)

    run.dir = tmp_path
    return run


@pytest.fixture(scope="session")
def moto():
    """moto's EC2 server (tests/standins/moto) with 3 instances, one stopped."""
    import boto3
    server = _load("sirocco_inv_moto", STANDINS / "moto" / "standin.py").MotoServer().start()
    try:
        ec2 = boto3.client("ec2", endpoint_url=server.url, region_name="us-east-1", **server.credentials)
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        ids = []
        for name, role in (("app1", "web"), ("app2", "web"), ("web1", "db")):
            reply = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                      TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                          {"Key": "Name", "Value": name}, {"Key": "role", "Value": role}]}])
            ids.append(reply["Instances"][0]["InstanceId"])
        ec2.stop_instances(InstanceIds=ids[1:2])
        server.instance_ids = ids
        yield server
    finally:
        server.stop()

"""Helpers of the daemon tests on real peers: a real PostgreSQL (tests/standins/postgres), real
QEMU domains behind the running libvirtd (qemu:///system), `siroccod serve` processes spoken to
over HTTP.

Every QEMU domain a test makes is named with a prefix unique to the test run (pid inside, so a
later run removes what a killed one left behind), and the daemon is told to manage only those
(host keys ``name_prefix`` and ``manage``): other suites using the same libvirtd at the same
time are invisible to it, and it is invisible to them.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml
from daemon_helpers import CIMI, JobDoc, action

ROOT = Path(__file__).resolve().parents[2]
DAEMON_DIR = ROOT / "daemon"
POSTGRES_START = ROOT / "tests" / "standins" / "postgres" / "start.sh"
QEMU_URI = "qemu:///system"
ADMIN = ("admin", "real-admin-pw")
FINAL = ("SUCCESS", "FAILED")


# -- PostgreSQL ------------------------------------------------------------------------------
_POSTGRES = {}


def postgres_url():
    """The URL of the throwaway cluster (started if needed: idempotent), once per session."""
    if "url" not in _POSTGRES:
        done = subprocess.run(["bash", str(POSTGRES_START)], capture_output=True, text=True, timeout=120,
                              check=False)
        if done.returncode != 0:
            pytest.fail("the PostgreSQL stand-in did not start (run `bash scripts/setup-system.sh` as root for "
                        "Debian's postgresql package):\n%s" % done.stderr[-2000:], pytrace=False)
        _POSTGRES["url"] = done.stdout.strip().splitlines()[-1]
    return _POSTGRES["url"]


@contextmanager
def fresh_database():
    """The URL of a new, empty database on the cluster, dropped afterwards."""
    import sqlalchemy as sa
    url = postgres_url()
    name = "sirocco_t_%s" % secrets.token_hex(5)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text("CREATE DATABASE %s" % name))
    try:
        yield url.rsplit("/", 1)[0] + "/" + name
    finally:
        with engine.connect() as conn:
            conn.execute(sa.text("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name))
        engine.dispose()


# -- QEMU behind libvirtd -------------------------------------------------------------------
class QemuHost:
    """Diskless TCG domains of one test run on qemu:///system, seen through libvirt-python directly."""

    def __init__(self):
        import libvirt
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        self.libvirt = libvirt
        try:
            self.conn = libvirt.open(QEMU_URI)
            self.conn.getVersion()
        except libvirt.libvirtError as exc:
            pytest.fail("libvirtd is not reachable at %s (%s): run `make system` as root"
                        % (QEMU_URI, exc.get_error_message()), pytrace=False)
        self.prefix = "sirocco-dt-%d-%s-" % (os.getpid(), secrets.token_hex(2))
        # domains made behind the daemon's back, named outside its <prefix><uuid> scheme
        self.outside = "handmade-" + self.prefix
        self.sweep_dead_runs()

    def host_config(self, name="kvm"):
        """The daemon's host entry: only this run's domains, room for many 64 MiB machines."""
        return {"name": name, "provider": "libvirt", "uri": QEMU_URI, "name_prefix": self.prefix,
                "manage": [self.prefix + "*", self.outside + "*"], "cpu": 64, "memory_mib": 16384,
                "power_idle": 70, "power_max": 250, "options": {"domain_type": "qemu", "network": "none"}}

    def domains(self):
        """name -> (UUID, libvirt state) of this run's domains."""
        out = {}
        for dom in self.conn.listAllDomains(0):
            try:
                if dom.name().startswith((self.prefix, self.outside)):
                    out[dom.name()] = (dom.UUIDString(), dom.state()[0])
            except self.libvirt.libvirtError:
                continue  # vanished while listed
        return out

    def define(self, name, start=False):
        """A domain made behind the daemon's back (as virsh would)."""
        dom = self.conn.defineXML(
            "<domain type='qemu'><name>%s</name><uuid>%s</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
            "<os><type arch='x86_64'>hvm</type></os><devices/></domain>" % (name, uuidlib.uuid4()))
        if start:
            dom.create()
        return dom.UUIDString()

    def remove(self, name):
        dom = self.conn.lookupByName(name)
        if dom.isActive():
            dom.destroy()
        dom.undefine()

    def clean(self, prefix=None):
        prefix = prefix or self.prefix

        def remove(dom):
            try:
                if dom.name().startswith((prefix, "handmade-" + prefix)):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
            except self.libvirt.libvirtError:
                pass  # already going: cleanup is best effort

        with ThreadPoolExecutor(8) as pool:  # QEMU processes end in parallel
            list(pool.map(remove, self.conn.listAllDomains(0)))

    def sweep_dead_runs(self):
        for dom in self.conn.listAllDomains(0):
            m = re.match(r"^(?:handmade-)?(sirocco-dt-(\d+)-[0-9a-f]{4}-)", dom.name())
            if m and not Path("/proc", m.group(2)).exists():
                self.clean(m.group(1))

    def close(self):
        self.clean()
        self.conn.close()


@contextmanager
def qemu_host():
    host = QemuHost()
    try:
        yield host
    finally:
        host.close()


# -- siroccod serve processes --------------------------------------------------------------------
def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(path, data_dir, hosts, database=None, **extra):
    """A daemon's configuration file; processes of one test share one sealing key (beside their files), as
    every process sharing a CMDB must."""
    config = {"data_dir": str(data_dir), "admin_password": ADMIN[1], "hosts": hosts, "workers": 2,
              "job_poll_interval": 0.1, "log_level": "INFO", "secret_key_file": str(path.parent / "secret.key"),
              **extra}
    if database:
        config["database"] = database
    path.write_text(yaml.safe_dump(config))
    return path


class Served:
    """One `siroccod -c CONFIG serve` process on a free port."""

    def __init__(self, config, log_path, name="siroccod"):
        self.config, self.log_path, self.name = config, log_path, name
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(DAEMON_DIR), os.environ.get("PYTHONPATH", "")]))
        for var in [v for v in env if v.startswith("SIROCCOD_")]:
            env.pop(var)
        self._log = open(log_path, "a")  # noqa: SIM115 (closed by stop/kill)
        self.proc = subprocess.Popen([sys.executable, "-m", "siroccod", "-c", str(config), "serve", "--listen",
                                      "127.0.0.1:%d" % self.port], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT)

    @property
    def pid(self):
        return self.proc.pid

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(self.base + "/cimi/cloudEntryPoint", timeout=2).status_code == 401:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("%s did not start:\n%s" % (self.name, self.log()[-3000:]))

    def log(self):
        return Path(self.log_path).read_text(errors="replace")

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not self._log.closed:
            self._log.close()

    def api(self, user=ADMIN):
        return HttpApi(self.base, user)


class HttpApi:
    """A CIMI client over HTTP, as one user (requests; one session per thread of use)."""

    def __init__(self, base, user):
        self.base = base
        self.session = requests.Session()
        self.session.auth = user

    def get(self, url, **kw):
        return self.session.get(self._abs(url), timeout=30, **kw)

    def post(self, url, body=None, **kw):
        return self.session.post(self._abs(url), json=body, timeout=30, **kw)

    def delete(self, url, **kw):
        return self.session.delete(self._abs(url), timeout=30, **kw)

    def _abs(self, url):
        return url if url.startswith("http") else self.base + url

    def on(self, other_base):
        """The same user against another process (hrefs are absolute: rebase them)."""
        return HttpApi(other_base, self.session.auth)

    def rebase(self, href):
        return self.base + "/cimi/" + href.split("/cimi/", 1)[1]

    def collection(self, key):
        return self.get("/cimi/cloudEntryPoint").json()[key]["href"]

    def items(self, key, query=""):
        r = self.get(self.collection(key) + query)
        assert r.status_code == 200, r.text
        return r.json().get(key, [])

    def config_href(self, name="tiny"):
        return next(c["id"] for c in self.items("machineConfigs") if c["name"] == name)

    def submit_machine(self, name, state="STOPPED", config="tiny"):
        """POST a MachineCreate; (machine href, job href)."""
        body = {"resourceURI": CIMI + "MachineCreate", "name": name,
                "machineTemplate": {"machineConfig": {"href": self.config_href(config)}, "initialState": state}}
        r = self.post(self.collection("machines"), body)
        assert r.status_code == 202, r.text
        return r.headers["Location"], r.headers["CIMI-Job-URI"]

    def submit_action(self, machine_href, verb, **params):
        doc = self.get(machine_href).json()
        ops = {op["rel"].rsplit("/", 1)[-1]: op["href"] for op in doc.get("operations", [])}
        assert verb in ops, (verb, doc.get("state"), sorted(ops))
        target = ops[verb]
        r = self.delete(target) if verb == "delete" else self.post(target, action(verb, **params))
        assert r.status_code == 202, r.text
        return r.headers["CIMI-Job-URI"]

    def wait(self, job_href, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_href).json()
            if job.get("state") in FINAL:
                return JobDoc(job)
            assert time.monotonic() < deadline, "job still %s: %s" % (job.get("state"), job)
            time.sleep(0.05)

    def create_machine(self, name, state="STOPPED"):
        machine, job = self.submit_machine(name, state)
        done = self.wait(job)
        assert done["state"] == "SUCCESS", done
        return self.get(machine).json()

    def act(self, machine_href, verb, **params):
        done = self.wait(self.submit_action(machine_href, verb, **params))
        assert done["state"] == "SUCCESS", done
        return self.get(machine_href).json() if verb != "delete" else None

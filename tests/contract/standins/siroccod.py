"""siroccod stand-in: the daemon itself, started as a real ``siroccod serve`` process, spoken to by the
``cimi`` connector over HTTP.

The embedded default (three simulated hosts on libvirt's test driver, a SQLite CMDB) in a temporary data
directory, on a free port, with the admin password from the environment; the tests run as a normal user
of their own tenant, created through the admin API.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.cimi_http import CimiConnector

from .base import StandIn

DAEMON_DIR = Path(__file__).resolve().parents[3] / "daemon"
CIMI = "http://schemas.dmtf.org/cimi/2/"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Daemon:
    """One ``siroccod serve`` process: its URL, admin credentials and log."""

    def __init__(self, data_dir, port=None, config=None):
        self.data_dir = Path(data_dir)
        self.config = config  # a dict of configuration keys (e.g. image_sources), written as the --config file
        self.port = port or free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.cep = self.url + "/cimi/cloudEntryPoint"
        self.admin = ("admin", "adm-" + secrets.token_urlsafe(12))
        self.log_path = self.data_dir.parent / ("siroccod-%d.log" % self.port)
        self.proc = None

    def start(self, timeout=30):
        env = dict(os.environ, SIROCCOD_DATA=str(self.data_dir), SIROCCOD_ADMIN_PASSWORD=self.admin[1],
                   SIROCCOD_LOG_LEVEL="WARNING",
                   PYTHONPATH=os.pathsep.join(p for p in (str(DAEMON_DIR), os.environ.get("PYTHONPATH")) if p))
        env.pop("SIROCCOD_CONFIG", None)
        command = [sys.executable, "-m", "siroccod"]
        if self.config:
            path = self.data_dir.parent / ("siroccod-%d.json" % self.port)  # JSON is YAML
            path.write_text(json.dumps(self.config))
            command += ["--config", str(path)]
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed by stop())
        self.proc = subprocess.Popen(command + ["serve", "--listen", "127.0.0.1:%d" % self.port], env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        self.proc.log = log
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if requests.get(self.cep, auth=self.admin, timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail("siroccod did not start on port %d:\n%s" % (self.port, self.log()), pytrace=False)

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def add_user(self, name, tenant):
        """A normal user of its own tenant: (name, password)."""
        password = "pw-" + secrets.token_urlsafe(12)
        r = requests.post(self.url + "/admin/users", auth=self.admin, timeout=10,
                          json={"name": name, "tenant": tenant, "password": password})
        assert r.status_code == 201, r.text
        return name, password

    def token(self, name):
        r = requests.post(self.url + "/admin/users/%s/tokens" % name, auth=self.admin, timeout=10, json={})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.log.close()
        self.proc = None


class Cleaner:
    """Removes a user's resources by name prefix over plain HTTP (not through the connector under test)."""

    def __init__(self, daemon, auth):
        self.daemon = daemon
        self.session = requests.Session()
        self.session.auth = auth
        self._cep = None

    def _items(self, key):
        if self._cep is None:  # the user's collection links: the same for the whole session
            self._cep = self.session.get(self.daemon.cep, timeout=10).json()
        return self.session.get(self._cep[key]["href"], timeout=10).json().get(key, [])

    def _wait(self, job_uri, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.session.get(job_uri, timeout=10).json().get("state") in ("SUCCESS", "FAILED", "STOPPED"):
                return
            time.sleep(0.05)

    def _settle(self, key, prefix, timeout=30):
        """Our resources of ``key`` once none is in a transitional state (a job is under way)."""
        deadline = time.monotonic() + timeout
        while True:
            ours = [d for d in self._items(key) if (d.get("name") or "").startswith(prefix)]
            transient = ("CREATING", "STARTING", "STOPPING", "PAUSING", "SUSPENDING", "CAPTURING", "DELETING")
            busy = [d for d in ours if d.get("state") in transient]
            if not busy or time.monotonic() >= deadline:
                return ours
            time.sleep(0.1)

    # systems first (their Job deletes their members), the stored kinds last (templates may name configs,
    # images and credentials; nothing refers to a template)
    ORDER = ("systems", "machines", "machineImages", "volumes", "networks", "systemTemplates", "machineTemplates",
             "credentials", "machineConfigs")

    def remove(self, prefix):
        self._settle("machines", prefix)  # a system is deletable once its machines rest
        for key in self.ORDER:
            for doc in self._settle(key, prefix):
                r = self.session.delete(doc["id"], timeout=10)
                if r.status_code == 202:
                    self._wait(r.headers["CIMI-Job-URI"])


class SiroccodStandIn(StandIn):
    """The daemon's embedded default; the connector logs in as a normal user."""

    id = "siroccod"
    image = "tiny-linux.qcow2"  # the stock image of every simulated host
    size = "tiny"
    live_attach = False  # simulated hosts are libvirt test drivers: no disk hot-plug
    # ... which put nothing into a guest: the daemon refuses (400) a machine with a credential or userData, though
    # the cimi connector's capabilities cannot tell (siroccod publishes no guest inputs)
    guest_inputs = frozenset()

    def __init__(self):
        super().__init__()
        self.daemon = None
        self.user = None
        self.cleaner = None

    def start(self, tmpdir):
        # images are imported from file:// locations under the session's temporary directory (the contract
        # suite's tiny disks live there)
        sources = {"image_sources": {"directories": [str(Path(tmpdir).resolve().parent)]}}
        self.daemon = Daemon(Path(tmpdir) / "data", config=sources).start()
        self.user = self.daemon.add_user("contract", "contract-tenant")
        self.cleaner = Cleaner(self.daemon, self.user)

    def connect(self):
        return CimiConnector(uri=self.daemon.cep, username=self.user[0], password=self.user[1], timeout=30,
                             options={"job_timeout": 60})

    def clean(self):
        self.cleaner.remove(self.prefix)

    def stop(self):
        if self.daemon is not None:
            log = self.daemon.log()
            self.daemon.stop()
            self.daemon = None
            assert "Traceback" not in log, log


STANDINS = [SiroccodStandIn()]

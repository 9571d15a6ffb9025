"""The vcsim stand-in from Python: build it if needed, start it on a free port, stop it by PID.

    with Vcsim("vc") as sim:          # or "esx"
        connector = VSphereConnector(**sim.params)

The binary picks its own free port (``-listen 127.0.0.1:0``) and prints its URL
when it serves, so there is no race for a port between tests.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MODES = ("esx", "vc")


def build(timeout=600):
    """Path of the vcsim binary, compiled by build.sh when main.go changed."""
    done = subprocess.run(["bash", str(HERE / "build.sh")], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError("building the vcsim stand-in failed:\n%s" % done.stderr.strip())
    return done.stdout.strip().splitlines()[-1]


class Vcsim:
    """One vcsim process: an ESX host (``esx``) or a vCenter (``vc``)."""

    def __init__(self, mode="esx", username="sirocco", password="vcsim-secret", images=1, vms=0):
        if mode not in MODES:
            raise ValueError("mode must be one of %s" % ", ".join(MODES))
        self.mode, self.username, self.password, self.images = mode, username, password, images
        self.vms = vms  # VMs per resource pool; 0: the simulator's stock model
        self.proc = None
        self.url = None
        self._log = None

    @property
    def params(self):
        """Keyword arguments of a connector talking to this stand-in."""
        return dict(uri=self.url, username=self.username, password=self.password, validate_certs=False)

    def start(self, timeout=60):
        binary = build()
        self._log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [binary, "-mode", self.mode, "-listen", "127.0.0.1:0", "-username", self.username,
             "-password", self.password, "-images", str(self.images), "-vms", str(self.vms)],
            stdout=subprocess.PIPE, stderr=self._log, text=True, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            line = ""
            while not line.startswith("VCSIM_URL="):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("vcsim (%s) did not start:\n%s" % (self.mode, self.log()))
                ready = select.select([self.proc.stdout], [], [], 0.2)[0]
                if ready:
                    line = self.proc.stdout.readline().strip()
            self.url = line.split("=", 1)[1]
            host, port = self.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
            while True:  # it prints once serving; check that it answers anyway
                try:
                    socket.create_connection((host, int(port)), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def log(self):
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-4000:]

    def stop(self):
        """SIGTERM to our own PID (vcsim then removes its datastore directories), SIGKILL if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        if self._log is not None:
            self._log.close()

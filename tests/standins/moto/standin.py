# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""moto's EC2/CloudWatch server from tests: started on a free port in its own process, stopped by PID.

    with MotoServer() as moto:        # or moto = MotoServer().start(); ...; moto.stop()
        boto3.client("ec2", endpoint_url=moto.url, region_name="us-east-1", **moto.credentials)
        moto.reset()                  # POST /moto-api/reset: every backend empty again

Load this file by path (tests/ is not a package), e.g. with
``importlib.util.spec_from_file_location``.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

SERVER = Path(__file__).resolve().parent / "server.py"
READY = "MOTO_URL="


class MotoServer:
    """One moto server process (server.py: moto's app + the EC2 metrics it publishes)."""

    # moto accepts any key pair; these are what the tests hand to boto3 and libcloud
    access_key = "AKIDSIROCCOTEST0001"
    secret_key = "sirocco-moto-secret"

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.proc = None
        self.url = None
        self._log = None

    @property
    def credentials(self):
        return {"aws_access_key_id": self.access_key, "aws_secret_access_key": self.secret_key}

    @property
    def port(self):
        return int(self.url.rsplit(":", 1)[1])

    def start(self, timeout=60):
        self._log = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, MOTO_CALL_RESET_API="true")
        for var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(var, None)
        self.proc = subprocess.Popen([sys.executable, str(SERVER), "--host", self.host, "--port", "0"],
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            line = ""
            while not line.startswith(READY):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the moto stand-in did not start:\n%s" % self.log())
                if select.select([self.proc.stdout], [], [], 0.2)[0]:
                    line = self.proc.stdout.readline().strip()
            self.url = line[len(READY):]
            while True:  # it prints once listening; check that it answers anyway
                try:
                    with urllib.request.urlopen(self.url + "/moto-api/data.json", timeout=5):
                        break
                except (OSError, urllib.error.URLError):
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the moto stand-in does not answer:\n%s" % self.log()) from None
                    time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        return self

    def reset(self):
        """Empty every backend (moto's reset API), e.g. between tests that need isolation."""
        request = urllib.request.Request(self.url + "/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as reply:
            reply.read()

    def log(self):
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-4000:]

    def stop(self):
        """SIGTERM to our own PID, SIGKILL if it lingers."""
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
            self._log = None

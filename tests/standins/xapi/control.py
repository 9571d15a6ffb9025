# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start and stop the XAPI stand-in (server.py) from tests: 127.0.0.1, a free port, its own process.

    from control import start
    standin = start()            # XapiStandin(url=..., username=..., password=..., pid=...)
    ...
    standin.stop()               # by its PID

Load this file by path (tests/ is not a package), e.g. with
``importlib.util.spec_from_file_location``, or use ``load()`` below from a
module that already has it.
"""

import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "server.py")
READY = "XAPI stand-in listening on "


@dataclass
class XapiStandin:
    url: str
    username: str
    password: str = field(repr=False)
    pid: int
    process: subprocess.Popen = field(repr=False, default=None)

    def stop(self, timeout=5.0):
        """Stop the server by its own PID (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout)
        if self.process.stdout:
            self.process.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start(username="root", password=None, hosts=2, seed_vms=0, async_delay=0.0, timeout=15.0, python=None):
    """Start a fresh stand-in (empty of ordinary VMs unless ``seed_vms``) and wait until it listens."""
    password = password or secrets.token_urlsafe(12)
    # "--password=<token>" in one word: a token_urlsafe may begin with "-", which argparse takes for an option
    args = [python or sys.executable, SERVER, "--host", "127.0.0.1", "--port", "0", "--user", username,
            "--password=" + password, "--hosts", str(hosts), "--seed-vms", str(seed_vms),
            "--async-delay", str(async_delay)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               stdin=subprocess.DEVNULL)
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    seen = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith(READY):
                url = line[len(READY):].strip()
                return XapiStandin(url=url, username=username, password=password, pid=process.pid,
                                   process=process)
            seen.append(line)
    finally:
        selector.close()
    process.kill()
    process.wait()
    raise RuntimeError("XAPI stand-in did not start within %ss: %s" % (timeout, "".join(seen)[-2000:]))


if __name__ == "__main__":  # manual use: start one and wait for Ctrl-C
    standin = start(password=os.environ.get("XAPI_PASSWORD"))
    print("%s user=%s pid=%d" % (standin.url, standin.username, standin.pid), flush=True)
    try:
        standin.process.wait()
    except KeyboardInterrupt:
        standin.stop()

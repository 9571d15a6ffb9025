"""The pip door: `pip install 'sirocco-cimi[daemon]'` into an empty venv gives a daemon that serves, with
neither Ansible nor any cloud SDK the embedded default does not use. Versions come from the 2.19 lock
(as constraints), the project is built from a copy of this tree the way pip builds any sdist."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

from conftest import REPO, run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


JUNK = ("build", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", "output")


def _copy_ignoring(directory, names):
    return [n for n in names if n.startswith((".venv", ".git")) or n in JUNK]


def test_daemon_extra_installs_and_serves(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=_copy_ignoring, symlinks=True)
    venv = tmp_path / "venv"
    made = run(["python3.11", "-m", "venv", venv])
    assert made.returncode == 0, made.stderr
    pip = run([venv / "bin" / "python", "-m", "pip", "install", "-q", "-c", REPO / "locks" / "ansible-core-2.19.txt",
               "%s[daemon]" % source], timeout=900)
    assert pip.returncode == 0, pip.stdout[-3000:] + pip.stderr[-3000:]
    listed = run([venv / "bin" / "python", "-m", "pip", "list", "--format", "json"])
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"flask", "sqlalchemy", "pulp", "libvirt-python", "click", "pyyaml", "hypercorn", "alembic",
            "cryptography"} <= names
    # the daemon needs no Ansible and no SDK of a provider its hosts do not use
    assert not names & {"ansible-core", "boto3", "openstacksdk", "pyvmomi", "apache-libcloud", "xenapi"}

    data, port = tmp_path / "data", _free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SIROCCOD_")}
    env.update(SIROCCOD_DATA=str(data), SIROCCOD_ADMIN_PASSWORD="compat-admin-secret")
    daemon = subprocess.Popen([venv / "bin" / "siroccod", "serve", "--listen", "127.0.0.1:%d" % port],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              start_new_session=True)
    try:
        cep = "http://127.0.0.1:%d/cimi/cloudEntryPoint" % port
        auth = "Basic " + base64.b64encode(b"admin:compat-admin-secret").decode()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(cep, headers={"Authorization": auth}),
                                            timeout=5) as reply:
                    entry = json.load(reply)
                break
            except OSError:
                assert daemon.poll() is None and time.monotonic() < deadline, "siroccod did not serve"
                time.sleep(0.3)
        assert entry["resourceURI"] == "http://schemas.dmtf.org/cimi/2/CloudEntryPoint"
        assert entry["machines"]["href"].endswith("/cimi/machines")
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        output = daemon.communicate(timeout=30)[0]
    assert "compat-admin-secret" not in output

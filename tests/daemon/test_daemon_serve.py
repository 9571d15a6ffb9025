"""`siroccod serve` as a real process on a free port, spoken to over HTTP(S); the CLI."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from daemon_helpers import CIMI, action

DAEMON_DIR = Path(__file__).resolve().parents[2] / "daemon"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tmp_path, *extra_args, env_extra=None):
    port = free_port()
    env = dict(os.environ, SIROCCOD_DATA=str(tmp_path / "data"), SIROCCOD_ADMIN_PASSWORD="serve-admin-pw",
               PYTHONPATH=os.pathsep.join([str(DAEMON_DIR), os.environ.get("PYTHONPATH", "")]), **(env_extra or {}))
    env.pop("SIROCCOD_CONFIG", None)
    log = open(tmp_path / "siroccod.log", "w")  # noqa: SIM115 (closed by stop())
    proc = subprocess.Popen([sys.executable, "-m", "siroccod", "serve", "--listen", "127.0.0.1:%d" % port,
                             *extra_args], env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise AssertionError("siroccod did not start: %s" % (tmp_path / "siroccod.log").read_text())


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    proc.log.close()


def test_serve_over_http_with_basic_auth(tmp_path):
    proc, port = start(tmp_path)
    try:
        base = "http://127.0.0.1:%d" % port
        auth = ("admin", "serve-admin-pw")
        r = requests.get(base + "/cimi/cloudEntryPoint", timeout=10)
        assert r.status_code == 401 and r.json()["resourceURI"] == CIMI + "Job"
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        cep = requests.get(base + "/cimi/cloudEntryPoint", auth=auth, timeout=10).json()
        assert cep["baseURI"] == base + "/cimi/"
        machines = cep["machines"]["href"]
        configs = requests.get(cep["machineConfigs"]["href"], auth=auth, timeout=10).json()["machineConfigs"]
        r = requests.post(machines, auth=auth, timeout=10, json={
            "resourceURI": CIMI + "MachineCreate", "name": "over-http",
            "machineTemplate": {"machineConfig": {"href": configs[0]["id"]}, "initialState": "STARTED"}})
        assert r.status_code == 202
        job_uri, machine_uri = r.headers["CIMI-Job-URI"], r.headers["Location"]
        deadline = time.monotonic() + 20
        while requests.get(job_uri, auth=auth, timeout=10).json()["state"] not in ("SUCCESS", "FAILED"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        machine = requests.get(machine_uri, auth=auth, timeout=10).json()
        assert machine["state"] == "STARTED"
        stop_href = [o["href"] for o in machine["operations"] if o["rel"] == CIMI + "action/stop"][0]
        r = requests.post(stop_href, auth=auth, timeout=10, json=action("stop", force=True))
        assert r.status_code == 202
        r = requests.post(machines, auth=auth, timeout=10, data=b"{broken",
                          headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["statusMessage"].startswith("request body is not valid JSON")
        # two Authorization headers on the wire: refused, whichever a server would have kept
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            basic = "Basic " + base64.b64encode(b"admin:serve-admin-pw").decode()
            sock.sendall(("GET /cimi/cloudEntryPoint HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
                          "Authorization: Bearer sct_other\r\nConnection: close\r\n\r\n" % basic).encode())
            reply = b""
            while chunk := sock.recv(65536):
                reply += chunk
        head, _sep, body = reply.partition(b"\r\n\r\n")
        assert head.split()[1] == b"400" and json.loads(body)["properties"]["attribute"] == "Authorization"
    finally:
        stop(proc)
    assert proc.returncode == 0
    log = (tmp_path / "siroccod.log").read_text()
    assert "serve-admin-pw" not in log and "Traceback" not in log


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
def test_serve_over_tls(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    proc, port = start(tmp_path, env_extra={"SIROCCOD_TLS_CERT": str(cert), "SIROCCOD_TLS_KEY": str(key)})
    try:
        r = requests.get("https://127.0.0.1:%d/cimi/cloudEntryPoint" % port, auth=("admin", "serve-admin-pw"),
                         verify=str(cert), timeout=10)
        assert r.status_code == 200 and r.json()["baseURI"].startswith("https://")
    finally:
        stop(proc)


def test_cli_users_and_hosts(tmp_path, monkeypatch):
    from siroccod.cli import main
    monkeypatch.setenv("SIROCCOD_DATA", str(tmp_path))
    monkeypatch.delenv("SIROCCOD_CONFIG", raising=False)
    runner = CliRunner()
    r = runner.invoke(main, ["hosts"])
    assert r.exit_code == 0 and "start the daemon once" in r.output
    r = runner.invoke(main, ["user", "add", "erin", "--tenant", "tenant-e"])
    assert r.exit_code == 0, r.output
    assert "password: " in r.output
    r = runner.invoke(main, ["user", "add", "frank", "--password-stdin"], input="frank-password\n")
    assert r.exit_code == 0 and "password:" not in r.output
    r = runner.invoke(main, ["user", "add", "frank"])
    assert r.exit_code != 0 and "already exists" in r.output
    r = runner.invoke(main, ["user", "list", "--json"])
    users = {u["name"]: u for u in json.loads(r.output)}
    assert users["erin"]["tenant"] == "tenant-e" and users["frank"]["tenant"] == "frank"
    r = runner.invoke(main, ["user", "token", "frank", "--label", "ci"])
    assert r.exit_code == 0 and r.output.startswith("sct_")
    r = runner.invoke(main, ["user", "remove", "frank"])
    assert r.exit_code == 0
    r = runner.invoke(main, ["user", "remove", "frank"])
    assert r.exit_code != 0 and "no user" in r.output

    from daemon_helpers import make_app
    app = make_app(tmp_path)  # the daemon on that data dir: its hosts get recorded
    app.extensions["siroccod"].close()
    r = runner.invoke(main, ["hosts"])
    assert r.exit_code == 0 and all(name in r.output for name in ("sim1", "sim2", "sim3"))
    r = runner.invoke(main, ["hosts", "--json"])
    hosts = json.loads(r.output)
    assert [h["powerIdle"] for h in hosts] == [60, 95, 30]


def test_cli_place_runs_the_optimizer():
    from siroccod.cli import main
    problem = {"hosts": [{"name": "a", "cpu": 8, "memory": 16, "power_idle": 50, "power_max": 150},
                         {"name": "b", "cpu": 8, "memory": 16, "power_idle": 90, "power_max": 300}],
               "vms": [{"name": "v1", "cpu": 2, "memory": 2}, {"name": "v2", "cpu": 2, "memory": 2}],
               "time_limit": 2}
    r = CliRunner().invoke(main, ["place", "-"], input=json.dumps(problem))
    assert r.exit_code == 0, r.output
    plan = json.loads(r.output)
    assert plan["placement"] == {"v1": "a", "v2": "a"}
    r = CliRunner().invoke(main, ["place", "-"], input="{not json")
    assert r.exit_code == 1


def test_serve_reports_a_busy_port_before_serving(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = dict(os.environ, SIROCCOD_DATA=str(tmp_path / "data"),
                   PYTHONPATH=os.pathsep.join([str(DAEMON_DIR), os.environ.get("PYTHONPATH", "")]))
        env.pop("SIROCCOD_CONFIG", None)
        r = subprocess.run([sys.executable, "-m", "siroccod", "serve", "--listen", "127.0.0.1:%d" % port],
                           env=env, capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1 and "Address already in use" in r.stderr, r.stderr
    assert "serving" not in r.stderr


def test_serve_help_says_which_servers_are_not_slowloris_safe():
    from siroccod.cli import main
    r = CliRunner().invoke(main, ["serve", "--help"], terminal_width=200)
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    assert "Only hypercorn is slowloris-safe" in text and "[default: hypercorn]" in text
    for option in ("--max-connections", "--header-timeout", "--body-timeout", "--max-header-size", "--max-headers"):
        assert option in text

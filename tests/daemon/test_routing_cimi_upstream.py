"""siroccod routing to a second, REAL siroccod (`siroccod serve` in a process of its own, spoken to
over HTTP) configured as a ``cimi`` upstream: policy lowest-energy, a location wish naming one of
the upstream daemon's hosts, actions and delete through it, its password kept out of everything."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from daemon_helpers import ADMIN_PASSWORD, CIMI, PASSWORDS, Api, add_users, make_app

DAEMON_DIR = Path(__file__).resolve().parents[2] / "daemon"
EDGE_PASSWORD = "edge-admin-SECRET-4b1d"
# the front daemon's one host: an empty host draws its idle power as soon as a machine lands there
HOSTS = [{"name": "front1", "simulated": {"cpu": 4, "memory_mib": 4096, "mhz": 2400},
          "power_idle": 80, "power_max": 200}]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    """The upstream daemon: the embedded default (three simulated hosts), over HTTP."""
    data = tmp_path_factory.mktemp("edge")
    port = free_port()
    env = dict(os.environ, SIROCCOD_DATA=str(data / "data"), SIROCCOD_ADMIN_PASSWORD=EDGE_PASSWORD,
               PYTHONPATH=os.pathsep.join([str(DAEMON_DIR), os.environ.get("PYTHONPATH", "")]))
    env.pop("SIROCCOD_CONFIG", None)
    with open(data / "edge.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "siroccod", "serve", "--listen", "127.0.0.1:%d" % port],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = "http://127.0.0.1:%d" % port
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (data / "edge.log").read_text()
                try:
                    requests.get(url + "/cimi/cloudEntryPoint", timeout=2)
                    break
                except requests.ConnectionError:
                    assert time.monotonic() < deadline, "the upstream siroccod did not start"
                    time.sleep(0.1)
            yield url
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def edge_machines(url):
    reply = requests.get(url + "/cimi/machines", auth=("admin", EDGE_PASSWORD), timeout=10)
    return {m["name"]: m for m in reply.json().get("machines", [])}


@pytest.fixture(scope="module")
def front(edge, tmp_path_factory):
    data = tmp_path_factory.mktemp("front")
    secret = data / "edge-password"
    secret.write_text(EDGE_PASSWORD + "\n")
    app = make_app(data / "daemon", hosts=HOSTS, routing_policy="lowest-energy", log_level="DEBUG", upstreams=[
        {"name": "edge", "provider": "cimi", "uri": edge + "/cimi/cloudEntryPoint", "username": "admin",
         "password_file": str(secret), "timeout": 30, "watts_per_cpu": 12, "survey_ttl": 0,
         "name_prefix": "front-"}])
    client = app.test_client()
    add_users(Api(client, "admin", ADMIN_PASSWORD), ("alice",))
    yield app, Api(client, "alice", PASSWORDS["alice"]), data
    app.extensions["siroccod"].close()


def create(api, name, properties=None, cpu=1):
    body = {"resourceURI": CIMI + "MachineCreate", "name": name,
            "machineTemplate": {"machineConfig": {"cpu": cpu, "memory": 64 * 1024}, "initialState": "STOPPED"}}
    if properties:
        body["properties"] = properties
    reply = api.post(api.collection("machines"), body)
    assert reply.status_code == 202, reply.json
    job = api.wait(reply.headers["CIMI-Job-URI"], timeout=60)
    assert job["state"] == "SUCCESS", job
    return reply.json, api.get(reply.headers["Location"]).json


def test_lowest_energy_picks_the_upstream_that_adds_fewer_watts(front, edge):
    _app, alice, _data = front
    answer, machine = create(alice, "green")
    why = answer["properties"]["sirocco.routing"]
    assert answer["properties"]["sirocco.routedTo"] == "edge", why
    # local: 80 W idle (an empty host switched on) + 30 W for one vCPU; edge: 12 W per vCPU
    assert "it adds the least power, 12.0 W" in why and "others: local 110.0 W" in why, why
    uuid = machine["id"].rsplit("/", 1)[1]
    there = edge_machines(edge)["front-" + uuid]
    assert there["state"] == "STOPPED" and there["cpu"] == 1


def test_a_location_wish_names_a_host_of_the_upstream(front, edge):
    _app, alice, _data = front
    answer, machine = create(alice, "pinned", properties={"sirocco.location": "sim3"})
    assert answer["properties"]["sirocco.routedTo"] == "edge"
    there = edge_machines(edge)["front-" + machine["id"].rsplit("/", 1)[1]]
    assert there["properties"]["sirocco.host"] == "sim3"


def test_actions_and_delete_through_the_upstream_daemon(front, edge):
    _app, alice, _data = front
    _answer, machine = create(alice, "worked", properties={"sirocco.provider": "edge"})
    name = "front-" + machine["id"].rsplit("/", 1)[1]
    # the wish and the routing outcome are the front daemon's: the upstream daemon would read the wish as its own
    assert not {"sirocco.provider", "sirocco.routedTo"} & set(edge_machines(edge)[name].get("properties", {}))
    machine = alice.act(machine, "start")
    assert machine["state"] == "STARTED" and edge_machines(edge)[name]["state"] == "STARTED"
    machine = alice.act(machine, "pause")  # libvirt under the upstream daemon pauses; EC2 would not
    assert edge_machines(edge)[name]["state"] == "PAUSED"
    alice.remove(machine)
    assert name not in edge_machines(edge)


def test_the_upstream_password_shows_nowhere(front, caplog):
    app, alice, data = front
    caplog.set_level(logging.DEBUG)
    create(alice, "quiet", properties={"sirocco.provider": "edge"})
    docs = [alice.get(alice.collection("machines")).get_data(as_text=True),
            alice.get(alice.collection("jobs")).get_data(as_text=True)]
    assert all(EDGE_PASSWORD not in doc for doc in docs)
    assert EDGE_PASSWORD not in caplog.text
    assert EDGE_PASSWORD not in repr(app.extensions["siroccod"].config)
    for path in (data / "daemon").rglob("*"):
        if path.is_file():
            assert EDGE_PASSWORD.encode() not in path.read_bytes(), path

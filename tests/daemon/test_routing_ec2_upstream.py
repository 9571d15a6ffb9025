"""siroccod routing machines between its own host and a REAL EC2 upstream (the moto stand-in, a
server process of its own): wishes, policies, refusals with reasons, actions and deletes through
the upstream, a vanished machine, an upstream that is down, and the upstream's secret kept out of
every reply, log line and CMDB row."""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
from pathlib import Path

import boto3
import pytest
from daemon_helpers import ADMIN_PASSWORD, CIMI, PASSWORDS, Api, add_users, assert_cimi_error, make_app

_spec = importlib.util.spec_from_file_location(
    "sirocco_moto_standin_routing", Path(__file__).resolve().parents[1] / "standins" / "moto" / "standin.py")
moto_standin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(moto_standin)

SECRET = "routing-upstream-SECRET-7f3a9c"  # the upstream's secret key: must never show
SECRET_ENV = "SIROCCO_TEST_UPSTREAM_SECRET"
REGION = "us-east-1"
# one small local host: a machine of more than 2 vCPUs or 2 GiB cannot stay local
HOSTS = [{"name": "small1", "simulated": {"cpu": 2, "memory_mib": 2048, "mhz": 2400},
          "power_idle": 50, "power_max": 150}]
GIB_KIB = 1024 * 1024


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def upstream(moto_url, ami, name="aws", **extra):
    return dict({"name": name, "provider": "ec2", "uri": moto_url, "region": REGION,
                 "username": moto_standin.MotoServer.access_key, "password_env": SECRET_ENV,
                 "options": {"image": ami, "instance_types": ["t2.*"], "max_attempts": 1},
                 "prices": {"t2.nano": 0.0058, "t2.micro": 0.0116, "t2.xlarge": 0.1856},
                 "timeout": 5, "survey_ttl": 0}, **extra)


def public_ami(moto):
    ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name=REGION, **moto.credentials)
    return ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]


def instances(moto):
    """Name tag -> (instance id, state, type) of every instance moto holds."""
    ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name=REGION, **moto.credentials)
    out = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for item in reservation["Instances"]:
            tags = {t["Key"]: t["Value"] for t in item.get("Tags", [])}
            out[tags.get("Name")] = (item["InstanceId"], item["State"]["Name"], item["InstanceType"])
    return out


class Recording(Api):
    """An Api that keeps every reply body (scanned for the secret at the end)."""

    bodies = []

    def _go(self, method, url, **kwargs):
        reply = super()._go(method, url, **kwargs)
        self.bodies.append(reply.get_data(as_text=True) + str(dict(reply.headers)))
        return reply


def start(tmp_path, upstreams, policy="first"):
    os.environ[SECRET_ENV] = SECRET
    app = make_app(tmp_path, hosts=HOSTS, upstreams=upstreams, routing_policy=policy, log_level="DEBUG")
    client = app.test_client()
    admin = Recording(client, "admin", ADMIN_PASSWORD)
    add_users(admin, ("alice", "bob"))
    return app, admin, Recording(client, "alice", PASSWORDS["alice"]), Recording(client, "bob", PASSWORDS["bob"])


@pytest.fixture(scope="module")
def moto():
    with moto_standin.MotoServer() as server:
        yield server, public_ami(server)


@pytest.fixture(scope="module")
def daemon(moto, tmp_path_factory):
    server, ami = moto
    data = tmp_path_factory.mktemp("routing")
    app, admin, alice, bob = start(data, [upstream(server.url, ami)])
    yield app, admin, alice, bob, data
    app.extensions["siroccod"].close()


def machine_body(name, cpu=1, memory_kib=GIB_KIB // 2, properties=None):
    body = {"resourceURI": CIMI + "MachineCreate", "name": name,
            "machineTemplate": {"machineConfig": {"cpu": cpu, "memory": memory_kib}, "initialState": "STOPPED"}}
    if properties:
        body["properties"] = properties
    return body


def create(api, name, **kw):
    reply = api.post(api.collection("machines"), machine_body(name, **kw))
    assert reply.status_code == 202, reply.json
    job = api.wait(reply.headers["CIMI-Job-URI"], timeout=60)
    return reply.json, job, api.get(reply.headers["Location"]).json


def test_explicit_wish_routes_to_the_upstream(daemon, moto):
    _app, _admin, alice, _bob, _data = daemon
    answer, job, machine = create(alice, "web-1", properties={"sirocco.provider": "aws"})
    assert answer["properties"]["sirocco.routedTo"] == "aws"
    assert "named by sirocco.provider" in answer["properties"]["sirocco.routing"]
    assert job["state"] == "SUCCESS", job
    assert "aws chosen by policy first" in job["statusMessage"]
    assert machine["state"] == "STOPPED"
    uuid = machine["id"].rsplit("/", 1)[1]
    instance_id, state, itype = instances(moto[0])["sirocco-" + uuid]
    assert state == "stopped"
    assert itype == "t2.nano"  # the smallest t2 size with 1 vCPU and 512 MiB
    assert machine["memory"] == 512 * 1024  # what the size gives


def test_first_policy_keeps_what_fits_local(daemon):
    _app, _admin, alice, _bob, _data = daemon
    answer, job, machine = create(alice, "small-local")
    assert job["state"] == "SUCCESS", job
    assert answer["properties"]["sirocco.routedTo"] == "local"
    assert "local chosen by policy first" in answer["properties"]["sirocco.routing"]


def test_first_policy_sends_what_the_hosts_cannot_take_upstream(daemon, moto):
    _app, _admin, alice, _bob, _data = daemon
    answer, job, machine = create(alice, "big", cpu=4, memory_kib=4 * GIB_KIB)
    assert job["state"] == "SUCCESS", job
    why = answer["properties"]["sirocco.routing"]
    assert answer["properties"]["sirocco.routedTo"] == "aws"
    assert "Rejected: local: cpu 4 outside [1, " in why, why  # 1 or 2 vCPUs free there
    assert instances(moto[0])["sirocco-" + machine["id"].rsplit("/", 1)[1]][2] == "t2.xlarge"


def test_location_wish(daemon):
    _app, _admin, alice, _bob, _data = daemon
    answer, job, _machine = create(alice, "in-region", properties={"sirocco.location": REGION})
    assert job["state"] == "SUCCESS" and answer["properties"]["sirocco.routedTo"] == "aws"
    answer, job, _machine = create(alice, "on-host", properties={"sirocco.location": "small1"})
    assert job["state"] == "SUCCESS" and answer["properties"]["sirocco.routedTo"] == "local"


def test_no_provider_can_serve_is_a_409_saying_why(daemon):
    _app, _admin, alice, _bob, _data = daemon
    before = len(alice.items("machines"))
    reply = alice.post(alice.collection("machines"), machine_body("huge", cpu=64, memory_kib=512 * GIB_KIB))
    body = assert_cimi_error(reply, 409)
    assert "no provider can take a machine of 64 vCPUs" in body["statusMessage"]
    assert "local: cpu 64 outside" in body["statusMessage"] and "aws: cpu 64 outside [1, 8]" in body["statusMessage"]
    reply = alice.post(alice.collection("machines"), machine_body("x", properties={"sirocco.provider": "gcp"}))
    body = assert_cimi_error(reply, 400)
    assert "no configured provider is called 'gcp'" in body["statusMessage"]
    reply = alice.post(alice.collection("machines"), machine_body("x", properties={"sirocco.location": "mars"}))
    body = assert_cimi_error(reply, 409)
    assert "location 'mars' not offered" in body["statusMessage"]
    assert len(alice.items("machines")) == before  # refused: nothing recorded


def test_actions_and_delete_go_through_the_upstream(daemon, moto):
    _app, _admin, alice, bob, _data = daemon
    _answer, job, machine = create(alice, "acted", properties={"sirocco.provider": "ec2"})  # a connector name
    assert job["state"] == "SUCCESS", job
    name = "sirocco-" + machine["id"].rsplit("/", 1)[1]
    assert set(alice.ops(machine)) >= {"start", "delete"}
    assert "pause" not in alice.ops(machine)  # EC2 does not offer it
    assert bob.get(machine["id"]).status_code == 404  # tenant isolation unchanged
    machine = alice.act(machine, "start")
    assert machine["state"] == "STARTED" and instances(moto[0])[name][1] == "running"
    machine = alice.act(machine, "stop")
    assert machine["state"] == "STOPPED" and instances(moto[0])[name][1] == "stopped"
    server = moto[0]  # started behind the daemon's back: a GET asks the upstream
    boto3.client("ec2", endpoint_url=server.url, region_name=REGION, **server.credentials).start_instances(
        InstanceIds=[instances(server)[name][0]])
    machine = alice.get(machine["id"]).json
    assert machine["state"] == "STARTED"
    alice.remove(machine)
    assert alice.get(machine["id"]).status_code == 404
    assert instances(moto[0])[name][1] == "terminated"


def test_machine_vanished_upstream_is_marked_gone(daemon, moto):
    _app, admin, alice, _bob, _data = daemon
    _answer, job, machine = create(alice, "vanishing", properties={"sirocco.provider": "aws"})
    instance_id = instances(moto[0])["sirocco-" + machine["id"].rsplit("/", 1)[1]][0]
    server = moto[0]
    boto3.client("ec2", endpoint_url=server.url, region_name=REGION, **server.credentials).terminate_instances(
        InstanceIds=[instance_id])
    reply = admin.post("/admin/reconcile")
    assert reply.status_code == 200 and reply.json["gone"] >= 1, reply.json
    machine = alice.get(machine["id"]).json
    assert machine["state"] == "FAILED"
    assert "vanished from upstream aws" in machine["properties"]["sirocco.gone"]
    alice.remove(machine)


def test_cheapest_policy_takes_the_priced_upstream(moto, tmp_path):
    server, ami = moto
    app, _admin, alice, _bob = start(tmp_path, [upstream(server.url, ami)], policy="cheapest")
    try:
        answer, job, _machine = create(alice, "cheap")
        assert job["state"] == "SUCCESS", job
        assert answer["properties"]["sirocco.routedTo"] == "aws"
        assert "at 0.0058 per hour is the lowest known price" in answer["properties"]["sirocco.routing"]
        assert "no price known for local" in answer["properties"]["sirocco.routing"]
    finally:
        app.extensions["siroccod"].close()


def test_upstream_down_is_a_503_saying_which(moto, tmp_path):
    _server, ami = moto
    app, _admin, alice, _bob = start(tmp_path, [upstream("http://127.0.0.1:%d" % free_port(), ami, name="aws-down")])
    try:
        reply = alice.post(alice.collection("machines"), machine_body("m", properties={"sirocco.provider": "aws-down"}))
        body = assert_cimi_error(reply, 503)
        assert "now: could not ask aws-down (EC2 us-east-1 at http://127.0.0.1:" in body["statusMessage"], body
        assert alice.items("machines") == []
        answer, job, _machine = create(alice, "still-local")  # the hosts still serve what fits them
        assert job["state"] == "SUCCESS" and answer["properties"]["sirocco.routedTo"] == "local"
        reply = alice.post(alice.collection("machines"), machine_body("big", cpu=4, memory_kib=4 * GIB_KIB))
        body = assert_cimi_error(reply, 503)  # it might have fitted there: not a 409
        assert "local: cpu 4 outside" in body["statusMessage"]
    finally:
        app.extensions["siroccod"].close()


def test_upstream_going_down_fails_actions_with_503(tmp_path):
    with moto_standin.MotoServer() as server:
        app, _admin, alice, _bob = start(tmp_path, [upstream(server.url, public_ami(server))])
        try:
            _answer, job, machine = create(alice, "orphan", properties={"sirocco.provider": "aws"})
            assert job["state"] == "SUCCESS", job
            server.stop()
            reply = alice.post(alice.ops(machine)["start"], {"resourceURI": CIMI + "Action",
                                                             "action": CIMI + "action/start"})
            assert reply.status_code == 202, reply.json
            job = alice.wait(reply.headers["CIMI-Job-URI"], timeout=60)
            assert job["state"] == "FAILED" and job["returnCode"] == 503, job
            assert "upstream 'aws' cannot be reached" in job["statusMessage"]
            assert alice.get(machine["id"]).json["state"] == "STOPPED"  # as it was
            reply = alice.delete(machine["id"])
            job = alice.wait(reply.headers["CIMI-Job-URI"], timeout=60)
            assert job["state"] == "FAILED" and job["returnCode"] == 503, job
            assert alice.get(machine["id"]).status_code == 200  # not forgotten while its instance may live
        finally:
            app.extensions["siroccod"].close()


def test_the_secret_shows_nowhere(daemon, caplog):
    app, admin, alice, _bob, data = daemon
    caplog.set_level(logging.DEBUG)
    create(alice, "last", properties={"sirocco.provider": "aws"})
    admin.post("/admin/reconcile")
    for path in ("/admin/hosts", "/cimi/cloudEntryPoint", "/openapi.json"):
        admin.get(path)
    assert all(SECRET not in body for body in Recording.bodies), "the secret is in a reply"
    assert SECRET not in caplog.text
    assert SECRET not in repr(app.extensions["siroccod"].config)
    for path in Path(data).rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_routed_machines_stay_with_their_upstream_across_a_restart(moto, tmp_path):
    server, ami = moto
    app, _admin, alice, _bob = start(tmp_path, [upstream(server.url, ami)])
    try:
        _answer, job, machine = create(alice, "survivor", properties={"sirocco.provider": "aws"})
        assert job["state"] == "SUCCESS", job
    finally:
        app.extensions["siroccod"].close()
    app, _admin, alice, _bob = start(tmp_path, [upstream(server.url, ami)])  # the same CMDB, a new process
    try:
        again = alice.get(machine["id"]).json
        assert again["state"] == "STOPPED" and again["properties"]["sirocco.routedTo"] == "aws"
        again = alice.act(again, "start")
        name = "sirocco-" + machine["id"].rsplit("/", 1)[1]
        assert instances(server)[name][1] == "running"
        alice.remove(again)
        assert instances(server)[name][1] == "terminated"
    finally:
        app.extensions["siroccod"].close()


def test_explicit_policy_needs_a_wish(moto, tmp_path):
    server, ami = moto
    app, _admin, alice, _bob = start(tmp_path, [upstream(server.url, ami)], policy="explicit")
    try:
        reply = alice.post(alice.collection("machines"), machine_body("unsaid"))
        body = assert_cimi_error(reply, 400)
        assert "needs properties['sirocco.provider']" in body["statusMessage"]
        assert body["properties"]["attribute"] == "properties"
        answer, job, _machine = create(alice, "said", properties={"sirocco.provider": "local,aws"})
        assert job["state"] == "SUCCESS" and answer["properties"]["sirocco.routedTo"] == "local"
    finally:
        app.extensions["siroccod"].close()

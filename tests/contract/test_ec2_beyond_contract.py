"""ec2 connector on moto (tests/standins/moto): what issue 14 added beyond the contract suites, read back through
boto3 on the stand-in's endpoint rather than through the connector under test.

Meters over a window: moto's CloudWatch returns what was put into it (and the stand-in's own datapoints of
running instances, at their launch and the current minute), so the test puts datapoints hours in the past with
PutMetricData and reads exactly those back.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from standins.ec2 import MotoEC2
from standins.moto_ec2 import REGION

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec, key_pair_name

KIB_PER_GIB = 1024 * 1024


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    stand_in = MotoEC2()
    stand_in.start(tmp_path_factory.mktemp("moto"))
    yield stand_in
    stand_in.stop()


@pytest.fixture
def conn(moto):
    connector = moto.connect()
    try:
        yield connector
    finally:
        connector.close()
        moto.clean()


def _client(moto, service="ec2"):
    return boto3.client(service, endpoint_url=moto.server.url, region_name=REGION, **moto.server.credentials)


def _machine(conn, moto, **kw):
    config = conn.get_machine_config(moto.size)
    return conn.create_machine(MachineSpec(name=moto.name(), config=MachineConfiguration(
        cpu=config.cpu, memory=config.memory), **kw))


def _new_key():
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")
    return line + " ci@sirocco"


def test_meters_over_a_window_read_what_cloudwatch_keeps(conn, moto):
    m = _machine(conn, moto, initial_state=states.STARTED)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    put = [(now - timedelta(hours=3), 12.5), (now - timedelta(hours=2, minutes=30), 40.0),
           (now - timedelta(hours=6), 99.0)]  # the last one outside the window asked below
    cloudwatch = _client(moto, "cloudwatch")
    cloudwatch.put_metric_data(Namespace="AWS/EC2", MetricData=[
        {"MetricName": "CPUUtilization", "Dimensions": [{"Name": "InstanceId", "Value": m.id}], "Timestamp": stamp,
         "Value": value, "Unit": "Percent"} for stamp, value in put])
    meters = {x.name: x for x in conn.list_meters(m.id, start=now - timedelta(hours=4),
                                                  end=now - timedelta(hours=2))}
    assert [(s.timestamp, float(s.value)) for s in meters["cpu"].samples] == [
        (stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), value) for stamp, value in put[:2]]  # oldest first
    assert not meters["inputBandwidth"].samples  # nothing was put there
    empty = conn.list_meters(m.id, start=now - timedelta(days=3), end=now - timedelta(days=2))
    assert all(not x.samples for x in empty)
    assert len(conn.list_meters(m.id)[0].samples) == 1  # no window: the latest only
    for bad in ({"start": now.replace(tzinfo=None)}, {"end": "yesterday"},
                {"start": now, "end": now - timedelta(hours=1)}):
        with pytest.raises(InvalidInput) as info:
            conn.list_meters(m.id, **bad)
        assert info.value.attribute in ("start", "end")


def test_credential_tags_and_a_machine_uses_its_key_pair(conn, moto):
    ec2 = _client(moto)
    key, name = _new_key(), moto.name("c")
    conn.create_credential(name, key, user_name="admin", description="deploy key")
    pair = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"][0]
    tags = {t["Key"]: t["Value"] for t in pair["Tags"]}
    assert tags == {"sirocco.user": "admin", "sirocco:description": "deploy key"}
    assert pair["PublicKey"].split()[:2] == key.split()[:2]
    with pytest.raises(InvalidInput) as info:  # ImportKeyPair takes RSA and ED25519 only: refused before
        conn.create_credential(moto.name("c"), "ecdsa-sha2-nistp256 " + "A" * 8)
    assert info.value.attribute == "key"
    m = _machine(conn, moto, credential={"key": key})
    instance = ec2.describe_instances(InstanceIds=[m.id])["Reservations"][0]["Instances"][0]
    assert instance["KeyName"] == name  # the registered pair, not a second import of the same key
    assert not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": [key_pair_name(key)]}])["KeyPairs"]


def test_resize_volume_type_and_subnet_cidr_read_back(conn, moto):
    ec2 = _client(moto)
    m = _machine(conn, moto, initial_state=states.STARTED)
    target = conn.get_machine_config("t2.small")
    with pytest.raises(Conflict) as info:  # moto would take it running; EC2 does not, neither does the connector
        conn.resize_machine(m.id, target)
    assert "stop" in str(info.value)
    conn.machine_action(m.id, "stop", force=True)
    conn.wait_for_machine(m.id, states.STOPPED)
    conn.resize_machine(m.id, MachineConfiguration(cpu=target.cpu, memory=target.memory))
    assert ec2.describe_instances(InstanceIds=[m.id])["Reservations"][0]["Instances"][0]["InstanceType"] == \
        "t2.small"  # exactly that size, in the machine's own family

    with pytest.raises(InvalidInput) as info:
        conn.create_volume(moto.name("v"), 1024, volume_type="fastest")
    assert info.value.attribute == "type"
    vol = conn.create_volume(moto.name("v"), 1024, volume_type="io1")
    held = ec2.describe_volumes(VolumeIds=[vol.id])["Volumes"][0]
    assert (held["VolumeType"], held["Iops"], vol.type) == ("io1", 100, "ebs:io1")
    assert conn.resize_volume(vol.id, 3 * KIB_PER_GIB - 5).capacity == 3 * KIB_PER_GIB  # whole GiB, up
    assert ec2.describe_volumes(VolumeIds=[vol.id])["Volumes"][0]["Size"] == 3

    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    assert vpc["CidrBlock"] == "172.31.0.0/16"
    net = conn.create_network(moto.name("n"), cidr="172.31.250.0/24", dhcp=True)
    assert ec2.describe_subnets(SubnetIds=[net.id])["Subnets"][0]["CidrBlock"] == "172.31.250.0/24"
    assert (net.cidr, net.dhcp) == ("172.31.250.0/24", True)
    before = len(ec2.describe_subnets()["Subnets"])
    with pytest.raises(Conflict):  # overlaps the subnet just made
        conn.create_network(moto.name("n"), cidr="172.31.250.128/25")
    for bad, attribute in (({"cidr": "10.99.0.0/24"}, "cidr"), ({"cidr": "172.31.251.0/29"}, "cidr"),
                           ({"dhcp": False}, "dhcp")):
        with pytest.raises(InvalidInput) as info:
            conn.create_network(moto.name("n"), **bad)
        assert info.value.attribute == attribute
    assert len(ec2.describe_subnets()["Subnets"]) == before

"""The ec2 connector on moto, beyond the contract suite: several regions, client tokens, meters, foreign types."""

import importlib.util
from pathlib import Path

import boto3
import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, NotFound
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.ec2 import EC2Connector, client_token

_spec = importlib.util.spec_from_file_location(
    "sirocco_moto_standin", Path(__file__).resolve().parents[2] / "standins" / "moto" / "standin.py")
moto_standin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(moto_standin)

REGIONS = ("us-east-1", "eu-west-1")
SMALL = MachineConfiguration(cpu=1, memory=1024 * 1024)


def seed_image(moto, region):
    """An AMI of our own in ``region``, captured from an instance of one of moto's public AMIs."""
    ec2 = boto3.client("ec2", endpoint_url=moto.url, region_name=region, **moto.credentials)
    public = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=public, InstanceType="t2.micro", MinCount=1, MaxCount=1)["Instances"][0]
    ami = ec2.create_image(InstanceId=instance["InstanceId"], Name="seed")["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    return ami


@pytest.fixture(scope="module")
def server():
    with moto_standin.MotoServer() as moto:
        yield moto, {r: seed_image(moto, r) for r in REGIONS}


def connect(server, regions=REGIONS, **options):
    moto, seeds = server
    return EC2Connector(uri=moto.url, username=moto.access_key, password=moto.secret_key, region=regions[0],
                        timeout=30, options=dict({"regions": list(regions), "instance_types": ["t2.*"]}, **options))


def test_several_regions(server):
    _moto, seeds = server
    conn = connect(server)
    made = [conn.create_machine(MachineSpec(name="multi-%s-%d" % (r, i), config=SMALL, location=r,
                                            image="%s:%s" % (r, seeds[r]), initial_state=states.STOPPED))
            for r in REGIONS for i in range(3)]
    assert {m.id.split(":")[0] for m in made} == set(REGIONS)
    assert all(m.id.split(":")[1].startswith("i-") for m in made)
    listed = [m.id for m in conn.iter_machines(page_size=2)]  # pages cross from one region to the next
    assert len(listed) == len(set(listed)) and {m.id for m in made} <= set(listed)
    assert [m.id for m in conn.list_machines().items] == listed
    caps = conn.capabilities()
    assert set(REGIONS) <= set(caps.locations) and "eu-west-1a" in caps.locations
    with pytest.raises(InvalidInput):  # an image of one region for a machine of the other
        conn.create_machine(MachineSpec(name="multi-wrong", config=SMALL, location="eu-west-1",
                                        image="us-east-1:" + seeds["us-east-1"]))
    eu = conn.get_machine(made[-1].id)
    assert eu.name == "multi-eu-west-1-2" and eu.state == states.STOPPED
    with pytest.raises(NotFound):  # an unqualified id is the primary region's
        conn.get_machine(made[-1].id.split(":")[1])
    for m in made:
        conn.delete_machine(m.id)
    assert not {m.id for m in made} & {m.id for m in conn.iter_machines()}


def test_create_again_after_delete_uses_the_next_token(server):
    _moto, seeds = server
    conn = connect(server, regions=["us-east-1"])
    spec = MachineSpec(name="again", config=SMALL, image=seeds["us-east-1"], initial_state=states.STARTED)
    first = conn.create_machine(spec)
    conn.delete_machine(first.id)
    second = conn.create_machine(spec)
    assert second.id != first.id
    ec2 = conn.client("us-east-1")
    tokens = {i["InstanceId"]: i["ClientToken"] for r in ec2.describe_instances(
        Filters=[{"Name": "tag:Name", "Values": ["again"]}])["Reservations"] for i in r["Instances"]}
    assert tokens[first.id] != tokens[second.id]
    assert tokens[first.id].endswith("-0") and tokens[second.id].endswith("-1")
    assert tokens[first.id].rsplit("-", 1)[0] == tokens[second.id].rsplit("-", 1)[0]  # the same request
    assert tokens[first.id].startswith("sirocco-") and client_token({}) != tokens[first.id]
    conn.delete_machine(second.id)


def test_meters_and_a_type_outside_the_offered_ones(server):
    moto, seeds = server
    conn = connect(server, regions=["us-east-1"])
    ec2 = conn.client("us-east-1")
    instance = ec2.run_instances(ImageId=seeds["us-east-1"], InstanceType="m5.large", MinCount=1, MaxCount=1,
                                 TagSpecifications=[{"ResourceType": "instance",
                                                     "Tags": [{"Key": "Name", "Value": "big"}]}])
    machine = conn.get_machine(instance["Instances"][0]["InstanceId"])
    assert (machine.cpu, machine.memory) == (2, 8 * 1024 * 1024)  # m5.large, though only t2.* are offered
    meters = {m.name: m for m in conn.list_meters(machine.id)}
    assert set(meters) == {"cpu", "inputBandwidth", "outputBandwidth"}
    assert 0 <= float(meters["cpu"].samples[0].value) <= 100
    conn.delete_machine(machine.id)


def requests_of(conn, region, calls):
    """Record the name of every request ``conn`` sends to ``region`` into ``calls`` (botocore's own events)."""
    conn.client(region).meta.events.register("before-call.ec2.*", lambda model, **kw: calls.append(model.name))


def test_listing_leaves_root_disk_sizes_to_get_and_find(server):
    """DescribeVolumes (root volume sizes) is not asked by a listing unless list_disks is set."""
    _moto, seeds = server
    conn = connect(server, regions=["us-east-1"])
    made = conn.create_machine(MachineSpec(name="disky", config=SMALL, image=seeds["us-east-1"],
                                           initial_state=states.STOPPED))
    try:
        calls = []
        requests_of(conn, "us-east-1", calls)
        listed = next(m for m in conn.iter_machines() if m.id == made.id)
        assert "DescribeVolumes" not in calls and "DescribeInstances" in calls
        assert listed.disks is None and "disks" not in listed.to_json()
        assert (listed.cpu, listed.memory, listed.state) == (made.cpu, made.memory, states.STOPPED)

        got = conn.get_machine(made.id)
        assert got.disks and got.disks[0].capacity > 0 and got.disks[0].initialLocation
        found = conn.find_machine("disky")
        assert found.id == made.id and found.to_json() == got.to_json()
        assert conn.find_machine("disk*") is None  # EC2 filters take wildcards; names are matched exactly

        expanded = connect(server, regions=["us-east-1"], list_disks=True)
        calls.clear()
        requests_of(expanded, "us-east-1", calls)
        listed = next(m for m in expanded.iter_machines() if m.id == made.id)
        assert "DescribeVolumes" in calls and listed.to_json() == got.to_json()
    finally:
        conn.delete_machine(made.id)


def test_listing_asks_for_the_instance_types_it_meets_only(server):
    _moto, seeds = server
    conn = connect(server, regions=["us-east-1"])
    ec2 = conn.client("us-east-1")
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=seeds["us-east-1"], InstanceType="m5.large",
                                                      MinCount=2, MaxCount=2)["Instances"]]
    try:
        calls = []
        requests_of(conn, "us-east-1", calls)
        listed = {m.id: m for m in conn.iter_machines()}
        assert calls.count("DescribeInstanceTypes") == 1  # by name, not every type of the region page by page
        assert {(listed[i].cpu, listed[i].memory) for i in ids} == {(2, 8 * 1024 * 1024)}
    finally:
        ec2.terminate_instances(InstanceIds=ids)

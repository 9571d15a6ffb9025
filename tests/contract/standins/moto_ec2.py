"""What the EC2 stand-ins share: one moto server (tests/standins/moto) per session, a seed AMI, cleaning by name.

The ``ec2`` connector (boto3) and the ``libcloud`` one with libcloud's EC2 driver are each a
``MotoStandIn`` that only says how to connect."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import boto3
import pytest

from .base import StandIn

_HELPER = Path(__file__).resolve().parents[2] / "standins" / "moto" / "standin.py"
_spec = importlib.util.spec_from_file_location("sirocco_moto_standin", _HELPER)
moto = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(moto)

REGION = "us-east-1"
SEED_NAME = "sirocco-seed"
# t2.micro (1 vCPU, 1 GiB) is the small size; two families keep the type listing quick on moto
INSTANCE_TYPES = ["t2.*", "t3.*"]


def seed_image(url, credentials, region=REGION, name=SEED_NAME):
    """An AMI of our own (moto's are Amazon's): captured from a throwaway instance of a public one."""
    ec2 = boto3.client("ec2", endpoint_url=url, region_name=region, **credentials)
    public = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-*"]}])["Images"]
    public = public or ec2.describe_images(Owners=["amazon"])["Images"]
    instance = ec2.run_instances(ImageId=public[0]["ImageId"], InstanceType="t2.micro", MinCount=1,
                                 MaxCount=1)["Instances"][0]["InstanceId"]
    ami = ec2.create_image(InstanceId=instance, Name=name, Description="Sirocco's seed image")["ImageId"]
    ec2.terminate_instances(InstanceIds=[instance])
    ec2.close()
    return ami


def remove_named(url, credentials, prefix, region=REGION):
    """Remove every instance, volume, image (and its snapshots), snapshot, subnet and key pair whose name starts
    with ``prefix``.

    Cheaper than moto's reset (which makes the next request rebuild the whole region, its
    1,300 public AMIs included): terminated instances stay listed, as on EC2 for a while."""
    ec2 = boto3.client("ec2", endpoint_url=url, region_name=region, **credentials)
    named = [{"Name": "tag:Name", "Values": [prefix + "*"]}]
    try:
        doomed = [i["InstanceId"] for r in ec2.describe_instances(Filters=named)["Reservations"]
                  for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        if doomed:
            ec2.terminate_instances(InstanceIds=doomed)
        for volume in ec2.describe_volumes(Filters=named)["Volumes"]:
            if volume.get("Attachments"):
                ec2.detach_volume(VolumeId=volume["VolumeId"], Force=True)
            ec2.delete_volume(VolumeId=volume["VolumeId"])
        images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [prefix + "*"]}])["Images"]
        for image in images:
            ec2.deregister_image(ImageId=image["ImageId"])
            for mapping in image.get("BlockDeviceMappings", []):
                if mapping.get("Ebs", {}).get("SnapshotId"):
                    ec2.delete_snapshot(SnapshotId=mapping["Ebs"]["SnapshotId"])
        # an import that failed before RegisterImage leaves its snapshot, named like the image
        for snapshot in ec2.describe_snapshots(OwnerIds=["self"], Filters=named)["Snapshots"]:
            ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])
        for subnet in ec2.describe_subnets(Filters=named)["Subnets"]:
            ec2.delete_subnet(SubnetId=subnet["SubnetId"])
        for pair in ec2.describe_key_pairs()["KeyPairs"]:  # credentials: named by the test, not tagged
            if pair["KeyName"].startswith(prefix):
                ec2.delete_key_pair(KeyName=pair["KeyName"])
    finally:
        ec2.close()


class MotoStandIn(StandIn):
    """A moto server started once per session with a seed AMI; ``clean`` removes what the test named.

    Subclasses set ``id`` and implement ``connect`` (``self.server`` has the url and keys, ``self.seed``
    the AMI id)."""

    image = SEED_NAME
    size = "t2.micro"
    live_attach = True

    def __init__(self):
        super().__init__()
        self.server = None
        self.seed = None

    def start(self, tmpdir):
        try:
            self.server = moto.MotoServer().start()
        except (RuntimeError, OSError) as exc:
            pytest.fail("the moto stand-in cannot start: %s\nrun `make venv` (moto[ec2,cloudwatch,server])" % exc,
                        pytrace=False)
        self.seed = seed_image(self.server.url, self.server.credentials)

    def clean(self):
        remove_named(self.server.url, self.server.credentials, self.prefix)

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None

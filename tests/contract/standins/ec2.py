"""EC2 stand-in: moto's EC2/CloudWatch server (tests/standins/moto), driven by boto3 through the ec2 connector."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.ec2 import EC2Connector

from .moto_ec2 import INSTANCE_TYPES, REGION, MotoStandIn


class MotoEC2(MotoStandIn):
    """The ``ec2`` connector on one moto server per session."""

    id = "ec2-moto"

    def options(self):
        return {"instance_types": INSTANCE_TYPES, "image": self.seed}

    def connect(self):
        return EC2Connector(uri=self.server.url, username=self.server.access_key, password=self.server.secret_key,
                            region=REGION, timeout=30, options=self.options())


STANDINS = [MotoEC2()]

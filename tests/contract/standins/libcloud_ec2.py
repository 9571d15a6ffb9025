"""libcloud stand-in, EC2 half: libcloud's own EC2 driver against moto's server (tests/standins/moto)."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libcloud import LibcloudConnector

from .moto_ec2 import INSTANCE_TYPES, REGION, MotoStandIn


class LibcloudEC2(MotoStandIn):
    """The ``libcloud`` connector with ``driver: ec2`` (SigV4, plain HTTP to moto) on its own moto server."""

    id = "libcloud-ec2-moto"

    def connect(self):
        return LibcloudConnector(uri=self.server.url, username=self.server.access_key,
                                 password=self.server.secret_key, region=REGION, timeout=30,
                                 options={"driver": "ec2", "driver_kwargs": {"signature_version": "4"},
                                          "image": self.seed, "size_filter": INSTANCE_TYPES})


STANDINS = [LibcloudEC2()]

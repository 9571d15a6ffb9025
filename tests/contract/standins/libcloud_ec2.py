"""libcloud stand-in, EC2 half: libcloud's own EC2 driver against moto's server (tests/standins/moto)."""

from __future__ import annotations

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libcloud import LibcloudConnector

from .base import StandIn
from .ec2 import INSTANCE_TYPES, REGION, SEED_NAME, moto, remove_named, seed_image


class LibcloudEC2(StandIn):
    """The ``libcloud`` connector with ``driver: ec2`` (SigV4, plain HTTP to moto); cleaned like the ec2 stand-in."""

    id = "libcloud-ec2-moto"
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

    def connect(self):
        return LibcloudConnector(uri=self.server.url, username=self.server.access_key,
                                 password=self.server.secret_key, region=REGION, timeout=30,
                                 options={"driver": "ec2", "driver_kwargs": {"signature_version": "4"},
                                          "image": self.seed, "size_filter": INSTANCE_TYPES})

    def clean(self):
        remove_named(self.server.url, self.server.credentials, self.prefix)

    def stop(self):
        if self.server is not None:
            self.server.stop()
            self.server = None


STANDINS = [LibcloudEC2()]

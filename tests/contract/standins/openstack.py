"""OpenStack stand-in: the real Keystone, Glance, Placement, Nova (fake virt driver) and Cinder (fake volume driver).

They are installed and run by tests/standins/openstack.

``make openstack`` installs and starts them; otherwise the session does it here
(install.sh, then start.sh: ~1-2 min) and stops them at its end. A running
stand-in is reused, and left running.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libcloud import LibcloudConnector
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.openstack import OpenStackConnector

from .base import StandIn

_DIR = Path(__file__).resolve().parents[2] / "standins" / "openstack"
STATE = Path(os.environ.get("SIROCCO_OPENSTACK_DIR", "/var/tmp/sirocco-openstack"))
CLOUD = "sirocco-standin"
IMAGE = "sirocco-tiny"  # made by bootstrap.py


def _run(script, timeout):
    try:
        done = subprocess.run(["bash", str(_DIR / script)], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        pytest.fail("tests/standins/openstack/%s took more than %ss" % (script, timeout), pytrace=False)
    if done.returncode != 0:
        pytest.fail("tests/standins/openstack/%s failed (run `make openstack` as root to install and start the "
                    "OpenStack stand-in):\n%s" % (script, (done.stderr or done.stdout)[-3000:]), pytrace=False)
    return done


class OpenStackStandIn(StandIn):
    """Two fake-driver hypervisors behind the real Nova API; flavors tiny..large, one tiny Glance image."""

    id = "openstack"
    image = IMAGE
    size = "tiny"
    live_attach = True

    def __init__(self):
        super().__init__()
        # pid in the prefix: runs sharing the services do not clean each other's machines
        self.prefix = "sirocco-ct-%d-%s-" % (os.getpid(), secrets.token_hex(2))
        self.started_here = False

    def start(self, tmpdir):
        self.started_here = not (STATE / "ready").exists()
        _run("install.sh", 1800)
        _run("start.sh", 600)

    def connect(self):
        return self.sdk_connector()

    @staticmethod
    def sdk_connector():
        return OpenStackConnector(options={"cloud": CLOUD, "clouds_yaml": str(STATE / "clouds.yaml"),
                                           "image": IMAGE}, timeout=60)

    def clean(self):
        """Delete every server, image, volume, network and key pair named with the prefix, whatever their state.

        Through the SDK, not the connector under test."""
        conn = self.sdk_connector()
        try:
            sdk = conn.conn
            servers = [s for s in sdk.compute.servers(details=False) if (s.name or "").startswith(self.prefix)]
            for server in servers:
                sdk.compute.delete_server(server)
            deadline = time.monotonic() + 60
            while servers and time.monotonic() < deadline:
                left = {s.id for s in sdk.compute.servers(details=False)}
                servers = [s for s in servers if s.id in left]
                time.sleep(0.25)
            for image in sdk.image.images():
                if (image.name or "").startswith(self.prefix):
                    sdk.image.delete_image(image)
            for volume in sdk.block_storage.volumes(details=False):
                if (volume.name or "").startswith(self.prefix):
                    sdk.block_storage.delete_volume(volume, force=True)
            for network in sdk.network.networks():
                if (network.name or "").startswith(self.prefix):
                    sdk.network.delete_network(network)
            for pair in sdk.compute.keypairs():  # credentials: key pairs named by the test
                if (pair.name or "").startswith(self.prefix):
                    sdk.compute.delete_keypair(pair)
        finally:
            conn.close()

    def stop(self):
        if self.started_here:
            subprocess.run(["bash", str(_DIR / "stop.sh")], capture_output=True, timeout=120, check=False)


class LibcloudOpenStack(OpenStackStandIn):
    """The ``libcloud`` connector with ``driver: openstack`` (Keystone v3 password auth) on the same services."""

    id = "libcloud-openstack"

    def connect(self):
        cloud = yaml.safe_load((STATE / "clouds.yaml").read_text())["clouds"][CLOUD]
        auth = cloud["auth"]
        return LibcloudConnector(
            uri=auth["auth_url"].removesuffix("/v3"), username=auth["username"], password=auth["password"],
            region=cloud["region_name"], timeout=60,
            options={"driver": "openstack", "image": IMAGE,
                     "driver_kwargs": {"ex_force_auth_version": "3.x_password", "ex_tenant_name": auth["project_name"],
                                       "ex_domain_name": auth["user_domain_name"],
                                       "ex_force_service_region": cloud["region_name"]}})


# The openstack connector, and the libcloud connector over libcloud's OpenStack driver.
STANDINS = [OpenStackStandIn(), LibcloudOpenStack()]

"""vSphere stand-ins: govmomi's simulator (vcsim) as an ESX host and as a vCenter.

The binary is built from tests/standins/vcsim/main.go on first use (Debian's Go and
govmomi source, offline) and started once per session on a port of its own choosing.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import SiroccoError
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.vsphere import VSphereConnector

from .base import StandIn

_HELPER = Path(__file__).resolve().parents[2] / "standins" / "vcsim" / "standin.py"
_spec = importlib.util.spec_from_file_location("sirocco_vcsim_standin", _HELPER)
vcsim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vcsim)


class Vcsim(StandIn):
    """vcsim in one mode; ``clean`` removes every machine, image, network and volume named with the prefix."""

    mode = "esx"

    def __init__(self):
        super().__init__()
        self.sim = None

    def start(self, tmpdir):
        try:
            self.sim = vcsim.Vcsim(self.mode).start()
        except (RuntimeError, OSError) as exc:
            pytest.fail("the vcsim stand-in cannot start: %s\nrun `bash scripts/setup-system.sh` as root "
                        "(golang-go, golang-github-vmware-govmomi-dev)" % exc, pytrace=False)

    def connect(self):
        return VSphereConnector(**self.sim.params, timeout=30)

    def clean(self):
        with self.connect() as conn:
            for m in list(conn.iter_machines()):
                if (m.name or "").startswith(self.prefix):
                    _quiet(conn.delete_machine, m.id)
            for image in conn.list_machine_images():
                if (image.name or "").startswith(self.prefix):
                    _quiet(conn.delete_machine_image, image.id)
            for network in conn.list_networks():
                if (network.name or "").startswith(self.prefix):
                    _quiet(conn.delete_network, network.id)
            for volume in conn.list_volumes():
                if (volume.name or "").startswith(self.prefix):
                    for ref in volume.get("attachedTo") or []:
                        _quiet(conn.detach_volume, ref["href"], volume.id)
                    _quiet(conn.delete_volume, volume.id)

    def stop(self):
        if self.sim is not None:
            self.sim.stop()


class VcsimEsx(Vcsim):
    """A standalone ESX host: images are disk files (it has no templates), seeded with image0."""

    image = "image0"
    network_keeps = ()  # a standard port group has room for neither description nor properties

    id = "vsphere-esx"
    mode = "esx"


class VcsimVCenter(Vcsim):
    """A vCenter with a datacenter, a cluster of 3 hosts, a standalone host and one template."""

    id = "vsphere-vc"
    mode = "vc"
    image = "template0"
    network_keeps = ("description",)  # a distributed port group's config has a description, no properties


def _quiet(call, *args):
    try:
        call(*args)
    except SiroccoError:
        pass  # already gone: cleanup is best effort by design


STANDINS = [VcsimEsx(), VcsimVCenter()]

"""libvirt stand-ins: the built-in test driver and a real libvirtd + QEMU (TCG)."""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

import libvirt
import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector

from .base import StandIn

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

SEED = "seed.qcow2"

# One hypervisor host for the test driver: its state lives in the connection
# that opened it, so every test starts from exactly this.
TEST_HOST_XML = """<node>
  <cpu><mhz>2400</mhz><model>i686</model><active>4</active><nodes>1</nodes>
       <sockets>1</sockets><cores>4</cores><threads>1</threads></cpu>
  <memory>4194304</memory>
  <network>
    <name>default</name>
    <bridge name='virbr0'/>
    <forward/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>default</name>
    <target><path>/sirocco-test-pool</path></target>
    <volume type='file'>
      <name>%s</name>
      <capacity unit='MiB'>16</capacity>
      <target><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
""" % SEED


class LibvirtTestDriver(StandIn):
    """libvirt's test driver: no daemon, one shared image/volume pool, no device hot-plug."""

    id = "libvirt-test"
    image = SEED
    live_attach = False  # the test driver has no attachDeviceFlags

    def start(self, tmpdir):
        self.host_xml = Path(tmpdir) / "host.xml"
        self.host_xml.write_text(TEST_HOST_XML)
        self.uri = "test://" + str(self.host_xml.resolve())

    def connect(self):
        return LibvirtConnector(uri=self.uri)


class LibvirtQemu(StandIn):
    """A real libvirtd with QEMU under TCG at qemu:///system: separate image and volume pools in a tmp dir."""

    id = "libvirt-qemu"
    image = SEED
    uri = "qemu:///system"

    def __init__(self):
        super().__init__()
        # pid in the prefix: a later run can tell a dead run's leftovers from a live run's resources.
        self.prefix = "sirocco-ct-%d-%s-" % (os.getpid(), secrets.token_hex(2))
        self.conn = None

    def start(self, tmpdir):
        try:
            self.conn = libvirt.open(self.uri)
            self.conn.getVersion()
        except libvirt.libvirtError as exc:
            pytest.fail("libvirtd is not reachable at %s (%s): run `make system` as root to install and start it"
                        % (self.uri, exc.get_error_message()), pytrace=False)
        sweep_dead_runs(self.conn)
        self.pools = {}
        for role in ("images", "volumes"):
            path = Path(tmpdir) / role
            path.mkdir()
            pool = self.conn.storagePoolDefineXML(
                "<pool type='dir'><name>%s%s</name><target><path>%s</path></target></pool>"
                % (self.prefix, role, path), 0)
            pool.create(0)
            self.pools[role] = (pool, path)
        self.pools["images"][0].createXML(
            "<volume><name>%s</name><capacity unit='MiB'>1</capacity><target><format type='qcow2'/></target>"
            "</volume>" % SEED, 0)

    def connect(self):
        return LibvirtConnector(uri=self.uri, options={
            "image_pool": self.prefix + "images", "volume_pool": self.prefix + "volumes", "domain_type": "qemu"})

    def clean(self):
        remove_prefixed(self.conn, self.prefix, keep={SEED})

    def stop(self):
        if self.conn is None:
            return
        remove_prefixed(self.conn, self.prefix, keep=set())
        for pool, path in self.pools.values():
            _quiet(pool.destroy)
            _quiet(pool.undefine)
            shutil.rmtree(path, ignore_errors=True)
        self.conn.close()


def _quiet(call, *args):
    try:
        call(*args)
    except libvirt.libvirtError:
        pass  # already gone, or going: cleanup is best effort by design


def remove_prefixed(conn, prefix, keep):
    """Destroy and undefine every domain and network named ``prefix*``; empty ``prefix*`` pools but ``keep``."""
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(prefix):
            if dom.isActive():
                _quiet(dom.destroy)
            _quiet(dom.undefineFlags, libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                   | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    for net in conn.listAllNetworks(0):
        if net.name().startswith(prefix):
            if net.isActive():
                _quiet(net.destroy)
            _quiet(net.undefine)
    for pool in conn.listAllStoragePools(0):
        if pool.name().startswith(prefix) and pool.isActive():
            _quiet(pool.refresh, 0)
            for vol in pool.listAllVolumes(0):
                if vol.name() not in keep:
                    _quiet(vol.delete, 0)


def sweep_dead_runs(conn):
    """Remove what earlier runs killed mid-way left behind (their pid is gone); live runs are left alone."""
    prefixes = set()
    for obj in conn.listAllDomains(0) + conn.listAllNetworks(0) + conn.listAllStoragePools(0):
        m = re.match(r"^(sirocco-ct-(\d+)-[0-9a-f]{4}-)", obj.name())
        if m and not Path("/proc", m.group(2)).exists():
            prefixes.add(m.group(1))
    for prefix in prefixes:
        remove_prefixed(conn, prefix, keep=set())
        for pool in conn.listAllStoragePools(0):
            if pool.name().startswith(prefix):
                _quiet(pool.destroy)
                _quiet(pool.undefine)


STANDINS = [LibvirtTestDriver(), LibvirtQemu()]

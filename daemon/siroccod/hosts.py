"""The pool of hypervisor hosts the daemon serves, each reached through a shared connector.

One connector per host for the daemon's whole life, used under a per-host lock.
For a *simulated* host this matters: libvirt's test driver keeps a custom
``test:///<file>`` host's domains inside the one connection that opened it (a
second connection sees the file's initial content), so the daemon writes the
host's XML file (capacity only, no domains) at start and re-creates the
machines the CMDB records (see recovery.py).
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from pathlib import Path
from xml.sax.saxutils import escape

from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    NotFound,
    ProviderUnavailable,
    SiroccoError,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import Connector
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.registry import ConnectionParams
from siroccod import upstreams
from siroccod.backends import Backend
from siroccod.store import Host, utcnow

log = logging.getLogger(__name__)
KIB_PER_MIB = 1024
# The image every simulated host holds (a 64 MiB qcow2 volume of the test driver: no real content).
STOCK_IMAGE = "tiny-linux.qcow2"


def simulated_host_xml(name, cpu, memory_mib, mhz):
    """A libvirt test-driver node: capacity, a 'default' network and a 'default' dir pool
    holding one stock image, so machines with a disk can be made and captured."""
    net_uuid = uuidlib.uuid5(uuidlib.NAMESPACE_URL, "siroccod/%s/network" % name)
    pool_uuid = uuidlib.uuid5(uuidlib.NAMESPACE_URL, "siroccod/%s/pool" % name)
    return f"""<node>
  <!-- written by siroccod for the simulated host {escape(name)}; regenerated at every start -->
  <cpu>
    <mhz>{mhz}</mhz>
    <model>x86_64</model>
    <active>{cpu}</active>
    <nodes>1</nodes>
    <sockets>1</sockets>
    <cores>{cpu}</cores>
    <threads>1</threads>
  </cpu>
  <memory>{memory_mib * KIB_PER_MIB}</memory>
  <network>
    <name>default</name>
    <uuid>{net_uuid}</uuid>
    <bridge name='virbr0'/>
    <forward/>
    <ip address='192.168.122.1' netmask='255.255.255.0'>
      <dhcp><range start='192.168.122.2' end='192.168.122.254'/></dhcp>
    </ip>
  </network>
  <pool type='dir'>
    <name>default</name>
    <uuid>{pool_uuid}</uuid>
    <capacity unit='GiB'>500</capacity>
    <allocation>0</allocation>
    <available unit='GiB'>500</available>
    <target><path>/{escape(name)}-pool</path></target>
    <volume type='file'>
      <name>{STOCK_IMAGE}</name>
      <capacity unit='MiB'>64</capacity>
      <allocation unit='MiB'>16</allocation>
      <target><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
"""


class HostHandle(Backend):
    """One host: its configuration, its CMDB row id and its (lazily opened) connector."""

    def __init__(self, cfg, row_id, uri):
        super().__init__(cfg, row_id, uri)
        self.simulated = cfg.simulated is not None

    def __repr__(self):
        return "<host %s %s>" % (self.name, self.uri)

    @property
    def label(self):
        return "host %s" % self.name

    def manages(self, name):
        """Whether the host's machine named ``name`` is this daemon's business (config ``manage``)."""
        return self.cfg.manages(name)

    def connector(self):
        with self.lock:
            if self._connector is None:
                try:
                    self._connector = registry.open_connection(ConnectionParams(
                        self.provider, uri=self.uri, username=self.cfg.username, password=self.cfg.password,
                        validate_certs=self.cfg.validate_certs, options=self.cfg.options or None))
                except SiroccoError:
                    raise
                except Exception as exc:  # a provider library error: say which host, keep details in the log
                    log.warning("host %s: cannot connect: %s", self.name, exc)
                    raise ProviderUnavailable("host '%s' cannot be reached" % self.name) from None
            return self._connector

    def _invoke(self, method, *args, **kwargs):
        """A contract method of this host's connector under the host's lock. An error says which host raised
        it (``error.host``): its text is the provider's (URIs, paths, raw messages), for the log."""
        with self.lock:
            try:
                return getattr(self.connector(), method)(*args, **kwargs)
            except SiroccoError as exc:
                exc.host = self.name
                raise

    def all_machines(self):
        with self.lock:
            return list(self.connector().iter_machines())

    def capabilities(self):
        if self._caps is None:
            with self.lock:
                self._caps = self.connector().capabilities()
        return self._caps

    def supports(self, operation):
        try:
            return self.capabilities().supports(operation)
        except SiroccoError:
            return False

    def resizes_live(self):
        """Whether this host may resize a machine that is not stopped: its connector offers machine.resize
        and decides resize_needs_stop itself (the contract's default wants every machine stopped)."""
        if not self.supports("machine.resize"):
            return False
        return type(self.connector()).resize_needs_stop is not Connector.resize_needs_stop


class HostPool:
    def __init__(self, config, store):
        self.config = config
        self.store = store
        self.handles = {}  # host row id -> HostHandle
        self.upstreams = {}  # host row id -> upstreams.UpstreamHandle: other clouds, not hosts of the pool

    def open(self):
        """Write simulated hosts' files and record every configured host in the CMDB."""
        hosts_dir = Path(self.config.data_dir) / "hosts"
        configured = set()
        with self.store.transaction() as session:
            for cfg in self.config.hosts:
                configured.add(cfg.name)
                uri = cfg.uri
                cpu, memory_kib, mhz = cfg.cpu or 0, (cfg.memory_mib or 0) * KIB_PER_MIB, None
                if cfg.simulated is not None:
                    hosts_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
                    path = hosts_dir / ("%s.xml" % cfg.name)
                    path.write_text(simulated_host_xml(cfg.name, **cfg.simulated), encoding="utf-8")
                    path.chmod(0o600)  # the data directory holds nothing others may read
                    uri = uri or "test://%s" % path.resolve()
                    cpu = cfg.cpu or cfg.simulated["cpu"]
                    memory_kib = (cfg.memory_mib or cfg.simulated["memory_mib"]) * KIB_PER_MIB
                    mhz = cfg.simulated["mhz"]
                row = session.scalar(select(Host).where(Host.name == cfg.name))
                if row is None:
                    row = Host(name=cfg.name)
                    session.add(row)
                row.provider, row.uri, row.enabled = cfg.provider, uri, cfg.enabled
                row.simulated = cfg.simulated is not None
                row.cpu, row.memory_kib, row.cpu_mhz, row.arch = cpu, memory_kib, mhz, "x86_64" if mhz else row.arch
                row.power_idle, row.power_max = cfg.power_idle, cfg.power_max
                row.updated = utcnow()
                session.flush()
                self.handles[row.id] = HostHandle(cfg, row.id, uri)
            self.upstreams = upstreams.register(self.config.upstreams, session)
            configured |= {cfg.name for cfg in self.config.upstreams}
            for row in session.scalars(select(Host)):
                if row.name not in configured and row.enabled:
                    row.enabled, row.state, row.status_message = False, "REMOVED", "no longer in the configuration"
        for handle in self.handles.values():
            self.probe(handle)

    def probe(self, handle):
        """Connect, learn what a real host reports, record UP/DOWN. Capacity, unless configured: the
        CPU threads its connector reports times ``cpu_allocation_ratio``, and its memory."""
        state, message, cpu, memory_kib, mhz, arch = "UP", None, None, None, None, None
        try:
            caps = handle.capabilities()
            if not handle.simulated:
                # a pool behind one endpoint (XenServer) offers its hosts together, each up to the largest
                members = caps.extras.get("hosts")
                members = members if isinstance(members, int) and members > 1 else 1
                threads = caps.extras.get("hostCpus") or caps.cpu.maximum or 0  # libvirt: cpu = vCPUs per domain
                cpu = handle.cfg.cpu or int(threads * members * handle.cfg.cpu_allocation_ratio) or None
                memory_kib = (handle.cfg.memory_mib or (caps.memory_mib.maximum or 0) * members) * KIB_PER_MIB or None
                mhz = caps.cpu_mhz.maximum
                arch = caps.archs[0] if len(caps.archs) == 1 else None
        except SiroccoError as exc:
            state, message = "DOWN", str(exc)
        with self.store.transaction() as session:
            row = session.get(Host, handle.id)
            row.state, row.status_message, row.updated = state, message, utcnow()
            if cpu:
                row.cpu = cpu
            if memory_kib:
                row.memory_kib = memory_kib
            if mhz:
                row.cpu_mhz = mhz
            if arch:
                row.arch = arch
        return state

    def get(self, host_id):
        handle = self.handles.get(host_id) or self.upstreams.get(host_id)
        if handle is None:
            raise NotFound("host #%s is not part of this daemon's configuration" % host_id)
        return handle

    def by_name(self, name):
        for handle in self.handles.values():
            if handle.name == name:
                return handle
        raise NotFound("no host '%s'" % name)

    def close(self):
        for handle in list(self.handles.values()) + list(self.upstreams.values()):
            handle.close()

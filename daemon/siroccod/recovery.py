"""Start-up recovery: restore simulated hosts, then reconcile the CMDB with every host.

*Restore* (simulated hosts only). libvirt's test driver forgets everything when
its connection closes, so at start the daemon re-creates, on each simulated
host, the volumes, networks and machines the CMDB records there, and brings
each machine back to its recorded state (STARTED, PAUSED, SUSPENDED, STOPPED;
a machine caught in a transition goes back to the state it had before: its
job is either still queued, and will redo the transition, or was interrupted
and ended FAILED). Native ids change (new domain UUIDs); CIMI ids do not.

*Reconcile* (every host, at start and on POST /admin/reconcile). The hosts are
the truth about what runs:

* a recorded machine whose domain is there takes the state the host reports;
* a recorded machine whose domain vanished is *marked gone*: state FAILED,
  property ``sirocco.gone`` saying when and on which host (only delete is then
  allowed, which just forgets it);
* a domain the CMDB does not know is adopted: if it is named ``sirocco-<uuid>``
  (the host's ``name_prefix``) after a machine whose creation was interrupted it
  is linked to that machine, otherwise it appears as a new Machine of the
  *admin* tenant; only the machines a host's ``manage`` globs match are seen;
* a machine left CREATING with no domain and no queued job ends FAILED.

Upstreams (upstreams.py) are reconciled the same way, over the machines named
with their ``name_prefix`` only (an upstream is a cloud others use too): a routed
machine that vanished there is marked gone.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import NotFound, SiroccoError
from siroccod import cmdb, consolidation
from siroccod.cmdb import GONE
from siroccod.host_specs import network_options, volume_options
from siroccod.jobs import ACTIVE
from siroccod.store import Job, Resource, utcnow

log = logging.getLogger(__name__)
# Where a machine caught in a transition was going (used when its state before is unknown).
_TARGET = {states.STARTING: states.STARTED, states.STOPPING: states.STOPPED, states.PAUSING: states.PAUSED,
           states.SUSPENDING: states.SUSPENDED, states.CAPTURING: None, states.RESTORING: None,
           states.DELETING: None}


class Recovery:
    def __init__(self, store, pool, worker, admin_tenant_id):
        self.store = store
        self.pool = pool
        self.worker = worker
        self.admin_tenant_id = admin_tenant_id

    # ------------------------------------------------------------------------------------
    def restore_simulated(self):
        """Re-create what the CMDB records on each simulated host; returns the count of machines."""
        count = 0
        for handle in self.pool.handles.values():
            if not handle.simulated:
                continue
            try:
                count += self._restore_host(handle)
            except SiroccoError as exc:
                log.error("host %s: restore failed: %s", handle.name, exc)
        return count

    def _restore_host(self, handle):
        with self.store.read() as session:
            rows = list(session.scalars(select(Resource).where(Resource.host_id == handle.id)
                                        .order_by(Resource.created)))
            by_type = {}
            for row in rows:
                by_type.setdefault(row.type, []).append(row)
        native = {}  # uuid -> new native id
        for row in by_type.get("Network", []):
            if row.native_id is None:
                continue
            try:
                net = handle.create_network(row.private["native_name"], **network_options(row.doc))
                native[row.uuid] = net.id
            except SiroccoError as exc:
                log.warning("host %s: network %s not restored: %s", handle.name, row.uuid, exc)
        for row in by_type.get("Volume", []):
            if row.native_id is None:
                continue
            try:
                vol = handle.create_volume(row.private["native_name"], int(row.doc.get("capacity") or 1024),
                                           **volume_options(row.doc))
                native[row.uuid] = vol.id
            except SiroccoError as exc:
                log.warning("host %s: volume %s not restored: %s", handle.name, row.uuid, exc)
        self._save_natives(native)
        lost = [row.uuid for row in by_type.get("MachineImage", []) if row.native_id and row.state == "AVAILABLE"]
        if lost:  # captured into the simulated host's pool, which starts empty again
            with self.store.transaction() as session:
                for uuid in lost:
                    row = session.get(Resource, uuid)
                    props = dict(row.doc.get("properties") or {})
                    props[GONE] = "lost when simulated host %s restarted" % handle.name
                    row.doc = dict(row.doc, properties=props)
                    row.state = "ERROR"
        restored = 0
        for row in by_type.get("Machine", []):
            if row.native_id is None or row.state == states.FAILED:
                continue
            try:
                with self.store.read() as session:
                    spec = self.worker.machine_spec(session, session.get(Resource, row.uuid))
                    attached = [(session.get(Resource, e["volume"]["href"].rsplit("/", 1)[1]), e.get("initialLocation"))
                                for e in row.doc.get("volumes", [])]
                spec.initial_state = states.STOPPED
                spec.volumes, spec.credential, spec.user_data = [], None, None
                try:
                    machine = handle.create_machine(spec)
                except NotFound:  # its image (a capture) did not survive the host: the disk cannot either
                    spec.image = None
                    machine = handle.create_machine(spec)
                for vol, location in attached:
                    if vol is not None and vol.native_id:
                        handle.attach_volume(machine.id, vol.native_id, location)
                if row.state in states.STABLE_MACHINE_STATES:
                    wanted = row.state
                else:  # caught in a transition: a queued job will redo it, an interrupted one failed
                    wanted = row.private.get("before") or _TARGET.get(row.state)
                for op in states.path_to(states.STOPPED, wanted) if wanted in (
                        states.STARTED, states.PAUSED, states.SUSPENDED) else ():
                    handle.act(op, machine.id)
                self._save_natives({row.uuid: machine.id})
                restored += 1
            except SiroccoError as exc:
                log.warning("host %s: machine %s not restored: %s", handle.name, row.uuid, exc)
        if restored:
            log.info("host %s: %d machine(s) restored from the CMDB", handle.name, restored)
        return restored

    def _save_natives(self, natives):
        if not natives:
            return
        with self.store.transaction() as session:
            for uuid, native_id in natives.items():
                row = session.get(Resource, uuid)
                row.native_id = native_id
            # the volumes' ids moved: keep the machines' records of them in step (nothing to do:
            # machines refer to volumes by CIMI uuid)

    # ------------------------------------------------------------------------------------
    def reconcile(self):
        """Make the CMDB agree with the hosts; returns counts of what changed.

        Safe while jobs run, in this process or another one sharing the CMDB: a machine with an
        unfinished job, or changed after its host was listed, is left to that job (or to the next
        reconcile); a domain is adopted by one record at most (unique host + native id)."""
        # moves a dead process left unrecorded: settled first
        report = {"updated": consolidation.settle(self.store, self.pool), "gone": 0, "adopted": 0, "failed": 0}
        for handle in list(self.pool.handles.values()) + list(self.pool.upstreams.values()):
            listed_at = utcnow()
            try:
                found = {m.id: m for m in handle.all_machines() if handle.manages(m.name)}
            except SiroccoError as exc:
                log.warning("host %s: cannot list machines, not reconciled: %s", handle.name, exc)
                continue
            counts = dict.fromkeys(report, 0)
            try:
                self._reconcile_host(handle, found, counts, listed_at)
            except IntegrityError as exc:  # another process adopted the same domain at the same time
                log.info("host %s: reconcile raced with another process, left to the next one: %s",
                         handle.name, exc.orig)
                continue
            for key, value in counts.items():
                report[key] += value
        if any(report.values()):
            log.info("reconciled with the hosts: %s", report)
        return report

    def _reconcile_host(self, handle, found, report, listed_at):
        now = utcnow()
        with self.store.transaction() as session:
            busy = set(session.scalars(select(Job.target_uuid).where(Job.state.in_(ACTIVE))))
            rows = list(session.scalars(select(Resource).where(Resource.type == "Machine",
                                                               Resource.host_id == handle.id)))
            known = {row.native_id for row in rows if row.native_id}
            by_domain = {m.name: m for m in found.values() if m.id not in known}
            ours = {handle.native_name(row.uuid) for row in rows}
            # A domain named after one of our records whose id the CMDB lacks (a creation interrupted
            # after the host made it) or no longer finds (a host that renumbers) is that machine:
            # linked first, even when a job is pending (that job then finds it).
            for row in rows:
                if row.native_id is None or row.native_id not in found:
                    machine = by_domain.pop(handle.native_name(row.uuid), None)
                    if machine is not None:
                        row.native_id = machine.id
                        report["adopted"] += 1
            for row in rows:
                if row.uuid in busy or row.updated >= listed_at:
                    continue  # a job will bring it where it goes, or it changed after the listing
                machine = found.get(row.native_id) if row.native_id else None
                if machine is not None:
                    if row.state != machine.state:
                        row.state, row.updated = machine.state, now
                        report["updated"] += 1
                    if row.private.get("resizing"):  # its resize job was interrupted: the size is the host's
                        _settle_resize(row, machine, now)
                        report["updated"] += 1
                    props = row.doc.get("properties") or {}
                    if GONE in props:
                        row.doc = dict(row.doc, properties={k: v for k, v in props.items() if k != GONE})
                    continue
                if row.native_id is None:
                    if row.state != states.FAILED:
                        row.state, row.updated = states.FAILED, now
                        report["failed"] += 1
                    continue
                if row.state == states.DELETING:
                    cmdb.forget_machine(session, row.uuid)  # its delete was interrupted after the host's part
                    report["gone"] += 1
                    continue
                if row.state != states.FAILED:
                    cmdb.mark_gone(row, "domain vanished from %s" % handle.label, now)
                    report["gone"] += 1
            volumes = session.scalars(select(Resource).where(Resource.type == "Volume", Resource.host_id == handle.id))
            for vol in volumes:
                if vol.private.get("resizing") and vol.uuid not in busy:  # an interrupted resize: try it again
                    vol.private = {k: v for k, v in vol.private.items() if k != "resizing"}
            linked = {row.native_id for row in rows if row.native_id}
            for machine in found.values():
                if machine.id in linked or machine.name in ours:
                    continue  # ours (a record may be on its way to it), or already adopted
                doc = {k: v for k, v in machine.to_json().items()
                       if k in ("name", "description") + model.HARDWARE}
                doc.setdefault("name", machine.id)
                doc["properties"] = {"sirocco.adopted": "found on host %s" % handle.name}
                cmdb.new_resource(session, "Machine", self.admin_tenant_id, doc, host_id=handle.id,
                                  native_id=machine.id, state=machine.state,
                                  private={"domain": machine.name, "adopted": True})
                report["adopted"] += 1


def _settle_resize(row, machine, now):
    """A machine whose resize job did not finish: record the size its host reports (the old or the new
    one), and its claim is that size again (capacity.machine_claim)."""
    size = {k: v for k, v in (("cpu", machine.cpu), ("memory", machine.memory)) if v}
    row.doc = dict(row.doc, **size)
    row.private = {k: v for k, v in row.private.items() if k != "resizing"}
    row.updated = now

"""Job handlers: the Worker runs a claimed job through the handler registered for it (jobs/registry.py).

A handler talks to the host outside any CMDB transaction (hosts can be slow), then writes the
resource's new state and the job's end in one transaction, through the ledger (``Worker.finish``).
A SiroccoError ends the job FAILED with its message and status code; anything else ends it FAILED
with a generic message (details only in the daemon log); a job no handler takes ends FAILED, 501.

The handlers, by the type of their target: machines.py, storage.py (volumes, networks), images.py,
systems.py; the daemon's own consolidation job is consolidation.run. A job with nested jobs (a
System's) runs each of them here, then ends with their outcome.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    NotFound,
    OperationTimeout,
    SiroccoError,
    Unsupported,
)
from siroccod import cmdb, consolidation, host_specs, jobs
from siroccod.handlers import images, machines, storage, systems
from siroccod.jobs import FAILED, RUNNING, SUCCESS, handles
from siroccod.store import Job, Resource, utcnow

log = logging.getLogger(__name__)
# the modules whose handlers register themselves on import (jobs.registry)
HANDLER_MODULES = (machines, storage, images, systems, consolidation)
GENERIC_FAILURE = "internal error while running this job (details are in the daemon's log)"
# what a user reads when a host's connector failed, by the kind of the error (cimi/errors.py)
HOST_FAILURES = {
    "not-found": "not found there (any more)",
    "conflict": "refused in the present state",
    "invalid-input": "refused there as invalid",
    "unsupported": "not supported there",
    "auth": "the daemon's credentials were refused",
    "forbidden": "the daemon's credentials were refused",
    "provider-unavailable": "unavailable, or it failed",
    "timeout": "not finished in time",
}


@handles(None, None)
def no_target(_worker, _job_uuid):
    raise Unsupported("siroccod", "job without target")


class Worker:
    def __init__(self, store, pool, action_timeout=120.0, sealer=None, config=None):
        self.store = store
        self.pool = pool
        self.action_timeout = action_timeout
        self.sealer = sealer  # sealing.Sealer: opens the secrets a host needs
        self.config = config  # image imports: where they may come from, where to keep them meanwhile

    # ----------------------------------------------------------------------------------
    def __call__(self, job_uuid):
        with self.store.read() as session:
            job = session.get(Job, job_uuid)
            if job is None or job.state != RUNNING:
                return
            op, target_type = job.params.get("op"), job.target_type
            nested = session.scalars(select(Job.uuid).where(Job.parent_uuid == job_uuid)
                                     .order_by(Job.created, Job.uuid)).all()
        if nested:
            return self._run_parent(job_uuid, op, target_type, nested)
        handler = jobs.lookup(target_type, op)
        if handler is None:
            return self.finish(job_uuid, FAILED, "no handler for %s on %s" % (op, target_type), 501)
        try:
            handler(self, job_uuid)
        except SiroccoError as exc:
            self._failed(job_uuid, op, target_type, self.public_message(job_uuid, op, target_type, exc),
                         exc.http_status)
        except Exception:
            log.exception("job %s (%s %s) failed", job_uuid, op, target_type)
            self._failed(job_uuid, op, target_type, GENERIC_FAILURE, 500)

    @staticmethod
    def public_message(job_uuid, op, target_type, exc):
        """What a job's user reads of its failure. A host's error (``error.host``) carries the provider's own
        text (its URI, the daemon's paths, raw libvirt or SDK messages): the user reads what kind of
        failure it was on which host, the log keeps the text under the job's id. The daemon's own errors
        are written for users and are shown as they are."""
        host = getattr(exc, "host", None)
        if host is None:
            return str(exc)
        log.warning("job %s (%s %s) failed on %s: %s: %s", job_uuid, op, target_type, host, type(exc).__name__, exc)
        return "%s %s failed on %s: %s (the daemon's log has the details under job %s)" % (
            (target_type or "job").lower(), op, host if host.startswith("upstream") else "host " + host,
            HOST_FAILURES.get(exc.kind, "it failed"), job_uuid)

    @staticmethod
    def resumable(job):
        """Whether an interrupted run of ``job`` may simply be redone: a machine's creation is (its
        domain, if the first run made it, is found again by its name)."""
        return job.target_type == "Machine" and (job.params or {}).get("op") == "create"

    def _run_parent(self, job_uuid, op, target_type, nested):
        failures = 0
        for child in nested:
            with self.store.transaction() as session:
                if jobs.claim_nested(self.store, session, job_uuid, child) is None:
                    row = session.get(Job, child)
                    if row.state == "QUEUED":  # the parent is not ours any more: leave the rest to its runner
                        return None
                    failures += row.state != SUCCESS
                    continue
            self(child)
            with self.store.read() as session:
                failures += session.get(Job, child).state != SUCCESS
            self.progress(job_uuid, 10 + 80 * (nested.index(child) + 1) // len(nested))

        def settle(session, job):
            row = session.get(Resource, job.target_uuid) if job.target_uuid else None
            if row is not None and target_type == "System":
                if op == "delete" and not failures:
                    session.delete(row)
                elif op in ("create", "delete"):
                    row.state = "ERROR" if failures else "READY"
                    row.updated = utcnow()
        return self.finish(job_uuid, FAILED if failures else SUCCESS,
                           "%d of %d nested jobs failed" % (failures, len(nested)) if failures
                           else "%d nested jobs succeeded" % len(nested), 500 if failures else 200, settle)

    # -- bookkeeping: through the ledger's fence (only the current claim records) -----------
    def finish(self, job_uuid, state, message, code, change=None):
        return jobs.finish(self.store, job_uuid, state, message, code, change)

    def progress(self, job_uuid, percent, message=None):
        return jobs.progress(self.store, job_uuid, percent, message)

    def load(self, job_uuid):
        """(job params, target row copy fields, host handle) read in a short transaction."""
        with self.store.read() as session:
            job = session.get(Job, job_uuid)
            row = session.get(Resource, job.target_uuid)
            if row is None:
                raise NotFound("the job's target no longer exists")
            host = self.pool.get(row.host_id) if row.host_id is not None else None
            return dict(job.params), row.uuid, row.native_id, dict(row.private), dict(row.doc), host

    def _failed(self, job_uuid, op, target_type, message, code):
        def undo(session, job):
            row = session.get(Resource, job.target_uuid) if job.target_uuid else None
            if row is None:
                return
            before = job.params.get("before") or row.private.get("before")
            if target_type == "Machine":
                if op == "create":
                    row.state = states.FAILED
                else:
                    row.state = self._host_state(row) or before or states.ERROR
                if op == "capture" and job.params.get("image"):
                    image = session.get(Resource, job.params["image"])
                    if image is not None:
                        image.state = "ERROR"
                if op == "resize":  # the old size again: the claim of the larger one ends
                    row.private = {k: v for k, v in row.private.items() if k != "resizing"}
                if op in ("attach", "create"):
                    cmdb.release_attaching(session, row.uuid)
            elif op == "resize":  # a volume keeps its capacity and state
                row.private = {k: v for k, v in row.private.items() if k != "resizing"}
            elif op in ("create", "import"):
                row.state = "ERROR"
            elif op == "delete":
                row.state = before or "ERROR"
            row.updated = utcnow()
        log.info("job %s (%s %s) FAILED: %s", job_uuid, op, target_type, message)
        self.finish(job_uuid, FAILED, message, code, undo)

    def _host_state(self, row):
        if row.native_id is None or row.host_id is None:
            return None
        try:
            return self.pool.get(row.host_id).get_machine(row.native_id).state
        except Exception:  # the host is the problem: keep the recorded state
            return None

    def wait_state(self, host, native, wanted, timeout=None):
        deadline = time.monotonic() + (self.action_timeout if timeout is None else timeout)
        while True:
            machine = host.get_machine(native)
            if machine.state in wanted:
                return machine
            if time.monotonic() >= deadline:
                raise OperationTimeout("machine still %s after %ds (wanted %s)"
                                       % (machine.state, self.action_timeout, "/".join(wanted)))
            time.sleep(0.2)

    def machine_spec(self, session, row):
        """The connector's MachineSpec of a recorded machine (host_specs.machine_spec)."""
        return host_specs.machine_spec(session, row, self.sealer)

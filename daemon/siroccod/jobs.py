"""Jobs: queued in the CMDB by requests, claimed and run by worker threads.

Claiming is written for several daemon processes sharing one PostgreSQL:

* a worker picks the oldest QUEUED top-level job whose target has no older
  unfinished job (so the jobs of one resource run one at a time, in order),
  ``SELECT … FOR UPDATE SKIP LOCKED`` where the database supports it (PostgreSQL;
  SQLite ignores the clause and serialises writers anyway), then
* flips it to RUNNING with ``UPDATE … WHERE uuid=? AND state='QUEUED'`` and
  keeps it only if exactly one row changed: a job runs exactly once, whatever
  the database or the number of processes.

Each process records itself in ``instances`` and beats every few seconds. A
RUNNING job whose claimer is gone (its heartbeat older than
``instance_timeout``, or any other process on SQLite, which is single-process)
is ended FAILED with a status message saying it was interrupted; the resource
it touched is re-read from its host by the reconciliation (recovery.py) --
unless the handler can safely run it again (``resumable``: a machine's
creation, found again on its host by name), in which case it is queued again,
once. QUEUED jobs never started, so they are simply run later: they are resumed.

A job's outcome is fenced: each claim gets a new token, held by the thread that claimed it (and
given to the job's nested jobs), and a job's row is written only under the token it carries now
(``held``, ``finish``). A process that stalled past ``instance_timeout`` may have had its job taken
over; when it wakes up, what it records is discarded (with a warning in its log), whatever it did.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid as uuidlib
from collections.abc import Callable
from contextvars import ContextVar
from datetime import timedelta

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import SiroccoError
from siroccod.store import Instance, Job, utcnow

log = logging.getLogger(__name__)
QUEUED, RUNNING, SUCCESS, FAILED = "QUEUED", "RUNNING", "SUCCESS", "FAILED"
ACTIVE = (QUEUED, RUNNING)
INTERRUPTED = "interrupted: the daemon process running this job stopped before it finished"
RESUMED = "resumed: the daemon process running this job stopped before it finished; running it again"
MAX_RESUMES = 1
# the token of the claim the current thread runs a job under (set by JobRunner.claim)
_CLAIM: ContextVar[str | None] = ContextVar("siroccod_job_claim", default=None)


class JobFailed(SiroccoError):
    """Raised by a handler to end its job FAILED with this message (status code in http_status)."""


class JobRunner:
    def __init__(self, store, handler, workers=1, poll_interval=0.5, instance_timeout=30.0, exclusive=None,
                 resumable=None):
        self.store = store
        self.handler = handler  # handler(job_uuid) runs a claimed job to its end
        self.resumable = resumable  # resumable(job) -> True if an interrupted run may simply be redone
        self.workers = workers
        self.poll_interval = poll_interval
        self.instance_timeout = instance_timeout
        # SQLite is for one process: any other instance recorded there is dead.
        self.exclusive = store.is_sqlite if exclusive is None else exclusive
        self.instance_id = "%s-%d-%s" % (socket.gethostname()[:32], os.getpid(), uuidlib.uuid4().hex[:8])
        self._wake = threading.Condition()
        self._pending = 0
        self._stop = threading.Event()
        self._threads = []
        self._claim_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------
    def register(self):
        with self.store.transaction() as session:
            session.add(Instance(id=self.instance_id, hostname=socket.gethostname()[:255], pid=os.getpid()))

    def start(self):
        for i in range(self.workers):
            thread = threading.Thread(target=self._work, name="siroccod-worker-%d" % i, daemon=True)
            thread.start()
            self._threads.append(thread)
        thread = threading.Thread(target=self._beat, name="siroccod-heartbeat", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout=10.0):
        self._stop.set()
        self.wake()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        try:
            with self.store.transaction() as session:
                row = session.get(Instance, self.instance_id)
                if row is not None:
                    session.delete(row)
        except Exception as exc:  # the CMDB may be gone already at shutdown
            log.debug("could not deregister instance: %s", exc)

    def wake(self):
        with self._wake:
            self._pending += 1
            self._wake.notify_all()

    # -- recovery ----------------------------------------------------------------------
    def fail_interrupted(self):
        """End FAILED the RUNNING jobs of dead processes (or queue again the resumable ones, once);
        returns the uuids of the failed ones."""
        now = utcnow()
        stale = now - timedelta(seconds=self.instance_timeout)
        with self.store.transaction() as session:
            dead = [row.id for row in session.scalars(select(Instance)) if row.id != self.instance_id
                    and (self.exclusive or row.heartbeat_at < stale)]
            alive = select(Instance.id).where(Instance.heartbeat_at >= stale)
            query = select(Job).where(Job.state == RUNNING)
            if self.exclusive:
                query = query.where(or_(Job.claimed_by.is_(None), Job.claimed_by != self.instance_id))
            else:
                query = query.where(or_(Job.claimed_by.is_(None), Job.claimed_by.not_in(alive)))
            failed, resumed = [], 0
            for job in session.scalars(query.with_for_update(skip_locked=True)):
                job.updated = job.status_changed = now
                count = int((job.params or {}).get("resumed") or 0)
                if (job.parent_uuid is None and count < MAX_RESUMES and self.resumable is not None
                        and self.resumable(job)):
                    job.state, job.status_message, job.progress = QUEUED, RESUMED, 0
                    job.claimed_by = job.claimed_at = job.claim_token = None
                    job.params = dict(job.params or {}, resumed=count + 1)
                    resumed += 1
                    continue
                job.state, job.status_message, job.return_code = FAILED, INTERRUPTED, 500
                job.claim_token = None
                failed.append(job.uuid)
            for instance_id in dead:
                row = session.get(Instance, instance_id)
                if row is not None:
                    session.delete(row)
        if failed:
            log.warning("%d job(s) interrupted by a dead daemon process ended FAILED", len(failed))
        if resumed:
            log.warning("%d job(s) interrupted by a dead daemon process queued again", resumed)
            self.wake()
        return failed

    # -- claiming ------------------------------------------------------------------------
    def claim(self):
        """Claim the next runnable job for this process; its uuid, or None."""
        older = aliased(Job)
        blocked = exists().where(and_(
            older.target_uuid == Job.target_uuid, older.state.in_(ACTIVE), older.uuid != Job.uuid,
            or_(older.created < Job.created, and_(older.created == Job.created, older.uuid < Job.uuid),
                older.state == RUNNING)))
        query = (select(Job.uuid).where(Job.state == QUEUED, Job.parent_uuid.is_(None),
                                        or_(Job.target_uuid.is_(None), ~blocked))
                 .order_by(Job.created, Job.uuid).limit(1).with_for_update(skip_locked=True))
        with self._claim_lock, self.store.transaction() as session:
            job_uuid = session.scalar(query)
            if job_uuid is None:
                return None
            now, token = utcnow(), uuidlib.uuid4().hex
            result = session.execute(
                update(Job).where(Job.uuid == job_uuid, Job.state == QUEUED)
                .values(state=RUNNING, claimed_by=self.instance_id, claimed_at=now, claim_token=token, progress=10,
                        updated=now, status_changed=now))
            if result.rowcount != 1:
                return None
        _CLAIM.set(token)  # this thread runs it: its outcome is written under this token
        return job_uuid

    def run_pending(self, limit=1000):
        """Run queued jobs in this thread until none is left (tests, `siroccod` tools)."""
        count = 0
        while count < limit:
            job_uuid = self.claim()
            if job_uuid is None:
                return count
            self.handler(job_uuid)
            count += 1
        return count

    # -- threads ---------------------------------------------------------------------------
    def _work(self):
        while not self._stop.is_set():
            try:
                job_uuid = self.claim()
            except Exception:
                log.exception("claiming a job failed")
                job_uuid = None
                self._stop.wait(self.poll_interval)
            if job_uuid is not None:
                try:
                    self.handler(job_uuid)
                except Exception:  # the handler ends its job itself; this is a last resort
                    log.exception("job %s: handler crashed", job_uuid)
                continue
            with self._wake:
                if self._pending == 0 and not self._stop.is_set():
                    self._wake.wait(self.poll_interval)
                self._pending = 0

    def _beat(self):
        interval = max(0.5, min(5.0, self.instance_timeout / 4))
        while not self._stop.wait(interval):
            try:
                with self.store.transaction() as session:
                    row = session.get(Instance, self.instance_id)
                    if row is None:
                        session.add(Instance(id=self.instance_id, hostname=socket.gethostname()[:255],
                                             pid=os.getpid()))
                    else:
                        row.heartbeat_at = utcnow()
                if not self.exclusive:
                    self.fail_interrupted()
            except Exception:
                log.exception("heartbeat failed")


def is_final(state):
    return state in states.JOB_FINAL_STATES


# -- the fence: a job's row is written only under its current claim --------------------------------
def held(store, session, job_uuid: str) -> Job | None:
    """The row of ``job_uuid``, locked until ``session``'s transaction ends, if the run in this thread still
    holds its claim (RUNNING under this thread's token); else None: the job was taken over."""
    token = _CLAIM.get()
    if store.is_sqlite:
        store.write_lock(session)
        job = session.get(Job, job_uuid, populate_existing=True)
    else:
        job = session.get(Job, job_uuid, with_for_update=True, populate_existing=True)
    if job is None or token is None or job.state != RUNNING or job.claim_token != token:
        return None
    return job


def finish(store, job_uuid: str, state: str, message: str, code: int,
           change: Callable | None = None) -> bool:
    """Record a job's outcome, and ``change(session, job)`` (its resources' new state) in the same transaction,
    if this thread still holds its claim; False (nothing written, a warning logged) if it was taken over."""
    with store.transaction() as session:
        job = held(store, session, job_uuid)
        if job is None:
            log.warning("job %s: this run lost its claim (taken over after missed heartbeats): its outcome "
                        "(%s: %s) is not recorded", job_uuid, state, message)
            return False
        if change is not None:
            change(session, job)
        now = utcnow()
        job.state, job.status_message, job.return_code, job.progress = state, message, code, 100
        job.updated = job.status_changed = now
        return True


def progress(store, job_uuid: str, percent: int, message: str | None = None) -> bool:
    """Note a running job's progress, if this thread still holds its claim."""
    with store.transaction() as session:
        job = held(store, session, job_uuid)
        if job is None:
            return False
        job.progress, job.updated = percent, utcnow()
        if message:
            job.status_message = message
        return True


def claim_nested(store, session, parent_uuid: str, child_uuid: str) -> Job | None:
    """Mark a nested job RUNNING under its parent's claim (held by this thread); None if the parent is not
    held any more or the child is not QUEUED."""
    parent = held(store, session, parent_uuid)
    child = session.get(Job, child_uuid, populate_existing=True)
    if parent is None or child is None or child.state != QUEUED:
        return None
    now = utcnow()
    child.state, child.claimed_by, child.claimed_at, child.claim_token = RUNNING, parent.claimed_by, now, \
        parent.claim_token
    child.status_changed = child.updated = now
    return child

"""The ledger: the one module that writes Job rows -- every creation and every state transition.

Claiming is written for several daemon processes sharing one PostgreSQL:

* a worker picks the oldest QUEUED top-level job whose target has no older
  unfinished job (so the jobs of one resource run one at a time, in order),
  ``SELECT … FOR UPDATE SKIP LOCKED`` where the database supports it (PostgreSQL;
  SQLite ignores the clause and serialises writers anyway), then
* flips it to RUNNING with ``UPDATE … WHERE uuid=? AND state='QUEUED'`` and
  keeps it only if exactly one row changed: a job runs exactly once, whatever
  the database or the number of processes.

A RUNNING job whose claimer is gone (its heartbeat older than ``instance_timeout``,
or any other process on SQLite, which is single-process) is ended FAILED with a
status message saying it was interrupted (``fail_interrupted``); the resource it
touched is re-read from its host by the reconciliation (recovery.py) -- unless the
handler can safely run it again (``resumable``: a machine's creation, found again
on its host by name), in which case it is queued again, once. QUEUED jobs never
started, so they are simply run later: they are resumed.

A job's outcome is fenced: each claim gets a new token, held by the thread that claimed it (and
given to the job's nested jobs), and a job's row is written only under the token it carries now
(``held``, ``finish``, ``progress``, ``note``, ``claim_nested``, ``start_nested``). A process that
stalled past ``instance_timeout`` may have had its job taken over; when it wakes up, what it records
is discarded (with a warning in its log), whatever it did.
"""

from __future__ import annotations

import logging
import uuid as uuidlib
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from datetime import timedelta
from typing import cast

from sqlalchemy import CursorResult, and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, SiroccoError
from siroccod.store import Instance, Job, Resource, Store, new_uuid, utcnow

log = logging.getLogger("siroccod.jobs")
QUEUED, RUNNING, SUCCESS, FAILED = "QUEUED", "RUNNING", "SUCCESS", "FAILED"
ACTIVE = (QUEUED, RUNNING)
INTERRUPTED = "interrupted: the daemon process running this job stopped before it finished"
RESUMED = "resumed: the daemon process running this job stopped before it finished; running it again"
MAX_RESUMES = 1
# the token of the claim the current thread runs a job under (set by ``claim``)
_CLAIM: ContextVar[str | None] = ContextVar("siroccod_job_claim", default=None)


class JobFailed(SiroccoError):
    """Raised by a handler to end its job FAILED with this message (status code in http_status)."""


def is_final(state):
    return state in states.JOB_FINAL_STATES


# -- new jobs ------------------------------------------------------------------------------------
def queue(session: Session, tenant_id: int, op: str, target: Resource | None = None, params: dict | None = None,
          affected: Iterable[str] = (), parent: Job | None = None, action: str | None = None,
          message: str | None = None) -> Job:
    """A new QUEUED job of ``op`` on ``target`` (None: the daemon's own, e.g. a consolidation), in the request's
    transaction: it runs once that commits. ``action``: its URI when it is not CIMI's ``op`` action."""
    now = utcnow()
    job = Job(uuid=new_uuid(), tenant_id=tenant_id, state=QUEUED, action=action or action_uri(op),
              target_uuid=target.uuid if target is not None else None,
              target_type=target.type if target is not None else None, params=dict(params or {}, op=op),
              affected=list(affected), parent_uuid=parent.uuid if parent is not None else None,
              status_message=message, created=now, updated=now, status_changed=now)
    session.add(job)
    session.flush()
    return job


def start_nested(store: Store, session: Session, parent_uuid: str, op: str, target: Resource,
                 params: dict | None = None, affected: Iterable[str] = ()) -> Job | None:
    """A new nested job of ``op`` on ``target``, RUNNING at once under its parent's claim (held by this
    thread), in ``session``'s transaction; None if the parent is not held any more (taken over)."""
    parent = held(store, session, parent_uuid)
    if parent is None:
        return None
    now = utcnow()
    child = Job(uuid=new_uuid(), tenant_id=parent.tenant_id, state=RUNNING, action=action_uri(op),
                target_uuid=target.uuid, target_type=target.type, params=dict(params or {}, op=op),
                affected=list(affected), parent_uuid=parent_uuid, progress=10, claimed_by=parent.claimed_by,
                claimed_at=now, claim_token=parent.claim_token, created=now, updated=now, status_changed=now)
    session.add(child)
    return child


# -- claims --------------------------------------------------------------------------------------
def claim(store: Store, instance_id: str) -> str | None:
    """Claim the next runnable job for ``instance_id`` in this thread; its uuid, or None."""
    older = aliased(Job)
    blocked = exists().where(and_(
        older.target_uuid == Job.target_uuid, older.state.in_(ACTIVE), older.uuid != Job.uuid,
        or_(older.created < Job.created, and_(older.created == Job.created, older.uuid < Job.uuid),
            older.state == RUNNING)))
    query = (select(Job.uuid).where(Job.state == QUEUED, Job.parent_uuid.is_(None),
                                    or_(Job.target_uuid.is_(None), ~blocked))
             .order_by(Job.created, Job.uuid).limit(1).with_for_update(skip_locked=True))
    with store.transaction() as session:
        job_uuid = session.scalar(query)
        if job_uuid is None:
            return None
        now, token = utcnow(), uuidlib.uuid4().hex
        result = session.execute(
            update(Job).where(Job.uuid == job_uuid, Job.state == QUEUED)
            .values(state=RUNNING, claimed_by=instance_id, claimed_at=now, claim_token=token, progress=10,
                    updated=now, status_changed=now))
        if result.rowcount != 1:
            return None
    _CLAIM.set(token)  # this thread runs it: its outcome is written under this token
    return job_uuid


def claim_nested(store: Store, session: Session, parent_uuid: str, child_uuid: str) -> Job | None:
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


def fail_interrupted(store: Store, instance_id: str, instance_timeout: float, exclusive: bool,
                     resumable: Callable | None = None) -> tuple[list[str], int]:
    """End FAILED the RUNNING jobs of dead processes (or queue again the resumable ones, once), and forget
    those processes; returns (uuids of the failed jobs, count of those queued again)."""
    now = utcnow()
    stale = now - timedelta(seconds=instance_timeout)
    with store.transaction() as session:
        dead = [row.id for row in session.scalars(select(Instance)) if row.id != instance_id
                and (exclusive or row.heartbeat_at < stale)]
        alive = select(Instance.id).where(Instance.heartbeat_at >= stale)
        query = select(Job).where(Job.state == RUNNING)
        if exclusive:
            query = query.where(or_(Job.claimed_by.is_(None), Job.claimed_by != instance_id))
        else:
            query = query.where(or_(Job.claimed_by.is_(None), Job.claimed_by.not_in(alive)))
        failed, resumed = [], 0
        for job in session.scalars(query.with_for_update(skip_locked=True)):
            job.updated = job.status_changed = now
            count = int((job.params or {}).get("resumed") or 0)
            if (job.parent_uuid is None and count < MAX_RESUMES and resumable is not None
                    and resumable(job)):
                job.state, job.status_message, job.progress = QUEUED, RESUMED, 0
                job.claimed_by = job.claimed_at = job.claim_token = None
                job.params = dict(job.params or {}, resumed=count + 1)
                resumed += 1
                continue
            job.state, job.status_message, job.return_code = FAILED, INTERRUPTED, 500
            job.claim_token = None
            failed.append(job.uuid)
        for dead_id in dead:
            row = session.get(Instance, dead_id)
            if row is not None:
                session.delete(row)
    return failed, resumed


# -- the fence: a job's row is written only under its current claim --------------------------------
def held(store: Store, session: Session, job_uuid: str) -> Job | None:
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


def finish(store: Store, job_uuid: str, state: str, message: str, code: int,
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


def progress(store: Store, job_uuid: str, percent: int, message: str | None = None) -> bool:
    """Note a running job's progress, if this thread still holds its claim."""
    with store.transaction() as session:
        job = held(store, session, job_uuid)
        if job is None:
            return False
        job.progress, job.updated = percent, utcnow()
        if message:
            job.status_message = message
        return True


def note(store: Store, job_uuid: str, params: dict | None = None, affected: Iterable[str] = ()) -> bool:
    """Merge ``params`` into a running job's parameters and add ``affected`` hrefs to its affected resources
    (what it has done so far), if this thread still holds its claim."""
    with store.transaction() as session:
        job = held(store, session, job_uuid)
        if job is None:  # taken over: the run that holds it now records its own
            return False
        if params:
            job.params = dict(job.params, **params)
        job.affected = list(dict.fromkeys(list(job.affected or []) + list(affected)))
        job.updated = utcnow()
        return True


# -- deletion: a client forgets a finished job (DSP0263 5.17.1.1) --------------------------------
def delete_refusal(session: Session, job: Job) -> str | None:
    """Why ``job`` cannot be deleted now, else None. Jobs here cannot be stopped (isCancellable false), so
    a QUEUED or RUNNING one is refused (5.17.1.1: deleting a running Job that does not support stop shall
    fail), and so is a nested job whose parent is not finished: the parent's run reads its outcome."""
    if not is_final(job.state):
        return "job %s is %s: only a finished job can be deleted (its jobs cannot be stopped)" % (job.uuid, job.state)
    parent = session.get(Job, job.parent_uuid) if job.parent_uuid else None
    if parent is not None and not is_final(parent.state):
        return "job %s is nested in job %s, which is %s" % (job.uuid, parent.uuid, parent.state)
    return None


def forget(session: Session, job: Job) -> int:
    """Delete ``job`` and every job nested under it, at any depth, in ``session``'s transaction: nested jobs
    go with their parent, so no parentJob or nestedJobs href is left pointing at nothing. Returns how many
    rows went. Raises Conflict (nothing deleted) when ``delete_refusal`` says why not, or when a nested job
    is still RUNNING (a QUEUED one under a finished parent never runs: it goes too)."""
    reason = delete_refusal(session, job)
    if reason is not None:
        raise Conflict(reason)
    family, level = [job.uuid], [job.uuid]
    while level:
        children = session.execute(select(Job.uuid, Job.state).where(Job.parent_uuid.in_(level))).all()
        running = [uuid for uuid, state in children if state == RUNNING]
        if running:
            raise Conflict("job %s has a nested job still running (%s)" % (job.uuid, running[0]))
        level = [uuid for uuid, _state in children if uuid not in family]
        family += level
    # Core DELETE: a concurrent delete of the same job leaves 0 rows to match, not an ORM error
    result = session.execute(delete(Job).where(Job.uuid.in_(family)).execution_options(synchronize_session=False))
    return cast(CursorResult, result).rowcount

"""The engine: worker threads that claim jobs through the ledger and run them, and a heartbeat.

Each process that runs jobs (``siroccod serve`` with workers, ``siroccod worker``) records itself in
``instances`` and beats every few seconds; its heartbeat also ends the jobs of processes that stopped
beating (``ledger.fail_interrupted``). The engine knows nothing of what a job does: ``handler(job_uuid)``
(handlers.Worker) runs a claimed job to its end and records it through the ledger.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid as uuidlib

from siroccod.jobs import ledger
from siroccod.store import Instance, utcnow

log = logging.getLogger("siroccod.jobs")


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

    def wait(self, timeout=None):
        """Block until ``stop`` (``siroccod worker``'s main thread); True once stopped."""
        return self._stop.wait(timeout)

    def wake(self):
        with self._wake:
            self._pending += 1
            self._wake.notify_all()

    # -- recovery ----------------------------------------------------------------------
    def fail_interrupted(self):
        """End FAILED the RUNNING jobs of dead processes (or queue again the resumable ones, once);
        returns the uuids of the failed ones."""
        failed, resumed = ledger.fail_interrupted(self.store, self.instance_id, self.instance_timeout,
                                                  self.exclusive, self.resumable)
        if failed:
            log.warning("%d job(s) interrupted by a dead daemon process ended FAILED", len(failed))
        if resumed:
            log.warning("%d job(s) interrupted by a dead daemon process queued again", resumed)
            self.wake()
        return failed

    # -- claiming ------------------------------------------------------------------------
    def claim(self):
        """Claim the next runnable job for this process; its uuid, or None."""
        with self._claim_lock:
            return ledger.claim(self.store, self.instance_id)

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

"""A job's outcome is written only by its current claim.

Two job runners on one CMDB, as two daemon processes: A claims a job and stalls in it (a long pause:
its heartbeats stop); B, seeing A's heartbeat older than ``instance_timeout``, takes the job over (queues
it again, since it is resumable) and runs it to its end. When A wakes up and records its own outcome
through the worker, as every handler does, nothing of it is written: neither the job's end nor the
change to its resource. On PostgreSQL (row locks, two engines) and on SQLite.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import update

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri


def test_a_run_that_lost_its_claim_records_nothing(database):
    from siroccod.handlers import Worker
    from siroccod.jobs import JobRunner
    from siroccod.store import Instance, Job, Resource, Store, new_uuid, utcnow

    store_a, store_b = Store(database), Store(database)
    machine, job_uuid = new_uuid(), new_uuid()
    with store_a.transaction() as session:
        now = utcnow()
        session.add(Resource(uuid=machine, type="Machine", name="m", state="CREATING", doc={}, private={},
                             created=now, updated=now))
        session.add(Job(uuid=job_uuid, action=action_uri("create"), target_uuid=machine, target_type="Machine",
                        params={"op": "create"}, created=now, updated=now, status_changed=now))

    def outcome(name):
        """What a handler records at its end: the job's outcome and its machine's new state, together."""
        def change(session, _job):
            session.get(Resource, machine).state = "STARTED-BY-" + name
        return change

    stalled, wake, recorded = threading.Event(), threading.Event(), {}

    def stalling_handler(uuid):  # A: claims, then pauses longer than instance_timeout
        stalled.set()
        wake.wait(60)
        recorded["a"] = Worker(store_a, None).finish(uuid, "SUCCESS", "done by A", 200, outcome("A"))

    def handler_b(uuid):
        recorded["b"] = Worker(store_b, None).finish(uuid, "SUCCESS", "done by B", 200, outcome("B"))

    a = JobRunner(store_a, stalling_handler, instance_timeout=2, exclusive=False)
    b = JobRunner(store_b, handler_b, instance_timeout=2, exclusive=False, resumable=lambda job: True)
    a.register()
    b.register()
    runner_a = threading.Thread(target=a.run_pending, kwargs={"limit": 1})
    runner_a.start()
    try:
        assert stalled.wait(30)
        with store_b.transaction() as session:  # A has missed its heartbeats for longer than instance_timeout
            session.execute(update(Instance).where(Instance.id == a.instance_id)
                            .values(heartbeat_at=utcnow() - timedelta(seconds=60)))
        assert b.fail_interrupted() == []  # resumable: queued again rather than failed
        assert b.run_pending() == 1
    finally:
        wake.set()
        runner_a.join(30)
    with store_b.read() as session:
        job = session.get(Job, job_uuid)
        state, message, claimed_by = job.state, job.status_message, job.claimed_by
        machine_state = session.get(Resource, machine).state
    store_a.dispose()
    store_b.dispose()
    assert recorded.get("b") is not False and (state, message, claimed_by) == ("SUCCESS", "done by B", b.instance_id)
    assert machine_state == "STARTED-BY-B"
    assert recorded.get("a") is False  # A was told its outcome was not recorded

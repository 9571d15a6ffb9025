"""System jobs without nested jobs (a system's components each have their own: handlers.Worker runs them)."""

from __future__ import annotations

from siroccod.jobs import SUCCESS, handles
from siroccod.store import Resource


@handles("System", "create")
def create_system(w, job_uuid):  # a system without components
    w.finish(job_uuid, SUCCESS, "empty system created", 201,
             lambda session, job: setattr(session.get(Resource, job.target_uuid), "state", "READY"))


@handles("System", "delete")
def delete_system(w, job_uuid):
    def done(session, job):
        row = session.get(Resource, job.target_uuid)
        if row is not None:
            session.delete(row)
    w.finish(job_uuid, SUCCESS, "system deleted", 200, done)

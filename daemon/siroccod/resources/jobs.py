"""A client's requests on its Jobs beside reading them: the delete of a finished job (DSP0263 5.17.1.1)."""

from __future__ import annotations

from siroccod import jobs
from siroccod.auth import Principal
from siroccod.resources import reading
from siroccod.resources.context import Context, Outcome


def delete_job(ctx: Context, p: Principal, uuid: str, base: str) -> Outcome:
    """DELETE of one of the caller's jobs: gone at once with the jobs nested in it (jobs.forget), like any
    CMDB-only delete (200, no body). Another tenant's job is not found (404); a QUEUED or RUNNING one, or
    one nested in a running job, is refused (409): jobs here cannot be stopped."""
    with ctx.store.transaction() as session:
        job = reading.find_job(ctx, session, p, uuid)
        jobs.forget(session, job)
    return Outcome(None)

"""Jobs: queued in the CMDB by requests, claimed and run by worker threads (in ``siroccod serve`` or
``siroccod worker``).

* ledger.py -- the one module that writes Job rows: queue, claim, nested jobs, progress, finish, the
  claim fencing, the end of jobs whose process died, a client's delete of a finished job;
* engine.py -- JobRunner: the worker threads and the heartbeat;
* registry.py -- ``@handles(type, op)``: which handler runs a job (the handlers are in handlers/).
"""

from siroccod.jobs.engine import JobRunner
from siroccod.jobs.ledger import (
    ACTIVE,
    FAILED,
    INTERRUPTED,
    MAX_RESUMES,
    QUEUED,
    RESUMED,
    RUNNING,
    SUCCESS,
    JobFailed,
    claim,
    claim_nested,
    delete_refusal,
    fail_interrupted,
    finish,
    forget,
    held,
    is_final,
    note,
    progress,
    queue,
    start_nested,
)
from siroccod.jobs.registry import handles, lookup

__all__ = ["ACTIVE", "FAILED", "INTERRUPTED", "MAX_RESUMES", "QUEUED", "RESUMED", "RUNNING", "SUCCESS", "JobFailed",
           "JobRunner", "claim", "claim_nested", "delete_refusal", "fail_interrupted", "finish", "forget", "handles",
           "held", "is_final", "lookup", "note", "progress", "queue", "start_nested"]

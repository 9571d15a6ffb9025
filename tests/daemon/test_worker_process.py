"""`siroccod worker`: jobs run by their own process, beside a `siroccod serve` that runs none.

A `serve` process with `workers: 0` (the API only) and a `worker` process (jobs and metering, no HTTP)
share one PostgreSQL and one real host (QEMU domains behind the running libvirtd): a machine created
through the API waits QUEUED while no worker runs, then reaches its state through the worker process's
job; its actions and its deletion too. The worker stops cleanly on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from realhost_helpers import DAEMON_DIR, Served, write_config
from sqlalchemy import select


def _start_worker(config, log):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(DAEMON_DIR), os.environ.get("PYTHONPATH", "")]))
    for var in [v for v in env if v.startswith("SIROCCOD_")]:
        env.pop(var)
    return subprocess.Popen([sys.executable, "-m", "siroccod", "-c", str(config), "worker"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


def _wait_for(path, text, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace"):
            return
        assert proc.poll() is None, path.read_text(errors="replace")[-3000:]
        time.sleep(0.1)
    raise AssertionError("no %r in %s:\n%s" % (text, path, path.read_text(errors="replace")[-3000:]))


def test_a_worker_process_runs_the_jobs_of_a_serve_without_workers(tmp_path, pg_database, qemu):
    from siroccod.store import Job, Store
    hosts = [qemu.host_config()]
    api_config = write_config(tmp_path / "api.yml", tmp_path / "data-api", hosts, pg_database, workers=0)
    worker_config = write_config(tmp_path / "worker.yml", tmp_path / "data-worker", hosts, pg_database)
    served = Served(api_config, tmp_path / "api.log", name="siroccod-api")
    worker_log_path = tmp_path / "worker.log"
    worker_log = open(worker_log_path, "a")  # noqa: SIM115 (closed below)
    worker = None
    store = Store(pg_database)
    try:
        api = served.wait_ready().api()
        # no worker yet: the API queues the job, nobody runs it
        machine, job = api.submit_machine("by-worker", "STARTED")
        time.sleep(1.5)
        assert api.get(job).json()["state"] == "QUEUED"
        assert qemu.domains() == {}

        worker = _start_worker(worker_config, worker_log)
        _wait_for(worker_log_path, "running jobs", worker)
        done = api.wait(job)
        assert done["state"] == "SUCCESS", done
        assert api.get(machine).json()["state"] == "STARTED"
        assert [state for _uuid, state in qemu.domains().values()] == [qemu.libvirt.VIR_DOMAIN_RUNNING]
        api.act(machine, "stop", force=True)
        assert api.get(machine).json()["state"] == "STOPPED"
        deleted = api.wait(api.submit_action(machine, "delete"))
        assert deleted["state"] == "SUCCESS", deleted
        assert qemu.domains() == {}

        # every job ran in the worker process, none in the serving one
        with store.read() as session:
            claimers = {row.claimed_by for row in session.scalars(select(Job))}
        assert len(claimers) == 1 and "-%d-" % worker.pid in claimers.pop(), claimers

        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        _wait_for(worker_log_path, "worker stopped", worker)
    finally:
        store.dispose()
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(10)
        worker_log.close()
        served.stop()
    for log in (served.log(), worker_log_path.read_text(errors="replace")):
        assert "Traceback" not in log, log[-3000:]

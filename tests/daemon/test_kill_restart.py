"""kill -9 in the middle of jobs, on real QEMU hosts behind the running libvirtd (whose state
outlives the daemon), SQLite CMDB: after a restart nothing is lost and nothing duplicated, every
machine record maps to exactly one domain, interrupted jobs ended FAILED with a clear message or
were run again (creations), and the CMDB is reconciled with what the host runs."""

from __future__ import annotations

import json
import sqlite3
import time

from realhost_helpers import Served, write_config

INTERRUPTED = "interrupted"
RUN_AGAIN = "run again after an interruption"
LIBVIRT_STATE = {1: "STARTED", 3: "PAUSED", 5: "STOPPED"}  # virDomainState -> CIMI


def _jobs(db):
    """uuid -> (state, op, statusMessage) read straight from the daemon's SQLite file (WAL: safe beside it)."""
    conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=5)
    try:
        return {uuid: (state, json.loads(params or "{}").get("op"), message)
                for uuid, state, params, message in conn.execute(
                    "SELECT uuid, state, params, status_message FROM jobs")}
    finally:
        conn.close()


def _kill_while_running(served, db, ops, submitted, timeout=30):
    """kill -9 as soon as a job of ``ops`` among ``submitted`` runs while another still waits
    (any running job will do if none of ``ops`` is caught); the jobs' states at that moment."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = {uuid: job for uuid, job in _jobs(db).items() if uuid in submitted}
        running = [job for job in jobs.values() if job[0] == "RUNNING"]
        waiting = [job for job in jobs.values() if job[0] == "QUEUED"]
        if waiting and any(job[1] in ops for job in running) or running and time.monotonic() > deadline:
            served.kill9()
            return _jobs(db)
        assert waiting or running, "every job ended before the kill: %s" % jobs
        time.sleep(0.005)


def _settled(api, jobs, timeout=60):
    return {href.rsplit("/", 1)[1]: api.wait(api.rebase(href), timeout) for href in jobs}


def _check_after_restart(api, host, at_kill, done):
    """What a restart must guarantee, whichever jobs the kill caught."""
    for uuid, job in done.items():
        state_at_kill = at_kill[uuid][0]
        if state_at_kill in ("SUCCESS", "QUEUED"):  # finished before, or resumed after the restart
            assert job["state"] == "SUCCESS", (state_at_kill, job)
        elif job["state"] == "FAILED":  # caught running: says so
            assert INTERRUPTED in job["statusMessage"], job
        else:
            assert job["state"] == "SUCCESS" and at_kill[uuid][1] == "create", job
            assert RUN_AGAIN in job["statusMessage"], job
    machines = api.items("machines")
    names = [m["name"] for m in machines]
    assert len(names) == len(set(names)), "a machine was duplicated: %s" % sorted(names)
    domains = host.domains()
    kinds = {}
    for m in machines:
        props = m.get("properties") or {}
        kinds.setdefault("gone" if "sirocco.gone" in props else "adopted" if "sirocco.adopted" in props
                         else "ours", []).append(m)
    ours = {host.prefix + m["id"].rsplit("/", 1)[1]: m for m in kinds.get("ours", [])}
    # every record maps to exactly one domain (but those marked gone: none), every domain to one
    # record, in the same state; no record is left in a transition
    assert sorted(domains) == sorted(list(ours) + [m["name"] for m in kinds.get("adopted", [])])
    assert all(m["state"] == "FAILED" and host.prefix + m["id"].rsplit("/", 1)[1] not in domains
               for m in kinds.get("gone", []))
    for name, machine in ours.items():
        assert machine["state"] == LIBVIRT_STATE.get(domains[name][1]), (machine, domains[name])
    return {m["name"]: m for m in machines}


def test_kill_9_in_the_middle_of_jobs_then_restart(tmp_path, qemu):
    data = tmp_path / "data"
    config = write_config(tmp_path / "siroccod.yml", data, [qemu.host_config()])
    db = data / "cmdb.sqlite"
    served = Served(config, tmp_path / "siroccod.log").wait_ready()
    try:
        api = served.api()
        base = {i: api.create_machine("base%d" % i, "STOPPED") for i in range(4)}

        # round 1: a burst of creations (and starts), killed while a creation runs
        jobs = [api.submit_machine("new%d" % i, "STARTED")[1] for i in range(4)]
        jobs += [api.submit_action(base[i]["id"], "start") for i in (0, 1)]
        submitted = {href.rsplit("/", 1)[1] for href in jobs}
        at_kill = _kill_while_running(served, db, ("create",), submitted)
        # behind the dead daemon's back: a domain made by hand, one of its machines removed
        handmade = host_name = qemu.outside + "1"
        qemu.define(host_name, start=True)
        qemu.remove(qemu.prefix + base[3]["id"].rsplit("/", 1)[1])

        served = Served(config, tmp_path / "siroccod.log").wait_ready()
        api = served.api()
        done = _settled(api, jobs)
        by_name = _check_after_restart(api, qemu, at_kill, done)
        assert sorted(n for n in by_name if n.startswith("new")) == ["new0", "new1", "new2", "new3"]
        assert by_name[handmade]["state"] == "STARTED"  # adopted by the start-up reconcile
        assert by_name[handmade]["properties"]["sirocco.adopted"]
        gone = by_name["base3"]
        assert gone["state"] == "FAILED" and "sirocco.gone" in gone["properties"]
        assert [op["rel"].rsplit("/", 1)[-1] for op in gone["operations"]] == ["delete"]

        # round 2: stops, starts and deletions, killed while one of them runs
        machines = {n: m["id"] for n, m in by_name.items()}
        jobs = [api.submit_action(machines["new%d" % i], "stop", force=True) for i in range(4)
                if by_name["new%d" % i]["state"] == "STARTED"]
        jobs += [api.submit_action(machines["base2"], "start"), api.submit_action(machines["base3"], "delete")]
        jobs += [api.submit_action(machines[n], "stop", force=True) for n in ("base0", "base1")
                 if by_name[n]["state"] == "STARTED"]
        submitted = {href.rsplit("/", 1)[1] for href in jobs}
        at_kill = _kill_while_running(served, db, ("stop", "start", "delete"), submitted)

        served = Served(config, tmp_path / "siroccod.log").wait_ready()
        api = served.api()
        done = _settled(api, jobs)
        by_name = _check_after_restart(api, qemu, at_kill, done)
        assert "base3" not in by_name  # a gone machine's delete only forgets it

        # reconcile while running: outside changes show up on POST /admin/reconcile
        qemu.define(qemu.outside + "2")
        victim = by_name["new0"]
        qemu.remove(qemu.prefix + victim["id"].rsplit("/", 1)[1])
        report = api.post("/admin/reconcile").json()
        assert report["adopted"] == 1 and report["gone"] == 1, report
        by_name = {m["name"]: m for m in api.items("machines")}
        assert by_name[qemu.outside + "2"]["state"] == "STOPPED"
        assert by_name["new0"]["state"] == "FAILED" and "sirocco.gone" in by_name["new0"]["properties"]
        assert api.post("/admin/reconcile").json() == {"updated": 0, "gone": 0, "adopted": 0, "failed": 0}
    finally:
        served.stop()
    log = (tmp_path / "siroccod.log").read_text()
    assert "Traceback" not in log, log[-3000:]

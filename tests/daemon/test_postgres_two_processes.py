"""Scale beyond one process: siroccod on a real PostgreSQL (tests/standins/postgres).

* Job claiming with row locks: two job runners with their own engines (their own PostgreSQL
  sessions, as two processes have) race for the same queue; every job runs exactly once, and the
  jobs of one resource one at a time, in order.
* Two `siroccod serve` processes sharing one database and one real host (QEMU domains behind the
  running libvirtd, whose state both see) serve the same users consistently, and every job
  submitted through either runs exactly once, on whichever process claimed it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from daemon_helpers import ADMIN_PASSWORD, TENANTS, Api, action, make_app
from realhost_helpers import Served, write_config
from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri


def test_claiming_with_row_locks_runs_every_job_once(pg_database):
    from siroccod.jobs import JobRunner
    from siroccod.store import Job, Store, new_uuid, utcnow

    store_a, store_b = Store(pg_database), Store(pg_database)
    targets = [new_uuid() for _i in range(20)]
    with store_a.transaction() as session:  # 200 jobs: 20 resources x 10 jobs each, queued in order
        for i in range(10):
            for target in targets:
                now = utcnow()
                session.add(Job(uuid=new_uuid(), action=action_uri("start"), target_uuid=target, target_type="Thing",
                                params={"op": "start", "seq": i}, created=now, updated=now, status_changed=now))
    runs, running, order, errors = Counter(), set(), {}, []
    lock = threading.Lock()

    def handler_for(store, name):
        def handler(job_uuid):
            with store.read() as session:
                job = session.get(Job, job_uuid)
                target, seq = job.target_uuid, job.params["seq"]
            with lock:
                runs[(job_uuid, name)] += 1
                if target in running:
                    errors.append("two jobs of %s at once" % target)
                running.add(target)
                order.setdefault(target, []).append(seq)
            time.sleep(0.002)
            with lock:
                running.discard(target)
            with store.transaction() as session:
                row = session.get(Job, job_uuid)
                row.state, row.progress = "SUCCESS", 100
        return handler

    runners = [JobRunner(store, handler_for(store, name), workers=4, poll_interval=0.01, exclusive=False)
               for store, name in ((store_a, "a"), (store_b, "b"))]
    try:
        for runner in runners:
            runner.register()
            runner.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with store_a.read() as session:
                if not session.scalars(select(Job.uuid).where(Job.state != "SUCCESS")).first():
                    break
            time.sleep(0.05)
    finally:
        for runner in runners:
            runner.stop()
    with store_a.read() as session:
        jobs = session.scalars(select(Job)).all()
    store_a.dispose()
    store_b.dispose()
    assert errors == []
    assert {job.state for job in jobs} == {"SUCCESS"}
    per_job = Counter(job_uuid for job_uuid, _name in runs.elements())
    assert len(per_job) == 200 and set(per_job.values()) == {1}, "some job ran twice or never"
    by_runner = Counter(name for _uuid, name in runs.elements())
    assert by_runner["a"] > 0 and by_runner["b"] > 0, by_runner
    assert {job.claimed_by for job in jobs} == {r.instance_id for r in runners}
    assert all(seqs == list(range(10)) for seqs in order.values()), "jobs of one resource ran out of order"


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_the_same_action_at_once_is_accepted_once(database, tmp_path, request):
    """Two threads (request threads of one process) send one action to one machine at the same
    instant: one is accepted, the other refused, on either database (a row lock on PostgreSQL, the
    write lock on SQLite): never two jobs for one transition."""
    url = request.getfixturevalue("pg_database") if database == "postgresql" else None
    app = make_app(tmp_path, **({"database": url} if url else {}))
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        machine = admin.create_machine("racer", "STOPPED")
        for verb in ("start", "pause", "start", "suspend", "start", "delete"):
            href = admin.ops(admin.get(machine["id"]).json)[verb]
            barrier = threading.Barrier(2)

            def send(_i, href=href, verb=verb, barrier=barrier):
                client = Api(app.test_client(), "admin", ADMIN_PASSWORD)
                barrier.wait()
                return client.delete(href) if verb == "delete" else client.post(href, action(verb))

            with ThreadPoolExecutor(2) as pool:
                replies = list(pool.map(send, range(2)))
            assert sorted(r.status_code for r in replies) in ([202, 409], [202, 404] if verb == "delete" else []), (
                verb, [r.json for r in replies])
            accepted = next(r for r in replies if r.status_code == 202)
            assert admin.wait(accepted.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    finally:
        app.extensions["siroccod"].close()


# seconds without a heartbeat after which a process counts as dead (beats every quarter of it)
INSTANCE_TIMEOUT = 4


def test_two_processes_share_one_postgresql(tmp_path, pg_database, qemu):
    hosts = [qemu.host_config()]
    served = []
    try:
        for name in ("a", "b"):  # started together: their start-ups take turns (advisory lock)
            config = write_config(tmp_path / ("%s.yml" % name), tmp_path / ("data-" + name), hosts, pg_database,
                                  instance_timeout=INSTANCE_TIMEOUT)
            served.append(Served(config, tmp_path / ("%s.log" % name), name="siroccod-" + name))
        a, b = (s.wait_ready() for s in served)
        _check_consistency(a, b, qemu)
        _check_jobs_run_once(a, b, qemu, pg_database)
        _check_takeover(a, b, qemu, pg_database)
    finally:
        for proc in served:
            proc.stop()
    for proc in served:  # nothing went wrong on the way, in either process
        assert "Traceback" not in proc.log(), proc.log()[-3000:]


def _check_consistency(a, b, host):
    admin_a, admin_b = a.api(), b.api()
    for admin, name in ((admin_a, "alice"), (admin_b, "bob")):
        r = admin.post("/admin/users", {"name": name, "tenant": TENANTS[name], "password": name + "-pw-123"})
        assert r.status_code == 201, r.text
    alice_a = a.api(("alice", "alice-pw-123"))
    alice_b = b.api(("alice", "alice-pw-123"))
    bob_b = b.api(("bob", "bob-pw-123"))
    assert {u["name"] for u in admin_b.get("/admin/users").json()["users"]} >= {"admin", "alice", "bob"}
    # the same stock records, not one set per process
    assert sorted(c["id"] for c in alice_a.items("machineConfigs")) == sorted(
        alice_a.rebase(c["id"]) for c in alice_b.items("machineConfigs"))

    doc_a = alice_a.create_machine("shared", "STOPPED")
    href_b = alice_b.rebase(doc_a["id"])
    doc_b = alice_b.get(href_b).json()
    for key in ("name", "state", "cpu", "memory", "created", "updated"):
        assert doc_b[key] == doc_a[key], key
    assert bob_b.get(href_b).status_code == 404  # another tenant, whichever process answers
    started = alice_b.act(href_b, "start")  # an action sent to B on a machine made through A
    assert started["state"] == "STARTED"
    assert alice_a.get(doc_a["id"]).json()["state"] == "STARTED"
    assert list(host.domains().values())[0][1] == host.libvirt.VIR_DOMAIN_RUNNING
    alice_a.act(doc_a["id"], "stop", force=True)
    assert alice_b.get(href_b).json()["state"] == "STOPPED"
    # the same action sent to both at the same instant: one accepted, the other refused (row locks)
    for verb in ("start", "stop", "start", "stop", "delete"):
        if verb == "stop":  # may be re-issued while STOPPING: one at a time
            alice_b.act(href_b, "stop", force=True)
        else:
            _both_at_once(alice_a, alice_b, doc_a["id"], verb)
    assert alice_b.get(href_b).status_code == 404
    assert host.domains() == {}


def _both_at_once(api_a, api_b, machine, verb):
    ops = {op["rel"].rsplit("/", 1)[-1]: op["href"] for op in api_a.get(machine).json()["operations"]}
    barrier = threading.Barrier(2)

    def send(api):
        href = api.rebase(ops[verb])
        barrier.wait()
        if verb == "delete":
            return api.delete(href)
        return api.post(href, action(verb, **({"force": True} if verb == "stop" else {})))

    with ThreadPoolExecutor(2) as pool:
        replies = list(pool.map(send, (api_a, api_b)))
    # (a delete may even be over, the machine forgotten, before the other reply: 404)
    assert sorted(r.status_code for r in replies) in ([202, 409], [202, 404] if verb == "delete" else []), (
        verb, [(r.status_code, r.text[:300]) for r in replies])
    accepted = next(r for r in replies if r.status_code == 202)
    assert api_a.wait(api_a.rebase(accepted.headers["CIMI-Job-URI"]))["state"] == "SUCCESS"


def _check_jobs_run_once(a, b, host, database):
    """Machines created, stopped and deleted through both processes at once, each step's job sent to
    the other process than the previous one."""
    apis = (a.api(("alice", "alice-pw-123")), b.api(("alice", "alice-pw-123")))
    count = 8

    def lifecycle(i):
        first, other = apis[i % 2], apis[1 - i % 2]
        machine, job = first.submit_machine("m%02d" % i, "STARTED")
        jobs = [first.wait(job)]
        if jobs[0]["state"] == "SUCCESS":
            jobs.append(other.wait(other.submit_action(other.rebase(machine), "stop", force=True)))
        return machine, jobs

    with ThreadPoolExecutor(count) as pool:
        results = list(pool.map(lifecycle, range(count)))
    jobs = [job for _machine, done in results for job in done]
    assert [job["state"] for job in jobs] == ["SUCCESS"] * (2 * count), jobs
    # host side: exactly one domain per machine, each the one its record names, all stopped
    machines = apis[0].items("machines")
    assert len(machines) == count
    domains = host.domains()
    assert sorted(domains) == sorted(host.prefix + m["id"].rsplit("/", 1)[1] for m in machines)
    assert {state for _uuid, state in domains.values()} == {host.libvirt.VIR_DOMAIN_SHUTOFF}
    assert {m["state"] for m in machines} == {"STOPPED"}

    def delete(i):
        api = apis[i % 2]
        return api.wait(api.submit_action(api.rebase(machines[i]["id"]), "delete"))

    with ThreadPoolExecutor(count) as pool:
        deleted = list(pool.map(delete, range(count)))
    assert {job["state"] for job in deleted} == {"SUCCESS"}, deleted
    assert apis[1].items("machines") == [] and host.domains() == {}

    # every job once, claimed by one of the two processes; both took some
    from siroccod.store import Job, Store
    store = Store(database)
    try:
        with store.read() as session:
            rows = session.scalars(select(Job)).all()
    finally:
        store.dispose()
    assert len(rows) == 3 + 5 + 3 * count  # "shared": create, start, stop, 5 more; then these
    assert {row.state for row in rows} == {"SUCCESS"}
    claimers = Counter(int(row.claimed_by.rsplit("-", 2)[1]) for row in rows)
    assert set(claimers) == {a.pid, b.pid}, claimers


def _check_takeover(a, b, host, database):
    """kill -9 one process in the middle of creations sent to it: the other runs the queued ones, and
    the interrupted one again once the dead process's heartbeat is older than instance_timeout."""
    from siroccod.store import Job, Store
    alice_a, alice_b = a.api(("alice", "alice-pw-123")), b.api(("alice", "alice-pw-123"))
    store = Store(database)
    try:
        names = ["t%d" % i for i in range(5)]
        submitted = [alice_a.submit_machine(name, "STARTED")[1] for name in names]
        uuids = {href.rsplit("/", 1)[1] for href in submitted}
        deadline = time.monotonic() + 20
        while True:  # kill A while both its workers run one (one waits for the host): B claims some too
            with store.read() as session:
                running = session.scalars(select(Job.uuid).where(
                    Job.uuid.in_(uuids), Job.state == "RUNNING", Job.progress < 70,
                    Job.claimed_by.like("%%-%d-%%" % a.pid))).all()
            if len(running) >= 2 or running and time.monotonic() > deadline:
                break
            assert time.monotonic() < deadline + 10, "process A never ran the jobs sent to it"
            time.sleep(0.005)
        a.kill9()
        done = {href.rsplit("/", 1)[1]: alice_b.wait(alice_b.rebase(href), timeout=60) for href in submitted}
        assert [job["state"] for job in done.values()] == ["SUCCESS"] * len(names), done
        with store.read() as session:
            claimers = {row.uuid: row.claimed_by for row in session.scalars(select(Job).where(Job.uuid.in_(uuids)))}
        again = [uuid for uuid, job in done.items() if "run again after an interruption" in job["statusMessage"]]
        assert again and set(again) <= set(running), (again, running)
        assert all("-%d-" % b.pid in claimers[uuid] for uuid in again)  # B took over what A was running
    finally:
        store.dispose()
    machines = alice_b.items("machines")
    assert sorted(m["name"] for m in machines) == names
    domains = host.domains()
    assert sorted(domains) == sorted(host.prefix + m["id"].rsplit("/", 1)[1] for m in machines)
    assert {m["state"] for m in machines} == {"STARTED"}
    assert {state for _uuid, state in domains.values()} == {host.libvirt.VIR_DOMAIN_RUNNING}

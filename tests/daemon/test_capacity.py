"""Host capacity is a claim that cannot be double-spent.

* Many creations at once, from threads of one process (SQLite) and from two `siroccod serve` processes
  sharing one PostgreSQL: exactly as many machines are accepted as fit, and no host's claimed use (the
  CMDB's) nor its real use (what the hypervisor holds) ever exceeds its capacity.
* A machine whose creation FAILED claims nothing.
* A machine being moved claims room on the host it goes to: a creation cannot take that room meanwhile.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from daemon_helpers import ADMIN_PASSWORD, CIMI, Api, make_app
from realhost_helpers import Served, write_config
from sqlalchemy import select

GiB = 1024 * 1024  # KiB


def _create_body(api, name, config):
    return {"resourceURI": CIMI + "MachineCreate", "name": name,
            "machineTemplate": {"machineConfig": {"href": api.config_href(config)}, "initialState": "STOPPED"}}


def _claimed(store):
    """{host name: (cpu, memory KiB, capacity cpu, capacity memory KiB)} as the CMDB records it now."""
    from siroccod.store import Host, Resource
    with store.read() as session:
        out = {h.name: [0, 0, h.cpu, h.memory_kib] for h in session.scalars(select(Host))}
        names = {h.id: h.name for h in session.scalars(select(Host))}
        for row in session.scalars(select(Resource).where(Resource.type == "Machine", Resource.host_id.is_not(None))):
            if row.state != "FAILED":
                out[names[row.host_id]][0] += int(row.doc["cpu"])
                out[names[row.host_id]][1] += int(row.doc["memory"])
    return {name: tuple(v) for name, v in out.items()}


def _assert_within(claimed):
    for host, (cpu, memory, cap_cpu, cap_memory) in claimed.items():
        assert cpu <= cap_cpu and memory <= cap_memory, "host %s over-committed: %s" % (host, claimed)


@pytest.fixture
def daemon_app(tmp_path):
    app = make_app(tmp_path / "data", workers=2)
    yield app
    app.extensions["siroccod"].close()


@pytest.mark.parametrize("config, clients, creates", [("xlarge", 24, 24), ("tiny", 10, 50)])
def test_simultaneous_creations_never_over_commit(daemon_app, config, clients, creates):
    """Embedded default: sim1 8 cpu, sim2 16, sim3 4 (28 in all). 24 xlarge (8 cpu) at once: 3 fit;
    50 tiny (1 cpu) from 10 threads: 28 fit."""
    daemon = daemon_app.extensions["siroccod"]
    admin = Api(daemon_app.test_client(), "admin", ADMIN_PASSWORD)
    assert admin.post("/admin/users", {"name": "packer", "tenant": "packers", "password": "packer-pw-1"}
                      ).status_code == 201
    local = threading.local()
    start = threading.Barrier(clients)
    seen = []

    def create(i):
        if not hasattr(local, "api"):
            local.api = Api(daemon_app.test_client(), "packer", "packer-pw-1")
            local.body = _create_body(local.api, "x", config)
            start.wait(30)
        reply = local.api.post("/cimi/machines", dict(local.body, name="%s-%d" % (config, i)))
        seen.append(_claimed(daemon.store))
        return reply.status_code, reply.headers.get("CIMI-Job-URI")

    with ThreadPoolExecutor(clients) as pool:
        replies = list(pool.map(create, range(creates)))
    statuses = Counter(status for status, _job in replies)
    capacity = {"xlarge": 3, "tiny": 28}[config]
    assert statuses == Counter({202: capacity, 409: creates - capacity}), statuses
    for claimed in seen:  # after every reply, at every moment observed
        _assert_within(claimed)
    packer = Api(daemon_app.test_client(), "packer", "packer-pw-1")
    for _status, job in replies:
        if job:
            assert packer.wait(job, timeout=60)["state"] == "SUCCESS"
    _assert_within(_claimed(daemon.store))
    # what the hypervisors hold: the domains made, host by host, within each host's cpu
    claimed = _claimed(daemon.store)
    made = 0
    for handle in daemon.pool.handles.values():
        machines = handle.all_machines()
        made += len(machines)
        assert sum(int(m.cpu) for m in machines) <= claimed[handle.name][2], (handle.name, machines)
    assert made == capacity


def test_a_failed_machine_claims_nothing(daemon_app):
    """sim3 (4 cpu) filled by one machine whose domain then vanishes from the host (removed behind the
    daemon's back, as virsh would): reconciled, it is FAILED and its room is free for the next one."""
    daemon = daemon_app.extensions["siroccod"]
    admin = Api(daemon_app.test_client(), "admin", ADMIN_PASSWORD)
    admin.post("/admin/users", {"name": "failer", "tenant": "failers", "password": "failer-pw-1"})
    api = Api(daemon_app.test_client(), "failer", "failer-pw-1")
    first = api.create_machine("first", config="large", properties={"sirocco.host": "sim3"})
    reply = api.post("/cimi/machines", dict(_create_body(api, "refused", "large"),
                                            properties={"sirocco.host": "sim3"}))
    assert reply.status_code == 409, reply.json  # sim3 is full
    sim3 = daemon.pool.by_name("sim3")
    (native,) = [m.id for m in sim3.all_machines()]
    sim3.delete_machine(native)
    daemon.recovery.reconcile()
    assert api.get(first["id"]).json["state"] == "FAILED"
    assert _claimed(daemon.store)["sim3"][0] == 0
    again = api.create_machine("after", config="large", properties={"sirocco.host": "sim3"})
    assert again["state"] == "STOPPED"


def test_two_processes_on_postgresql_never_over_commit(tmp_path, pg_database, qemu):
    """One real libvirt host declared with 8 cpu, two daemons on one PostgreSQL: 24 one-cpu machines asked
    at once through both: 8 accepted, 8 domains defined."""
    from siroccod.store import Store

    host = dict(qemu.host_config(), cpu=8, memory_mib=4096)
    served = []
    try:
        for name in ("a", "b"):
            config = write_config(tmp_path / ("%s.yml" % name), tmp_path / ("data-" + name), [host], pg_database)
            served.append(Served(config, tmp_path / ("%s.log" % name), name="siroccod-" + name))
        a, b = (s.wait_ready() for s in served)
        assert a.api().post("/admin/users", {"name": "packer", "tenant": "packers", "password": "packer-pw-1"}
                            ).status_code == 201
        apis = [s.api(("packer", "packer-pw-1")) for s in (a, b)]
        tiny = next(c["id"] for c in apis[0].items("machineConfigs") if c["name"] == "tiny")
        start = threading.Barrier(24)

        def create(i):
            api = apis[i % 2].on(served[i % 2].base)
            body = {"resourceURI": CIMI + "MachineCreate", "name": "%s%d" % (qemu.prefix, i),
                    "machineTemplate": {"machineConfig": {"href": apis[i % 2].rebase(tiny)},
                                        "initialState": "STOPPED"}}
            start.wait(30)
            reply = api.post("/cimi/machines", body)
            return reply.status_code, reply.headers.get("CIMI-Job-URI"), i % 2

        with ThreadPoolExecutor(24) as pool:
            replies = list(pool.map(create, range(24)))
        assert Counter(status for status, _job, _p in replies) == Counter({202: 8, 409: 16}), replies
        for status, job, process in replies:
            if status == 202:
                assert apis[process].wait(job, timeout=120)["state"] == "SUCCESS"
        store = Store(pg_database)
        try:
            _assert_within(_claimed(store))
        finally:
            store.dispose()
        assert len(qemu.domains()) == 8
    finally:
        for proc in served:
            proc.stop()
    for proc in served:
        assert "Traceback" not in proc.log(), proc.log()[-3000:]


def test_a_machine_being_moved_claims_room_on_its_target(daemon_app):
    """While a move to sim3 is under way (what consolidation records when it starts one), sim3's room for
    that machine is taken: a creation that would need it is refused, and accepted once the move is over."""
    from siroccod.store import Resource

    daemon = daemon_app.extensions["siroccod"]
    admin = Api(daemon_app.test_client(), "admin", ADMIN_PASSWORD)
    admin.post("/admin/users", {"name": "mover", "tenant": "movers", "password": "mover-pw-1"})
    api = Api(daemon_app.test_client(), "mover", "mover-pw-1")
    moving = api.create_machine("moving", config="medium", properties={"sirocco.host": "sim1"})  # 2 cpu
    sim3 = daemon.pool.by_name("sim3")
    uuid = moving["id"].rsplit("/", 1)[1]
    with daemon.store.transaction() as session:
        row = session.get(Resource, uuid)
        row.private = dict(row.private, moving={"to": sim3.id, "job": "a-move"})
    assert _claimed(daemon.store)["sim3"][0] == 0  # the CMDB still records it on sim1 ...
    large = dict(_create_body(api, "large", "large"), properties={"sirocco.host": "sim3"})  # 4 cpu
    reply = api.post("/cimi/machines", large)
    assert reply.status_code == 409, reply.json  # ... but sim3 has only 2 of its 4 cpu left
    with daemon.store.transaction() as session:
        row = session.get(Resource, uuid)
        row.private = {k: v for k, v in row.private.items() if k != "moving"}
    reply = api.post("/cimi/machines", large)
    assert reply.status_code == 202, reply.json
    assert api.wait(reply.headers["CIMI-Job-URI"])["state"] == "SUCCESS"

"""siroccod parts without hosts: configuration, hrefs, placement functions, job claiming."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "daemon"))

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput  # noqa: E402
from siroccod import hrefs, placing  # noqa: E402
from siroccod.config import DEFAULT_HOSTS, load_config  # noqa: E402
from siroccod.jobs import JobRunner  # noqa: E402
from siroccod.store import Job, Store, utcnow  # noqa: E402

# -- configuration --------------------------------------------------------------------------


def test_embedded_default(tmp_path):
    config = load_config(env={"SIROCCOD_DATA": str(tmp_path)})
    assert config.data_dir == tmp_path
    assert config.database == "sqlite:///%s" % (tmp_path / "cmdb.sqlite")
    assert [h.name for h in config.hosts] == [h["name"] for h in DEFAULT_HOSTS]
    assert all(h.simulated for h in config.hosts)
    assert len({(h.simulated["cpu"], h.power_idle, h.power_max) for h in config.hosts}) == 3
    assert (config.listen_host, config.listen_port, config.tls) == ("127.0.0.1", 8080, False)


def test_yaml_file_and_environment_overrides(tmp_path):
    path = tmp_path / "siroccod.yml"
    path.write_text("listen: 0.0.0.0:9000\nworkers: 3\nplacement: least-power\nhosts:\n"
                    "  - {name: kvm1, uri: 'qemu:///system', power_idle: 70, power_max: 250}\n"
                    "  - {name: sim, simulated: {cpu: 2, memory_mib: 1024}}\n")
    env = {"SIROCCOD_DATA": str(tmp_path / "d"), "SIROCCOD_LISTEN": "127.0.0.1:9100",
           "SIROCCOD_DATABASE_URL": "postgresql+psycopg://u@db/sirocco", "SIROCCOD_TLS_CERT": "/c.pem",
           "SIROCCOD_TLS_KEY": "/k.pem", "SIROCCOD_MAX_BODY": "4096"}
    config = load_config(path, env=env)
    assert config.listen == "127.0.0.1:9100" and config.workers == 3 and config.placement == "least-power"
    assert config.database.startswith("postgresql") and config.tls and config.max_body == 4096
    kvm, sim = config.hosts
    assert (kvm.uri, kvm.power_max, kvm.simulated) == ("qemu:///system", 250.0, None)
    assert sim.simulated == {"cpu": 2, "memory_mib": 1024, "mhz": 2400}


@pytest.mark.parametrize("text, word", [
    ("hosts: [{name: a}]", "uri"), ("hosts: [{name: 'a b', uri: x}]", "name"),
    ("hosts: [{name: a, uri: x}, {name: a, uri: y}]", "twice"), ("hosts: [{name: a, uri: x, colour: red}]", "colour"),
    ("listen: nowhere", "listen"), ("workers: many", "workers"), ("bogus: 1", "bogus"), ("- a list", "mapping"),
    ("tls: {cert: /c.pem}", "tls"), ("placement: random", "placement"), ("hosts: [{name: a, uri: x, power_max: hot}]",
                                                                         "power_max"), ("{{{", "YAML"),
])
def test_bad_configuration_is_named(tmp_path, text, word):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=word):
        load_config(path, env={})


# -- hrefs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("href, rel", [
    ("http://h:1/cimi/machines/abc-1", "machines/abc-1"), ("/cimi/machines/abc", "machines/abc"),
    ("machines/abc", "machines/abc"), ("https://x/cimi/machines/a/volumes/b", "machines/a/volumes/b"),
    ("http://h/other/machines/a", None), ("/etc/passwd", None), ("machines", None), ("", None), (None, None),
    ("http://h/cimi/machines/../x", None), ("x" * 3000, None), (7, None),
])
def test_relative(href, rel):
    assert hrefs.relative(href) == rel


def test_absolute_and_stored_round_trip():
    doc = {"a": {"href": "machines/1"}, "b": [{"href": "volumes/2"}, 3], "c": {"href": "http://else/x"}}
    out = hrefs.absolute(doc, "http://h/cimi/")
    assert out == {"a": {"href": "http://h/cimi/machines/1"}, "b": [{"href": "http://h/cimi/volumes/2"}, 3],
                   "c": {"href": "http://else/x"}}
    assert hrefs.stored(out) == doc


# -- placement ------------------------------------------------------------------------------------


def hosts():
    return [placing.HostLoad(1, "big", cpu=16, memory_kib=32 << 20, used_cpu=15, machines=3, power_idle=100,
                             power_max=300),
            placing.HostLoad(2, "small", cpu=4, memory_kib=8 << 20, power_idle=30, power_max=90),
            placing.HostLoad(3, "busy", cpu=8, memory_kib=16 << 20, used_cpu=2, machines=1, power_idle=60,
                             power_max=180)]


def test_first_fit_least_power_and_pins():
    request = placing.PlacementRequest(cpu=2, memory_kib=1 << 20)
    assert placing.first_fit(request, hosts()).name == "small"  # big has 1 cpu left
    assert placing.least_power(request, hosts()).name == "busy"  # already on: 30 W, not 30 + 30 W
    pinned = placing.PlacementRequest(cpu=1, memory_kib=1 << 20, host="big")
    assert placing.first_fit(pinned, hosts()).name == "big"
    assert placing.first_fit(placing.PlacementRequest(cpu=2, memory_kib=1, host="big"), hosts()) is None
    allowed = placing.PlacementRequest(cpu=1, memory_kib=1, hosts_allowed=("busy",))
    assert placing.least_power(allowed, hosts()).name == "busy"
    assert placing.first_fit(placing.PlacementRequest(cpu=64, memory_kib=1), hosts()) is None


def test_optimizer_places_where_the_pool_draws_least():
    pytest.importorskip("pulp")
    request = placing.PlacementRequest(cpu=2, memory_kib=1 << 20)
    assert placing.optimizer(request, hosts(), time_limit=2.0).name == "busy"
    assert placing.optimizer(placing.PlacementRequest(cpu=64, memory_kib=1), hosts()) is None


# -- job claiming -----------------------------------------------------------------------------------


def queue(store, n, target=None):
    with store.transaction() as session:
        for i in range(n):
            now = utcnow()
            session.add(Job(action="a", params={"i": i}, target_uuid=target, target_type="Machine", created=now,
                            updated=now, status_changed=now))


def test_every_job_runs_exactly_once_across_runners(tmp_path):
    store = Store("sqlite:///%s" % (tmp_path / "jobs.sqlite"))
    queue(store, 40)
    ran, lock = [], threading.Lock()

    def handler(job_uuid):
        with lock:
            ran.append(job_uuid)
        with store.transaction() as session:
            session.get(Job, job_uuid).state = "SUCCESS"

    runners = [JobRunner(store, handler) for _i in range(4)]  # as if four processes shared the CMDB
    threads = [threading.Thread(target=r.run_pending) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(ran) == 40 and len(set(ran)) == 40
    store.dispose()


def test_jobs_of_one_target_run_in_order_one_at_a_time(tmp_path):
    store = Store("sqlite:///%s" % (tmp_path / "jobs.sqlite"))
    queue(store, 3, target="m-1")
    runner = JobRunner(store, lambda uuid: None)
    first = runner.claim()
    assert first is not None
    assert runner.claim() is None  # the next job of m-1 waits for the first to end
    with store.transaction() as session:
        session.get(Job, first).state = "SUCCESS"
    second = runner.claim()
    with store.read() as session:
        assert session.get(Job, second).params["i"] == 1
    store.dispose()


def test_running_jobs_of_dead_processes_end_failed(tmp_path):
    store = Store("sqlite:///%s" % (tmp_path / "jobs.sqlite"))
    queue(store, 2)
    dead = JobRunner(store, lambda uuid: None)
    dead.register()
    claimed = dead.claim()
    alive = JobRunner(store, lambda uuid: None)
    alive.register()
    assert alive.fail_interrupted() == [claimed]
    with store.read() as session:
        job = session.get(Job, claimed)
        assert job.state == "FAILED" and "interrupted" in job.status_message
    # on a shared database (not exclusive) a live process's jobs are left alone
    other = JobRunner(store, lambda uuid: None, exclusive=False)
    running = alive.claim()
    assert other.fail_interrupted() == []
    with store.read() as session:
        assert session.get(Job, running).state == "RUNNING"
    store.dispose()

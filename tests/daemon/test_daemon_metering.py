"""Meters are sampled in the background into the CMDB; requests only read (issue 11, item 5).

* A machine's meters carry a first sample from its creation; each sampling round adds one, kept for the
  retention, and a Meter shows the newest samples with their min and max.
* ``$expand=meters`` and a Meter's GET never wait for a host: they are answered while another thread holds
  the host's lock (a long host operation), which they would otherwise queue behind.
* Processes sharing one PostgreSQL sample once between them.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from daemon_helpers import ADMIN_PASSWORD, Api, make_app
from realhost_helpers import fresh_database


def _meter(api, machine, aspect):
    for listed in api.members(api.get(machine["id"]).json, "meters"):
        doc = api.get(listed["id"]).json
        if doc["aspect"].endswith("/" + aspect):
            return dict(doc, samples=api.members(doc, "samples"))  # a Meter's samples: its collection
    raise AssertionError("no %s meter" % aspect)


def test_samples_are_taken_in_the_background_and_kept_for_the_retention(app, alice):
    from siroccod.store import MeterSample, utcnow
    daemon = app.extensions["siroccod"]
    machine = alice.create_machine("metered", "STARTED")
    first = _meter(alice, machine, "cpu")
    assert len(first["samples"]) == 1 and first["units"] == "percent"  # recorded with the machine
    float(first["samples"][0]["value"])
    assert daemon.sampler.sample_once() > 0
    assert daemon.sampler.sample_once() > 0
    meter = _meter(alice, machine, "memory")
    assert len(meter["samples"]) == 3
    stamps = [s["timestamp"] for s in meter["samples"]]
    assert stamps == sorted(stamps)
    values = [float(s["value"]) for s in meter["samples"]]
    assert float(meter["minValue"]) == min(values) and float(meter["maxValue"]) == max(values)
    assert meter["sampleInterval"] == int(daemon.sampler.interval)
    uuid = meter["id"].rsplit("/", 1)[1]
    with daemon.store.transaction() as session:  # a sample older than the retention ...
        session.add(MeterSample(meter_uuid=uuid, taken=utcnow() - timedelta(days=30), value="1"))
    daemon.sampler.sample_once()
    with daemon.store.read() as session:  # ... is gone after the next round
        taken = [s.taken for s in session.query(MeterSample).filter_by(meter_uuid=uuid)]
    assert len(taken) == 4 and min(taken) > utcnow() - timedelta(days=1)


def test_requests_never_wait_for_a_host(app, alice):
    daemon = app.extensions["siroccod"]
    machine = alice.create_machine("busy-host", "STARTED", properties={"sirocco.host": "sim2"})
    host = daemon.pool.by_name("sim2")
    holding, answered, release = threading.Event(), threading.Event(), threading.Event()

    def long_host_operation():
        with host.lock:  # what a job or a sampling round holds while the host works
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=long_host_operation)
    holder.start()
    try:
        assert holding.wait(10)
        listing = alice.get(alice.collection("machines") + "?$expand=meters")
        meter = alice.get(alice.members(machine, "meters")[0]["id"])
        answered.set()
        still_held = not release.is_set() and holder.is_alive()
    finally:
        release.set()
        holder.join(30)
    assert answered.is_set() and still_held  # both answered while the host was busy
    assert listing.status_code == 200
    expanded = next(m for m in listing.json["machines"] if m["id"] == machine["id"])
    # the machine's meters inline ($expand), each with its newest samples' range
    assert expanded["meters"]["meters"] and all(m.get("maxValue") for m in expanded["meters"]["meters"])
    assert meter.status_code == 200 and meter.json["maxValue"]


def test_processes_sharing_postgresql_sample_once(tmp_path):
    from siroccod.metering import Sampler
    from siroccod.store import Store
    with fresh_database() as url:
        app = make_app(tmp_path / "a", database=url)
        daemon = app.extensions["siroccod"]
        other = Sampler(Store(url), daemon.pool, interval=60)  # another process's sampler: its own connections
        try:
            Api(app.test_client(), "admin", ADMIN_PASSWORD).create_machine("pg-metered", "STARTED")
            counts = [daemon.sampler.sample_once(), other.sample_once(), daemon.sampler.sample_once(),
                      other.sample_once()]
            assert counts[0] > 0 and counts[2] == counts[0] and counts[1] == counts[3] == 0, counts
            daemon.sampler.stop()  # its process ends: the other one samples from then on
            assert other.sample_once() == counts[0]
        finally:
            other.stop()
            other.store.dispose()
            daemon.close()

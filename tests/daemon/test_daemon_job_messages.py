"""A job's user reads a clear message, never the host's internals (issue 11, item 12): no host URI, no
path of the daemon's data directory, no raw provider error; the daemon's log keeps those under the job's id.
"""

from __future__ import annotations

import logging


def test_a_host_error_reaches_the_user_as_a_clear_message(app, alice, caplog):
    daemon = app.extensions["siroccod"]
    machine = alice.create_machine("vanishing", "STOPPED", properties={"sirocco.host": "sim1"})
    sim1 = daemon.pool.by_name("sim1")
    native = next(m.id for m in sim1.all_machines() if m.name.endswith(machine["id"].rsplit("/", 1)[1]))
    sim1.delete_machine(native)  # gone behind the daemon's back: the host will say so, in its words
    with caplog.at_level(logging.WARNING, logger="siroccod"):
        r = alice.post(alice.ops(machine)["start"], {"resourceURI": "http://schemas.dmtf.org/cimi/2/Action",
                                                     "action": "http://schemas.dmtf.org/cimi/2/action/start"})
        assert r.status_code == 202, r.json
        job = alice.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "FAILED"
    message = job["statusMessage"]
    job_id = job["id"].rsplit("/", 1)[1]
    assert message.startswith("machine start failed on host sim1: ") and job_id in message, message
    data_dir = str(daemon.config.data_dir)
    for internal in (data_dir, "test://", sim1.uri, "libvirt", "virDomain", native):
        assert internal not in message, (internal, message)
    logged = [rec.getMessage() for rec in caplog.records if job_id in rec.getMessage()]
    assert logged and "sim1" in logged[0]  # the details are in the log, under the job's id

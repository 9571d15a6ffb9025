"""What the chosen host cannot honour is refused before 202, not failed in a job (issue 11, item 9).

The embedded default's simulated hosts (libvirt's test driver) put neither userData nor credentials into
guests and cannot plug volumes into running machines: such requests get a 4xx naming what the host lacks,
and no job, no machine, no change.
"""

from __future__ import annotations

import pytest
from daemon_helpers import CIMI, assert_cimi_error

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHUqsLTMZRA7TWgYv7/3XdjByah9BL/NJmihXK7XDOg alice@example"


def _jobs(api):
    return len(api.items("jobs"))


@pytest.mark.parametrize("extra, attribute", [
    ({"userData": "#cloud-config\n"}, "userData"),
    ({"credential": {"userName": "root", "key": KEY}}, "credential"),
])
@pytest.mark.parametrize("pinned", [None, "sim2"])
def test_guest_inputs_a_host_cannot_take(alice, extra, attribute, pinned):
    body = {"resourceURI": CIMI + "MachineCreate", "name": "with-inputs",
            "machineTemplate": dict({"machineConfig": {"href": alice.config_href("tiny")},
                                     "initialState": "STOPPED"}, **extra)}
    if pinned:
        body["properties"] = {"sirocco.host": pinned}
    machines, jobs = len(alice.items("machines")), _jobs(alice)
    error = assert_cimi_error(alice.post(alice.collection("machines"), body), 400)
    assert error["properties"]["attribute"] == attribute
    assert ("host %s cannot put %s" % (pinned, attribute) if pinned else
            "no host of this daemon can put %s" % attribute) in error["statusMessage"]
    assert (len(alice.items("machines")), _jobs(alice)) == (machines, jobs)


def test_no_volume_into_a_running_machine_of_a_host_without_hot_plug(alice):
    machine = alice.create_machine("running", "STARTED", properties={"sirocco.host": "sim1"})
    r = alice.post(alice.collection("volumes"), {"name": "disk", "properties": {"sirocco.host": "sim1"},
                                                 "volumeTemplate": {"volumeConfig": {"capacity": 1024}}})
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    volume = alice.get(r.headers["Location"]).json
    jobs = _jobs(alice)
    attach = {"resourceURI": CIMI + "MachineVolume", "volume": {"href": volume["id"]}}
    error = assert_cimi_error(alice.post(machine["id"] + "/volumes", attach), 409)
    assert "cannot plug volumes into a running machine" in error["statusMessage"]
    assert _jobs(alice) == jobs and alice.get(volume["id"]).json.get("attachedTo") is None
    stopped = alice.act(machine, "stop", force=True)
    r = alice.post(stopped["id"] + "/volumes", attach)
    assert r.status_code == 202 and alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    started = alice.act(alice.get(stopped["id"]).json, "start")
    r = alice.delete("%s/volumes/%s" % (started["id"], volume["id"].rsplit("/", 1)[1]))
    assert_cimi_error(r, 409)  # nor off it while it runs

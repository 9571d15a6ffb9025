"""CIMI conformance of Jobs (DSP0263 2.0.0 Table 46, 5.17.1.1) and of $select on a Collection (4.1.6.3),
over the embedded default daemon: an add job targets the Collection it was posted to, the new resource among
its affectedResources; an action's job targets its resource; a finished job offers delete and its owner may
delete it (with its nested jobs), a queued or running one is refused; ``$select=count,operations`` on a
Collection keeps only those (and resourceURI), an item attribute subsets each entry."""

from __future__ import annotations

import pytest
from daemon_helpers import ADMIN_PASSWORD, CIMI, PASSWORDS, Api, action, add_users, assert_cimi_error, make_app

from siroccod import jobs
from siroccod.store import Job

ADD, DELETE = "add", "delete"


def hrefs(refs) -> list[str]:
    return [r["href"] for r in refs or []]


def submit(api: Api, url: str, body: dict) -> tuple[dict, dict]:
    """POST ``body``, wait for its job: (the document at the reply's Location now, the finished job)."""
    r = api.post(url, body)
    assert r.status_code == 202, r.json
    job = api.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS", job
    return api.get(r.headers["Location"]).json, job


def machine_create(api: Api, name: str, state: str = "STOPPED", **template) -> dict:
    return {"resourceURI": CIMI + "MachineCreate", "name": name, "machineTemplate": dict(
        {"machineConfig": {"href": api.config_href("tiny")}, "initialState": state}, **template)}


def system_create(api: Api, name: str) -> dict:
    """A SystemCreate of two machines (Table 14 component descriptor): its job has two nested jobs."""
    return {"resourceURI": CIMI + "SystemCreate", "name": name, "systemTemplate": {"componentDescriptors": [
        {"type": CIMI + "Machine", "name": "node", "quantity": 2,
         "machineTemplate": {"machineConfig": {"href": api.config_href("tiny")}}}]}}


def job_row(app, job_href: str) -> Job | None:
    with app.extensions["siroccod"].store.read() as session:
        return session.get(Job, job_href.rsplit("/", 1)[1])


# -- Table 46: targetResource and affectedResources ------------------------------------------------
def test_table46_add_job_of_a_machine_targets_the_collection(alice):
    """Table 46: an add job's targetResource is the Collection posted to; the new Machine is among its
    affectedResources, which always contain the targetResource."""
    machines = alice.collection("machines")
    machine, job = submit(alice, machines, machine_create(alice, "t46-machine"))
    assert job["targetResource"] == {"href": machines}
    affected = hrefs(job["affectedResources"])
    assert affected[0] == machines and machine["id"] in affected
    assert len(affected) == len(set(affected))
    alice.remove(machine)


def test_table46_add_job_of_a_volume_targets_the_collection(alice):
    """Table 46 for a Volume posted to the VolumeCollection."""
    volumes = alice.collection("volumes")
    volume, job = submit(alice, volumes, {"resourceURI": CIMI + "VolumeCreate", "name": "t46-volume",
                                          "volumeTemplate": {"volumeConfig": {"capacity": 1024}}})
    assert job["targetResource"] == {"href": volumes}
    assert hrefs(job["affectedResources"])[0] == volumes and volume["id"] in hrefs(job["affectedResources"])
    alice.remove(alice.get(volume["id"]).json)


def test_table46_capture_posted_to_machine_images_targets_the_collection(alice):
    """Table 46: a MachineImage posted to the MachineImageCollection (a capture of a machine) is an add: its
    job targets that Collection, the new image and the captured machine among the affected resources; the
    same capture through the machine's own capture action targets the machine."""
    [stock] = alice.items("machineImages", "?$filter=name='tiny-linux.qcow2'")  # a machine with a disk
    machine, _job = submit(alice, alice.collection("machines"),
                           machine_create(alice, "t46-capture", machineImage={"href": stock["id"]}))
    images = alice.collection("machineImages")
    image, job = submit(alice, images, {"resourceURI": CIMI + "MachineImage", "name": "t46-image",
                                        "imageLocation": machine["id"]})
    assert job["targetResource"] == {"href": images}
    affected = hrefs(job["affectedResources"])
    assert affected[0] == images and image["id"] in affected and machine["id"] in affected
    alice.remove(alice.get(image["id"]).json)
    machine = alice.get(machine["id"]).json
    r = alice.post(alice.ops(machine)["capture"], action("capture", image={"name": "t46-image-2"}))
    assert r.status_code == 202, r.json
    job = alice.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS" and job["targetResource"] == {"href": machine["id"]}
    affected = hrefs(job["affectedResources"])
    assert affected[0] == machine["id"]
    [second] = [h for h in affected if h != machine["id"]]
    alice.remove(alice.get(second).json)
    alice.remove(machine)


def test_table46_action_job_targets_its_resource(alice):
    """Table 46: the job of an operation invoked on a resource (start, delete) targets that resource, and
    lists it among its affectedResources -- but for a delete once done (5.17.1: a deleted resource shall
    not appear in affectedResources)."""
    machine, _job = submit(alice, alice.collection("machines"), machine_create(alice, "t46-action"))
    r = alice.post(alice.ops(machine)["start"], action("start"))
    assert r.status_code == 202, r.json
    job = alice.wait(r.headers["CIMI-Job-URI"])
    assert job["targetResource"] == {"href": machine["id"]}
    assert hrefs(job["affectedResources"]) == [machine["id"]]
    machine = alice.get(machine["id"]).json
    r = alice.delete(machine["id"])
    assert r.status_code == 202, r.json
    job = alice.wait(r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS" and job["targetResource"] == {"href": machine["id"]}
    assert machine["id"] not in hrefs(job.get("affectedResources"))
    assert_cimi_error(alice.get(machine["id"]), 404)


# -- 5.17.1.1: deleting jobs -----------------------------------------------------------------------
def test_5_17_1_1_finished_job_offers_delete_and_its_owner_deletes_it(alice, bob):
    """5.17.1.1: a finished Job supports delete (advertised in its operations); its owner deletes it (200,
    no body, as other immediate deletes); it is then gone (404) from its href and the collection. Another
    tenant neither sees nor deletes it (404)."""
    machine, job = submit(alice, alice.collection("machines"), machine_create(alice, "t5171-delete"))
    assert job["operations"] == [{"rel": DELETE, "href": job["id"]}]
    listed = {j["id"]: j for j in alice.items("jobs")}
    assert listed[job["id"]]["operations"] == job["operations"]
    assert_cimi_error(bob.delete(job["id"]), 404)
    assert_cimi_error(bob.get(job["id"]), 404)
    assert alice.get(job["id"]).status_code == 200  # bob's attempt changed nothing
    r = alice.delete(job["id"])
    assert r.status_code == 200 and not r.get_data()
    assert_cimi_error(alice.get(job["id"]), 404)
    assert job["id"] not in {j["id"] for j in alice.items("jobs")}
    assert_cimi_error(alice.delete(job["id"]), 404)
    assert alice.get(machine["id"]).json["state"] == "STOPPED"  # the job's resource is untouched
    alice.remove(machine)


def test_5_17_1_1_unknown_job_delete_is_404(alice):
    """5.17.1.1: deleting a job that does not exist is 404 with a CIMI error body (never 5xx)."""
    assert_cimi_error(alice.delete("/cimi/jobs/no-such-job"), 404)
    assert_cimi_error(alice.delete("/cimi/jobs/" + "x" * 300), 404)


@pytest.fixture(scope="module")
def manual(tmp_path_factory):
    """A daemon whose jobs run only when the test says (no worker threads): a job stays QUEUED, then RUNNING
    while the test holds its claim."""
    app = make_app(tmp_path_factory.mktemp("manual"), start_workers=False)
    daemon = app.extensions["siroccod"]
    add_users(Api(app.test_client(), "admin", ADMIN_PASSWORD), ("alice",))
    yield app, daemon, Api(app.test_client(), "alice", PASSWORDS["alice"])
    daemon.close()


def test_5_17_1_1_queued_or_running_job_delete_is_refused(manual):
    """5.17.1.1: "a request to delete a running Job that does not support the stop action shall fail": jobs
    here cannot be stopped, so deleting a QUEUED or RUNNING job is 409 with a CIMI error body, the job stays
    and runs to its end; it offers delete only once finished."""
    app, daemon, alice = manual
    r = alice.post(alice.collection("machines"), machine_create(alice, "t5171-running"))
    assert r.status_code == 202, r.json
    href = r.headers["CIMI-Job-URI"]
    queued = alice.get(href).json
    assert queued["state"] == "QUEUED" and "operations" not in queued
    assert_cimi_error(alice.delete(href), 409)
    assert job_row(app, href).state == "QUEUED"
    claimed = daemon.runner.claim()  # this thread holds the job: RUNNING
    assert claimed == href.rsplit("/", 1)[1]
    assert alice.get(href).json["state"] == "RUNNING" and "operations" not in alice.get(href).json
    assert "RUNNING" in assert_cimi_error(alice.delete(href), 409)["statusMessage"]
    assert job_row(app, href).state == "RUNNING"
    daemon.worker(claimed)  # run it to its end
    done = alice.get(href).json
    assert done["state"] == "SUCCESS" and hrefs(done["operations"]) == [href]
    assert alice.delete(href).status_code == 200 and job_row(app, href) is None


def test_5_17_1_1_finished_nested_job_of_a_running_parent_is_kept(manual):
    """5.17.1.1: a nested job, even finished, is not deleted while its parent runs (the parent reads its
    outcome): no delete offered, 409; once the parent is done the family goes together."""
    app, daemon, alice = manual
    r = alice.post(alice.collection("systems"), system_create(alice, "t5171-running-sys"))
    assert r.status_code == 202, r.json
    parent = r.headers["CIMI-Job-URI"].rsplit("/", 1)[1]
    assert daemon.runner.claim() == parent  # this thread holds the parent: RUNNING
    first, second = hrefs(alice.get(r.headers["CIMI-Job-URI"]).json["nestedJobs"])
    with daemon.store.transaction() as session:  # the first member's job runs under the parent's claim
        assert jobs.claim_nested(daemon.store, session, parent, first.rsplit("/", 1)[1]) is not None
    daemon.worker(first.rsplit("/", 1)[1])
    child = alice.get(first).json
    assert child["state"] == "SUCCESS" and "operations" not in child
    assert "nested" in assert_cimi_error(alice.delete(first), 409)["statusMessage"]
    daemon.worker(parent)  # the parent runs the rest and ends
    done = alice.get(r.headers["CIMI-Job-URI"]).json
    assert done["state"] == "SUCCESS", done
    assert hrefs(alice.get(first).json["operations"]) == [first]
    assert alice.delete(done["id"]).status_code == 200
    assert [job_row(app, h) for h in (done["id"], first, second)] == [None, None, None]


def test_5_17_1_1_nested_jobs_go_with_their_parent(alice):
    """5.17.1.1 with nested jobs (Table 46 parentJob/nestedJobs): a System's create job has one nested job
    per member; deleting the finished parent deletes its nested jobs too, so no parentJob or nestedJobs href
    is left dangling."""
    systems = alice.collection("systems")
    system, job = submit(alice, systems, system_create(alice, "t5171-sys"))
    assert job["targetResource"] == {"href": systems} and system["id"] in hrefs(job["affectedResources"])
    nested = hrefs(job["nestedJobs"])
    assert len(nested) == 2
    for href in nested:
        child = alice.get(href).json
        assert child["parentJob"] == {"href": job["id"]} and child["state"] == "SUCCESS"
        assert child["targetResource"] == {"href": alice.collection("machines")}  # a member's add
        assert hrefs(child["operations"]) == [href]
    assert alice.delete(job["id"]).status_code == 200
    for href in [job["id"], *nested]:
        assert_cimi_error(alice.get(href), 404)
    left = alice.items("jobs")
    assert not {j["id"] for j in left} & {job["id"], *nested}
    assert not [j for j in left if j.get("parentJob", {}).get("href") in {job["id"], *nested}]
    alice.remove(alice.get(system["id"]).json)


# -- 4.1.6.3: $select on a Collection ----------------------------------------------------------------
@pytest.mark.parametrize("key", ["machines", "jobs", "resourceMetadata"])
def test_4_1_6_3_select_count_operations_on_a_collection(alice, key):
    """4.1.6.3: "?$select=count,operations" subsets the Collection resource itself: resourceURI, count and
    operations (when it has any), no entries, no id; the count is that of the whole (filtered) collection."""
    if key == "machines":
        submit(alice, alice.collection("machines"), machine_create(alice, "t4163-select"))
    url = alice.collection(key)
    full = alice.get(url).json
    assert full["count"] >= 1
    doc = alice.get(url + "?$select=count,operations").json
    expected = {"resourceURI", "count"} | ({"operations"} if "operations" in full else set())
    assert set(doc) == expected, doc
    assert doc["resourceURI"] == full["resourceURI"] and doc["count"] == full["count"]
    if key == "machines":
        assert doc["operations"] == [{"rel": ADD, "href": url}]
    # repeated parameters are one list; * is everything
    assert alice.get(url + "?$select=count&$select=operations").json == doc
    assert set(alice.get(url + "?$select=*").json) == set(full)
    # an entry attribute alone subsets each entry and keeps the entries, not the Collection's own attributes
    named = alice.get(url + "?$select=name").json
    entries = next(k for k, v in full.items() if isinstance(v, list) and k != "operations")
    assert set(named) == {"resourceURI", entries}
    assert len(named[entries]) == len(full[entries])
    for item, whole in zip(named[entries], full[entries], strict=True):
        assert item == {k: whole[k] for k in ("resourceURI", "name") if k in whole}
    # both: the Collection's count and each entry's name; path notation names an entry attribute
    both = alice.get(url + "?$select=count," + entries + "/name").json
    assert set(both) == {"resourceURI", "count", entries} and set(both[entries][0]) <= {"resourceURI", "name"}
    for machine in ([m for m in alice.items("machines") if m["name"] == "t4163-select"] if key == "machines"
                    else []):
        alice.remove(machine)


def test_4_1_6_3_select_count_with_filter_and_paging(alice):
    """4.1.6.3 with 4.1.6.1/4.1.6.2: $filter still counts and $first/$last still page; with count only no
    entries are sent; a malformed $select is still 400."""
    url = alice.collection("machineConfigs")
    full = alice.get(url + "?$filter=name='tiny'").json
    doc = alice.get(url + "?$filter=name='tiny'&$select=count").json
    assert doc == {"resourceURI": full["resourceURI"], "count": full["count"]}
    paged = alice.get(url + "?$first=1&$last=1&$select=machineConfigs").json
    assert set(paged) == {"resourceURI", "machineConfigs"} and len(paged["machineConfigs"]) == 1
    assert_cimi_error(alice.get(url + "?$select=count,,name"), 400)
    assert_cimi_error(alice.get(url + "?$select=count&$expand=a b"), 400)

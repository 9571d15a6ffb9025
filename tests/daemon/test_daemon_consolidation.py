"""POST /admin/consolidation on the embedded default: three simulated hosts on libvirt's real test driver.

The test driver cannot migrate: machines move between simulated hosts by being redefined on the target
(mode "simulated"). What is checked here is everything around it: the plan's shape, admin only, bad
input, infeasible requests explained, the job carrying a plan out with the CMDB and the hosts agreeing
afterwards, and a move failing half-way (the moves before it stay done and recorded)."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from daemon_helpers import ADMIN_PASSWORD, PASSWORDS, Api, add_users, assert_cimi_error, make_app

URL = "/admin/consolidation"


def _spread_machines(alice):
    """Three diskless machines, one per simulated host (sirocco.host pins them): two hosts can be emptied."""
    made = {}
    for host, state in (("sim1", "STARTED"), ("sim2", "STARTED"), ("sim3", "STOPPED")):
        m = alice.create_machine("c-" + host, state, properties={"sirocco.host": host})
        made[m["id"].rsplit("/", 1)[1]] = host
    return made


def _recorded(app):
    """uuid -> (host name, native id, state) of every machine the CMDB places."""
    from siroccod.store import Resource
    with app.extensions["siroccod"].store.read() as session:
        return {r.uuid: (r.host.name, r.native_id, r.state) for r in session.query(Resource).filter(
            Resource.type == "Machine", Resource.host_id.is_not(None))}


def _on_hosts(app):
    """native id -> (host name, state) of every domain the simulated hosts run (asked through their connections)."""
    out = {}
    for handle in app.extensions["siroccod"].pool.handles.values():
        for m in handle.all_machines():
            assert m.id not in out, "domain %s on two hosts" % m.id
            out[m.id] = (handle.name, m.state)
    return out


def _jobs(app):
    from siroccod.store import Job
    with app.extensions["siroccod"].store.read() as session:
        return session.query(Job).count()


@contextmanager
def _pool(data_dir):
    app = make_app(data_dir)
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        add_users(admin, ("alice",))
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        yield app, admin, alice, _spread_machines(alice)
    finally:
        app.extensions["siroccod"].close()


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """Shared by the tests that change nothing (each asserts it)."""
    with _pool(tmp_path_factory.mktemp("consolidation")) as made:
        yield made


@pytest.fixture()
def fresh_pool(tmp_path):
    with _pool(tmp_path / "data") as made:
        yield made


def test_dry_run_answers_the_plan_and_changes_nothing(pool):
    app, admin, _alice, made = pool
    before, jobs = _recorded(app), _jobs(app)
    r = admin.post(URL, {"dryRun": True, "timeLimit": 2})
    assert r.status_code == 200, r.json
    plan = r.json
    assert plan["dryRun"] is True and plan["status"] in ("optimal", "feasible", "heuristic"), plan
    assert plan["hosts"] == 3 and plan["machines"] == 3 and plan["staying"] == []
    # three hosts on, each idle draw plus its load: the plan keeps one host and empties the other two
    assert plan["activeHostsBefore"] == 3 and plan["activeHostsAfter"] == 1
    assert len(plan["hostsOff"]) == 2 and plan["hostsOn"] == []
    assert plan["powerAfter"] < plan["powerBefore"]
    kept = ({"sim1", "sim2", "sim3"} - set(plan["hostsOff"])).pop()
    assert len(plan["migrations"]) == 2
    for move in plan["migrations"]:
        uuid = move["machine"]["href"].rsplit("/", 1)[1]
        assert move["from"] == made[uuid] and move["to"] == kept and move["mode"] == "simulated"
        assert move["name"] == "c-" + made[uuid]
    assert _recorded(app) == before and _jobs(app) == jobs  # nothing moved, nothing queued


def test_only_administrators(pool):
    app, _admin, alice, _made = pool
    jobs = _jobs(app)
    for body in ({"dryRun": True}, {"dryRun": False}):
        error = assert_cimi_error(alice.post(URL, body), 403)
        assert error["properties"]["error"] == "forbidden"
    anonymous = app.test_client().post(URL, json={"dryRun": True})
    assert_cimi_error(anonymous, 401)
    assert _jobs(app) == jobs


@pytest.mark.parametrize("body, field", [
    ({"dryRun": "yes"}, "dryRun"),
    ({"dryRun": False, "maxMigrations": -1}, "maxMigrations"),
    ({"dryRun": False, "maxMigrations": 1.5}, "maxMigrations"),
    ({"dryRun": False, "migrationCost": -3}, "migrationCost"),
    ({"dryRun": False, "timeLimit": 0}, "timeLimit"),
    ({"dryRun": False, "timeLimit": 3600}, "timeLimit"),
    ({"dryRun": False, "constraints": {"type": "spread"}}, "constraints"),
    ({"dryRun": False, "constraints": [{"type": "spread", "vms": ["no-such-machine"]}]}, "constraints[0].vms[0]"),
    ({"dryRun": False, "constraints": [{"type": "ban", "vms": [], "hosts": ["sim9"]}]}, "constraints[0].hosts[0]"),
    ({"dryRun": False, "constraints": [{"type": "teleport"}]}, "constraints[0].type"),
    ({"dryRun": False, "constraints": [{"type": "max_online", "amount": 1, "extra": 1}]}, "constraints[0].extra"),
    ({"dryRun": False, "hosts": []}, "hosts"),
])
def test_bad_input_names_the_field_and_changes_nothing(pool, body, field):
    app, admin, _alice, _made = pool
    before, jobs = _recorded(app), _jobs(app)
    error = assert_cimi_error(admin.post(URL, body), 400)
    assert error["properties"]["attribute"] == field, error
    assert field.split("[")[0].split(".")[0] in error["statusMessage"]
    assert _recorded(app) == before and _jobs(app) == jobs


def test_not_json_refused(pool):
    app, admin, _alice, _made = pool
    assert_cimi_error(admin.post(URL, data="dryRun=false", headers={"Content-Type": "text/plain"}), 415)
    assert_cimi_error(admin.post(URL, data="[1]", headers={"Content-Type": "application/json"}), 400)


def test_infeasible_requests_are_explained(pool):
    app, admin, _alice, made = pool
    before, jobs = _recorded(app), _jobs(app)
    sim1 = next(u for u, h in made.items() if h == "sim1")
    sim2 = next(u for u, h in made.items() if h == "sim2")
    # all on at most one host, but two machines must stay apart
    asked = [{"type": "max_online", "amount": 1}, {"type": "spread", "vms": [sim1, "/cimi/machines/" + sim2]}]
    plan = admin.post(URL, {"dryRun": True, "constraints": asked, "timeLimit": 2}).json
    assert plan["status"] == "infeasible" and plan["reason"], plan
    assert "migrations" not in plan
    named = {(e.get("constraint"), e.get("index"), e.get("resource")) for e in plan["explanations"]}
    assert named & {("spread", 1, "hosts"), ("max_online", 0, "hosts")}, plan["explanations"]
    # executing it: 409, the same explanation, nothing queued
    error = assert_cimi_error(admin.post(URL, {"dryRun": False, "constraints": asked, "timeLimit": 2}), 409)
    assert error["properties"]["error"] == "infeasible"
    assert error["properties"]["explanations"] == plan["explanations"]
    assert error["statusMessage"].startswith("infeasible: ")
    # a migration budget too small for a constraint that needs a move
    plan = admin.post(URL, {"dryRun": True, "maxMigrations": 0, "timeLimit": 2, "constraints": [
        {"type": "ban", "vms": [sim1], "hosts": ["sim1"]}]}).json
    assert plan["status"] == "infeasible", plan
    assert any(e.get("constraint") in ("ban", "max_migrations") or "migration" in e["message"]
               for e in plan["explanations"]), plan["explanations"]
    assert _recorded(app) == before and _jobs(app) == jobs


def test_the_job_moves_machines_and_the_cmdb_agrees_with_the_hosts(fresh_pool):
    app, admin, alice, made = fresh_pool
    hosts_before = _on_hosts(app)
    r = admin.post(URL, {"dryRun": False, "maxMigrations": 2, "timeLimit": 2})
    assert r.status_code == 202, r.json
    plan = r.json
    assert r.headers["CIMI-Job-URI"] == r.headers["Location"] == plan["job"]["href"]
    job = admin.wait(plan["job"]["href"])
    assert job["state"] == "SUCCESS", job
    off = plan["hostsOff"]
    assert len(off) == 2 and ", ".join(off) in job["statusMessage"]
    # the job is the admin's, with one nested job per move, each on its machine
    assert job["id"] in {j["id"] for j in admin.items("jobs")}
    assert job["action"].endswith("/action/consolidate")
    nested = [admin.get(n["href"]).json for n in job["nestedJobs"]]
    assert [n["targetResource"]["href"] for n in nested] == [m["machine"]["href"] for m in plan["migrations"]]
    assert all(n["state"] == "SUCCESS" and "simulated hosts" in n["statusMessage"] for n in nested), nested
    assert {a["href"] for a in job["affectedResources"]} == {m["machine"]["href"] for m in plan["migrations"]}
    # the CMDB and the hosts agree: every machine on the host it is recorded on, in its state, once
    recorded, found = _recorded(app), _on_hosts(app)
    kept = ({"sim1", "sim2", "sim3"} - set(off)).pop()
    assert {host for host, _native, _state in recorded.values()} == {kept}
    assert {native: (host, state) for host, native, state in recorded.values()} == found
    assert sorted(s for _h, s in found.values()) == sorted(s for _h, s in hosts_before.values())
    # hosts switched off: nothing on them, no power drawn
    for name in off:
        view = admin.get("/admin/hosts/" + name).json
        assert view["machines"] == 0 and view["powerEstimate"] == 0.0, view
    # the owner still drives the moved machines
    for uuid in made:
        m = alice.get("/cimi/machines/" + uuid).json
        m = alice.act(m, "stop" if m["state"] == "STARTED" else "start", force=True) if m["state"] == "STARTED" \
            else alice.act(m, "start")
        assert m["state"] in ("STARTED", "STOPPED")
    # nothing is left to gain
    again = admin.post(URL, {"dryRun": True, "timeLimit": 2}).json
    assert again["migrations"] == [] and again["hostsOff"] == [], again


def test_a_failed_move_leaves_the_done_ones_recorded(tmp_path):
    app = make_app(tmp_path / "data", start_workers=False)  # jobs run by hand: the host changes in between
    d = app.extensions["siroccod"]
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        add_users(admin, ("alice",))
        alice = Api(app.test_client(), "alice", PASSWORDS["alice"])
        made = {}
        for host in ("sim2", "sim3", "sim3"):
            r = alice.post(alice.collection("machines"), {
                "resourceURI": "http://schemas.dmtf.org/cimi/2/MachineCreate", "name": "f-" + host,
                "properties": {"sirocco.host": host},
                "machineTemplate": {"machineConfig": {"href": alice.config_href("tiny")}, "initialState": "STARTED"}})
            assert r.status_code == 202, r.json
            d.runner.run_pending()
            made[r.headers["Location"].rsplit("/", 1)[1]] = host
        ban = {"type": "ban", "vms": list(made), "hosts": ["sim1", "sim3"]}
        r = admin.post(URL, {"dryRun": False, "timeLimit": 2, "constraints": [ban]})
        assert r.status_code == 202, r.json
        moves = r.json["migrations"]
        assert len(moves) == 2 and {m["to"] for m in moves} == {"sim2"}, moves
        # behind the daemon's back, the second machine to move vanishes from its host
        second = moves[1]["machine"]["href"].rsplit("/", 1)[1]
        recorded = _recorded(app)
        d.pool.by_name(recorded[second][0]).delete_machine(recorded[second][1])
        d.runner.run_pending()
        job = admin.get(r.json["job"]["href"]).json
        assert job["state"] == "FAILED", job
        assert "move 2 of 2" in job["statusMessage"] and second in job["statusMessage"], job
        assert "1 of 2 moves done before it" in job["statusMessage"]
        nested = [admin.get(n["href"]).json for n in job["nestedJobs"]]
        assert [n["state"] for n in nested] == ["SUCCESS", "FAILED"], nested
        first = moves[0]["machine"]["href"].rsplit("/", 1)[1]
        after, found = _recorded(app), _on_hosts(app)
        assert after[first][0] == "sim2" and found[after[first][1]][0] == "sim2"  # done and recorded
        assert after[second][0] == recorded[second][0]  # not moved: still recorded where it was
        # reconcile then tells the truth about the vanished one, as for any domain lost behind our back
        assert admin.post("/admin/reconcile").json["gone"] == 1
        # the failed job holds no machine: the owner acts on the moved one at once
        m = alice.get("/cimi/machines/" + first).json
        r = alice.post(alice.ops(m)["stop"], {"resourceURI": "http://schemas.dmtf.org/cimi/2/Action",
                                              "action": "http://schemas.dmtf.org/cimi/2/action/stop", "force": True})
        assert r.status_code == 202
        d.runner.run_pending()
        assert alice.get("/cimi/machines/" + first).json["state"] == "STOPPED"
        assert found[after[first][1]] == ("sim2", "STARTED")
    finally:
        d.close()


def test_machines_that_cannot_move_stay_and_say_why(fresh_pool):
    app, admin, alice, made = fresh_pool
    image = alice.items("machineImages", "?$filter=name='tiny-linux.qcow2'")[0]
    disked = alice.create_machine("disked", "STOPPED", machineImage={"href": image["id"]},
                                  properties={"sirocco.host": "sim2"})
    plan = admin.post(URL, {"dryRun": True, "timeLimit": 2}).json
    staying = {s["machine"]["href"]: s for s in plan["staying"]}
    assert list(staying) == [disked["id"]] and staying[disked["id"]]["host"] == "sim2", plan
    assert "disks" in staying[disked["id"]]["reason"]
    assert "sim2" not in plan["hostsOff"] and disked["id"] not in {m["machine"]["href"] for m in plan["migrations"]}
    # asking for it to move anyway: infeasible, and the explanation says it is the hosts' doing
    plan = admin.post(URL, {"dryRun": True, "timeLimit": 2, "constraints": [
        {"type": "ban", "vms": [disked["id"]], "hosts": ["sim2"]}]}).json
    assert plan["status"] == "infeasible", plan
    assert any(e.get("implicit") or e.get("index") == 0 for e in plan["explanations"]), plan["explanations"]


def test_hosts_without_power_figures_refused(tmp_path):
    hosts = [{"name": "p1", "simulated": {"cpu": 4, "memory_mib": 4096, "mhz": 2000}},
             {"name": "p2", "simulated": {"cpu": 4, "memory_mib": 4096, "mhz": 2000}, "power_idle": 50,
              "power_max": 100}]
    app = make_app(tmp_path / "data", hosts=hosts)
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        error = assert_cimi_error(admin.post(URL, {"dryRun": True}), 409)
        assert "p1" in error["statusMessage"] and "power_idle" in error["statusMessage"]
    finally:
        app.extensions["siroccod"].close()

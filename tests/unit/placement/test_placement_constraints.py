"""Every constraint binds: the plan changes because of it, for the optimizer and for each greedy.

Each case is a small problem whose best plan breaks the constraint; with the
constraint the plan must differ, obey it (independent checker) and cost what
the constraint forces.
"""

import pytest
from placement_helpers import host, problem, vm

from ansible_collections.sirocco.cimi.plugins.module_utils.placement import check, energy, heuristics

SMALL = dict(cpu=4, memory=8192, idle=50.0, peak=100.0)
BIG = dict(cpu=8, memory=16384, idle=200.0, peak=300.0)


def case(name):
    """(hosts, vms, constraint, check(placement) -> bool that shows the constraint changed the plan)."""
    if name == "spread":  # both fit on one host, spread needs two
        return ([host("a", **SMALL), host("b", **SMALL)], [vm("x"), vm("y")],
                {"type": "spread", "vms": ["x", "y"]}, lambda p: p["x"] != p["y"])
    if name == "gather":  # a, b, c fit on the cheap small hosts only when split
        return ([host("s1", **SMALL), host("s2", **SMALL), host("B", **BIG)],
                [vm("a", 2), vm("b", 2), vm("c", 2), vm("d", 2)],
                {"type": "gather", "vms": ["a", "b", "c"]}, lambda p: p["a"] == p["b"] == p["c"] == "B")
    if name == "ban":
        return ([host("cheap", **SMALL), host("dear", **BIG)], [vm("x")],
                {"type": "ban", "vms": ["x"], "hosts": ["cheap"]}, lambda p: p["x"] == "dear")
    if name == "fence":
        return ([host("cheap", **SMALL), host("dear", **BIG), host("other", **BIG)], [vm("x")],
                {"type": "fence", "vms": ["x"], "hosts": ["dear"]}, lambda p: p["x"] == "dear")
    if name == "among":  # the cheap host h1 alone cannot take both, so the group [h2, h3] is chosen
        return ([host("h1", cpu=4, memory=8192, idle=10.0, peak=20.0), host("h2", **SMALL), host("h3", **SMALL)],
                [vm("x", 3), vm("y", 3)],
                {"type": "among", "vms": ["x", "y"], "groups": [["h1"], ["h2", "h3"]]},
                lambda p: {p["x"], p["y"]} == {"h2", "h3"})
    if name == "max_online":  # two cheap hosts beat one big one, unless one host only may be on
        return ([host("s1", **SMALL), host("s2", **SMALL), host("B", **BIG)], [vm("a", 4), vm("b", 4)],
                {"type": "max_online", "amount": 1}, lambda p: p["a"] == p["b"] == "B")
    if name == "max_online_subset":  # the cap on {s1, s2} forbids using both cheap hosts
        return ([host("s1", **SMALL), host("s2", **SMALL), host("B", **BIG)], [vm("a", 4), vm("b", 4)],
                {"type": "max_online", "amount": 1, "hosts": ["s1", "s2"]},
                lambda p: len({p["a"], p["b"]} & {"s1", "s2"}) <= 1)
    if name == "preserve":  # x sits on the dear host; without preserve it moves
        return ([host("cheap", **SMALL), host("dear", **BIG)], [vm("x", host="dear")],
                {"type": "preserve", "vms": ["x"]}, lambda p: p["x"] == "dear")
    raise AssertionError(name)


NAMES = ["spread", "gather", "ban", "fence", "among", "max_online", "max_online_subset", "preserve"]


@pytest.mark.parametrize("name", NAMES)
def test_optimizer_obeys_binding_constraint(name):
    hosts, vms, constraint, changed = case(name)
    free = problem(hosts, vms)
    bound = problem(hosts, vms, [constraint])
    before = energy.solve(free, time_limit=3)
    after = energy.solve(bound, time_limit=3)
    assert before.status == "optimal" and after.status == "optimal"
    assert not changed(before.placement), "the case does not bind"
    assert changed(after.placement)
    assert check.check(free, before.placement) == []
    assert check.check(bound, after.placement) == []
    assert check.check(bound, before.placement), "the unconstrained plan should break the constraint"
    assert after.objective > before.objective


@pytest.mark.parametrize("heuristic", ["ffd", "bfd", "dot"])
@pytest.mark.parametrize("name", NAMES)
def test_heuristics_obey_binding_constraint(name, heuristic):
    hosts, vms, constraint, changed = case(name)
    bound = problem(hosts, vms, [constraint])
    plan = {"ffd": heuristics.first_fit_decreasing, "bfd": heuristics.best_fit_decreasing,
            "dot": heuristics.dot_product}[heuristic](bound)
    assert plan.placement is not None, plan.explanation
    assert check.check(bound, plan.placement) == []
    assert changed(plan.placement)


def test_max_migrations_binds():
    # three VMs spread over three hosts: consolidating all of them takes two moves
    hosts = [host("a", **SMALL), host("b", **SMALL), host("c", **SMALL)]
    vms = [vm("x", host="a"), vm("y", host="b"), vm("z", host="c")]
    free = energy.consolidate(problem(hosts, vms), max_migrations=None, time_limit=3)
    assert (free.active_hosts, free.migrations) == (1, 2)
    one = energy.consolidate(problem(hosts, vms), max_migrations=1, time_limit=3)
    assert (one.active_hosts, one.migrations) == (2, 1)
    p = problem(hosts, vms, max_migrations=1)
    assert check.check(p, one.placement) == []
    assert any("max_migrations" in v for v in check.check(p, free.placement))


def test_migration_cost_keeps_vms_home():
    hosts = [host("cheap", **SMALL), host("dear", **BIG)]
    vms = [vm("x", host="dear")]
    assert energy.solve(problem(hosts, vms), time_limit=2).placement == {"x": "cheap"}
    stay = energy.solve(problem(hosts, vms, migration_cost=1000), time_limit=2)
    assert stay.placement == {"x": "dear"} and stay.migrations == 0


def test_overcommit_adds_capacity():
    hosts = [host("a", cpu=4, memory=8192, cpu_overcommit=2.0), host("b", cpu=4, memory=8192)]
    vms = [vm("x", 4), vm("y", 4)]
    r = energy.solve(problem(hosts, vms), time_limit=2)
    assert r.active_hosts == 1 and r.placement == {"x": "a", "y": "a"}


# -- the checker rejects hand-made violations --------------------------------

HOSTS = [host("a", cpu=4, memory=4096), host("b", cpu=4, memory=4096), host("c", cpu=4, memory=4096)]
VMS = [vm("x", 2, 1024, host="a"), vm("y", 2, 1024, host="b"), vm("z", 1, 1024, host="c")]


@pytest.mark.parametrize("constraint, plan, words", [
    ({"type": "spread", "vms": ["x", "y"]}, {"x": "a", "y": "a", "z": "c"}, "share host 'a'"),
    ({"type": "gather", "vms": ["x", "z"]}, {"x": "a", "y": "b", "z": "c"}, "spread over hosts a, c"),
    ({"type": "ban", "vms": ["x"], "hosts": ["a"]}, {"x": "a", "y": "b", "z": "c"}, "banned host 'a'"),
    ({"type": "fence", "vms": ["y"], "hosts": ["a", "c"]}, {"x": "a", "y": "b", "z": "c"}, "outside its fence"),
    ({"type": "among", "vms": ["x", "y"], "groups": [["a", "c"], ["b"]]}, {"x": "a", "y": "b", "z": "c"},
     "not all within one group"),
    ({"type": "max_online", "amount": 2}, {"x": "a", "y": "b", "z": "c"}, "3 hosts online, at most 2"),
    ({"type": "max_online", "amount": 1, "hosts": ["a", "b"]}, {"x": "a", "y": "b", "z": "a"},
     "2 hosts online, at most 1"),
    ({"type": "preserve", "vms": ["z"]}, {"x": "a", "y": "b", "z": "a"}, "moved from 'c' to 'a'"),
])
def test_checker_rejects_each_constraint(constraint, plan, words):
    p = problem(HOSTS, VMS, [constraint])
    violations = check.check(p, plan)
    assert len(violations) == 1 and "constraints[0] (%s)" % constraint["type"] in violations[0]
    assert words in violations[0]
    assert check.check(problem(HOSTS, VMS), plan) == []  # the same plan is fine without the constraint


@pytest.mark.parametrize("plan, words", [
    ({"x": "a", "y": "a", "z": "a"}, "over its cpu capacity: 5 allocated, 4 available"),
    ({"x": "a", "y": "b"}, "vm 'z' is not placed"),
    ({"x": "a", "y": "b", "z": "q"}, "unknown host 'q'"),
    ({"x": "a", "y": "b", "z": "c", "w": "a"}, "unknown vm 'w'"),
])
def test_checker_rejects_capacity_and_shape(plan, words):
    violations = check.check(problem(HOSTS, VMS), plan)
    assert any(words in v for v in violations), violations


def test_checker_memory_and_migrations():
    p = problem(HOSTS, [vm("x", 1, 3000, host="a"), vm("y", 1, 3000, host="b")], max_migrations=0)
    violations = check.check(p, {"x": "b", "y": "b"})
    assert any("over its memory capacity" in v for v in violations)
    assert any("1 migrations, at most 0" in v for v in violations)


def test_measure_matches_solver():
    p = problem(HOSTS, VMS, migration_cost=3)
    r = energy.solve(p, time_limit=2)
    m = check.measure(p, r.placement)
    assert m["active_hosts"] == r.active_hosts and m["migrations"] == r.migrations
    assert m["power_watts"] == pytest.approx(r.power_watts) and m["objective"] == pytest.approx(r.objective)


def test_a_spread_over_gathered_vms_is_infeasible_for_every_greedy_too():
    """Found by hypothesis: a spread over two VMs a gather puts on one host cannot hold; the optimizer says so,
    and a greedy (which does not check spreads between VMs it places together) must not return a plan."""
    p = problem([host("h0", **SMALL)], [vm("v0"), vm("v1"), vm("v2")],
                constraints=[{"type": "spread", "vms": ["v0", "v1"]}, {"type": "gather", "vms": ["v0", "v1"]}])
    assert energy.solve(p, time_limit=2).status == "infeasible"
    for fn in (heuristics.first_fit_decreasing, heuristics.best_fit_decreasing, heuristics.dot_product):
        plan = fn(p)
        assert plan.placement is None and "spread" in plan.explanation.message, plan

"""Random small instances thrown at the optimizer and the independent checker (hypothesis).

On tiny instances a brute-force oracle (every assignment, judged by the
checker) tells whether a plan exists and what the optimum costs.
"""

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.sirocco.cimi.plugins.module_utils.placement import check, energy, heuristics
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import parse_problem

TYPES = ["spread", "gather", "ban", "fence", "among", "max_online", "preserve"]


@st.composite
def instances(draw, max_hosts=3, max_vms=5):
    nh = draw(st.integers(1, max_hosts))
    hosts = []
    for j in range(nh):
        idle = draw(st.sampled_from([0, 40, 100]))
        hosts.append({"name": "h%d" % j, "cpu": draw(st.integers(2, 8)), "memory": draw(st.integers(2, 8)),
                      "power_idle": idle, "power_max": idle + draw(st.sampled_from([0, 50, 150])),
                      "on": draw(st.booleans()), "cpu_overcommit": draw(st.sampled_from([1.0, 1.5]))})
    names = [h["name"] for h in hosts]
    nv = draw(st.integers(1, max_vms))
    vms = []
    for i in range(nv):
        v = {"name": "v%d" % i, "cpu": draw(st.integers(0, 3)), "memory": draw(st.integers(0, 3))}
        if draw(st.booleans()):
            v["host"] = draw(st.sampled_from(names))
        vms.append(v)
    vnames = [v["name"] for v in vms]
    placed = [v["name"] for v in vms if "host" in v]
    constraints = []
    for _i in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from(TYPES))
        some_vms = draw(st.lists(st.sampled_from(vnames), min_size=1, max_size=3, unique=True))
        some_hosts = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
        if kind in ("spread", "gather"):
            constraints.append({"type": kind, "vms": some_vms})
        elif kind in ("ban", "fence"):
            constraints.append({"type": kind, "vms": some_vms, "hosts": some_hosts})
        elif kind == "among":
            groups = draw(st.lists(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True),
                                   min_size=1, max_size=3))
            constraints.append({"type": kind, "vms": some_vms, "groups": groups})
        elif kind == "max_online":
            c = {"type": kind, "amount": draw(st.integers(1, nh))}
            if draw(st.booleans()):
                c["hosts"] = some_hosts
            constraints.append(c)
        elif placed:
            constraints.append({"type": "preserve",
                                "vms": draw(st.lists(st.sampled_from(placed), min_size=1, max_size=2, unique=True))})
    data = {"hosts": hosts, "vms": vms, "constraints": constraints, "time_limit": 2,
            "migration_cost": draw(st.sampled_from([0, 0, 30]))}
    if placed and draw(st.booleans()):
        data["max_migrations"] = draw(st.integers(0, 2))
    return parse_problem(data)


def oracle(problem):
    """Cheapest objective over every valid assignment, or None if there is none."""
    best = None
    names = [h.name for h in problem.hosts]
    for combo in itertools.product(names, repeat=len(problem.vms)):
        plan = {v.name: h for v, h in zip(problem.vms, combo, strict=True)}
        if not check.check(problem, plan):
            cost = check.measure(problem, plan)["objective"]
            best = cost if best is None else min(best, cost)
    return best


def _consistent(problem, result):
    assert check.check(problem, result.placement) == [], result
    m = check.measure(problem, result.placement)
    assert m["active_hosts"] == result.active_hosts
    assert m["migrations"] == result.migrations
    assert abs(m["power_watts"] - result.power_watts) < 1e-6
    assert abs(m["objective"] - result.objective) < 1e-6
    if result.warm_start is not None:  # None: every greedy failed, the MILP found the plan
        assert result.objective <= result.warm_start + 1e-6  # never worse than its warm start
    assert result.active_hosts >= result.lower_bound_hosts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_tiny_instances_against_brute_force(problem):
    result = energy.solve(problem, time_limit=2)
    best = oracle(problem)
    if best is None:
        assert result.status == "infeasible", result
        assert result.reason and result.explanations
        return
    assert result.status != "infeasible", (result.reason, best)
    _consistent(problem, result)
    assert result.objective >= best - 1e-6
    if result.status == "optimal":
        assert abs(result.objective - best) < 1e-6


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(max_hosts=6, max_vms=14))
def test_small_instances_never_worse_than_greedy(problem):
    result = energy.solve(problem, time_limit=1)
    if result.status == "infeasible":
        # a greedy that finds a plan proves the instance feasible: the optimizer must find one too
        for fn in (heuristics.first_fit_decreasing, heuristics.best_fit_decreasing, heuristics.dot_product):
            assert fn(problem).placement is None
        return
    _consistent(problem, result)
    for fn in (heuristics.first_fit_decreasing, heuristics.best_fit_decreasing, heuristics.dot_product):
        plan = fn(problem)
        if plan.placement is not None:
            assert check.check(problem, plan.placement) == []
            assert result.objective <= check.measure(problem, plan.placement)["objective"] + 1e-6

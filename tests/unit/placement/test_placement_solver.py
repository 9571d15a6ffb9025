"""The optimizer: statuses, lower bound, explanations of infeasible requests, degraded modes."""

import random
import subprocess
import sys

import pytest
from placement_helpers import host, problem, vm

from ansible_collections.sirocco.cimi.plugins.module_utils.placement import check, energy


def hosts(n, **kw):
    return [host("h%d" % j, **kw) for j in range(n)]


def test_lower_bound_is_max_over_dimensions():
    # cpu: 10 x 2 = 20 over 8-core hosts -> 3; memory: 10 x 5000 = 50000 over 16384 MiB -> 4 (3.05)
    p = problem(hosts(10), [vm("v%d" % i, 2, 5000) for i in range(10)])
    assert energy.lower_bound(p) == 4
    # cpu: 30 cores -> 4 hosts by the sum, but no host takes three 3-core VMs: 5
    p = problem(hosts(10), [vm("v%d" % i, 3, 1000) for i in range(10)])
    assert energy.lower_bound(p) == 5
    p = problem(hosts(10), [vm("v%d" % i, 1, 9000) for i in range(10)])  # more than half a host each
    assert energy.lower_bound(p) == 10


def test_lower_bound_heterogeneous_takes_largest_hosts_first():
    p = problem([host("big", cpu=32), host("s1", cpu=8), host("s2", cpu=8)], [vm("v%d" % i, 4) for i in range(9)])
    assert energy.lower_bound(p) == 2  # 36 cores: the 32-core host and one more


def test_optimal_when_lower_bound_reached():
    p = problem(hosts(6), [vm("v%d" % i, 4, 4096) for i in range(6)])
    r = energy.solve(p, time_limit=2)
    assert r.status == "optimal" and r.active_hosts == 3 == r.lower_bound_hosts and r.gap == 0.0
    assert sorted(r.switch_off) == sorted(set("h%d" % j for j in range(6)) - set(r.placement.values()))


@pytest.mark.parametrize("seed", [0, 1])
def test_large_items_pinned_let_the_milp_prove_the_optimum(seed):
    # items of 20-80 % of a host in both dimensions: the best plan is one host above every bound, and
    # only the full MILP with the conflict clique pinned (symmetry removed) proves it in time
    rng = random.Random(seed)
    vms = [vm("v%d" % i, rng.randint(200, 800), rng.randint(200, 800)) for i in range(30)]
    p = problem(hosts(30, cpu=1000, memory=1000), vms)
    r = energy.solve(p, time_limit=10)
    assert r.status == "optimal" and "milp proved" in r.method, (r.status, r.method)
    assert r.active_hosts == r.lower_bound_hosts + 1
    assert check.check(p, r.placement) == []


def test_switch_on_reports_hosts_that_were_off():
    p = problem([host("off", on=False, idle=10, peak=20), host("on", idle=100, peak=200)], [vm("x")])
    r = energy.solve(p, time_limit=2)
    assert r.placement == {"x": "off"} and r.switch_on == ["off"] and r.switch_off == ["on"]


def test_heterogeneous_prefers_efficient_hosts():
    hs = [host("old%d" % j, cpu=16, memory=65536, idle=200, peak=400) for j in range(3)]
    hs += [host("new%d" % j, cpu=16, memory=65536, idle=80, peak=250) for j in range(3)]
    p = problem(hs, [vm("v%d" % i, 4, 8192) for i in range(10)])
    r = energy.solve(p, time_limit=3)
    assert check.check(p, r.placement) == []
    assert all(h.startswith("new") for h in r.placement.values())


@pytest.mark.parametrize("vms, constraints, kind, resource, words", [
    ([vm("x", 20)], [], "capacity", "cpu", "needs cpu 20, more than any host offers (8)"),
    ([vm("x", 1, 99999)], [], "capacity", "memory", "needs memory 99999"),
    ([vm("x"), vm("y")], [{"type": "spread", "vms": ["x", "y"]}, {"type": "gather", "vms": ["x", "y"]}],
     "spread", None, "distinct hosts for VMs that gather"),
    ([vm("x")], [{"type": "ban", "vms": ["x"], "hosts": ["h0"]}, {"type": "fence", "vms": ["x"], "hosts": ["h0"]}],
     "fence", "hosts", "ban constraints[0] and fence constraints[1] leave no host"),
    ([vm("x"), vm("y"), vm("z")], [{"type": "spread", "vms": ["x", "y", "z"]}], "spread", "hosts",
     "needs 3 distinct hosts, only 2 are allowed"),
    ([vm("x", 6), vm("y", 6)], [{"type": "gather", "vms": ["x", "y"]}], "gather", "cpu", "need cpu 12 in total"),
    ([vm("x", 6), vm("y", 6)], [{"type": "max_online", "amount": 1}], "max_online", "cpu",
     "allows 1 online hosts offering at most cpu 8"),
    ([vm("x", 6), vm("y", 6)], [{"type": "among", "vms": ["x", "y"], "groups": [["h0"], ["h1"]]}], "among", "cpu",
     "no group can host all its VMs"),
    ([vm("x", 6, host="h0"), vm("y", 6, host="h0")], [{"type": "preserve", "vms": ["x", "y"]}], "preserve", "cpu",
     "preserved on host 'h0' need cpu 12"),
])
def test_infeasible_requests_are_explained(vms, constraints, kind, resource, words):
    r = energy.solve(problem(hosts(2), vms, constraints), time_limit=2)
    assert r.status == "infeasible" and not r.placement
    assert any(e.constraint == kind and e.resource == resource and words in e.message for e in r.explanations), \
        [e.to_json() for e in r.explanations]
    assert r.reason
    out = r.to_json()
    assert out["status"] == "infeasible" and "placement" not in out and out["explanations"]


def test_infeasible_found_by_search_is_explained():
    # every bound passes (16 cores on 2 x 8, no two VMs too large to pair), yet the 7-core VM
    # leaves a 1-core hole no other VM fills: only the search finds out
    vms = [vm("w", 4), vm("x", 7), vm("y", 3), vm("z", 2)]
    r = energy.solve(problem(hosts(2), vms), time_limit=5)
    assert r.status == "infeasible"
    assert "proves" in r.reason and any(e.resource == "cpu" for e in r.explanations), (r.reason, r.notes)


def test_items_that_cannot_pair_are_explained_without_search():
    # each VM fits alone and the totals fit, but no two 5-core VMs share an 8-core host
    r = energy.solve(problem(hosts(2), [vm("x", 5), vm("y", 5), vm("z", 5)]), time_limit=2)
    assert r.status == "infeasible"
    ex = r.explanations[0]
    assert ex.resource == "cpu" and ex.constraint == "capacity"
    assert "3 VMs are too large for any two of them to share a host" in ex.message and "only 2 hosts" in ex.message
    assert energy.lower_bound(problem(hosts(5), [vm("x", 5), vm("y", 5), vm("z", 5)])) == 3


def test_migration_budget_too_small_is_explained():
    p = problem(hosts(2), [vm("x", host="h0")], [{"type": "ban", "vms": ["x"], "hosts": ["h0"]}], max_migrations=0)
    r = energy.solve(p, time_limit=2)
    assert r.status == "infeasible" and r.explanations[0].resource == "migrations"


def test_without_pulp_the_best_greedy_plan_stands(monkeypatch):
    def missing():
        raise energy.SolverUnavailable("the placement optimizer needs PuLP")

    monkeypatch.setattr(energy, "_pulp", missing)
    p = problem(hosts(4, cpu=10), [vm("v%d" % i, c) for i, c in enumerate([6, 6, 4, 4, 3, 3, 2, 2])])
    r = energy.solve(p, time_limit=1)
    assert r.status in ("heuristic", "optimal") and check.check(p, r.placement) == []
    assert any("PuLP" in n for n in r.notes) or r.status == "optimal"


def test_never_worse_than_warm_start_and_reports_gap():
    # two-dimensional items that greedy packs badly (Caprara-Toth class 10 style triplets)
    import random

    rng = random.Random(3)
    vms = []
    for t in range(8):
        a, b = (rng.randint(25, 50), rng.randint(25, 50)), (rng.randint(25, 50), rng.randint(25, 50))
        for i, (c, m) in enumerate([a, b, (100 - a[0] - b[0], 100 - a[1] - b[1])]):
            vms.append(vm("v%d_%d" % (t, i), c, m))
    p = problem(hosts(24, cpu=100, memory=100), vms)
    r = energy.solve(p, time_limit=3)
    assert check.check(p, r.placement) == []
    assert r.objective <= r.warm_start and r.lower_bound_hosts == 8
    assert r.gap == pytest.approx((r.active_hosts - 8) / 8)
    assert r.solve_seconds < 5


def test_consolidation_switches_hosts_off_within_budget():
    # 12 hosts each a third full: a repack needs 4
    hs = hosts(12, cpu=12, memory=49152)
    vms = [vm("v%d_%d" % (j, i), 2, 4096, host="h%d" % j) for j in range(12) for i in range(2)]
    p = problem(hs, vms)
    full = energy.consolidate(p, time_limit=3)
    assert full.active_hosts == 4 and check.check(p, full.placement) == []
    capped = energy.consolidate(p, max_migrations=6, time_limit=3)
    assert capped.migrations <= 6 and capped.active_hosts == 12 - 3
    assert check.check(problem(hs, vms, max_migrations=6), capped.placement) == []
    with pytest.raises(ValueError):
        energy.consolidate(problem(hs, [vm("x")]))


def test_pulp_is_imported_only_to_build_a_milp():
    code = ("import sys\n"
            "from ansible_collections.sirocco.cimi.plugins.module_utils.placement import cli, energy, check, migrate\n"
            "assert 'pulp' not in sys.modules, 'pulp imported at module load'\n"
            "assert not any(m.startswith(('ansible.', 'flask')) for m in sys.modules), 'framework imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr

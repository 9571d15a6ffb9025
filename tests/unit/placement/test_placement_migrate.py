"""Migration order: never over capacity on the way, cycles reported."""

from placement_helpers import host, problem, vm

from ansible_collections.sirocco.cimi.plugins.module_utils.placement import energy, migrate


def test_chain_is_ordered():
    # x: a -> b must wait for y: b -> c
    p = problem([host("a", cpu=4), host("b", cpu=4), host("c", cpu=4)],
                [vm("x", 3, host="a"), vm("y", 3, host="b")])
    moves, blocked = migrate.order(p, {"x": "b", "y": "c"})
    assert moves == [{"vm": "y", "from": "b", "to": "c"}, {"vm": "x", "from": "a", "to": "b"}] and blocked == []


def test_cycle_is_blocked_with_a_reason():
    p = problem([host("a", cpu=4), host("b", cpu=4)], [vm("x", 3, host="a"), vm("y", 3, host="b")])
    moves, blocked = migrate.order(p, {"x": "b", "y": "a"})
    assert moves == [] and {b["vm"] for b in blocked} == {"x", "y"} and "cycle" in blocked[0]["reason"]


def test_consolidation_plan_runs_in_order():
    hs = [host("h%d" % j, cpu=12, memory=49152) for j in range(6)]
    vms = [vm("v%d_%d" % (j, i), 2, 4096, host="h%d" % j) for j in range(6) for i in range(2)]
    p = problem(hs, vms)
    plan = energy.consolidate(p, time_limit=2)
    moves, blocked = migrate.order(p, plan.placement)
    assert blocked == [] and len(moves) == plan.migrations

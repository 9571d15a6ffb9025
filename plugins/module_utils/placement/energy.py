# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Energy-aware placement: a PuLP MILP warm-started from the best greedy plan.

Entry points (the daemon's):

* ``model.parse_problem(json_dict) -> Problem`` (raises ``PlacementInputError``, an ``InvalidInput``);
* ``solve(problem, time_limit=None, max_migrations=None) -> Result``: place every VM;
* ``consolidate(problem, max_migrations, time_limit=None) -> Result``: switch hosts off from the current
  placement with a bounded number of migrations (a dry run);
* ``check.check(problem, result.placement) -> [violation, ...]``: verify before applying anything;
* ``migrate.order(problem, result.placement) -> (moves, blocked)``: the live migrations, in a safe order;
* ``Result.to_json()``: the output of ``siroccod place`` (``cli.main(argv, stdin, stdout)``).

Objective: total power of the online hosts, ``power_idle + (power_max -
power_idle) * cpu utilisation`` each, plus ``migration_cost`` per VM moved
away from its current host; ``max_migrations`` caps the moves.

The MILP (one binary ``x[k, j]`` per item and allowed host, ``y[j]`` per host)::

    min  sum_j idle_j y_j + sum_kj (cpu_k slope_j + migration_cost moves_kj) x_kj
    s.t. sum_j x_kj = 1                 every item placed once
         sum_k cpu_k x_kj <= C_j y_j    and the same for memory
         x_kj <= y_j                    (tightens the relaxation)
         sum_{k in S} x_kj <= y_j       spread S
         x_kj <= sum_{g: j in g} z_ag, sum_g z_ag = 1     among a (one group chosen)
         sum_{j in H} y_j <= amount     max_online
         sum moves_kj x_kj <= budget    max_migrations
         y_j >= y_j'                    identical hosts used in a fixed order (symmetry)

ban / fence / preserve and the gather merge shape the variables instead of
adding rows. CBC runs through ``pulp.PULP_CBC_CMD(timeLimit, gapRel,
warmStart=True, threads=1)``; ``sol_status`` (not ``status``) tells a proven
optimum from a plan found at the time limit.

How the time is spent (``solve``); every step keeps the best plan so far, so
the answer is never worse than the warm start, and any size is answered in
bounded time:

1. Greedy plans: first-fit decreasing, best-fit decreasing, dot-product, and
   with a current placement "keep" (current hosts, new VMs first-fit) and
   "evacuate" (empty the least loaded hosts into the fullest), each followed
   by ``heuristics.evacuate``; then the host-emptying local search
   (localsearch.py) on the cheapest. That is the warm start. Large instances
   skip greedies once 40 % of the time limit is gone.
2. Tiny instances (full MILP of at most ``QUICK_FULL_VARS`` binaries): the
   full MILP, warm-started, which usually proves the optimum at once.
3. Rounds until the deadline, or until a round gains nothing:
   a. a *covering* MILP (up to ``COVER_ITEMS`` VMs): choose, among every host
      content seen so far (greedy plans, randomised restarts, local-search
      swaps), the cheapest set that covers each VM (Monaci & Toth's
      set-covering heuristic for two-constraint bin packing);
   b. the local search again, with tabu escapes when stuck;
   c. *neighbourhood* MILPs: the assignment MILP above on a handful of hosts
      (the emptiest ones plus random ones, plus an idle efficient host when
      hosts differ), everything else fixed, warm-started from the current
      plan. Equal-cost steps are kept only when they concentrate load (a
      tiny rank-weighted term steers the MILP so), which empties hosts over
      later steps; neighbourhoods grow while steps fail.
   This is how 5,000 or 30,000 VMs are handled: the greedies run in
   O(n log m) (segment tree, sorted residuals), and a local-search attempt or
   neighbourhood MILP costs about the same whatever the instance size.
4. Instances small enough (items x candidate hosts <= ``FULL_MILP_VARS``) get
   the full MILP for the time left; besides "hosts = lower bound" only it can
   prove optimality.

The bundled CBC (2.10.3) may crash when its time limit strikes while it
reads a MIP start, and does not watch the clock while it solves its first LP
or processes a MIP start: a watchdog kills it at 1.25 x its limit + 0.5 s. Such a
solve counts as "no better plan" (``cbc_crashes`` in ``stats``).

Status: ``optimal`` (proven: full MILP optimal, or lower bound reached when
the objective is a pure host count), ``feasible`` (a MILP improved the warm
start), ``heuristic`` (the warm start stands: no MILP gain, no time, or PuLP is
not installed), ``infeasible`` (no plan; ``explanations`` say which constraint
and which resource when a necessary condition fails, and say "not proven"
otherwise).
"""

from __future__ import annotations

import os
import random
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ansible_collections.sirocco.cimi.plugins.module_utils.placement import heuristics, localsearch
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.instance import EPS, Instance
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import (
    DEFAULT_TIME_LIMIT,
    Explanation,
    Problem,
    Result,
)

FULL_MILP_VARS = 25000  # x variables allowed in the full MILP
LINK_VARS = 15000  # add x <= y rows up to this many x variables
SUB_TIME = 2.0  # seconds per neighbourhood MILP at most
LARGE_ITEMS = 2000  # above this, greedies are skipped when time runs short
COVER_COLUMNS = 20000  # columns of the covering MILP at most
COVER_ITEMS = 400  # the covering MILP runs on instances up to this many items
TABU_STEPS = 40  # tabu swaps per local-search attempt once plain descent is stuck (rounds only)
HARD_GRACE = 0.5  # seconds past 1.25 x its time limit after which CBC is killed
WRITE_SECONDS_PER_VAR = 3e-5  # PuLP writing the model file, before CBC's clock starts
QUICK_FULL_VARS = 3000  # up to this size the full MILP runs first, and mostly proves the optimum


class SolverUnavailable(RuntimeError):
    """PuLP (or its CBC binary) is missing."""


def _pulp():
    try:
        import pulp  # only this module needs PuLP, and only when a MILP is built
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise SolverUnavailable("the placement optimizer needs PuLP (pip install 'PuLP>=2.8,<4')") from exc
    try:  # PuLP 3.x warns about its 4.0 API; we stay below 4 for the bundled CBC (PULP_CBC_CMD)
        from pulp.v4_migration import set_v4_migration_warnings
        set_v4_migration_warnings(False)
    except ImportError:
        pass
    return pulp


def _cbc(pulp, prob, seconds, gap, gap_abs, warm, kill_at=None):
    """Solve ``prob`` with the bundled CBC, and kill CBC if it overruns its time limit by far.

    CBC does not watch the clock everywhere (the first LP, processing a MIP
    start): a watchdog kills it ``HARD_GRACE`` after 1.25 x its limit, or at
    ``kill_at`` (the caller's own deadline), so every step of the optimizer
    stays bounded; PuLP then raises ``PulpSolverError``, which callers take as
    "no better plan".
    """
    seconds = max(0.2, seconds)
    solver = pulp.PULP_CBC_CMD(timeLimit=seconds, gapRel=gap, gapAbs=gap_abs, warmStart=warm, msg=False, threads=1,
                               timeMode="elapsed")
    with tempfile.TemporaryDirectory(prefix="sirocco-cbc-") as tmp:
        solver.tmpDir = tmp  # its files, hence its command line, name this directory: the watchdog's handle
        done = threading.Event()
        wait = seconds * 1.25 + HARD_GRACE
        if kill_at is not None:
            wait = max(0.1, min(wait, kill_at - time.monotonic()))
        threading.Thread(target=_watchdog, args=(done, tmp, wait), daemon=True).start()
        try:
            prob.solve(solver)
        finally:
            done.set()


def _watchdog(done, tmp, seconds):
    if done.wait(seconds):
        return
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:  # no procfs: nothing to do
        return
    for pid in pids:
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(tmp.encode()) for a in args[1:]):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def milp_available() -> bool:
    try:
        return _pulp().PULP_CBC_CMD(msg=False).available() is not None
    except SolverUnavailable:
        return False


# ---------------------------------------------------------------------------
# the MILP over a sub-problem (or the whole problem)
# ---------------------------------------------------------------------------

class _Milp:
    """Re-place ``items`` (exactly the items now on ``hosts``) onto ``hosts``, the rest of ``pack`` fixed."""

    def __init__(self, pulp, pack, hosts, items, steer=0.0):
        inst = pack.inst
        self.pulp, self.pack, self.hosts, self.items = pulp, pack, hosts, items
        prob = self.prob = pulp.LpProblem("placement", pulp.LpMinimize)
        inside = set(items)
        x = self.x = {}
        by_item = {k: [] for k in items}
        by_host = {j: [] for j in hosts}
        for k in items:
            allowed = inst.allowed[k]
            for j in hosts:
                if (allowed is None or j in allowed) and inst.cpu[k] <= inst.capc[j] + EPS \
                        and inst.mem[k] <= inst.capm[j] + EPS:
                    v = x[k, j] = pulp.LpVariable("x%d_%d" % (k, j), cat="Binary")
                    by_item[k].append((j, v))
                    by_host[j].append((k, v))
        y = self.y = {j: pulp.LpVariable("y%d" % j, cat="Binary") for j in hosts}
        rank = {j: r for r, j in enumerate(hosts)}
        terms = [(y[j], inst.idle[j]) for j in hosts]
        for (k, j), v in x.items():
            cost = inst.item_cost(k, j)
            if steer:  # push load towards the first hosts so that the last ones empty out
                cost += steer * rank[j] * inst.size[k]
            if cost:
                terms.append((v, cost))
        prob += pulp.LpAffineExpression(terms)
        for k in items:
            prob += pulp.LpAffineExpression([(v, 1) for _j, v in by_item[k]]) == 1, "a%d" % k
        link = len(x) <= LINK_VARS
        for j in hosts:
            col = by_host[j]
            prob += pulp.LpAffineExpression([(v, inst.cpu[k]) for k, v in col] + [(y[j], -inst.capc[j])]) <= 0, \
                "c%d" % j
            prob += pulp.LpAffineExpression([(v, inst.mem[k]) for k, v in col] + [(y[j], -inst.capm[j])]) <= 0, \
                "m%d" % j
            if link:
                for k, v in col:
                    prob += v - y[j] <= 0, "l%d_%d" % (k, j)
        for s, ks in enumerate(inst.spreads):
            mine = [k for k in ks if k in inside]
            if len(mine) >= 2:
                for j in hosts:
                    vs = [x[k, j] for k in mine if (k, j) in x]
                    if len(vs) >= 2:
                        prob += pulp.lpSum(vs) - y[j] <= 0, "s%d_%d" % (s, j)
        self.z = {}
        for a, (ks, groups) in enumerate(inst.amongs):
            mine = [k for k in ks if k in inside]
            if not mine:
                continue
            used = {pack.host[k] for k in ks if k not in inside}
            ok = [g for g, hs in enumerate(groups) if used <= hs]
            z = {g: pulp.LpVariable("z%d_%d" % (a, g), cat="Binary") for g in ok}
            self.z[a] = z
            prob += pulp.lpSum(z.values()) == 1, "g%d" % a
            for k in mine:
                for j in hosts:
                    if (k, j) in x:
                        prob += x[k, j] - pulp.lpSum(z[g] for g in ok if j in groups[g]) <= 0, "g%d_%d_%d" % (a, k, j)
        for c, (hs, amount) in enumerate(inst.maxon):
            mine = [j for j in hosts if j in hs]
            if mine:
                outside = pack.online[c] - sum(1 for j in mine if pack.items[j])
                prob += pulp.lpSum(y[j] for j in mine) <= amount - outside, "o%d" % c
        if inst.budget is not None:
            outside = pack.moves - sum(inst.moves(k, pack.host[k]) for k in items if pack.host[k] >= 0)
            mv = [(v, inst.moves(k, j)) for (k, j), v in x.items() if inst.norig[k] and inst.moves(k, j)]
            if mv:
                prob += pulp.LpAffineExpression(mv) <= inst.budget - outside, "budget"
        # symmetry: identical hosts switched on in the order given (the warm start follows that order)
        last = {}
        for j in hosts:
            c = inst.host_class[j]
            if c in last:
                prob += y[last[c]] - y[j] >= 0, "y%d_%d" % (last[c], j)
            last[c] = j

    def warm_start(self):
        pack = self.pack
        for (k, j), v in self.x.items():
            v.setInitialValue(1 if pack.host[k] == j else 0)
        for j, v in self.y.items():
            v.setInitialValue(1 if pack.items[j] else 0)
        for a, z in self.z.items():
            groups = self.pack.inst.amongs[a][1]
            used = {pack.host[k] for k in self.pack.inst.amongs[a][0]}
            chosen = next((g for g in z if used <= groups[g]), None)
            for g, v in z.items():
                v.setInitialValue(1 if g == chosen else 0)

    def solve(self, seconds, gap=1e-6, warm=True, gap_abs=None, kill_at=None):
        pulp = self.pulp
        # writing the model is not counted by CBC's clock: leave it room
        seconds -= WRITE_SECONDS_PER_VAR * len(self.x)
        _cbc(pulp, self.prob, seconds, gap, gap_abs, warm, kill_at)
        self.status, self.sol_status = self.prob.status, self.prob.sol_status
        if self.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
            return None
        out = {}
        for (k, j), v in self.x.items():
            if (v.varValue or 0) > 0.5:
                if k in out:
                    return None
                out[k] = j
        return out if len(out) == len(self.items) else None

    @property
    def proven_optimal(self):
        return self.sol_status == self.pulp.LpSolutionOptimal

    @property
    def proven_infeasible(self):
        # no status when CBC failed or was stopped before answering
        return getattr(self, "status", None) == self.pulp.LpStatusInfeasible


# ---------------------------------------------------------------------------
# set covering over host contents seen so far (Monaci & Toth style)
# ---------------------------------------------------------------------------

class _Pool:
    """Distinct host contents (item sets) per symmetry class: the columns of the covering MILP."""

    def __init__(self, inst, limit=COVER_COLUMNS):
        self.inst, self.limit = inst, limit
        self.cols = {}

    def add_host(self, pack, j):
        items = pack.items[j]
        if not items or len(self.cols) >= 4 * self.limit:
            return
        key = (self.inst.host_class[j], frozenset(items))
        if key not in self.cols:
            inst = self.inst
            self.cols[key] = (inst.idle[j] + sum(inst.item_cost(k, j) for k in items),
                              sum(inst.size[k] for k in items) / inst.hsize[j])

    def add(self, pack):
        for j in range(self.inst.m):
            if pack.items[j]:
                self.add_host(pack, j)


def _cover(pulp, inst, pool, best, seconds, kill_at=None):
    """min cost of host contents covering every item; True if ``best`` was improved (and updated)."""
    current = {(inst.host_class[j], frozenset(best.items[j])) for j in range(inst.m) if best.items[j]}
    for j in range(inst.m):
        pool.add_host(best, j)
    cols = list(pool.cols.items())
    if len(cols) > pool.limit:  # keep the fullest host contents, and the current ones
        cols.sort(key=lambda kv: (kv[0] not in current, -kv[1][1]))
        cols = cols[: pool.limit]
    prob = pulp.LpProblem("cover", pulp.LpMinimize)
    lam = [pulp.LpVariable("p%d" % i, cat="Binary") for i in range(len(cols))]
    prob += pulp.LpAffineExpression([(v, cost) for v, (_key, (cost, _fill)) in zip(lam, cols, strict=True)])
    rows = [[] for _i in range(inst.n)]
    per_class = {}
    for v, ((c, items), _val) in zip(lam, cols, strict=True):
        for k in items:
            rows[k].append((v, 1))
        per_class.setdefault(c, []).append((v, 1))
    for k, row in enumerate(rows):
        if not row:
            return False
        prob += pulp.LpAffineExpression(row) >= 1, "i%d" % k
    for c, row in per_class.items():
        if len(row) > len(inst.classes[c]):
            prob += pulp.LpAffineExpression(row) <= len(inst.classes[c]), "n%d" % c
    for o, (hs, amount) in enumerate(inst.maxon):
        row = [t for c, r in per_class.items() if inst.classes[c][0] in hs for t in r]
        if len(row) > amount:
            prob += pulp.LpAffineExpression(row) <= amount, "o%d" % o
    if inst.budget is not None:
        # an upper bound on the moves: an item covered twice is counted twice
        row = [(v, sum(inst.moves(k, inst.classes[c][0]) for k in items))
               for v, ((c, items), _val) in zip(lam, cols, strict=True)]
        prob += pulp.LpAffineExpression([t for t in row if t[1]]) <= inst.budget, "budget"
    for v, (key, _val) in zip(lam, cols, strict=True):
        v.setInitialValue(1 if key in current else 0)
    base = min((i for i in inst.idle if i > 0), default=1.0)
    seconds -= WRITE_SECONDS_PER_VAR * len(cols)
    _cbc(pulp, prob, max(0.5, seconds), 1e-6, 0.5 * base if inst.pure_hosts else None, True, kill_at)
    if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return False
    chosen = [key for v, (key, _val) in zip(lam, cols, strict=True) if (v.varValue or 0) > 0.5]
    # an item covered twice stays where it costs least; host contents go to hosts of their class
    owner = {}
    for i, (c, items) in enumerate(chosen):
        j = inst.classes[c][0]
        for k in items:
            if k not in owner or inst.item_cost(k, j) < owner[k][1]:
                owner[k] = (i, inst.item_cost(k, j))
    hosts_of = {c: sorted(js, key=lambda j: (not best.items[j], not inst.on[j], j)) for c, js in
                enumerate(inst.classes)}
    used = {}
    target = {}
    for i, (c, _items) in enumerate(chosen):
        if any(owner[k][0] == i for k in _items):
            n = used.get(c, 0)
            used[c] = n + 1
            target[i] = hosts_of[c][n]
    plan = heuristics.Packing(inst)
    for k in sorted(owner, key=lambda k: inst.pin[k] < 0):
        j = target[owner[k][0]]
        if not plan.can(k, j):
            return False
        plan.place(k, j)
    if plan.cost < best.cost - 1e-9 * max(1.0, abs(best.cost)):
        _apply(best, {k: plan.host[k] for k in range(inst.n) if plan.host[k] != best.host[k]} or {})
        return abs(best.cost - plan.cost) <= 1e-6 * max(1.0, abs(plan.cost))
    return False


def _apply(pack, assignment):
    """Move items as ``assignment`` says; False (and nothing changed) if a move breaks a constraint."""
    old = {k: pack.host[k] for k in assignment}
    for k in assignment:
        pack.remove(k)
    done = []
    for k, j in assignment.items():
        if not pack.can(k, j):
            for d in done:
                pack.remove(d)
            for k2, j2 in old.items():
                pack.place(k2, j2)
            return False
        pack.place(k, j)
        done.append(k)
    return old


def _undo(pack, old):
    for k in old:
        pack.remove(k)
    for k, j in old.items():
        pack.place(k, j)


def _fill(inst, pack, j):
    return (inst.wc * pack.lc[j] / inst.capc[j] + inst.wm * pack.lm[j] / inst.capm[j]) / (inst.wc + inst.wm)


def _concentration(inst, pack, hosts):
    return sum(_fill(inst, pack, j) ** 2 for j in hosts)


# ---------------------------------------------------------------------------
# large neighbourhood search
# ---------------------------------------------------------------------------

class _Search:
    def __init__(self, pulp, inst, pack, deadline, rng):
        self.pulp, self.inst, self.pack, self.deadline, self.rng = pulp, inst, pack, deadline, rng
        self.hard_deadline = deadline  # the solve's own deadline: CBC is killed past it
        self.improved = False  # the true objective went down
        self.steps = self.solves = self.crashes = self.gains = 0
        self.hetero = len({(inst.capc[j], inst.capm[j], inst.idle[j], inst.slope[j]) for j in range(inst.m)}) > 1

    def neighbourhood(self, size, max_items):
        inst, pack, rng = self.inst, self.pack, self.rng
        active = [j for j in range(inst.m) if pack.items[j]]
        if not active:
            return []
        active.sort(key=lambda j: _fill(inst, pack, j))
        target = active[int(len(active) * rng.random() ** 3)]
        chosen, count = [target], len(pack.items[target])
        emptiest = iter(active)
        while len(chosen) < min(size, len(active)):
            if rng.random() < 0.5:
                j = next(emptiest, None)
                if j is None:
                    j = rng.choice(active)
            else:
                j = rng.choice(active)
            if j in chosen:
                continue
            if count + len(pack.items[j]) > max_items and len(chosen) >= 2:
                break
            chosen.append(j)
            count += len(pack.items[j])
        if self.hetero or inst.migration_aware():
            idle = [j for j in inst.host_order[: 4 * size] if not pack.items[j]]
            extra = idle[:1] + rng.sample(idle[1:], min(1, len(idle) - 1)) if idle else []
            chosen.extend(extra)
        # fullest first, so the steering term and the symmetry order agree with the warm start
        chosen.sort(key=lambda j: (not pack.items[j], -_fill(inst, pack, j)))
        return chosen

    def step(self, hosts):
        inst, pack = self.inst, self.pack
        items = [k for j in hosts for k in pack.items[j]]
        if not items:
            return False
        base = min((inst.idle[j] for j in hosts if inst.idle[j] > 0), default=1.0)
        steer = 1e-4 * base / (len(hosts) * sum(inst.size[k] for k in items) + 1.0)
        model = _Milp(self.pulp, pack, hosts, items, steer=steer)
        model.warm_start()
        left = self.deadline - time.monotonic()
        if left < 0.1:
            return False
        before, conc = pack.cost, _concentration(inst, pack, hosts)
        self.solves += 1
        try:
            # with a pure host count, stop as soon as no host can be saved (the steering needs no proof)
            out = model.solve(min(SUB_TIME, left), gap_abs=0.5 * base if inst.pure_hosts else None,
                              kill_at=self.hard_deadline)
        except self.pulp.PulpSolverError:
            # the bundled CBC 2.10.3 can crash when its time limit hits while it reads the MIP start
            self.crashes += 1
            return False
        if out is None:
            return False
        changed = {k: j for k, j in out.items() if pack.host[k] != j}
        if not changed:
            return False
        old = _apply(pack, changed)
        if old is False:
            return False
        tol = 1e-9 * max(1.0, abs(before))
        if pack.cost < before - tol:
            self.improved = True
            self.gains += 1
            return True
        if pack.cost <= before + tol and _concentration(inst, pack, hosts) > conc + 1e-9:
            return True
        _undo(pack, old)
        return False

    def run(self):
        """Steps until the deadline; True if every neighbourhood size was tried over and over in vain."""
        inst = self.inst
        size, low, high = 3, 3, 12
        fails = rounds = 0
        while time.monotonic() < self.deadline - 0.1:
            if inst.pure_hosts and self.pack.active <= inst.lb_hosts:
                return False
            hosts = self.neighbourhood(size, max_items=40 + 10 * size)
            self.steps += 1
            if self.step(hosts):
                fails = 0
                rounds = 0
                continue
            fails += 1
            if fails >= 6:
                fails = 0
                size += 1
                if size > min(high, self.pack.active + 1):
                    size = low
                    rounds += 1
                    # every neighbourhood size tried several times over without a gain: give up early
                    if rounds >= 3 and self.pack.active <= high or rounds >= 6:
                        return True
        return False


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------

def solve(problem: Problem, time_limit: float | None = None, max_migrations: int | None = None, seed: int = 0,
          use_milp: bool = True, heuristic_names: Iterable[str] | None = None) -> Result:
    """Place every VM of ``problem``; returns a ``Result`` (status, placement, figures)."""
    start = time.monotonic()
    limit = float(time_limit if time_limit is not None else (problem.time_limit or DEFAULT_TIME_LIMIT))
    deadline = start + limit - min(1.0, 0.05 * limit)  # room for a solver overrunning its limit, and the result
    if max_migrations is not None and max_migrations != problem.max_migrations:
        problem = Problem(problem.hosts, problem.vms, problem.constraints, problem.migration_cost,
                          problem.time_limit, max_migrations)
    inst = Instance(problem)
    notes = []
    if inst.explanations:
        return _infeasible(inst, start, inst.explanations, proven=True)

    pulp: Any = None  # the pulp module, once it imports
    if use_milp:
        try:
            pulp = _pulp()
        except SolverUnavailable as exc:
            notes.append(str(exc))
    pool = _Pool(inst) if pulp is not None and not inst.amongs and inst.n <= COVER_ITEMS else None

    # 1. greedy plans
    names = list(heuristic_names or ("ffd", "bfd", "dot"))
    if inst.has_current and heuristic_names is None:
        # from-scratch greedies move nearly every VM: useless under a migration budget
        names = ["keep", "evacuate", "evacuate-count"] + (names if inst.budget is None else [])
    best_name: Any  # a str once best is set
    best, best_name, failures = None, None, []
    for name in names:
        if best is not None and inst.n > LARGE_ITEMS and time.monotonic() - start > 0.4 * limit:
            notes.append("greedy '%s' skipped for time" % name)
            continue
        pack, err = heuristics.run(inst, name, deadline)
        if pack is None:
            failures.append(err)
            continue
        heuristics.evacuate(pack, deadline, by_count=inst.budget is not None)
        if pool is not None:
            pool.add(pack)
        if best is None or pack.cost < best.cost - 1e-9:
            best, best_name = pack, name
    if best is None:
        return _no_greedy_plan(inst, start, deadline, pulp, failures, notes)
    clock = {"greedy": time.monotonic() - start}
    best = best.copy()
    rng = random.Random(seed)
    on_bin = (lambda j: pool.add_host(best, j)) if pool is not None else None  # type: ignore[union-attr]
    floor = inst.lb_hosts if inst.pure_hosts else 0  # a pure host count cannot go below the bound
    if localsearch.repack(best, start + 0.3 * limit, rng, on_bin=on_bin, floor=floor):
        best_name += "+ls"
    warm = best.cost
    status, method = "heuristic", best_name
    clock["local search"] = time.monotonic() - start
    stats: dict[str, Any] = {"clock": clock}
    if inst.pure_hosts and best.active <= inst.lb_hosts:
        return _result(inst, best, "optimal", start, best_name + " (lower bound reached)", warm, notes, stats)
    if pulp is None:
        return _result(inst, best, "heuristic", start, best_name, warm, notes, stats)

    # 2. tiny instances: the full MILP, warm-started, usually proves the optimum at once
    size = _full_size(inst, best)
    stats.update(cover_gains=0, cover_runs=0, cbc_crashes=0)
    if size <= QUICK_FULL_VARS:
        improved, proven = _full(pulp, inst, best, min(deadline, time.monotonic() + max(1.0, 0.3 * limit)), stats)
        if proven:
            method = best_name + ("+full" if improved else "")
            return _result(inst, best, "optimal", start, method + " (milp proved)", warm, notes, stats)

    # 3. covering MILP over the host contents seen, local search and neighbourhood MILPs, in turn
    small = size <= FULL_MILP_VARS
    now = time.monotonic()
    phase_end = now + 0.85 * (deadline - now) if small else deadline
    search = _Search(pulp, inst, best, phase_end, rng)
    search.hard_deadline = deadline
    idle = 0
    while time.monotonic() < phase_end - 0.2:
        before = best.cost
        if pool is not None:
            for _i in range(4):  # diversify the columns with randomised greedy plans
                pack, _err = (heuristics.first_fit_decreasing_packing if rng.random() < 0.5 else
                              heuristics.best_fit_decreasing_packing)(inst, rng, 0.3)
                if pack is not None:
                    localsearch.repack(pack, min(phase_end, time.monotonic() + 0.05 * limit), rng, patience=10,
                                       on_bin=lambda j, p=pack, q=pool: q.add_host(p, j))
                    pool.add(pack)
            stats["cover_runs"] += 1
            t = time.monotonic()
            allowed = min(phase_end - t, max(1.0, 0.2 * limit))
            try:
                if _cover(pulp, inst, pool, best, allowed, kill_at=deadline):
                    stats["cover_gains"] += 1
            except pulp.PulpSolverError:
                stats["cbc_crashes"] += 1
            took = time.monotonic() - t
            clock["cover seconds"] = clock.get("cover seconds", 0.0) + took
            if took > 2 * allowed + 1.0:
                # CBC does not watch the clock while it solves the first LP; a slow one is not retried
                notes.append("covering MILP dropped: its first LP took %.1f s" % took)
                pool = on_bin = None
            if inst.pure_hosts and best.active <= inst.lb_hosts:
                break
        localsearch.repack(best, min(phase_end, time.monotonic() + max(1.0, 0.25 * limit)), rng, on_bin=on_bin,
                           tabu_steps=TABU_STEPS, floor=floor)
        if inst.pure_hosts and best.active <= inst.lb_hosts:
            break
        search.deadline = min(phase_end, time.monotonic() + max(1.0, 0.1 * limit))
        gave_up = search.run()
        if inst.pure_hosts and best.active <= inst.lb_hosts:
            break
        idle = 0 if best.cost < before - 1e-9 * max(1.0, abs(before)) else idle + 1
        if idle >= 3 or (gave_up and idle >= 2):
            break
    clock["rounds"] = time.monotonic() - start
    stats.update(lns_steps=search.steps, lns_gains=search.gains)
    stats["cbc_crashes"] += search.crashes
    if best.cost < warm - 1e-9 * max(1.0, abs(warm)):
        status, method = "feasible", best_name + "+milp"
    if inst.pure_hosts and best.active <= inst.lb_hosts:
        return _result(inst, best, "optimal", start, method + " (lower bound reached)", warm, notes, stats)
    if small and deadline - time.monotonic() > 1.5:
        improved, proven = _full(pulp, inst, best, deadline, stats)
        if improved:
            status, method = "feasible", method + "+full"
        if proven:
            status, method = "optimal", method + " (milp proved)"
    return _result(inst, best, status, start, method, warm, notes, stats)


def consolidate(problem: Problem, max_migrations: int | None = None, time_limit: float | None = None,
                seed: int = 0) -> Result:
    """Switch hosts off from the current placement, moving at most ``max_migrations`` VMs.

    Moves that save little are not made: when ``problem.migration_cost`` is 0,
    each move is charged 1 % of the mean idle power (a host switched off is
    worth about a hundred migrations).
    The plan reports ``migrations`` and ``switch_off``; it is a dry run, the
    caller executes it (live migrations) after ``check.check`` passes.
    """
    if not any(v.host for v in problem.vms):
        raise ValueError("consolidation needs a current placement (vms with 'host')")
    cost = problem.migration_cost
    if not cost:  # a host switched off is worth about a hundred migrations
        idle = [h.power_idle for h in problem.hosts if h.power_idle > 0]
        cost = 0.01 * (sum(idle) / len(idle) if idle else 1.0)
    budget = max_migrations if max_migrations is not None else problem.max_migrations
    sub = Problem(problem.hosts, problem.vms, problem.constraints, cost, problem.time_limit, budget)
    res = solve(sub, time_limit=time_limit, seed=seed)
    if res.found and not problem.migration_cost:
        res.objective = res.power_watts
    return res


def explain(problem: Problem) -> list[Explanation]:
    """Reasons (constraint, resource) a request is infeasible that show without searching."""
    return Instance(problem).explanations


def lower_bound(problem: Problem) -> int:
    """Fewest hosts any plan needs: max over cpu and memory of the hosts whose capacity covers the demand
    (largest first; = ceil(demand / capacity) for identical hosts), raised by spread groups, preserved hosts
    and items larger than half a host."""
    return Instance(problem).lb_hosts


def power(problem: Problem, placement: Mapping[str, str]) -> float:

    """Watts drawn by ``placement`` (online hosts only)."""
    hosts = {h.name: h for h in problem.hosts}
    load: dict[str, float] = {}
    for v in problem.vms:
        load[placement[v.name]] = load.get(placement[v.name], 0.0) + v.cpu
    return sum(hosts[h].power_idle + (hosts[h].power_max - hosts[h].power_idle) * c / hosts[h].cpu_capacity
               for h, c in load.items())


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def _full(pulp, inst, best, deadline, stats):
    """The full MILP warm-started from ``best`` until ``deadline``; (improved best?, proven optimal?)."""
    hosts = _full_hosts(inst, best)
    pinned = _clique_pins(inst, best)
    if pinned:
        hosts = list(pinned.values()) + [j for j in hosts if j not in set(pinned.values())]
    model = _Milp(pulp, best, hosts, list(range(inst.n)))
    for k, j in pinned.items():
        model.prob += model.x[k, j] == 1, "pin%d" % k
    model.warm_start()
    left = deadline - time.monotonic() - 0.2
    if left < 0.5:  # CBC needs a moment to read the model; too short a limit is not worth it
        return False, False
    try:
        out = model.solve(left, kill_at=deadline)
    except pulp.PulpSolverError:
        stats["cbc_crashes"] = stats.get("cbc_crashes", 0) + 1
        return False, False
    improved = False
    if out is not None:
        before = best.cost
        old = _apply(best, {k: j for k, j in out.items() if best.host[k] != j})
        if old is not False and best.cost > before + 1e-9 * max(1.0, before):
            _undo(best, old)  # never worse than what we had
        elif old is not False and best.cost < before - 1e-9 * max(1.0, before):
            improved = True
    # proven only if the plan we keep is the MILP's optimum
    proven = out is not None and model.proven_optimal and \
        best.cost <= model.prob.objective.value() + 1e-6 * max(1.0, abs(best.cost))
    return improved, proven


def _clique_pins(inst, pack):
    """Items of the conflict clique pinned to the hosts they occupy in ``pack``, listed first.

    Only when every host is interchangeable (one symmetry class): then any plan can be relabelled so
    that the clique's items sit on those hosts and the hosts in use come first, so the pins cut no
    optimum off, yet they remove most of the symmetry that keeps CBC from closing the gap."""
    if len(inst.classes) != 1 or len(inst.clique) < 2:
        return {}
    return {k: pack.host[k] for k in inst.clique}


def _full_hosts(inst, pack):
    """Hosts of the full MILP: all online ones, plus idle ones per symmetry class up to what could pay off."""
    dyn = sum(inst.cpu) * min(inst.slope, default=0.0)
    budget = pack.cost - dyn
    chosen = []
    for js in inst.classes:
        on = [j for j in js if pack.items[j]]
        off = [j for j in js if not pack.items[j]]
        idle = inst.idle[js[0]]
        cap = inst.n if idle <= 0 else min(inst.n, int(budget / idle + 1e-9))
        on.sort(key=lambda j: -_fill(inst, pack, j))
        chosen.extend(on + off[: max(0, cap - len(on))])
    return chosen


def _full_size(inst, pack):
    hosts = _full_hosts(inst, pack)
    total = 0
    for k in range(inst.n):
        a = inst.allowed[k]
        total += len(hosts) if a is None else sum(1 for j in hosts if j in a)
    return total


def _result(inst, pack, status, start, method, warm, notes, stats=None):
    placement = pack.placement()
    watts = float(sum(inst.idle[j] + inst.slope[j] * pack.lc[j] for j in range(inst.m) if pack.items[j]))
    lb = inst.lb_hosts
    return Result(
        status=status, placement=placement, active_hosts=pack.active, power_watts=watts, migrations=pack.moves,
        lower_bound_hosts=lb, gap=(pack.active - lb) / lb if lb else 0.0,
        solve_seconds=time.monotonic() - start,
        switch_on=sorted(inst.host_names[j] for j in range(inst.m) if pack.items[j] and not inst.on[j]),
        switch_off=sorted(inst.host_names[j] for j in range(inst.m) if not pack.items[j] and inst.on[j]),
        method=method, warm_start=warm, objective=pack.cost, notes=notes, stats=stats or {})


def _infeasible(inst, start, explanations, proven, notes=()):
    head = explanations[0].message if explanations else "no plan found"
    reason = head if proven else "no plan found (not proven infeasible): %s" % head
    return Result(status="infeasible", lower_bound_hosts=inst.lb_hosts, solve_seconds=time.monotonic() - start,
                  reason=reason, explanations=list(explanations), notes=list(notes))


def _no_greedy_plan(inst, start, deadline, pulp, failures, notes):
    """Every greedy failed: let the full MILP decide when the instance is small enough."""
    fail = [f for f in failures if f is not None]
    if pulp is not None and inst.n * inst.m <= FULL_MILP_VARS and deadline - time.monotonic() > 0.3:
        empty = heuristics.Packing(inst)
        out = None
        for _attempt in range(2):  # a second chance when CBC died without an answer and time remains
            model = _Milp(pulp, empty, list(range(inst.m)), list(range(inst.n)))
            # the model re-places items "now on" the hosts; none are placed yet, which is what we want here
            try:
                out = model.solve(deadline - time.monotonic() - 0.1, warm=False, kill_at=deadline)
            except pulp.PulpSolverError:
                notes.append("CBC stopped without an answer")
                out = None
            if out is not None or model.proven_infeasible or deadline - time.monotonic() < 1.0:
                break
        if out is not None:
            pack = heuristics.Packing(inst)
            for k, j in out.items():
                if not pack.can(k, j):
                    out = None
                    break
                pack.place(k, j)
            if out is not None:
                status = "optimal" if model.proven_optimal else "feasible"
                return _result(inst, pack, status, start, "milp (greedy failed)", None, notes)
        if model.proven_infeasible:
            msg = Explanation("the MILP proves that no plan meets all constraints together; the greedy placement "
                              "stopped at: " + (fail[0].message if fail else "?"),
                              fail[0].constraint if fail else None, fail[0].index if fail else None,
                              fail[0].resource if fail else None)
            return _infeasible(inst, start, [msg] + fail[:1], proven=True, notes=notes)
    return _infeasible(inst, start, fail or [Explanation("no plan found within the time limit")], proven=False,
                       notes=notes)

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Greedy placements: first-fit decreasing, best-fit decreasing, dot-product.

All three honour every constraint as they go (allowed hosts from ban / fence /
preserve / among, spread, the among group chosen by the first VM placed,
max_online when a host would be switched on, the migration budget) and fail
honestly, naming the VM that found no host and why each host refused it.

``Packing`` is the mutable assignment they build; the optimizer (energy.py)
reuses it for its warm start and its neighbourhood search. Two indexes keep
large instances fast: a segment tree of residual capacities in host order
(first fit in O(log m) when capacity is what decides), and a list of online
hosts sorted by weighted residual capacity (best fit by bisection; the scan is
capped at ``SCAN`` candidates on large instances, then first fit decides).

Items are the VMs after merging gathered ones; hosts are tried in the order
of ``Instance.host_order`` (cheapest watts per unit of capacity when full).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass

from ansible_collections.sirocco.cimi.plugins.module_utils.placement.instance import EPS, Instance
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import Explanation

SCAN = 64  # best-fit candidates examined before falling back to first fit, on large instances
EXACT_SCAN = 400  # below this many online hosts best fit examines them all


class Packing:
    """An assignment of items to hosts, with the bookkeeping every constraint check needs."""

    def __init__(self, inst: Instance, tree=False, index=False):
        self.inst = inst
        n, m = inst.n, inst.m
        self.host = [-1] * n
        self.lc = [0.0] * m
        self.lm = [0.0] * m
        self.items = [set() for _i in range(m)]
        self.spread_on = [set() for _i in range(m)] if inst.spreads else None
        self.among_use = [{} for _i in inst.amongs]
        self.among_ok = [set(range(len(groups))) for _ks, groups in inst.amongs]
        self.online = [0] * len(inst.maxon)
        self.active = 0
        self.moves = 0
        self.cost = 0.0  # power + migration cost, kept up to date
        self.tree = _Tree(self) if tree else None
        self.index = _Index(self) if index else None

    def copy(self):
        other = Packing(self.inst)
        other.place_all(self.host)
        return other

    def place_all(self, hosts):
        for k, j in enumerate(hosts):
            if j >= 0:
                self.place(k, j)

    def placement(self):
        """{vm name: host name} of the placed VMs."""
        inst = self.inst
        return {inst.vm_names[i]: inst.host_names[self.host[k]]
                for k, mem in enumerate(inst.members) if self.host[k] >= 0 for i in mem}

    # -- feasibility ---------------------------------------------------------
    def can(self, k, j):
        """Whether unplaced item ``k`` may go on host ``j`` now."""
        inst = self.inst
        if self.lc[j] + inst.cpu[k] > inst.capc[j] + EPS or self.lm[j] + inst.mem[k] > inst.capm[j] + EPS:
            return False
        return self.can_besides_capacity(k, j)

    def can_besides_capacity(self, k, j):
        inst = self.inst
        if inst.constrained[k]:
            allowed = inst.allowed[k]
            if allowed is not None and j not in allowed:
                return False
            if self.spread_on is not None:
                on = self.spread_on[j]
                for s in inst.item_spreads[k]:
                    if s in on:
                        return False
            for a in inst.item_amongs[k]:
                groups = inst.amongs[a][1]
                if not any(j in groups[g] for g in self.among_ok[a]):
                    return False
        if not self.items[j]:
            for c in inst.host_maxon[j]:
                if self.online[c] >= inst.maxon[c][1]:
                    return False
        if inst.budget is not None and inst.norig[k]:
            if self.moves + inst.norig[k] - inst.orig[k].get(j, 0) > inst.budget:
                return False
        return True

    # -- changes -------------------------------------------------------------
    def place(self, k, j):
        inst = self.inst
        self.host[k] = j
        items = self.items[j]
        if not items:
            self.active += 1
            self.cost += inst.idle[j]
            for c in inst.host_maxon[j]:
                self.online[c] += 1
        items.add(k)
        self.lc[j] += inst.cpu[k]
        self.lm[j] += inst.mem[k]
        mv = inst.norig[k] - inst.orig[k].get(j, 0) if inst.norig[k] else 0
        self.moves += mv
        self.cost += inst.cpu[k] * inst.slope[j] + inst.mig_cost * mv
        if self.spread_on is not None:
            self.spread_on[j].update(inst.item_spreads[k])
        for a in inst.item_amongs[k]:
            use = self.among_use[a]
            use[j] = use.get(j, 0) + 1
            groups = inst.amongs[a][1]
            self.among_ok[a] = {g for g in self.among_ok[a] if j in groups[g]}
        if self.tree is not None:
            self.tree.update(j)
        if self.index is not None:
            self.index.update(j)

    def remove(self, k):
        inst = self.inst
        j = self.host[k]
        self.host[k] = -1
        items = self.items[j]
        items.discard(k)
        self.lc[j] -= inst.cpu[k]
        self.lm[j] -= inst.mem[k]
        if not items:
            self.active -= 1
            self.cost -= inst.idle[j]
            self.lc[j] = self.lm[j] = 0.0  # no drift on empty hosts
            for c in inst.host_maxon[j]:
                self.online[c] -= 1
        mv = inst.norig[k] - inst.orig[k].get(j, 0) if inst.norig[k] else 0
        self.moves -= mv
        self.cost -= inst.cpu[k] * inst.slope[j] + inst.mig_cost * mv
        if self.spread_on is not None:
            self.spread_on[j].difference_update(inst.item_spreads[k])
        for a in inst.item_amongs[k]:
            use = self.among_use[a]
            use[j] -= 1
            if not use[j]:
                del use[j]
            groups = inst.amongs[a][1]
            self.among_ok[a] = {g for g, hs in enumerate(groups) if all(h in hs for h in use)}
        if self.tree is not None:
            self.tree.update(j)
        if self.index is not None:
            self.index.update(j)
        return j

    def recompute_cost(self):
        """The objective from scratch (to check the incremental one)."""
        inst = self.inst
        cost = sum(inst.idle[j] for j in range(inst.m) if self.items[j])
        for k, j in enumerate(self.host):
            if j >= 0:
                cost += inst.item_cost(k, j)
        return cost

    # -- searches ------------------------------------------------------------
    def first_fit(self, k):
        """First host in host order that takes item ``k``, or -1."""
        inst = self.inst
        if self.tree is not None and inst.allowed[k] is None:
            return self.tree.first(k)
        for j in (inst.host_order if inst.allowed[k] is None else inst.allowed_order(k)):
            if self.can(k, j):
                return j
        return -1

    def best_fit(self, k, exclude=-1, scan=None, wide=False):
        """The online host left with the least (weighted) room after taking ``k``, or -1.

        On large instances only the ``SCAN`` tightest candidates are tried; ``wide``
        then also tries ``SCAN`` more spread over the roomier ones (one dimension
        may be short on the tightest)."""
        idx = self.index
        keys = idx.keys
        size = self.inst.size[k] - 1e-12
        start = bisect.bisect_left(keys, (size, -1))
        if scan is None:
            scan = len(keys) if len(keys) <= EXACT_SCAN else SCAN
        positions = range(start, min(len(keys), start + scan))
        if wide and start + scan < len(keys):
            step = max(1, (len(keys) - start - scan) // SCAN)
            positions = list(positions) + list(range(start + scan, len(keys), step))
        for pos in positions:
            j = keys[pos][1]
            if j != exclude and self.can(k, j):
                return j
        return -1

    def why_not(self, k):
        """Why no host takes item ``k``: an Explanation naming constraints and resources."""
        inst = self.inst
        counts = {}

        def note(key):
            counts[key] = counts.get(key, 0) + 1

        for j in range(inst.m):
            allowed = inst.allowed[k]
            if allowed is not None and j not in allowed:
                note(("not allowed (ban / fence / preserve / among)", None, None))
                continue
            hit = False
            if self.spread_on is not None:
                for s in inst.item_spreads[k]:
                    if s in self.spread_on[j]:
                        note(("already run a VM of spread constraints[%d]" % inst.spread_index[s], "spread",
                              inst.spread_index[s]))
                        hit = True
                        break
            if hit:
                continue
            for a in inst.item_amongs[k]:
                groups = inst.amongs[a][1]
                if not any(j in groups[g] for g in self.among_ok[a]):
                    note(("are outside the group chosen for among constraints[%d]" % inst.among_index[a], "among",
                          inst.among_index[a]))
                    hit = True
                    break
            if hit:
                continue
            if not self.items[j]:
                full = [c for c in inst.host_maxon[j] if self.online[c] >= inst.maxon[c][1]]
                if full:
                    ci = inst.maxon_index[full[0]]
                    note(("would exceed max_online constraints[%d]" % ci, "max_online", ci))
                    continue
            if self.lc[j] + inst.cpu[k] > inst.capc[j] + EPS:
                note(("lack cpu", "cpu", None))
            elif self.lm[j] + inst.mem[k] > inst.capm[j] + EPS:
                note(("lack memory", "memory", None))
            else:
                note(("would exceed max_migrations", "migrations", None))
        parts = ["%d %s" % (v, key[0]) for key, v in sorted(counts.items(), key=lambda kv: -kv[1])]
        top = max(counts.items(), key=lambda kv: kv[1])[0] if counts else (None, None, None)
        resource = top[1] if top[1] in ("cpu", "memory", "migrations") else ("hosts" if top[1] else None)
        constraint = top[1] if top[1] in ("spread", "among", "max_online") else (
            "capacity" if top[1] in ("cpu", "memory") else None)
        return Explanation("%s (cpu %g, memory %g) found no host: of %d hosts, %s" % (
            inst.item_label(k), inst.cpu[k], inst.mem[k], inst.m, ", ".join(parts) or "none exist"),
            constraint, top[2], resource)


class _Tree:
    """Max residual cpu / memory over ranges of hosts in host order (segment tree)."""

    def __init__(self, pack):
        self.pack = pack
        inst = pack.inst
        size = 1
        while size < max(inst.m, 1):
            size *= 2
        self.size = size
        self.rc = [-1.0] * (2 * size)
        self.rm = [-1.0] * (2 * size)
        for r, j in enumerate(inst.host_order):
            self.rc[size + r] = inst.capc[j] - pack.lc[j]
            self.rm[size + r] = inst.capm[j] - pack.lm[j]
        for node in range(size - 1, 0, -1):
            self.rc[node] = max(self.rc[2 * node], self.rc[2 * node + 1])
            self.rm[node] = max(self.rm[2 * node], self.rm[2 * node + 1])

    def update(self, j):
        inst, pack = self.pack.inst, self.pack
        rc, rm = self.rc, self.rm
        node = self.size + inst.host_rank[j]
        rc[node] = inst.capc[j] - pack.lc[j]
        rm[node] = inst.capm[j] - pack.lm[j]
        node >>= 1
        while node:
            a, b = 2 * node, 2 * node + 1
            rc[node] = rc[a] if rc[a] > rc[b] else rc[b]
            rm[node] = rm[a] if rm[a] > rm[b] else rm[b]
            node >>= 1

    def first(self, k):
        pack, inst = self.pack, self.pack.inst
        c, x = inst.cpu[k] - EPS, inst.mem[k] - EPS
        rc, rm, size, order = self.rc, self.rm, self.size, inst.host_order
        stack = [1]
        while stack:
            node = stack.pop()
            if rc[node] < c or rm[node] < x:
                continue
            if node >= size:
                j = order[node - size]
                if pack.can_besides_capacity(k, j):
                    return j
                continue
            stack.append(2 * node + 1)
            stack.append(2 * node)
        return -1


class _Index:
    """Online hosts sorted by weighted residual capacity (fullest first)."""

    def __init__(self, pack):
        self.pack = pack
        self.keys = []
        self.key = [None] * pack.inst.m
        for j in range(pack.inst.m):
            if pack.items[j]:
                self.update(j)

    def update(self, j):
        inst, pack = self.pack.inst, self.pack
        old = self.key[j]
        if old is not None:
            pos = bisect.bisect_left(self.keys, old)
            del self.keys[pos]
            self.key[j] = None
        if pack.items[j]:
            new = (inst.wc * (inst.capc[j] - pack.lc[j]) / inst.refc + inst.wm * (inst.capm[j] - pack.lm[j])
                   / inst.refm, j)
            bisect.insort(self.keys, new)
            self.key[j] = new


# ---------------------------------------------------------------------------
# the heuristics
# ---------------------------------------------------------------------------

def _order(inst, rng=None, noise=0.0):
    """Items to place: pinned first, then constrained ones, then by decreasing weighted size.

    With ``rng``, sizes are blurred by up to +-``noise`` (randomised restarts)."""
    if rng is None:
        size = inst.size
    else:
        size = [s * (1.0 + noise * (2.0 * rng.random() - 1.0)) for s in inst.size]
    return sorted(range(inst.n), key=lambda k: (inst.pin[k] < 0, not inst.constrained[k], -size[k], k))


def _place_pinned(pack):
    inst = pack.inst
    for k in range(inst.n):
        if inst.pin[k] >= 0:
            if not pack.can(k, inst.pin[k]):
                return pack.why_not(k)
            pack.place(k, inst.pin[k])
    return None


def _with_among_retries(inst, build):
    """Run a greedy; if an among group chosen greedily blocks a VM, retry with other groups forced."""
    pack, err = build(None)
    if pack is not None or not inst.amongs:
        return pack, err
    for a, (_ks, groups) in enumerate(inst.amongs):
        for g in range(len(groups)):
            pack2, _err = build({a: g})
            if pack2 is not None:
                return pack2, None
    return None, err


def _start(inst, forced, tree=False, index=False):
    pack = Packing(inst, tree=tree, index=index)
    if forced:
        for a, g in forced.items():
            pack.among_ok[a] = {g}
    return pack


def first_fit_decreasing_packing(inst, rng=None, noise=0.0):
    def build(forced):
        pack = _start(inst, forced, tree=True)
        err = _place_pinned(pack)
        if err:
            return None, err
        for k in _order(inst, rng, noise):
            if pack.host[k] >= 0:
                continue
            j = pack.first_fit(k)
            if j < 0:
                return None, pack.why_not(k)
            pack.place(k, j)
        return pack, None
    return _with_among_retries(inst, build)


def best_fit_decreasing_packing(inst, rng=None, noise=0.0):
    def build(forced):
        pack = _start(inst, forced, tree=True, index=True)
        err = _place_pinned(pack)
        if err:
            return None, err
        for k in _order(inst, rng, noise):
            if pack.host[k] >= 0:
                continue
            j = pack.best_fit(k)
            if j < 0:
                j = pack.first_fit(k)
            if j < 0:
                return None, pack.why_not(k)
            pack.place(k, j)
        return pack, None
    return _with_among_retries(inst, build)


def dot_product_packing(inst, deadline=None):
    """Bin-centric: fill one host at a time with the item best aligned with its residual capacity."""
    def build(forced):
        pack = _start(inst, forced)
        err = _place_pinned(pack)
        if err:
            return None, err
        buckets = _buckets(inst, [k for k in _order(inst) if pack.host[k] < 0])
        hosts = [j for j in inst.host_order if pack.items[j]] + [j for j in inst.host_order if not pack.items[j]]
        left = sum(len(b) for b in buckets)
        for j in hosts:
            if not left:
                break
            if deadline is not None and time.monotonic() > deadline:
                return None, Explanation("dot-product stopped at the time limit")
            capc, capm = inst.capc[j], inst.capm[j]
            wc, wm = inst.wc / (capc * capc), inst.wm / (capm * capm)
            while True:
                rc, rm = capc - pack.lc[j] + EPS, capm - pack.lm[j] + EPS
                best, best_score, best_b = -1, -1.0, None
                for b in buckets:
                    if not b or b[-1][1] > rc or b[-1][2] > rm:
                        continue  # empty, or even its smallest item does not fit
                    if not pack.can_besides_capacity(b[0][0], j):
                        continue  # same signature: same verdict for every item of the bucket
                    for pos, (_k, c, x) in enumerate(b):
                        if c <= rc and x <= rm:
                            score = wc * c * rc + wm * x * rm
                            if score > best_score:
                                best, best_score, best_b = pos, score, b
                            break
                if best_b is None:
                    break
                k = best_b.pop(best)[0]
                pack.place(k, j)
                left -= 1
        if left:
            k = next(b[0][0] for b in buckets if b)
            return None, pack.why_not(k)
        return pack, None
    return _with_among_retries(inst, build)


def _buckets(inst, ks, limit=512):
    """Group items that behave alike (same constraints, similar size), largest first within a group."""
    def signature(k):
        # the current hosts matter to the verdict only through the migration budget
        return (inst.allowed[k], tuple(inst.item_spreads[k]), tuple(inst.item_amongs[k]),
                inst.budget is not None and inst.norig[k] and tuple(sorted(inst.orig[k].items())))

    def group(q):
        out = {}
        for k in ks:
            key = (signature(k), inst.cpu[k], inst.mem[k]) if q is None else (
                signature(k), round(inst.cpu[k] / inst.refc * q), round(inst.mem[k] / inst.refm * q))
            out.setdefault(key, []).append((k, inst.cpu[k], inst.mem[k]))
        return out

    groups = group(None)
    q = 32
    while len(groups) > limit and q >= 2:
        groups = group(q)
        q //= 2
    out = []
    for items in groups.values():
        items.sort(key=lambda t: (-(inst.size[t[0]]), t[0]))
        out.append(items)
    return out


def keep_packing(inst):
    """The current placement, where still allowed and fitting; the rest first-fit."""
    pack = Packing(inst, tree=True)
    err = _place_pinned(pack)
    if err:
        return None, err
    for k in sorted(range(inst.n), key=lambda k: -inst.size[k]):
        if pack.host[k] < 0 and inst.norig[k]:
            j = max(inst.orig[k].items(), key=lambda kv: (kv[1], -kv[0]))[0]
            if pack.can(k, j):
                pack.place(k, j)
    for k in _order(inst):
        if pack.host[k] < 0:
            j = pack.first_fit(k)
            if j < 0:
                return None, pack.why_not(k)
            pack.place(k, j)
    return pack, None


def evacuate(pack, deadline=None, by_count=False):
    """Consolidation greedy: empty the least loaded hosts into the fullest ones that take their VMs.

    A host is emptied only if all its VMs find room elsewhere and the objective
    (power + migration cost) drops; the migration budget is enforced by ``can``.
    ``by_count`` empties the hosts with the fewest VMs first (fewest migrations
    per host switched off, for a tight budget).
    """
    inst = pack.inst
    if pack.index is None:
        pack.index = _Index(pack)

    def load(j):
        return inst.wc * pack.lc[j] / inst.refc + inst.wm * pack.lm[j] / inst.refm

    order = sorted((j for j in range(inst.m) if pack.items[j]),
                   key=lambda j: (len(pack.items[j]), load(j)) if by_count else (load(j), len(pack.items[j])))
    for h in order:
        if deadline is not None and time.monotonic() > deadline:
            break
        ks = sorted(pack.items[h], key=lambda k: -inst.size[k])
        if not ks or any(inst.pin[k] == h for k in ks):
            continue
        before = pack.cost
        moved = []
        for k in ks:
            pack.remove(k)
            j = pack.best_fit(k, exclude=h, wide=True)
            if j < 0:
                pack.place(k, h)
                break
            pack.place(k, j)
            moved.append(k)
        else:
            if pack.cost < before - 1e-9:
                continue
        for k in moved:  # undo
            pack.remove(k)
            pack.place(k, h)
    return pack


# ---------------------------------------------------------------------------
# public entry points (on a Problem)
# ---------------------------------------------------------------------------

@dataclass
class HeuristicPlan:
    name: str
    placement: dict | None  # None: the heuristic found no plan
    cost: float | None = None
    explanation: Explanation | None = None


HEURISTICS = {
    "ffd": first_fit_decreasing_packing,
    "bfd": best_fit_decreasing_packing,
    "dot": dot_product_packing,
}


def run(inst, name, deadline=None):
    """Run greedy ``name`` on an Instance: (Packing, None) or (None, Explanation)."""
    if inst.explanations:
        # the instance is infeasible as stated (e.g. spread over VMs a gather puts together): a greedy must not
        # come back with a plan that breaks a constraint it does not itself check
        return None, inst.explanations[0]
    if name == "keep":
        return keep_packing(inst)
    if name in ("evacuate", "evacuate-count"):
        pack, err = keep_packing(inst)
        return (evacuate(pack, deadline, name == "evacuate-count"), None) if pack is not None else (None, err)
    build = (lambda: dot_product_packing(inst, deadline)) if name == "dot" else (lambda: HEURISTICS[name](inst))
    pack, err = build()
    if pack is None and inst.maxon:
        # capped online hosts: the largest hosts first may succeed where the cheapest first did not
        order, rank = inst.host_order, inst.host_rank
        inst.host_order = sorted(range(inst.m), key=lambda j: (-inst.hsize[j], rank[j]))
        inst.host_rank = [0] * inst.m
        for r, j in enumerate(inst.host_order):
            inst.host_rank[j] = r
        try:
            pack2, _err = build()
        finally:
            inst.host_order, inst.host_rank = order, rank
        if pack2 is not None:
            pack2.tree = None  # built on the other order
            return pack2, None
    return pack, err


def _plan(problem, name):
    inst = Instance(problem)
    pack, err = run(inst, name)
    if pack is None:
        return HeuristicPlan(name, None, None, err)
    return HeuristicPlan(name, pack.placement(), pack.cost)


def first_fit_decreasing(problem):
    return _plan(problem, "ffd")


def best_fit_decreasing(problem):
    return _plan(problem, "bfd")


def dot_product(problem):
    return _plan(problem, "dot")

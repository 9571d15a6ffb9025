# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-emptying local search, between the greedy plans and the MILP.

One attempt takes an almost empty host off, puts its VMs in a *free* pool and
tries to give them a home elsewhere: directly (best fit), or by swapping
1-2 pool items against 0-2 items of an online host when that host ends up
fuller (in weighted size), the items swapped out joining the pool. Every swap
shrinks the pool's total size, so an attempt ends; it succeeds when the pool
is empty and the objective went down, and is rolled back otherwise. This is
the classic "unpack the emptiest bin, repack by dominating swaps" scheme of
bin-packing local search (Levine & Ducatelle; Fleszar & Hindi), made
two-dimensional and constraint-aware (every move goes through ``Packing.can``).
"""

from __future__ import annotations

import time
from itertools import combinations

from ansible_collections.sirocco.cimi.plugins.module_utils.placement.instance import EPS

MAX_POOL_PAIRS = 12  # pool sizes above this try single items only
MAX_HOST_PAIRS = 10  # hosts with more items than this swap them out one at a time
HOSTS_PER_PASS = 40
TABU_HOSTS = 12  # hosts examined per tabu step
TABU_HOST_PAIRS = 6  # tabu swaps pairs of items only from hosts (and pools) this small


class _Journal:
    def __init__(self, pack):
        self.pack = pack
        self.log = []

    def take(self, k):
        self.log.append((k, self.pack.remove(k)))

    def put(self, k, j):
        self.log.append((k, -1))
        self.pack.place(k, j)

    def rollback(self):
        pack = self.pack
        for k, old in reversed(self.log):
            if pack.host[k] >= 0:
                pack.remove(k)
            if old >= 0:
                pack.place(k, old)
        self.log = []


def _fill(inst, pack, j):
    return inst.wc * pack.lc[j] / inst.capc[j] + inst.wm * pack.lm[j] / inst.capm[j]


def repack(pack, deadline, rng, patience=None, on_bin=None, tabu_steps=0, floor=0):
    """Try to switch hosts off until ``deadline`` or ``patience`` attempts in a row fail, or only ``floor`` hosts
    are left on; returns hosts saved.

    ``on_bin(j)`` is called whenever host ``j`` got fuller by a swap (the MILP collects such host contents).
    """
    inst = pack.inst
    saved = fails = 0
    patience = patience or max(30, 3 * min(pack.active, 60))
    tried = {}
    attempt = 0
    while fails < patience and pack.active > floor and time.monotonic() < deadline:
        active = sorted((j for j in range(inst.m) if pack.items[j]), key=lambda j: _fill(inst, pack, j))
        if len(active) < 2:
            break
        # free 1, 2 or 3 of the emptiest hosts; success = their VMs fit on one host fewer
        attempt += 1
        r = min(1 + attempt % 3, len(active) - 1)
        pool = active[: max(r + 2, min(len(active), 12))]
        targets = sorted(pool, key=lambda j: (tried.get(j, 0), rng.random()))[:r]
        for j in targets:
            tried[j] = tried.get(j, 0) + 1
        if _attempt(pack, targets, active, deadline, rng, on_bin, tabu_steps):
            saved += 1
            fails = 0
            tried.clear()
        else:
            fails += 1
    return saved


def _attempt(pack, targets, active, deadline, rng, on_bin, tabu_steps):
    inst = pack.inst
    if any(inst.pin[k] == t for t in targets for k in pack.items[t]):
        return False
    before = pack.cost
    journal = _Journal(pack)
    free = [k for t in targets for k in pack.items[t]]
    for k in free:
        journal.take(k)
    others = [j for j in active if j not in targets]
    for _round in range(60):
        free.sort(key=lambda k: -inst.size[k])
        rest = []
        for k in free:  # direct homes first
            j = _best_home(pack, k, others)
            if j >= 0:
                journal.put(k, j)
            else:
                rest.append(k)
        free = rest
        if len(targets) > 1 and free and _fits_on(pack, journal, free, targets[1:]):
            free = []
        if not free or time.monotonic() > deadline:
            break
        hosts = others if len(others) <= HOSTS_PER_PASS else rng.sample(others, HOSTS_PER_PASS)
        improved = False
        ins = _combos(inst, free)
        for h in hosts:
            if not free or time.monotonic() > deadline:
                break
            if pack.items[h] and _swap(pack, journal, h, free, ins):
                improved = True
                ins = _combos(inst, free)
                if on_bin is not None:
                    on_bin(h)
        if not improved:
            if tabu_steps:
                free = _tabu(pack, journal, free, others, targets, deadline, rng, tabu_steps, on_bin)
            break
    if not free and pack.cost < before - 1e-9 * max(1.0, abs(before)):
        return True
    journal.rollback()
    return False


def _tabu(pack, journal, free, others, targets, deadline, rng, steps, on_bin):
    """Stuck: keep swapping, now also when the pool grows (the least growth first), never undoing a
    recent swap, until the pool finds homes, fits on the other freed hosts, or ``steps`` run out."""
    inst = pack.inst
    tenure = 7 + len(free)
    banned = {}  # (item, host) -> step until which the item may not enter (or leave) that host
    for step in range(steps):
        if time.monotonic() > deadline:
            break
        ins = _combos(inst, free, TABU_HOST_PAIRS)
        best = None
        hosts = others if len(others) <= TABU_HOSTS else rng.sample(others, TABU_HOSTS)
        for h in hosts:
            if not pack.items[h]:
                continue
            rc = inst.capc[h] - pack.lc[h] + EPS
            rm = inst.capm[h] - pack.lm[h] + EPS
            mine = [k for k in pack.items[h] if inst.pin[k] != h and banned.get((k, h), -1) < step]
            for out, oc, om, os_ in [((), 0.0, 0.0, 0.0)] + _combos(inst, mine, TABU_HOST_PAIRS):
                for t, ic, im, is_ in ins:
                    if ic - oc <= rc and im - om <= rm and (out or t):
                        gain = is_ - os_ + 1e-6 * rng.random()
                        if (best is None or gain > best[0]) and all(banned.get((k, h), -1) < step for k in t):
                            best = (gain, h, out, t)
        if best is None:
            break
        _gain, h, out, t = best
        mark = len(journal.log)
        for k in out:
            journal.take(k)
        if not all(pack.can(k, h) and (journal.put(k, h) or True) for k in t):
            tail, journal.log = journal.log[mark:], journal.log[:mark]
            for k, old in reversed(tail):
                if pack.host[k] >= 0:
                    pack.remove(k)
                if old >= 0:
                    pack.place(k, old)
            for k in t:
                banned[(k, h)] = step + tenure
            continue
        for k in t:
            free.remove(k)
            banned[(k, h)] = step + tenure  # may not leave h soon
        for k in out:
            free.append(k)
            banned[(k, h)] = step + tenure  # may not come back soon
        if on_bin is not None:
            on_bin(h)
        rest = []
        for k in sorted(free, key=lambda k: -inst.size[k]):
            j = _best_home(pack, k, others)
            if j >= 0:
                journal.put(k, j)
            else:
                rest.append(k)
        free = rest
        if not free or (len(targets) > 1 and _fits_on(pack, journal, free, targets[1:])):
            return []
    return free


def _fits_on(pack, journal, free, hosts):
    """Place all of ``free`` on the (empty) ``hosts``, first fit decreasing; False (nothing placed) if not."""
    mark = len(journal.log)
    for k in free:
        j = next((h for h in hosts if pack.can(k, h)), -1)
        if j < 0:
            tail = journal.log[mark:]
            journal.log = journal.log[:mark]
            for k2, _old in reversed(tail):
                pack.remove(k2)
            return False
        journal.put(k, j)
    return True


def _best_home(pack, k, hosts):
    """The online host (among ``hosts``) left fullest by taking ``k``, or -1."""
    inst = pack.inst
    c, x = inst.cpu[k], inst.mem[k]
    best, best_fill = -1, -1.0
    for j in hosts:
        if not pack.items[j] or pack.lc[j] + c > inst.capc[j] + EPS or pack.lm[j] + x > inst.capm[j] + EPS:
            continue
        f = _fill(inst, pack, j)
        if f > best_fill and pack.can(k, j):
            best, best_fill = j, f
    return best


def _combos(inst, items, pairs=MAX_POOL_PAIRS):
    """(items, cpu, memory, size) for the single items and, when few, the pairs of ``items``."""
    cpu, mem, size = inst.cpu, inst.mem, inst.size
    out = [((k,), cpu[k], mem[k], size[k]) for k in items]
    if len(items) <= pairs:
        out += [((a, b), cpu[a] + cpu[b], mem[a] + mem[b], size[a] + size[b]) for a, b in combinations(items, 2)]
    return out


def _swap(pack, journal, h, free, ins):
    """Swap pool items into ``h`` against some of its items if ``h`` ends up fuller; True if done."""
    inst = pack.inst
    rc = inst.capc[h] - pack.lc[h] + EPS
    rm = inst.capm[h] - pack.lm[h] + EPS
    mine = [k for k in pack.items[h] if inst.pin[k] != h]
    outs = [((), 0.0, 0.0, 0.0)] + _combos(inst, mine, MAX_HOST_PAIRS)
    cands = []
    for out, oc, om, os_ in outs:
        for t, ic, im, is_ in ins:
            if is_ - os_ > 1e-9 and ic - oc <= rc and im - om <= rm:
                cands.append((is_ - os_, out, t))
    if not cands:
        return False
    cands.sort(key=lambda c: -c[0])
    for _gain, out, t in cands[:8]:
        mark = len(journal.log)
        for k in out:
            journal.take(k)
        ok = True
        for k in t:
            if pack.can(k, h):
                journal.put(k, h)
            else:
                ok = False
                break
        if ok:
            for k in t:
                free.remove(k)
            free.extend(out)
            return True
        # undo this candidate only
        tail = journal.log[mark:]
        journal.log = journal.log[:mark]
        for k, old in reversed(tail):
            if pack.host[k] >= 0:
                pack.remove(k)
            if old >= 0:
                pack.place(k, old)
    return False

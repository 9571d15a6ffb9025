# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seeded instance families for the placement benchmark.

* ``ct(cls, n)``: two-dimensional vector packing in the style of Caprara & Toth
  (2001), classes 1-10 (cpu and memory are the two dimensions, identical
  hosts, so the objective is the host count). Classes 1, 4, 5, 9 and 10 are
  the hard ones (the literature restricts to them: the others are solved at
  the root or by the trivial bound); ``HARD`` lists them.
* ``flavors(n, m)``: a public-cloud catalog (compute / general / memory
  families, 1:2, 1:4, 1:8 GiB per vCPU, sizes 1-32 vCPU, small ones more
  frequent) on identical 64-core / 256 GiB hosts.
* ``hetero(n)``: the same catalog on three host generations with different
  capacities, cpu:memory ratios and power curves (none best at everything),
  1.6 times the cores needed.
* ``spread_out(n, m, even)``: a current placement to consolidate: VMs already
  spread over every host, each host filled to its own level (uniform 15-85 %,
  as after churn) or, with ``even``, all hosts at the same level.
"""

from __future__ import annotations

import math
import random

from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import Host, Problem, Vm

HARD = (1, 4, 5, 9, 10)


def ct(cls, n, seed=0):
    rng = random.Random(seed * 1000 + cls * 7 + n)
    items = []
    if cls <= 6:
        lo, hi = {1: (100, 400), 2: (1, 1000), 3: (200, 800), 4: (50, 200), 5: (25, 100), 6: (20, 100)}[cls]
        cap = (1000, 1000) if cls <= 5 else (150, 150)
        items = [(rng.randint(lo, hi), rng.randint(lo, hi)) for _i in range(n)]
    elif cls in (7, 8):
        cap = (150, 150)
        for _i in range(n):
            w = rng.randint(20, 100)
            # class 7: positively correlated dimensions, class 8: negatively correlated
            v = rng.randint(w - 10, w + 10) if cls == 7 else rng.randint(110 - w, 130 - w)
            items.append((w, v))
    elif cls == 9:
        items = [(rng.randint(100, 400), rng.randint(100, 400)) for _i in range(n)]
        total = [sum(d) for d in zip(*items, strict=True)]
        bins = math.ceil(max(total) / 1000)
        cap = tuple(math.ceil(t / bins) for t in total)  # capacities make the bound tight in both dimensions
    elif cls == 10:
        n -= n % 3
        for _i in range(n // 3):  # perfect triplets: the optimum is n / 3 hosts
            a = (rng.randint(25, 50), rng.randint(25, 50))
            b = (rng.randint(25, 50), rng.randint(25, 50))
            items += [a, b, (100 - a[0] - b[0], 100 - a[1] - b[1])]
        rng.shuffle(items)
        cap = (100, 100)
    else:
        raise ValueError("class %r" % cls)
    hosts = [Host("h%d" % j, cap[0], cap[1], 100.0, 200.0) for j in range(n)]
    vms = [Vm("v%d" % i, c, m) for i, (c, m) in enumerate(items)]
    return Problem(hosts, vms)


# (vcpu, GiB) per flavor, with a weight: small flavors are the common ones
CATALOG = []
for _family, ratio in (("c", 2), ("m", 4), ("r", 8)):
    for vcpu, weight in ((1, 6), (2, 10), (4, 8), (8, 4), (16, 2), (32, 1)):
        CATALOG.append((vcpu, vcpu * ratio, weight * (2 if ratio == 4 else 1)))

MEAN_VCPU = sum(c * w for c, _g, w in CATALOG) / sum(w for _c, _g, w in CATALOG)


def _flavor_vms(rng, n, prefix="v"):
    flavors = [(c, g) for c, g, _w in CATALOG]
    weights = [w for _c, _g, w in CATALOG]
    return [Vm("%s%d" % (prefix, i), c, g * 1024) for i, (c, g) in
            enumerate(rng.choices(flavors, weights, k=n))]


def flavors(n, m, seed=0):
    rng = random.Random(seed * 1000 + 11 + n)
    hosts = [Host("h%d" % j, 64, 256 * 1024, 110.0, 330.0) for j in range(m)]
    return Problem(hosts, _flavor_vms(rng, n))


GENERATIONS = (  # cores, GiB, idle W, max W: none is best at everything
    (32, 384, 120.0, 250.0),  # old, memory-rich, cheap to keep on
    (64, 256, 110.0, 360.0),  # balanced
    (96, 384, 160.0, 480.0),  # dense, cheapest per core at full load
)


def hetero(n, seed=0, m=None):
    """Flavor mix on the three generations, about 1.6 times the cores needed, in equal numbers."""
    rng = random.Random(seed * 1000 + 23 + n)
    vms = _flavor_vms(rng, n)
    need = sum(v.cpu for v in vms)
    per_round = sum(g[0] for g in GENERATIONS)
    m = m or 3 * max(2, math.ceil(1.6 * need / per_round))
    hosts = []
    for j in range(m):
        cores, gib, idle, peak = GENERATIONS[j % 3]
        hosts.append(Host("h%d" % j, cores, gib * 1024, idle, peak))
    return Problem(hosts, vms)


def spread_out(n, m, seed=0, even=False, migration_cost=0.0):
    """VMs already placed on all ``m`` hosts (64 cores, 256 GiB), each host filled to its own level."""
    rng = random.Random(seed * 1000 + 37 + n + m)
    hosts = [Host("h%d" % j, 64, 256 * 1024, 110.0, 330.0) for j in range(m)]
    vms = _flavor_vms(rng, n)
    levels = [0.5 if even else rng.uniform(0.15, 0.85) for _i in range(m)]
    total = sum(v.cpu for v in vms)
    target = [lv / sum(levels) * total for lv in levels]
    load, mem = [0.0] * m, [0.0] * m
    placed = []
    for v in sorted(vms, key=lambda v: -v.cpu):
        # the host furthest below its target level that has room
        order = sorted(range(m), key=lambda j: load[j] - target[j])
        j = next((j for j in order if load[j] + v.cpu <= 64 and mem[j] + v.memory <= 256 * 1024), None)
        if j is None:
            continue
        load[j] += v.cpu
        mem[j] += v.memory
        placed.append(Vm(v.name, v.cpu, v.memory, "h%d" % j))
    return Problem(hosts, placed, migration_cost=migration_cost)

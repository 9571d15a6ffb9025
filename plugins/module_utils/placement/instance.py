# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ``Problem`` compiled into the index-based form the heuristics and the MILP share.

Gathered VMs are merged into one *item* (they must share a host anyway);
ban / fence / preserve / the union of among groups become each item's set of
allowed hosts; spread, among and max_online stay as constraints over item and
host indexes. Compilation also finds the reasons a request cannot be met that
are visible without searching (``explanations``) and the lower bounds.
"""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import (
    Among,
    Ban,
    Explanation,
    Fence,
    Gather,
    MaxOnline,
    Preserve,
    Spread,
)

EPS = 1e-6  # capacity tolerance (cores, MiB)


# the clique bound is quadratic in the item count: above this, the cheaper bounds are tight anyway
CLIQUE_MAX_ITEMS = 1500


class Instance:
    def __init__(self, problem):
        self.problem = problem
        hosts, vms = problem.hosts, problem.vms
        self.m = m = len(hosts)
        self.host_names = [h.name for h in hosts]
        self.hidx = {h.name: j for j, h in enumerate(hosts)}
        self.capc = [float(h.cpu_capacity) for h in hosts]
        self.capm = [float(h.memory_capacity) for h in hosts]
        self.idle = [float(h.power_idle) for h in hosts]
        # watts per allocated cpu unit: the dynamic part of the linear power model
        self.slope = [(h.power_max - h.power_idle) / h.cpu_capacity for h in hosts]
        self.on = [h.on for h in hosts]
        self.mig_cost = float(problem.migration_cost)
        self.budget = problem.max_migrations
        self.explanations = []
        vidx = {v.name: i for i, v in enumerate(vms)}
        self.vm_names = [v.name for v in vms]
        cur = [None if v.host is None else self.hidx[v.host] for v in vms]

        # gather: union-find over VMs
        parent = list(range(len(vms)))

        def find(a):
            while parent[a] != a:
                parent[a] = parent[parent[a]]
                a = parent[a]
            return a

        for c in problem.constraints:
            if isinstance(c, Gather) and c.vms:
                r = find(vidx[c.vms[0]])
                for name in c.vms[1:]:
                    parent[find(vidx[name])] = r
        roots = {}
        self.vm_item = [0] * len(vms)
        for i in range(len(vms)):
            self.vm_item[i] = roots.setdefault(find(i), len(roots))
        n = self.n = len(roots)
        self.members = [[] for _i in range(n)]
        for i, k in enumerate(self.vm_item):
            self.members[k].append(i)
        self.cpu = [float(sum(vms[i].cpu for i in mem)) for mem in self.members]
        self.mem = [float(sum(vms[i].memory for i in mem)) for mem in self.members]
        # orig[k]: {host: members currently there}; norig[k]: members with a current host
        self.orig = [{} for _i in range(n)]
        self.norig = [0] * n
        for i, k in enumerate(self.vm_item):
            if cur[i] is not None:
                self.orig[k][cur[i]] = self.orig[k].get(cur[i], 0) + 1
                self.norig[k] += 1
        self.has_current = any(self.norig)

        # allowed hosts per item (None = every host), with the constraints that narrowed it
        allowed = [None] * n
        why = [[] for _i in range(n)]
        self.pin = [-1] * n

        def narrow(k, hostset, ci):
            allowed[k] = hostset if allowed[k] is None else allowed[k] & hostset
            why[k].append(ci)

        self.spreads, self.spread_index = [], []
        self.amongs, self.among_index = [], []
        self.maxon, self.maxon_index = [], []
        for ci, c in enumerate(problem.constraints):
            if isinstance(c, (Ban, Fence)):
                hs = frozenset(self.hidx[h] for h in c.hosts)
                if isinstance(c, Ban):
                    hs = frozenset(range(m)) - hs
                for name in c.vms:
                    narrow(self.vm_item[vidx[name]], hs, ci)
            elif isinstance(c, Preserve):
                for name in c.vms:
                    k, h = self.vm_item[vidx[name]], cur[vidx[name]]
                    narrow(k, frozenset((h,)), ci)
            elif isinstance(c, Spread):
                ks = [self.vm_item[vidx[name]] for name in c.vms]
                if len(set(ks)) < len(ks):
                    self.explanations.append(Explanation(
                        "spread constraints[%d] asks for distinct hosts for VMs that gather constraints "
                        "put on one host" % ci, "spread", ci))
                ks = sorted(set(ks))
                if len(ks) >= 2:
                    self.spreads.append(ks)
                    self.spread_index.append(ci)
            elif isinstance(c, Among):
                ks = sorted({self.vm_item[vidx[name]] for name in c.vms})
                groups = [frozenset(self.hidx[h] for h in g) for g in c.groups]
                union = frozenset().union(*groups) if groups else frozenset()
                for k in ks:
                    narrow(k, union, ci)
                if ks and len(groups) > 1:
                    self.amongs.append((ks, groups))
                    self.among_index.append(ci)
            elif isinstance(c, MaxOnline):
                hs = frozenset(range(m)) if c.hosts is None else frozenset(self.hidx[h] for h in c.hosts)
                if c.amount < len(hs):
                    self.maxon.append((hs, c.amount))
                    self.maxon_index.append(ci)
        for k in range(n):
            if allowed[k] is not None and len(allowed[k]) == m:
                allowed[k] = None
        self.allowed = allowed
        for c in problem.constraints:
            if isinstance(c, Preserve):
                for name in c.vms:
                    k = self.vm_item[vidx[name]]
                    if allowed[k] is not None and len(allowed[k]) == 1:
                        self.pin[k] = next(iter(allowed[k]))
        self.item_spreads = [[] for _i in range(n)]
        for s, ks in enumerate(self.spreads):
            for k in ks:
                self.item_spreads[k].append(s)
        self.item_amongs = [[] for _i in range(n)]
        for a, (ks, _groups) in enumerate(self.amongs):
            for k in ks:
                self.item_amongs[k].append(a)
        self.host_maxon = [[] for _i in range(m)]
        for c, (hs, _amount) in enumerate(self.maxon):
            for j in hs:
                self.host_maxon[j].append(c)
        self.constrained = [allowed[k] is not None or bool(self.item_spreads[k]) or bool(self.item_amongs[k])
                            for k in range(n)]

        self._find_static_infeasibility(why)
        self.clique = []
        self._bounds()
        if self.m and not self.explanations and len(self.clique) > self.m:
            self._explain_clique()
        self._orders()

    # -- small helpers -------------------------------------------------------
    def item_label(self, k):
        names = [self.vm_names[i] for i in self.members[k]]
        if len(names) == 1:
            return "vm '%s'" % names[0]
        return "gathered vms %s" % ", ".join("'%s'" % s for s in names[:5]) + (" ..." if len(names) > 5 else "")

    def moves(self, k, j):
        return self.norig[k] - self.orig[k].get(j, 0)

    def item_cost(self, k, j):
        """Cost of item ``k`` on host ``j`` beyond the host's idle power."""
        return self.cpu[k] * self.slope[j] + self.mig_cost * (self.norig[k] - self.orig[k].get(j, 0))

    def candidates(self, k):
        a = self.allowed[k]
        return range(self.m) if a is None else sorted(a)

    def allowed_order(self, k):
        """Allowed hosts of item ``k`` in host order."""
        return sorted(self.allowed[k], key=self.host_rank.__getitem__)

    def migration_aware(self):
        return self.has_current and (self.mig_cost > 0 or self.budget is not None)

    # -- static analysis -----------------------------------------------------
    def _find_static_infeasibility(self, why):
        cons = self.problem.constraints
        ex = self.explanations
        top = {"cpu": max(self.capc, default=0.0), "memory": max(self.capm, default=0.0)}
        if self.n and not self.m:
            ex.append(Explanation("there are VMs to place but no hosts", "capacity", None, "hosts"))
            return

        def ctype(ci):
            return cons[ci].type

        for k in range(self.n):
            a = self.allowed[k]
            label = self.item_label(k)
            if a is not None and not a:
                used = sorted(set(why[k]))
                ex.append(Explanation(
                    "%s: %s leave no host allowed" % (
                        label, " and ".join("%s constraints[%d]" % (ctype(ci), ci) for ci in used)),
                    ctype(used[-1]), used[-1], "hosts"))
                continue
            for res, need, cap in (("cpu", self.cpu[k], self.capc), ("memory", self.mem[k], self.capm)):
                best = max((cap[j] for j in a), default=0.0) if a is not None else top[res]
                if need > best + EPS:
                    where = "any allowed host" if a is not None else "any host"
                    if len(self.members[k]) > 1:
                        ex.append(Explanation("%s need %s %g in total, more than %s offers (%g)" % (
                            label, res, need, where, best), "gather", None, res))
                    else:
                        ex.append(Explanation("%s needs %s %g, more than %s offers (%g)" % (
                            label, res, need, where, best), "capacity", None, res))
        # preserved load per host
        pinned = {}
        for k in range(self.n):
            if self.pin[k] >= 0:
                pinned.setdefault(self.pin[k], []).append(k)
        for j, ks in pinned.items():
            for res, dem, cap in (("cpu", self.cpu, self.capc), ("memory", self.mem, self.capm)):
                need = sum(dem[k] for k in ks)
                if need > cap[j] + EPS:
                    ex.append(Explanation("VMs preserved on host '%s' need %s %g, its capacity is %g" % (
                        self.host_names[j], res, need, cap[j]), "preserve", None, res))
        for s, ks in enumerate(self.spreads):
            hosts = set()
            for k in ks:
                hosts |= set(self.candidates(k))
            if len(hosts) < len(ks):
                ci = self.spread_index[s]
                ex.append(Explanation("spread constraints[%d] needs %d distinct hosts, only %d are allowed" % (
                    ci, len(ks), len(hosts)), "spread", ci, "hosts"))
            for c, (hs, amount) in enumerate(self.maxon):
                if len(ks) > amount and all(len(hs) == self.m or (self.allowed[k] is not None and self.allowed[k] <= hs)
                                            for k in ks):
                    ci = self.maxon_index[c]
                    ex.append(Explanation(
                        "spread constraints[%d] needs %d distinct hosts but max_online constraints[%d] allows "
                        "%d online" % (self.spread_index[s], len(ks), ci, amount), "max_online", ci, "hosts"))
        for a, (ks, groups) in enumerate(self.amongs):
            ci = self.among_index[a]
            reasons = []
            for g in groups:
                r = self._group_shortfall(ks, g)
                if r is None:
                    break
                reasons.append(r)
            else:
                detail = "; ".join("group %d: %s" % (i, r) for i, r in enumerate(reasons))
                res = "cpu" if "cpu" in detail else ("memory" if "memory" in detail else "hosts")
                ex.append(Explanation("among constraints[%d]: no group can host all its VMs (%s)" % (ci, detail),
                                      "among", ci, res))
        for c, (hs, amount) in enumerate(self.maxon):
            ci = self.maxon_index[c]
            everywhere = len(hs) == self.m
            inside = [k for k in range(self.n)
                      if everywhere or (self.allowed[k] is not None and self.allowed[k] <= hs)]
            pinned_hosts = {self.pin[k] for k in inside if self.pin[k] >= 0}
            if len(pinned_hosts) > amount:
                ex.append(Explanation("max_online constraints[%d] allows %d online hosts but preserved VMs keep %d "
                                      "of its hosts on" % (ci, amount, len(pinned_hosts)), "max_online", ci,
                                      "hosts"))
                continue
            for res, dem, cap in (("cpu", self.cpu, self.capc), ("memory", self.mem, self.capm)):
                need = sum(dem[k] for k in inside)
                room = sum(sorted((cap[j] for j in hs), reverse=True)[:amount])
                if need > room + EPS:
                    ex.append(Explanation(
                        "max_online constraints[%d] allows %d online hosts offering at most %s %g; the VMs confined "
                        "to them need %g" % (ci, amount, res, room, need), "max_online", ci, res))
        for res, dem, cap in (("cpu", self.cpu, self.capc), ("memory", self.mem, self.capm)):
            need, room = sum(dem), sum(cap)
            if need > room + EPS:
                ex.append(Explanation("the VMs need %s %g in total, all hosts together offer %g" % (res, need, room),
                                      "capacity", None, res))
        if self.budget is not None:
            forced = sum(self.norig[k] - max((self.orig[k].get(j, 0) for j in self.candidates(k)), default=0)
                         for k in range(self.n))
            if forced > self.budget:
                ex.append(Explanation(
                    "at least %d VMs must move (their current host is not allowed, or their gathered VMs sit on "
                    "several hosts) but max_migrations is %d" % (forced, self.budget), "max_migrations", None,
                    "migrations"))

    def _group_shortfall(self, ks, g):
        """None if the hosts of ``g`` could plausibly take items ``ks``, else why not."""
        for k in ks:
            if not any(self.capc[j] + EPS >= self.cpu[k] and self.capm[j] + EPS >= self.mem[k]
                       for j in g if self.allowed[k] is None or j in self.allowed[k]):
                return "%s fits on none of its hosts" % self.item_label(k)
        for res, dem, cap in (("cpu", self.cpu, self.capc), ("memory", self.mem, self.capm)):
            need, room = sum(dem[k] for k in ks), sum(cap[j] for j in g)
            if need > room + EPS:
                return "needs %s %g, hosts offer %g" % (res, need, room)
        return None

    # -- bounds and orders ---------------------------------------------------
    def _bounds(self):
        def fewest(dem, cap):
            need, got = sum(dem) - EPS, 0.0
            if need <= 0:
                return 0
            for k, c in enumerate(sorted(cap, reverse=True), 1):
                got += c
                if got >= need:
                    return k
            return self.m
        # the bound, generalised: fewest hosts (largest first) whose capacity covers the demand
        self.lb_dims = max(fewest(self.cpu, self.capc), fewest(self.mem, self.capm))
        lb = self.lb_dims
        # items larger than half the largest host in one dimension cannot share a host
        hc, hm = max(self.capc, default=0) / 2, max(self.capm, default=0) / 2
        lb = max(lb, sum(c > hc + EPS for c in self.cpu), sum(x > hm + EPS for x in self.mem))
        lb = max(lb, self._cardinality_bound())
        lb = max(lb, self._conflict_clique_bound())
        lb = max([lb] + [len(ks) for ks in self.spreads])
        lb = max(lb, len({p for p in self.pin if p >= 0}))
        self.lb_hosts = lb
        # objective = idle * hosts + constant: reaching lb_hosts proves optimality
        self.pure_hosts = (len(set(self.idle)) <= 1 and max(self.slope, default=0) - min(self.slope, default=0) < 1e-12
                           and not self.migration_aware())

    def _cardinality_bound(self):
        """ceil(items / k) when no host can take k + 1 items (the k + 1 smallest overflow any host)."""
        if not self.n or not self.m:
            return 0
        cmax, mmax = max(self.capc), max(self.capm)
        k = self.n
        for dem, cap in ((self.cpu, cmax), (self.mem, mmax)):
            total = 0.0
            for i, d in enumerate(sorted(dem)):
                total += d
                if total > cap + EPS:
                    k = min(k, i)
                    break
        # both dimensions at once: on any host, sum(cpu / cmax + memory / mmax) <= 2
        total = 0.0
        for i, d in enumerate(sorted(c / cmax + x / mmax for c, x in zip(self.cpu, self.mem, strict=True))):
            total += d
            if total > 2 + 1e-9:
                k = min(k, i)
                break
        return -(-self.n // k) if k else self.n

    def _conflict_clique_bound(self):
        """Size of a set of items no two of which fit together on any host (a clique of the conflict
        graph, grown greedily from a few orders): each needs a host of its own. This is what makes the
        bound reachable on classes of large items, where ceil(demand / capacity) is far too low."""
        if not self.n or not self.m or self.n > CLIQUE_MAX_ITEMS:
            return 0
        shapes = sorted(set(zip(self.capc, self.capm, strict=True)))

        def apart(a, b):
            ca, ma = self.cpu[a] + self.cpu[b], self.mem[a] + self.mem[b]
            return all(ca > c + EPS or ma > x + EPS for c, x in shapes)

        cmax, mmax = max(self.capc) or 1.0, max(self.capm) or 1.0
        keys = (lambda k: -self.cpu[k], lambda k: -self.mem[k],
                lambda k: -max(self.cpu[k] / cmax, self.mem[k] / mmax),
                lambda k: -(self.cpu[k] / cmax + self.mem[k] / mmax))
        for key in keys:
            clique = []
            for k in sorted(range(self.n), key=key):
                if all(apart(k, q) for q in clique):
                    clique.append(k)
            if len(clique) > len(self.clique):
                self.clique = clique
        return len(self.clique)

    def _explain_clique(self):
        """More items that pairwise cannot share a host than there are hosts: say which and why."""
        ks = self.clique
        top = {"cpu": max(self.capc), "memory": max(self.capm)}
        dims = [res for res, dem in (("cpu", self.cpu), ("memory", self.mem))
                if all(dem[a] + dem[b] > top[res] + EPS for i, a in enumerate(ks) for b in ks[i + 1:])]
        labels = [self.item_label(k) for k in ks[:5]] + (["..."] if len(ks) > 5 else [])
        self.explanations.append(Explanation(
            "%d %s are too large for any two of them to share a host (%s), but there are only %d hosts: %s"
            % (len(ks), "VMs" if all(len(self.members[k]) == 1 for k in ks) else "VMs or gathered groups",
               " or ".join(dims) if dims else "cpu or memory", self.m, ", ".join(labels)),
            "capacity", None, dims[0] if len(dims) == 1 else "cpu+memory"))

    def _orders(self):
        m = self.m
        tc, tm = sum(self.capc) or 1.0, sum(self.capm) or 1.0
        # dimension weights: the scarcer resource counts more
        self.wc = max(sum(self.cpu) / tc, 1e-3)
        self.wm = max(sum(self.mem) / tm, 1e-3)
        self.refc, self.refm = tc / max(m, 1), tm / max(m, 1)
        self.size = [self.wc * c / self.refc + self.wm * x / self.refm for c, x in zip(self.cpu, self.mem, strict=True)]
        hsize = [self.wc * c / self.refc + self.wm * x / self.refm for c, x in zip(self.capc, self.capm, strict=True)]
        # hosts: cheapest watts per unit of (weighted) capacity when full first, then those already on
        full = [self.idle[j] + self.slope[j] * self.capc[j] for j in range(m)]
        self.host_order = sorted(range(m), key=lambda j: (round(full[j] / hsize[j], 9), not self.on[j], j))
        self.host_rank = [0] * m
        for r, j in enumerate(self.host_order):
            self.host_rank[j] = r
        self.hsize = hsize
        # symmetry classes: hosts that no constraint, current VM or parameter tells apart
        sig = [hash((self.capc[j], self.capm[j], self.idle[j], self.slope[j])) for j in range(m)]
        for k in range(self.n):
            if self.allowed[k] is not None:
                for j in self.allowed[k]:
                    sig[j] = hash((sig[j], "a", k))
        for a, (_ks, groups) in enumerate(self.amongs):
            for g, hs in enumerate(groups):
                for j in hs:
                    sig[j] = hash((sig[j], "g", a, g))
        for c, (hs, _amount) in enumerate(self.maxon):
            for j in hs:
                sig[j] = hash((sig[j], "o", c))
        if self.migration_aware():
            for k in range(self.n):
                for j in self.orig[k]:
                    sig[j] = hash((sig[j], "c", j))
        classes = {}
        for j in range(m):
            classes.setdefault(sig[j], []).append(j)
        self.host_class = [0] * m
        self.classes = []
        for c, js in enumerate(classes.values()):
            self.classes.append(js)
            for j in js:
                self.host_class[j] = c

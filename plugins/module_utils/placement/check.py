# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Independent plan checker: every plan is verified here before anyone applies it.

Written against the ``Problem`` as the user stated it (names, not the solver's
merged items and index sets), sharing no code with the heuristics or the MILP,
so a bug there cannot hide itself. ``check`` returns human-readable
violations (an empty list means the plan is valid); ``measure`` recomputes the
figures a plan claims (online hosts, watts, migrations).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import Problem

TOLERANCE = 1e-6  # capacity slack, as in the solver (cores, MiB)


def check(problem: Problem, placement: object) -> list[str]:
    """Violations of ``placement`` ({vm: host}) against ``problem``: capacity and every constraint."""
    out = []
    hosts = {h.name: h for h in problem.hosts}
    vms = {v.name: v for v in problem.vms}
    if not isinstance(placement, dict):
        return ["the plan is not a mapping of VM names to host names"]
    for name in vms:
        if name not in placement:
            out.append("vm '%s' is not placed" % name)
    for name, host in placement.items():
        if name not in vms:
            out.append("the plan places unknown vm '%s'" % name)
        elif host not in hosts:
            out.append("vm '%s' is placed on unknown host '%s'" % (name, host))
    where = {name: host for name, host in placement.items() if name in vms and host in hosts}

    cpu: dict[str, Any] = {}  # Any: the loop's ``used`` is reused below for sets of host names
    mem: dict[str, float] = {}
    count: dict[str, int] = {}
    for name, host in where.items():
        cpu[host] = cpu.get(host, 0) + vms[name].cpu
        mem[host] = mem.get(host, 0) + vms[name].memory
        count[host] = count.get(host, 0) + 1
    for host, used in sorted(cpu.items()):
        h = hosts[host]
        cap = h.cpu * h.cpu_overcommit
        if used > cap + TOLERANCE:
            out.append("host '%s' is over its cpu capacity: %g allocated, %g available" % (host, used, cap))
        cap = h.memory * h.memory_overcommit
        if mem[host] > cap + TOLERANCE:
            out.append("host '%s' is over its memory capacity: %g allocated, %g available" % (host, mem[host], cap))

    for i, c in enumerate(problem.constraints):
        label = "constraints[%d] (%s)" % (i, c.type)
        if c.type == "ban":
            for name in c.vms:
                if where.get(name) in c.hosts:
                    out.append("%s: vm '%s' is on banned host '%s'" % (label, name, where[name]))
        elif c.type == "fence":
            for name in c.vms:
                if name in where and where[name] not in c.hosts:
                    out.append("%s: vm '%s' is on host '%s', outside its fence" % (label, name, where[name]))
        elif c.type == "spread":
            seen: dict[str, str] = {}
            for name in c.vms:
                if name in where:
                    if where[name] in seen:
                        out.append("%s: vms '%s' and '%s' share host '%s'" % (
                            label, seen[where[name]], name, where[name]))
                    else:
                        seen[where[name]] = name
        elif c.type == "gather":
            used = sorted({where[name] for name in c.vms if name in where})
            if len(used) > 1:
                out.append("%s: its vms are spread over hosts %s" % (label, ", ".join(used)))
        elif c.type == "among":
            used = {where[name] for name in c.vms if name in where}
            if used and not any(used <= set(g) for g in c.groups):
                out.append("%s: its vms use hosts %s, not all within one group" % (label, ", ".join(sorted(used))))
        elif c.type == "max_online":
            scope = set(hosts) if c.hosts is None else set(c.hosts)
            online = sorted(h for h in count if h in scope)
            if len(online) > c.amount:
                out.append("%s: %d hosts online, at most %d allowed" % (label, len(online), c.amount))
        elif c.type == "preserve":
            for name in c.vms:
                if name in where and where[name] != vms[name].host:
                    out.append("%s: vm '%s' moved from '%s' to '%s'" % (label, name, vms[name].host, where[name]))
        else:
            out.append("%s: unknown constraint type" % label)

    if problem.max_migrations is not None:
        moved = sum(1 for name, host in where.items() if vms[name].host is not None and vms[name].host != host)
        if moved > problem.max_migrations:
            out.append("%d migrations, at most %d allowed (max_migrations)" % (moved, problem.max_migrations))
    return out


def measure(problem: Problem, placement: Mapping[str, str]) -> dict[str, Any]:

    """Online hosts, watts and migrations of a (valid) plan, computed from the problem's own numbers."""
    hosts = {h.name: h for h in problem.hosts}
    cpu: dict[str, float] = {}
    moved = 0
    for v in problem.vms:
        host = placement[v.name]
        cpu[host] = cpu.get(host, 0) + v.cpu
        if v.host is not None and v.host != host:
            moved += 1
    watts = 0.0
    for host, used in cpu.items():
        h = hosts[host]
        watts += h.power_idle + (h.power_max - h.power_idle) * used / (h.cpu * h.cpu_overcommit)
    return {"active_hosts": len(cpu), "power_watts": watts, "migrations": moved,
            "objective": watts + problem.migration_cost * moved}

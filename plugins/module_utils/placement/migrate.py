# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The order in which to carry out a plan's migrations, one live migration at a time.

A plan says where each VM ends up, not how to get there: moving VMs one by
one, a target host may still hold VMs that are about to leave. ``order``
sequences the moves so that no host ever exceeds its cpu or memory capacity
on the way; moves caught in a cycle (A waits for room on B, B waits for room
on A) are returned as ``blocked`` with the reason, for the caller to resolve
(through a spare host, or by stopping a VM). Transient breaches of spread /
gather / among are not avoided: gathered VMs necessarily travel one by one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import Problem

TOLERANCE = 1e-6


def order(problem: Problem, placement: Mapping[str, str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:

    """(moves, blocked): ``moves`` is a list of {"vm", "from", "to"} safe to run in sequence."""
    hosts = {h.name: h for h in problem.hosts}
    cpu = {name: 0.0 for name in hosts}
    mem = {name: 0.0 for name in hosts}
    pending: list[Any] = []  # Vms whose host (never None here) is not their planned one
    for v in problem.vms:
        if v.host is not None:
            cpu[v.host] += v.cpu
            mem[v.host] += v.memory
            if placement[v.name] != v.host:
                pending.append(v)
    # VMs without a current host are created, not migrated: they take room only at the end
    pending.sort(key=lambda v: (-v.cpu, -v.memory, v.name))
    moves = []
    progress = True
    while pending and progress:
        progress = False
        waiting = []
        for v in pending:
            to = placement[v.name]
            h = hosts[to]
            if cpu[to] + v.cpu <= h.cpu * h.cpu_overcommit + TOLERANCE and \
                    mem[to] + v.memory <= h.memory * h.memory_overcommit + TOLERANCE:
                cpu[v.host] -= v.cpu
                mem[v.host] -= v.memory
                cpu[to] += v.cpu
                mem[to] += v.memory
                moves.append({"vm": v.name, "from": v.host, "to": to})
                progress = True
            else:
                waiting.append(v)
        pending = waiting
    blocked = [{"vm": v.name, "from": v.host, "to": placement[v.name],
                "reason": "host '%s' has no room until VMs leaving it have moved (a cycle of moves)"
                % placement[v.name]} for v in pending]
    return moves, blocked

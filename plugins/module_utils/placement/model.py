# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The placement problem: hosts, machines (VMs), constraints, and the plan found.

``parse_problem`` reads the JSON of ``siroccod place`` (see issue 4) and raises
``PlacementInputError`` naming the offending field (``hosts[2].cpu``,
``constraints[0].vms[1]``...). Semantics fixed here, used by every other module:

* capacity of a host per dimension = ``cpu * cpu_overcommit`` and
  ``memory * memory_overcommit``;
* a host is *online* in a plan iff it runs at least one VM; empty hosts are
  switched off and draw nothing, whatever their current ``on`` flag;
* power of an online host = ``power_idle + (power_max - power_idle) * u`` with
  ``u`` = allocated cpu / cpu capacity (over-commit included);
* a migration is a VM with a current ``host`` placed elsewhere; the objective is
  total power + ``migration_cost`` per migration; ``max_migrations`` (an
  extension of the issue's format) is a hard cap on migrations.

Constraints (after Entropy/BtrPlace): ``spread`` (distinct hosts), ``gather``
(one host), ``ban`` (not on these hosts), ``fence`` (only on these hosts),
``among`` (all on the hosts of one of ``groups``), ``max_online`` (at most
``amount`` of ``hosts``, default all, online), ``preserve`` (stay on the
current host).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

STATUSES = ("optimal", "feasible", "heuristic", "infeasible")
DEFAULT_TIME_LIMIT = 10.0


class PlacementInputError(InvalidInput, ValueError):
    """Malformed placement input; ``attribute`` is the JSON path of the bad field."""


@dataclass(frozen=True)
class Host:
    name: str
    cpu: float
    memory: float
    power_idle: float
    power_max: float
    on: bool = True
    cpu_overcommit: float = 1.0
    memory_overcommit: float = 1.0

    @property
    def cpu_capacity(self) -> float:
        return self.cpu * self.cpu_overcommit

    @property
    def memory_capacity(self) -> float:
        return self.memory * self.memory_overcommit


@dataclass(frozen=True)
class Vm:
    name: str
    cpu: float
    memory: float
    host: str | None = None


@dataclass(frozen=True)
class Spread:
    vms: tuple = ()
    type = "spread"


@dataclass(frozen=True)
class Gather:
    vms: tuple = ()
    type = "gather"


@dataclass(frozen=True)
class Ban:
    vms: tuple = ()
    hosts: tuple = ()
    type = "ban"


@dataclass(frozen=True)
class Fence:
    vms: tuple = ()
    hosts: tuple = ()
    type = "fence"


@dataclass(frozen=True)
class Among:
    vms: tuple = ()
    groups: tuple = ()  # tuple of tuples of host names
    type = "among"


@dataclass(frozen=True)
class MaxOnline:
    amount: int = 0
    hosts: tuple | None = None  # None: every host
    type = "max_online"


@dataclass(frozen=True)
class Preserve:
    vms: tuple = ()
    type = "preserve"


CONSTRAINT_TYPES = {c.type: c for c in (Spread, Gather, Ban, Fence, Among, MaxOnline, Preserve)}
# which JSON keys each constraint type takes (besides "type")
_CONSTRAINT_KEYS = {
    "spread": {"vms"}, "gather": {"vms"}, "preserve": {"vms"},
    "ban": {"vms", "hosts"}, "fence": {"vms", "hosts"},
    "among": {"vms", "groups"}, "max_online": {"hosts", "amount"},
}


@dataclass
class Problem:
    hosts: list[Host]
    vms: list[Vm]
    constraints: list[Any] = field(default_factory=list)  # Spread, Gather, Ban, Fence, Among, MaxOnline, Preserve
    migration_cost: float = 0.0
    time_limit: float = DEFAULT_TIME_LIMIT
    max_migrations: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The problem in the input format of ``siroccod place``."""
        hosts = []
        for h in self.hosts:
            d = {"name": h.name, "cpu": h.cpu, "memory": h.memory, "power_idle": h.power_idle,
                 "power_max": h.power_max, "on": h.on}
            if h.cpu_overcommit != 1.0:
                d["cpu_overcommit"] = h.cpu_overcommit
            if h.memory_overcommit != 1.0:
                d["memory_overcommit"] = h.memory_overcommit
            hosts.append(d)
        vms = []
        for v in self.vms:
            d = {"name": v.name, "cpu": v.cpu, "memory": v.memory}
            if v.host is not None:
                d["host"] = v.host
            vms.append(d)
        cons = []
        for c in self.constraints:
            d = {"type": c.type}
            for key in sorted(_CONSTRAINT_KEYS[c.type]):
                value = getattr(c, key)
                if value is None:
                    continue
                if key == "groups":
                    value = [list(g) for g in value]
                elif isinstance(value, tuple):
                    value = list(value)
                d[key] = value
            cons.append(d)
        out = {"hosts": hosts, "vms": vms, "constraints": cons, "migration_cost": self.migration_cost,
               "time_limit": self.time_limit}
        if self.max_migrations is not None:
            out["max_migrations"] = self.max_migrations
        return out


@dataclass
class Explanation:
    """Why a request cannot be satisfied: which constraint, which resource."""

    message: str
    constraint: str | None = None  # constraint type, or "capacity"
    index: int | None = None  # position in Problem.constraints
    resource: str | None = None  # "cpu", "memory", "cpu+memory", "hosts", "migrations"

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in (("message", self.message), ("constraint", self.constraint),
                                  ("index", self.index), ("resource", self.resource)) if v is not None}


@dataclass
class Result:
    """A plan (or the reason there is none) and its figures."""

    status: str
    placement: dict[str, str] = field(default_factory=dict)
    active_hosts: int = 0
    power_watts: float = 0.0
    migrations: int = 0
    lower_bound_hosts: int = 0
    gap: float | None = None  # (active_hosts - lower_bound_hosts) / lower_bound_hosts
    solve_seconds: float = 0.0
    reason: str | None = None
    explanations: list[Explanation] = field(default_factory=list)
    switch_on: list[str] = field(default_factory=list)  # hosts currently off that the plan uses
    switch_off: list[str] = field(default_factory=list)  # hosts currently on that the plan empties
    method: str = ""  # which engine produced the plan (for humans and benchmarks)
    warm_start: float | None = None  # objective of the warm start the optimizer began from
    objective: float | None = None  # power + migration_cost * migrations
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)  # search counters, for benchmarks

    @property
    def found(self) -> bool:
        return self.status != "infeasible"

    def to_json(self) -> dict[str, Any]:
        out = {"status": self.status, "lower_bound_hosts": self.lower_bound_hosts,
               "solve_seconds": round(self.solve_seconds, 3)}
        if self.found:
            out.update(placement=dict(self.placement), active_hosts=self.active_hosts,
                       power_watts=round(self.power_watts, 3), migrations=self.migrations,
                       gap=None if self.gap is None else round(self.gap, 4),
                       switch_on=list(self.switch_on), switch_off=list(self.switch_off))
        else:
            out["reason"] = self.reason
            out["explanations"] = [e.to_json() for e in self.explanations]
        if self.notes:
            out["notes"] = list(self.notes)
        return out


# ---------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------

def _fail(path, message):
    raise PlacementInputError("%s: %s" % (path, message), attribute=path)


def _number(obj, key, path, minimum=None, positive=False, default=None, required=True):
    if key not in obj or obj[key] is None:
        if required:
            _fail("%s.%s" % (path, key) if path else key, "is required")
        return default
    value = obj[key]
    where = "%s.%s" % (path, key) if path else key
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(where, "expected a number, got %r" % (value,))
    if positive and value <= 0:
        _fail(where, "must be > 0, got %r" % (value,))
    if minimum is not None and value < minimum:
        _fail(where, "must be >= %s, got %r" % (minimum, value))
    return value


def _name(value, path):
    if not isinstance(value, str) or not value:
        _fail(path, "expected a non-empty string, got %r" % (value,))
    return value


def _obj(value, path, allowed):
    if not isinstance(value, dict):
        _fail(path, "expected an object, got %s" % type(value).__name__)
    extra = sorted(set(value) - set(allowed))
    if extra:
        _fail("%s.%s" % (path, extra[0]) if path else extra[0],
              "unknown field (expected one of: %s)" % ", ".join(sorted(allowed)))
    return value


def _list(value, path):
    if not isinstance(value, list):
        _fail(path, "expected a list, got %s" % type(value).__name__)
    return value


def _names(value, path, known, what):
    out = []
    seen = set()
    for i, item in enumerate(_list(value, path)):
        p = "%s[%d]" % (path, i)
        _name(item, p)
        if item not in known:
            _fail(p, "unknown %s '%s'" % (what, item))
        if item in seen:
            _fail(p, "%s '%s' listed twice" % (what, item))
        seen.add(item)
        out.append(item)
    return tuple(out)


_HOST_KEYS = ("name", "cpu", "memory", "power_idle", "power_max", "on", "cpu_overcommit", "memory_overcommit")
_VM_KEYS = ("name", "cpu", "memory", "host")
_TOP_KEYS = ("hosts", "vms", "constraints", "migration_cost", "time_limit", "max_migrations")


def parse_problem(data: Any) -> Problem:

    """JSON (already decoded) to a ``Problem``; raises ``PlacementInputError``."""
    _obj(data, "", _TOP_KEYS)
    if "hosts" not in data:
        _fail("hosts", "is required")
    if "vms" not in data:
        _fail("vms", "is required")
    hosts = []
    host_names = set()
    for i, h in enumerate(_list(data["hosts"], "hosts")):
        p = "hosts[%d]" % i
        _obj(h, p, _HOST_KEYS)
        name = _name(h.get("name"), p + ".name")
        if name in host_names:
            _fail(p + ".name", "duplicate host name '%s'" % name)
        host_names.add(name)
        on = h.get("on", True)
        if not isinstance(on, bool):
            _fail(p + ".on", "expected true or false, got %r" % (on,))
        idle = _number(h, "power_idle", p, minimum=0)
        peak = _number(h, "power_max", p, minimum=0)
        if peak < idle:
            _fail(p + ".power_max", "must be >= power_idle (%s), got %r" % (idle, peak))
        hosts.append(Host(
            name=name, cpu=_number(h, "cpu", p, positive=True), memory=_number(h, "memory", p, positive=True),
            power_idle=idle, power_max=peak, on=on,
            cpu_overcommit=_number(h, "cpu_overcommit", p, positive=True, default=1.0, required=False),
            memory_overcommit=_number(h, "memory_overcommit", p, positive=True, default=1.0, required=False),
        ))
    vms = []
    vm_names = set()
    for i, v in enumerate(_list(data["vms"], "vms")):
        p = "vms[%d]" % i
        _obj(v, p, _VM_KEYS)
        name = _name(v.get("name"), p + ".name")
        if name in vm_names:
            _fail(p + ".name", "duplicate vm name '%s'" % name)
        vm_names.add(name)
        host = v.get("host")
        if host is not None:
            _name(host, p + ".host")
            if host not in host_names:
                _fail(p + ".host", "unknown host '%s'" % host)
        vms.append(Vm(name=name, cpu=_number(v, "cpu", p, minimum=0), memory=_number(v, "memory", p, minimum=0),
                      host=host))
    current = {v.name: v.host for v in vms}
    constraints = []
    for i, c in enumerate(_list(data.get("constraints") or [], "constraints")):
        p = "constraints[%d]" % i
        if not isinstance(c, dict):
            _fail(p, "expected an object, got %s" % type(c).__name__)
        ctype = c.get("type")
        if ctype not in _CONSTRAINT_KEYS:
            _fail(p + ".type", "expected one of %s, got %r" % ("|".join(_CONSTRAINT_KEYS), ctype))
        _obj(c, p, _CONSTRAINT_KEYS[ctype] | {"type"})
        constraints.append(_parse_constraint(ctype, c, p, vm_names, host_names, current))
    limit = _number(data, "time_limit", "", positive=True, default=DEFAULT_TIME_LIMIT, required=False)
    cap = data.get("max_migrations")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        _fail("max_migrations", "expected a non-negative integer, got %r" % (cap,))
    return Problem(hosts=hosts, vms=vms, constraints=constraints,
                   migration_cost=_number(data, "migration_cost", "", minimum=0, default=0.0, required=False),
                   time_limit=limit, max_migrations=cap)


def _parse_constraint(ctype, c, p, vm_names, host_names, current):
    if ctype == "max_online":
        amount = c.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            _fail(p + ".amount", "expected a non-negative integer, got %r" % (amount,))
        hosts = c.get("hosts")
        hosts = None if hosts is None else _names(hosts, p + ".hosts", host_names, "host")
        return MaxOnline(amount=amount, hosts=hosts)
    if "vms" not in c:
        _fail(p + ".vms", "is required")
    vms = _names(c["vms"], p + ".vms", vm_names, "vm")
    if ctype in ("ban", "fence"):
        if "hosts" not in c:
            _fail(p + ".hosts", "is required")
        return CONSTRAINT_TYPES[ctype](vms=vms, hosts=_names(c["hosts"], p + ".hosts", host_names, "host"))
    if ctype == "among":
        if "groups" not in c:
            _fail(p + ".groups", "is required")
        groups = tuple(_names(g, "%s.groups[%d]" % (p, k), host_names, "host")
                       for k, g in enumerate(_list(c["groups"], p + ".groups")))
        return Among(vms=vms, groups=groups)
    if ctype == "preserve":
        for k, name in enumerate(vms):
            if current[name] is None:
                _fail("%s.vms[%d]" % (p, k), "vm '%s' has no current host to preserve" % name)
    return CONSTRAINT_TYPES[ctype](vms=vms)

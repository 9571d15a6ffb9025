"""Which host gets a new machine: a small pluggable function.

``place(request, hosts)`` receives a PlacementRequest and HostLoad views of every
enabled, reachable host (in configuration order) and returns the chosen
HostLoad, or None when nothing fits. The default is *first fit*: the first host
with enough free cpu and memory. The configuration's ``placement`` key picks
another of PLACERS (``least-power``: the host where the machine adds the least
watts; ``optimizer``: the energy optimizer of plugins/module_utils/placement on
the whole pool), and ``create_app(config, placer=...)`` takes any function.

A request may pin a host with the ``sirocco.host`` property (an extension,
admin tenants and users alike; an unknown or full host is refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field

HOST_PROPERTY = "sirocco.host"


@dataclass(frozen=True)
class PlacementRequest:
    cpu: int
    memory_kib: int
    arch: str | None = None
    host: str | None = None  # a pinned host name
    hosts_allowed: tuple | None = None  # e.g. the hosts holding the image; None: any


@dataclass
class HostLoad:
    id: int
    name: str
    cpu: int  # capacity
    memory_kib: int
    used_cpu: int = 0
    used_memory_kib: int = 0
    machines: int = 0
    power_idle: float | None = None
    power_max: float | None = None
    cpu_mhz: int | None = None
    arch: str | None = None
    extras: dict = field(default_factory=dict)

    @property
    def free_cpu(self):
        return self.cpu - self.used_cpu

    @property
    def free_memory_kib(self):
        return self.memory_kib - self.used_memory_kib

    def fits(self, request):
        if request.arch and self.arch and request.arch != self.arch:
            return False
        return self.free_cpu >= request.cpu and self.free_memory_kib >= request.memory_kib


def eligible(request, hosts):
    """Hosts the request may go to (pin, allowed list) with room for it, in the given order."""
    return [h for h in hosts if (request.host is None or h.name == request.host)
            and (request.hosts_allowed is None or h.name in request.hosts_allowed) and h.fits(request)]


def first_fit(request, hosts):
    """The first host with enough free cpu and memory (the pinned one if a host was asked for)."""
    found = eligible(request, hosts)
    return found[0] if found else None


def added_power(host, request):
    """Watts the machine adds to ``host``: its share of the dynamic power, plus the idle power
    when it switches an empty host on. Hosts without power figures come last."""
    if host.power_idle is None or host.power_max is None or not host.cpu:
        return float("inf")
    slope = (host.power_max - host.power_idle) / host.cpu
    return (0.0 if host.machines else host.power_idle) + slope * request.cpu


def least_power(request, hosts):
    """Energy-aware choice for one machine: the host where it adds the least power."""
    found = eligible(request, hosts)
    if not found:
        return None
    return min(enumerate(found), key=lambda pair: (added_power(pair[1], request), pair[0]))[1]


def optimizer(request, hosts, time_limit=1.0):
    """The pool's placement optimizer (plugins/module_utils/placement/energy.py): what runs on
    each host stays there (one aggregate VM per host, preserved), the new machine is placed where
    the whole pool draws least. Falls back to least_power when it cannot answer."""
    # loaded on first use, the one lazy import here: every siroccod command reads the configuration, which
    # names the placers (config.py), and the optimizer's modules take ~0.15 s to import
    from ansible_collections.sirocco.cimi.plugins.module_utils.placement import energy
    from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import Fence, Host, Preserve, Problem, Vm
    found = eligible(request, hosts)
    if not found:
        return None
    usable = [h for h in hosts if h.power_idle is not None and h.power_max is not None and h.cpu and h.memory_kib]
    if len(usable) != len(hosts):
        return least_power(request, hosts)
    vms = [Vm("load@" + h.name, h.used_cpu, h.used_memory_kib, h.name) for h in hosts if h.machines]
    problem = Problem(
        hosts=[Host(h.name, h.cpu, h.memory_kib, h.power_idle, h.power_max, on=bool(h.machines)) for h in hosts],
        vms=vms + [Vm("new", request.cpu, request.memory_kib)],
        constraints=[Preserve(tuple(v.name for v in vms))] + [Fence(("new",), tuple(h.name for h in found))],
        time_limit=time_limit)
    try:
        result = energy.solve(problem, time_limit=time_limit, use_milp=energy.milp_available())
    except Exception:  # noqa: BLE001  a solver failure must not refuse the machine
        return least_power(request, hosts)
    chosen = result.placement.get("new") if result.found else None
    return next((h for h in found if h.name == chosen), None) or least_power(request, hosts)


PLACERS = {"first-fit": first_fit, "least-power": least_power, "optimizer": optimizer}
place = first_fit

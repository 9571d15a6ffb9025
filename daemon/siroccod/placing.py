"""Which host gets a new machine: a small pluggable function.

``place(request, hosts)`` receives a PlacementRequest and HostLoad views of every
enabled, reachable host (in configuration order) and returns the chosen
HostLoad, or None when nothing fits. The default is *first fit*: the first host
with enough free cpu and memory. The app calls whatever ``placer`` it was given
(``create_app(config, placer=...)``), so the energy-aware optimizer of
``plugins/module_utils/placement`` can replace it without touching the daemon.

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


def first_fit(request, hosts):
    """The first host with enough free cpu and memory (the pinned one if a host was asked for)."""
    for host in hosts:
        if request.host is not None and host.name != request.host:
            continue
        if request.hosts_allowed is not None and host.name not in request.hosts_allowed:
            continue
        if host.fits(request):
            return host
    return None


place = first_fit

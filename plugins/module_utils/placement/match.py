# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Matchmaking: which configured provider gets a new machine.

The original Sirocco's "capabilities advertised at run time, requests directed
to the providers that match". A machine ``Request`` (cpu count and speed,
memory, architecture, disk, location, the operations the machine will need, or
a named size) is checked against what each provider offers (an ``Offer``: its
label, ``Capabilities``, sizes, load, prices), gathered by ``survey_all``. A
provider is a *candidate* when it supports every needed operation, its ranges,
architectures and locations admit the request and it has a size that fits
(the smallest fitting one is taken). Every other provider is *rejected* with
reasons. A *policy* (``POLICIES``, extended with ``register_policy``) picks one
candidate and says why; ``match`` returns a ``Placement``, or raises
``NoCandidate`` (a ``Conflict``) listing why each provider was rejected.

Wishes travel in the machine's CIMI ``properties`` (extensions, named like the
daemon's ``sirocco.host``):

``sirocco.provider``
    label(s) of the provider(s) the machine may go to, comma-separated, in order
    of preference (a connector name such as ``libvirt`` names every provider of
    that kind). Others are rejected; policy ``explicit`` takes the first wished
    candidate.
``sirocco.location``
    a location the provider must advertise (``Capabilities.locations``: a host,
    cluster or region name).
``sirocco.operations``
    further operations the machine will need later, comma-separated
    (``machine.capture,machine.pause``), on top of those of the request.

Figures a policy uses when a provider has them:

* price per hour of a size: ``Offer.prices`` (size id or name -> price, from
  the provider's configuration) or the size's property ``sirocco.pricePerHour``;
* load: ``Offer.machines`` (machines counted by the survey); free capacity from
  ``Capabilities.extras`` ``freeCpu`` and ``freeMemoryMiB``, or summed over
  ``powerHosts``;
* power: ``Capabilities.extras["powerHosts"]``, rows shaped like ``siroccod
  hosts --json`` (``name``, ``cpu``, ``memoryMiB``, ``usedCpu``,
  ``usedMemoryMiB``, ``machines``, ``powerIdle``, ``powerMax`` watts), which a
  daemon-backed provider advertises; or ``extras["wattsPerCpu"]``, the watts one
  more vCPU draws there.

No Ansible and no Flask here: the modules and the daemon share this file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    ProviderUnavailable,
    SiroccoError,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import IMAGE_NAME_PROPERTY

if TYPE_CHECKING:  # names for annotations only
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
        Machine,
        MachineConfiguration,
        MachineImage,
    )
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import Connector

    # a policy: (candidates, request) -> (the one chosen, the end of "<label> chosen by policy <name>: ...")
    Policy = Callable[[list["Candidate"], "Request"], tuple["Candidate", str]]

WISH_PROVIDER = "sirocco.provider"
WISH_LOCATION = "sirocco.location"
WISH_OPERATIONS = "sirocco.operations"
WISHES = (WISH_PROVIDER, WISH_LOCATION, WISH_OPERATIONS)
PRICE_PROPERTY = "sirocco.pricePerHour"
EXTRA_POWER_HOSTS = "powerHosts"
EXTRA_WATTS_PER_CPU = "wattsPerCpu"
EXTRA_FREE_CPU = "freeCpu"
EXTRA_FREE_MEMORY = "freeMemoryMiB"
KIB_PER_MIB = 1024
KIB_PER_GIB = 1024 * 1024
# Operations every placed machine needs: the machine is created, then found again by name.
BASE_OPERATIONS = frozenset({"machine.create", "machine.list", "machine.get"})


class NoCandidate(Conflict):
    """No configured provider can take the machine; ``rejected`` maps each label to its reasons."""

    def __init__(self, message: str, rejected: dict[str, list[str]]) -> None:
        super().__init__(message, rejected=rejected)
        self.rejected = rejected


# -- the request ------------------------------------------------------------------------------

def _csv(value):
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


@dataclass(frozen=True)
class Request:
    """What a new machine needs. ``size`` names a size instead of giving the hardware by value."""

    cpu: int | None = None
    memory_mib: int | None = None
    cpu_mhz: int | None = None
    arch: str | None = None
    disk_gib: int = 0
    location: str | None = None
    operations: frozenset[str] = BASE_OPERATIONS
    size: str | None = None
    providers: tuple[str, ...] = ()  # wished provider labels (or connector names), in order of preference
    image: str | None = None  # name or id of a MachineImage the provider must have

    @classmethod
    def build(cls, config: MachineConfiguration | None = None, size: str | None = None,
              properties: Mapping[str, str] | None = None, operations: Iterable[str] = (),
              location: str | None = None, image: str | None = None) -> Request:
        """A Request from a MachineConfiguration (hardware by value) or a size name, the machine's
        ``properties`` (whose ``sirocco.*`` wishes are read), the operations it will need and the
        image it boots from."""
        properties = properties or {}
        if config is None and size is None:
            raise InvalidInput("a machine request needs hardware (cpu and memory) or a size name",
                               attribute="machineConfig")
        disk_kib = sum(int(d.get("capacity") or 0) for d in (config.disks or [])) if config is not None else 0
        wished_ops = _csv(properties.get(WISH_OPERATIONS))
        return cls(
            cpu=config.cpu if config is not None else None,
            memory_mib=-(-config.memory // KIB_PER_MIB) if config is not None and config.memory else None,
            cpu_mhz=config.cpuSpeed if config is not None else None,
            arch=config.cpuArch if config is not None else None,
            disk_gib=-(-disk_kib // KIB_PER_GIB),
            location=location or properties.get(WISH_LOCATION) or None,
            operations=frozenset(BASE_OPERATIONS) | frozenset(operations) | frozenset(wished_ops),
            size=size,
            providers=_csv(properties.get(WISH_PROVIDER)),
            image=image,
        )

    def describe(self) -> str:
        """The request in words: ``2 vCPUs, 512 MiB, 4 GiB disk, x86_64``."""
        if self.size is not None:
            parts = ["size '%s'" % self.size]
        else:
            # by value: cpu and memory are set (check() refuses a request without them)
            parts = ["%d vCPU%s" % (self.cpu, "" if self.cpu == 1 else "s"),  # type: ignore[str-format]
                     "%d MiB" % self.memory_mib]  # type: ignore[str-format]
            if self.cpu_mhz:
                parts.append("%d MHz" % self.cpu_mhz)
            if self.disk_gib:
                parts.append("%d GiB disk" % self.disk_gib)
            if self.arch:
                parts.append(self.arch)
        if self.image:
            parts.append("image '%s'" % self.image)
        if self.location:
            parts.append("at %s" % self.location)
        return ", ".join(parts)


# -- what a provider offers -------------------------------------------------------------------

@dataclass
class Offer:
    """One configured provider as the survey found it. ``sizes`` is None when it lists none (machines
    are then created by value); ``error`` says why the survey failed; ``existing`` is the machine of
    the requested name found there."""

    label: str
    provider: str | None = None  # the connector's name (libvirt, ec2...)
    capabilities: Any = None  # connectors.base.Capabilities; None only on an Offer with an error
    sizes: list[MachineConfiguration] | None = None
    machines: int | None = None
    prices: dict[str, Any] = field(default_factory=dict)
    existing: Machine | None = None
    error: str | None = None
    images: list[MachineImage] | None = None  # when the survey was asked for them and could list them
    images_error: str | None = None  # why they could not be listed

    def price(self, size: MachineConfiguration | None) -> float | None:
        """Price per hour of ``size`` here, None when unknown."""
        if size is None:
            return None  # made by value: no price list applies
        for key in (size.id, size.name):
            if key is not None and key in self.prices:
                return as_number(self.prices[key])
        return as_number((size.properties or {}).get(PRICE_PROPERTY))


def as_number(value: Any) -> float | None:
    """``value`` as a float, None when it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def survey(label: str, connector: Connector, name: str | None = None, images: bool = False) -> Offer:
    """The Offer of one provider: capabilities, sizes, machine count, the machine called ``name``
    and, when ``images``, its images.

    Never raises for a provider fault: the Offer carries the error instead.
    """
    try:
        caps = connector.capabilities()
        sizes = connector.list_machine_configs() if caps.supports("machine_config.list") else None
        count = existing = None
        if caps.supports("machine.list"):
            count, found = 0, []
            for machine in connector.iter_machines():
                count += 1
                if name is not None and machine.name == name:
                    found.append(machine)
            if len(found) > 1:
                raise Conflict("%d machines are named '%s' there; use their ids" % (len(found), name))
            existing = found[0] if found else None
        offer = Offer(label=label, provider=connector.name, capabilities=caps, sizes=sizes, machines=count,
                      existing=existing)
        if images:
            if not caps.supports("machine_image.list"):
                offer.images_error = "it lists no images"
            else:
                try:
                    offer.images = connector.list_machine_images()
                except SiroccoError as exc:  # no image store: no image there, but the provider still answers
                    offer.images_error = exc.message
        return offer
    except SiroccoError as exc:
        return Offer(label=label, provider=connector.name, error=exc.message)
    except Exception as exc:  # noqa: BLE001 - a library error the connector let through: reported, not raised
        return Offer(label=label, provider=connector.name, error="unexpected %s: %s" % (type(exc).__name__, exc))


def survey_all(connectors: Mapping[str, Connector], name: str | None = None, images: bool = False,
               workers: int = 8) -> list[Offer]:
    """Offers of every provider (``connectors``: label -> connector), surveyed concurrently, in order."""
    items = list(connectors.items())
    if len(items) <= 1 or workers <= 1:
        return [survey(label, conn, name, images) for label, conn in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="sirocco-survey") as pool:
        futures = [pool.submit(survey, label, conn, name, images) for label, conn in items]
        return [f.result() for f in futures]


# -- fitting ------------------------------------------------------------------------------------

def disk_gib(size: MachineConfiguration) -> int:
    return sum(int(d.get("capacity") or 0) for d in (size.disks or [])) // KIB_PER_GIB


def size_key(size: MachineConfiguration) -> tuple[int, int, int]:
    """How big a size is, smallest first: vCPUs, then memory, then disk."""
    return (size.cpu or 0, size.memory or 0, disk_gib(size))


def size_text(size: MachineConfiguration) -> str:
    """``'small' (1 vCPU, 128 MiB, 1 GiB disk)``."""
    parts = ["%d vCPU%s" % (size.cpu, "" if size.cpu == 1 else "s"), "%d MiB" % (size.memory // KIB_PER_MIB)]
    if disk_gib(size):
        parts.append("%d GiB disk" % disk_gib(size))
    if size.cpuArch:
        parts.append(size.cpuArch)
    return "'%s' (%s)" % (size.name or size.id, ", ".join(parts))


def _size_misses(size, request):
    """Dimensions (names) in which ``size`` falls short of ``request``."""
    misses = []
    if request.cpu is not None and (size.cpu or 0) < request.cpu:
        misses.append("cpu")
    if request.memory_mib is not None and (size.memory or 0) < request.memory_mib * KIB_PER_MIB:
        misses.append("memory")
    if request.disk_gib and size.disks and disk_gib(size) < request.disk_gib:
        misses.append("disk")  # a size that declares no disk does not limit it
    if request.arch and size.cpuArch and size.cpuArch != request.arch:
        misses.append("arch")
    if request.cpu_mhz and size.cpuSpeed and size.cpuSpeed < request.cpu_mhz:
        misses.append("mhz")
    return misses


_SHORT = {
    "cpu": lambda r: "≥ %d vCPU%s" % (r.cpu, "" if r.cpu == 1 else "s"),
    "memory": lambda r: "≥ %d MiB memory" % r.memory_mib,
    "disk": lambda r: "≥ %d GiB disk" % r.disk_gib,
    "arch": lambda r: "architecture %s" % r.arch,
    "mhz": lambda r: "≥ %d MHz" % r.cpu_mhz,
}


def _within_ranges(caps, size):
    return caps.fits(cpu=size.cpu, memory_mib=(size.memory or 0) // KIB_PER_MIB, arch=size.cpuArch,
                     cpu_mhz=size.cpuSpeed)


def _pick_size(offer, request):
    """(smallest fitting size or None for by value, reasons it cannot be served)."""
    caps, sizes = offer.capabilities, offer.sizes
    if request.size is not None:
        if sizes is None:
            return None, ["lists no named sizes (size '%s' asked)" % request.size]
        named = [s for s in sizes if s.id == request.size] or [s for s in sizes if s.name == request.size]
        if not named:
            known = ", ".join(s.name or s.id for s in sizes) or "none"
            return None, ["no size named '%s' (offers: %s)" % (request.size, known)]
        outside = _within_ranges(caps, named[0])
        if outside:
            return None, ["size '%s' exceeds what the provider admits: %s" % (request.size, "; ".join(outside))]
        return named[0], []
    if sizes is None:
        return None, []  # no sizes listed: the machine is made by value, within the ranges checked already
    if not sizes:
        return None, ["offers no sizes"]
    misses = {id(s): _size_misses(s, request) for s in sizes}
    fitting = [s for s in sizes if not misses[id(s)]]
    if not fitting:
        alone = [dim for dim in ("cpu", "memory", "disk", "arch", "mhz")
                 if all(dim in misses[id(s)] for s in sizes)]
        if alone:
            wanted = " and ".join(_SHORT[d](request) for d in alone)
            return None, ["no size with %s (largest: %s)" % (wanted, size_text(max(sizes, key=size_key)))]
        short = [_SHORT[d](request) for d in _SHORT if any(d in m for m in misses.values())]
        return None, ["no single size has %s" % ", ".join(short)]
    usable = [s for s in fitting if not _within_ranges(caps, s)]
    if not usable:
        smallest = min(fitting, key=size_key)
        return None, ["the sizes that fit exceed what the provider admits: %s: %s"
                      % (size_text(smallest), "; ".join(_within_ranges(caps, smallest)))]
    return min(usable, key=size_key), []


def _image_reasons(offer, image):
    if offer.images is None:
        return ["cannot look up image '%s': %s" % (image, offer.images_error or "images were not listed")]
    if any(image in (i.id, i.name, (i.properties or {}).get(IMAGE_NAME_PROPERTY)) for i in offer.images):
        return []  # a native id or name, or the generic name registration wrote (machine_images.resolve_image)
    names = [i.name or i.id for i in offer.images]
    shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
    return ["no image '%s' (offers: %s)" % (image, shown or "none")]


def _wished(offer, request):
    return not request.providers or offer.label in request.providers or offer.provider in request.providers


def check(offer: Offer, request: Request) -> tuple[MachineConfiguration | None, list[str]]:
    """(size, reasons): the size ``offer`` would serve ``request`` with (None: by value), and why it
    cannot (an empty list when it can)."""
    if offer.error is not None:
        return None, ["unavailable: %s" % offer.error]
    if not _wished(offer, request):
        return None, ["not named by %s (%s)" % (WISH_PROVIDER, ", ".join(request.providers))]
    caps = offer.capabilities
    reasons = ["operation %s unsupported" % op for op in sorted(request.operations - caps.operations)]
    if request.size is None:
        if request.cpu is None or request.memory_mib is None:
            raise InvalidInput("a machine request by value needs cpu and memory", attribute="machineConfig")
        reasons += caps.fits(cpu=request.cpu, memory_mib=request.memory_mib, arch=request.arch,
                             cpu_mhz=request.cpu_mhz)
    if request.location and request.location not in caps.locations:
        reasons.append("location '%s' not offered (offers: %s)"
                       % (request.location, ", ".join(caps.locations) or "none"))
    if request.image:
        reasons += _image_reasons(offer, request.image)
    if reasons:
        return None, reasons
    return _pick_size(offer, request)


# -- policies -----------------------------------------------------------------------------------

@dataclass
class Candidate:
    """A provider that can take the machine, with the size it would use."""

    offer: Offer
    size: MachineConfiguration | None  # None when created by value
    index: int  # position among the configured providers

    @property
    def label(self) -> str:
        return self.offer.label

    @property
    def price(self) -> float | None:
        return self.offer.price(self.size)

    def size_text(self, request: Request | None = None) -> str:
        if self.size is not None:
            return size_text(self.size)
        return "by value (%s)" % request.describe() if request is not None else "by value"

    def key(self) -> tuple[int, int, int]:
        """Size order for ties and for ``smallest``; by-value machines count as exactly the request."""
        return size_key(self.size) if self.size is not None else (0, 0, 0)


POLICIES: dict[str, Policy] = {}


def register_policy(name: str, function: Policy, summary: str) -> Policy:
    """Add a policy: ``function(candidates, request) -> (candidate, reason)``.

    ``candidates`` is never empty and keeps the configured order; ``reason``
    finishes the sentence "<label> chosen by policy <name>: ...".
    """
    function.summary = summary  # type: ignore[attr-defined]  # an attribute set on the function itself
    POLICIES[name] = function
    return function


def policy(name: str, summary: str) -> Callable[[Policy], Policy]:
    return lambda function: register_policy(name, function, summary)


def policy_names() -> list[str]:
    return list(POLICIES)


def _labels(candidates):
    return ", ".join(c.label for c in candidates)


@policy("first", "the first fitting provider, in the order the providers are configured")
def first_match(candidates: list[Candidate], request: Request) -> tuple[Candidate, str]:
    chosen = candidates[0]
    if len(candidates) == 1:
        return chosen, "the only provider that fits"
    return chosen, "the first fitting provider in the configured order (%s)" % _labels(candidates)


@policy("explicit", "the provider the sirocco.provider wish names (the first wished one that fits)")
def explicit(candidates: list[Candidate], request: Request) -> tuple[Candidate, str]:
    if not request.providers:
        raise InvalidInput("placement policy 'explicit' needs properties['%s'] naming the provider" % WISH_PROVIDER,
                           attribute="properties")
    for wish in request.providers:
        for c in candidates:
            if wish in (c.label, c.offer.provider):
                return c, "named by %s (%s)" % (WISH_PROVIDER, ", ".join(request.providers))
    return candidates[0], "named by %s" % WISH_PROVIDER  # not reached: candidates are wished ones


@policy("smallest", "the provider whose fitting size is the smallest (vCPUs, then memory, then disk)")
def smallest(candidates: list[Candidate], request: Request) -> tuple[Candidate, str]:
    chosen = min(candidates, key=lambda c: (c.key(), c.index))
    others = [c for c in candidates if c is not chosen]
    text = "its size %s is the smallest that fits" % chosen.size_text(request)
    if others:
        text += " (others: %s)" % "; ".join("%s %s" % (c.label, c.size_text()) for c in others)
    return chosen, text


@policy("cheapest", "the lowest price per hour where prices are known, else smallest")
def cheapest(candidates: list[Candidate], request: Request) -> tuple[Candidate, str]:
    priced = [c for c in candidates if c.price is not None]
    unpriced = [c for c in candidates if c.price is None]
    if not priced:
        chosen, text = smallest(candidates, request)
        return chosen, "no fitting provider has a known price (%s), so the smallest size: %s" % (
            _labels(candidates), text)
    chosen = min(priced, key=lambda c: (c.price, c.key(), c.index))
    text = "%s at %s per hour is the lowest known price" % (chosen.size_text(request), _price(chosen.price))
    others = ["%s %s" % (c.label, _price(c.price)) for c in priced if c is not chosen]
    if others:
        text += " (others: %s)" % ", ".join(others)
    if unpriced:
        text += "; no price known for %s" % _labels(unpriced)
    return chosen, text


def _price(value):
    return "%g" % value


def free_capacity(offer: Offer) -> tuple[float, float] | None:
    """(free vCPUs, free MiB) the provider advertises, None when it does not."""
    extras = offer.capabilities.extras or {}
    cpu, mem = as_number(extras.get(EXTRA_FREE_CPU)), as_number(extras.get(EXTRA_FREE_MEMORY))
    if cpu is not None and mem is not None:
        return cpu, mem
    hosts = _power_hosts(offer)
    if hosts:
        return (sum(h["cpu"] - h["usedCpu"] for h in hosts),
                sum(h["memoryMiB"] - h["usedMemoryMiB"] for h in hosts))
    return None


@policy("least-loaded", "the most free capacity where every candidate advertises it, else the fewest machines")
def least_loaded(candidates: list[Candidate], request: Request) -> tuple[Candidate, str]:
    free: dict[int, Any] = {id(c): free_capacity(c.offer) for c in candidates}
    if all(free[id(c)] is not None for c in candidates):
        chosen = max(candidates, key=lambda c: (free[id(c)], -c.index))
        cpu, mem = free[id(chosen)]
        text = "most free capacity: %g vCPUs and %g MiB free" % (cpu, mem)
        others = ["%s %g vCPUs/%g MiB" % (c.label, *free[id(c)]) for c in candidates if c is not chosen]
        return chosen, text + (" (others: %s)" % ", ".join(others) if others else "")
    counted: list[Any] = [c for c in candidates if c.offer.machines is not None]  # machines: an int
    if not counted:
        chosen, text = first_match(candidates, request)
        return chosen, "no fitting provider says how loaded it is, so %s" % text
    chosen = min(counted, key=lambda c: (c.offer.machines, c.index))
    text = "fewest machines: %d" % chosen.offer.machines
    others = ["%s %d" % (c.label, c.offer.machines) for c in counted if c is not chosen]
    if others:
        text += " (others: %s)" % ", ".join(others)
    unknown = [c for c in candidates if c.offer.machines is None]
    if unknown:
        text += "; machines not counted on %s" % _labels(unknown)
    return chosen, text


def _power_hosts(offer):
    rows = (offer.capabilities.extras or {}).get(EXTRA_POWER_HOSTS)
    hosts = []
    for row in rows or ():
        try:
            hosts.append({"name": row.get("name"), "cpu": float(row["cpu"]), "memoryMiB": float(row["memoryMiB"]),
                          "usedCpu": float(row.get("usedCpu") or 0),
                          "usedMemoryMiB": float(row.get("usedMemoryMiB") or 0),
                          "machines": int(row.get("machines") or 0),
                          "powerIdle": as_number(row.get("powerIdle")), "powerMax": as_number(row.get("powerMax"))})
        except (AttributeError, KeyError, TypeError, ValueError):
            continue  # a row without capacity says nothing usable
    return hosts


def added_watts(offer: Offer, cpu: float, memory_mib: float) -> tuple[float, str] | None:
    """(watts the machine would add, where) on this provider, or None without power figures.

    With ``powerHosts``: the least, over hosts with room, of the host's share of dynamic power
    (``(powerMax - powerIdle) / cpu`` per vCPU) plus its idle power when it is empty (switched on
    for this machine), as the daemon's least-power placer counts. With ``wattsPerCpu``: that times
    the vCPUs.
    """
    best = None
    for h in _power_hosts(offer):
        if h["powerIdle"] is None or h["powerMax"] is None or not h["cpu"]:
            continue
        if h["cpu"] - h["usedCpu"] < cpu or h["memoryMiB"] - h["usedMemoryMiB"] < memory_mib:
            continue
        watts = (0.0 if h["machines"] else h["powerIdle"]) + (h["powerMax"] - h["powerIdle"]) / h["cpu"] * cpu
        if best is None or watts < best[0]:
            best = (watts, "host %s" % h["name"])
    if best is not None:
        return best
    per_cpu = as_number((offer.capabilities.extras or {}).get(EXTRA_WATTS_PER_CPU))
    if per_cpu is not None:
        return per_cpu * cpu, "%g W per vCPU" % per_cpu
    return None


@policy("lowest-energy", "the fewest added watts where providers advertise power figures "
                         "(daemon-backed ones do), else first")
def lowest_energy(candidates: list[Candidate], request: Request) -> tuple[Candidate, str]:
    watts: dict[int, Any] = {}
    for c in candidates:
        # a request by value has cpu and memory (check() refuses one without)
        cpu: Any = c.size.cpu if c.size is not None else request.cpu
        mem: Any = c.size.memory // KIB_PER_MIB if c.size is not None else request.memory_mib
        watts[id(c)] = added_watts(c.offer, cpu, mem)
    known = [c for c in candidates if watts[id(c)] is not None]
    unknown = [c for c in candidates if watts[id(c)] is None]
    if not known:
        chosen, text = first_match(candidates, request)
        return chosen, ("no fitting provider advertises power figures (extras %s or %s), so fell back to "
                        "policy first: %s" % (EXTRA_POWER_HOSTS, EXTRA_WATTS_PER_CPU, text))
    chosen = min(known, key=lambda c: (watts[id(c)][0], c.index))
    text = "it adds the least power, %.1f W (%s)" % watts[id(chosen)]
    others = ["%s %.1f W" % (c.label, watts[id(c)][0]) for c in known if c is not chosen]
    if others:
        text += "; others: %s" % ", ".join(others)
    if unknown:
        text += "; no power figures from %s" % _labels(unknown)
    return chosen, text


# -- the result -----------------------------------------------------------------------------------

@dataclass
class Placement:
    """The provider chosen for a machine, and why."""

    label: str | None
    provider: str | None  # the connector's name
    size: MachineConfiguration | None  # None when created by value or when the machine exists
    policy: str
    why: str
    rejected: dict[str, list[str]] = field(default_factory=dict)  # label -> [reasons]
    candidates: list[str] = field(default_factory=list)  # labels that could take the machine
    existing: Machine | None = None  # the Machine found by name, when it exists already

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.label, "connector": self.provider, "policy": self.policy, "why": self.why,
                "size": (self.size.name or self.size.id) if self.size is not None else None,
                "candidates": list(self.candidates), "rejected": {k: list(v) for k, v in self.rejected.items()}}


def rejected_text(rejected: Mapping[str, Sequence[str]]) -> str:
    return "; ".join("%s: %s" % (label, ", ".join(reasons)) for label, reasons in rejected.items())


def _check_wishes(offers, request):
    known = {o.label for o in offers} | {o.provider for o in offers if o.provider}
    unknown = [w for w in request.providers if w not in known]
    if unknown:
        raise InvalidInput("properties['%s']: no configured provider is called %s (configured: %s)"
                           % (WISH_PROVIDER, ", ".join("'%s'" % w for w in unknown),
                              ", ".join(o.label for o in offers)), attribute="properties")


def match(offers: Sequence[Offer], request: Request, policy_name: str = "first") -> Placement:
    """The Placement of ``request`` among ``offers`` by policy ``policy_name``; NoCandidate when none fits."""
    if policy_name not in POLICIES:
        raise InvalidInput("unknown placement policy '%s' (known: %s)" % (policy_name, ", ".join(POLICIES)),
                           attribute="placement_policy")
    if not offers:
        raise InvalidInput("no provider to choose from", attribute="providers")
    labels = [o.label for o in offers]
    if len(set(labels)) != len(labels):
        raise InvalidInput("provider labels must be unique (got %s)" % ", ".join(labels), attribute="providers")
    _check_wishes(offers, request)
    candidates, rejected = [], {}
    for index, offer in enumerate(offers):
        size, reasons = check(offer, request)
        if reasons:
            rejected[offer.label] = reasons
        else:
            candidates.append(Candidate(offer=offer, size=size, index=index))
    if not candidates:
        raise NoCandidate("no provider can take a machine of %s: %s" % (request.describe(), rejected_text(rejected)),
                          rejected)
    chosen, reason = POLICIES[policy_name](candidates, request)
    why = "%s chosen by policy %s: %s; size %s" % (chosen.label, policy_name, reason, chosen.size_text(request))
    if rejected:
        why += ". Rejected: %s" % rejected_text(rejected)
    return Placement(label=chosen.label, provider=chosen.offer.provider, size=chosen.size, policy=policy_name,
                     why=why, rejected=rejected, candidates=[c.label for c in candidates])


def locate(offers: Sequence[Offer], name: str) -> Placement | None:
    """The Placement of an existing machine called ``name`` (policy ``existing``), None when it exists on
    no provider. Conflict when it exists on several; ProviderUnavailable when it was not found but a
    provider could not be asked (a new machine could then be a second one of that name)."""
    found = [o for o in offers if o.existing is not None]
    if len(found) > 1:
        raise Conflict("machine '%s' exists on several providers (%s); keep one, or list only one of them"
                       % (name, ", ".join(o.label for o in found)))
    if found:
        offer = found[0]
        why = "machine '%s' already exists on %s, so it is used there (no second one is made elsewhere)" % (
            name, offer.label)
        return Placement(label=offer.label, provider=offer.provider, size=None, policy="existing", why=why,
                         candidates=[offer.label], existing=offer.existing)
    failed = [o for o in offers if o.error is not None]
    if failed:
        raise ProviderUnavailable(
            "cannot tell whether machine '%s' exists on %s, so no provider is chosen (a second machine of that "
            "name could result); fix or remove: %s" % (name, ", ".join(o.label for o in failed),
                                                       "; ".join("%s: %s" % (o.label, o.error) for o in failed)))
    unlisted = [o for o in offers if o.machines is None]
    if unlisted:
        raise ProviderUnavailable(
            "cannot tell whether machine '%s' exists on %s (it lists no machines), so no provider is chosen"
            % (name, ", ".join(o.label for o in unlisted)))
    return None


def choose(offers: Sequence[Offer], request: Request, policy_name: str = "first",
           name: str | None = None) -> Placement:

    """Where machine ``name`` lives (when it exists on a provider), else where ``request`` goes.

    For an existing machine, ``size`` is the one ``request`` maps to on its provider (None when it
    does not fit there any more, or is made by value), so callers compare the machine with what a
    new one would be.
    """
    if policy_name not in POLICIES:
        raise InvalidInput("unknown placement policy '%s' (known: %s)" % (policy_name, ", ".join(POLICIES)),
                           attribute="placement_policy")
    if name is not None:
        placement = locate(offers, name)
        if placement is not None:
            offer = next(o for o in offers if o.label == placement.label)
            size, reasons = check(offer, replace(request, providers=())) if request is not None else (None, [])
            placement.size = None if reasons else size
            return placement
    return match(offers, request, policy_name)

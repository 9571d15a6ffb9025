"""Where a new machine goes: the daemon's own hosts or one of its upstreams.

The daemon's hosts are one daemon-backed provider, labelled ``local``, offered to
match.py beside every configured upstream (in that order: ``local`` first, then
the upstreams as configured); the configuration's ``routing_policy`` (a match.py
policy: first, explicit, smallest, cheapest, least-loaded, lowest-energy) picks
one. A request may wish in its ``properties``: ``sirocco.provider`` (labels or
connector names, comma-separated), ``sirocco.location`` (a local host name, or a
location an upstream advertises: region, zone, or its configured ``location``),
``sirocco.operations`` (operations the machine will need later). A machine pinned
with ``sirocco.host``, or attached to this daemon's volumes or networks, stays
local.

No provider fits: 409 listing why each was rejected; one that might have fitted
could not be asked: 503 saying which and why.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, ProviderUnavailable
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import Capabilities, Range
from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match
from siroccod import guests, placing
from siroccod.store import Resource
from siroccod.upstream_config import LOCAL

log = logging.getLogger(__name__)
KIB_PER_MIB = 1024
ROUTED_TO = "sirocco.routedTo"  # the machine's properties: the provider it went to...
ROUTING = "sirocco.routing"  # ...and why
PRIVATE_KEYS = frozenset(match.WISHES) | {ROUTED_TO, ROUTING}
# What the daemon does for any machine on its own hosts, whatever their connectors offer.
LOCAL_BASE = match.BASE_OPERATIONS | {"machine.delete"}


@dataclass
class Route:
    label: str  # LOCAL or an upstream's name
    handle: object  # the UpstreamHandle; None for local
    size: object  # the upstream's MachineConfiguration chosen (None: by value)
    why: str
    host: str | None = None  # local: the host a location wish named
    image: str | None = None  # the name of the MachineImage asked for


def wanted(pool, meta, template):
    """Whether machine creation goes through routing: upstreams are configured, or a wish was made
    (which then must name a provider that exists)."""
    return bool(pool.upstreams) or any(k in properties(meta, template) for k in match.WISHES)


def note(doc, route_):
    """Where the machine went and why, in its properties (the user sees them on the machine)."""
    doc["properties"] = dict(doc.get("properties") or {}, **{ROUTED_TO: route_.label, ROUTING: route_.why})


def provider_properties(doc):
    """A machine's properties as its provider gets them: without the routing wishes and outcome,
    which are this daemon's business (an upstream siroccod would read the wishes as its own)."""
    return {k: v for k, v in (doc.get("properties") or {}).items() if k not in PRIVATE_KEYS}


def job_params(route_):
    return {"routing": route_.why} if route_ is not None else {}


def properties(meta, template):
    """A machine's properties: its template's, overridden by the request's own."""
    props = dict(template.get("properties") or {})
    props.update(meta.get("properties") or {})
    return props


def _image_name(session, template):
    ref = (template.get("machineImage") or {}).get("href")
    if not ref:
        return None
    row = session.get(Resource, ref.rsplit("/", 1)[-1])
    return (row.name or row.uuid) if row is not None else None


def local_offer(pool, placer, loads, request, plan, image):
    """The daemon's hosts (``loads``: capacity.loads) as one Offer: by value, ranges as large as the host
    that could take the machine (so a request no host can take is rejected with the figure that does not
    fit), every host's power figures (policy lowest-energy) and free capacity (least-loaded); ``placer``
    places on them (placing.PLACERS)."""
    allowed = plan.allowed
    usable = [h for h in loads if allowed is None or h.name in allowed]
    usable = guests.guest_hosts(pool, usable, plan)[0]  # those that can put its credential and userData into it
    want_cpu, want_kib = request.cpu, request.memory_mib * KIB_PER_MIB
    ops = set(LOCAL_BASE)
    for h in usable:
        handle = pool.handles.get(h.id)
        if handle is not None:
            try:
                ops |= handle.capabilities().operations
            except Exception:  # noqa: BLE001 - a host that cannot say offers the base operations
                pass
    pin = request.location if request.location in {h.name for h in usable} else None
    fit = placer(placing.PlacementRequest(cpu=want_cpu, memory_kib=want_kib, arch=request.arch, host=pin,
                                          hosts_allowed=allowed), usable) if usable else None
    if fit is not None:
        cpu_max, mib_max = fit.free_cpu, fit.free_memory_kib // KIB_PER_MIB
    else:
        cpu_max = max((h.free_cpu for h in usable), default=0)
        roomy = [h for h in usable if h.free_cpu >= want_cpu]
        mib_max = max((h.free_memory_kib for h in (roomy or usable)), default=0) // KIB_PER_MIB
        if cpu_max >= want_cpu and mib_max >= request.memory_mib:
            mib_max = request.memory_mib - 1  # each fits somewhere, not both on one host
    hosts = [{"name": h.name, "cpu": h.cpu, "memoryMiB": h.memory_kib // KIB_PER_MIB, "usedCpu": h.used_cpu,
              "usedMemoryMiB": h.used_memory_kib // KIB_PER_MIB, "machines": h.machines,
              "powerIdle": h.power_idle, "powerMax": h.power_max} for h in usable]
    extras = {match.EXTRA_POWER_HOSTS: hosts,
              match.EXTRA_FREE_CPU: sum(h.free_cpu for h in usable),
              match.EXTRA_FREE_MEMORY: sum(h.free_memory_kib for h in usable) // KIB_PER_MIB}
    caps = Capabilities(provider="siroccod", operations=frozenset(ops), cpu=Range(min(1, cpu_max), cpu_max),
                        memory_mib=Range(min(1, mib_max), mib_max),
                        cpu_mhz=Range(None, max((h.cpu_mhz or 0 for h in usable), default=0) or None),
                        archs=tuple(sorted({h.arch for h in usable if h.arch})),
                        locations=tuple(h.name for h in usable), extras=extras)
    images = [model.MachineImage(id=image, name=image)] if image else None
    return match.Offer(label=LOCAL, provider="siroccod", capabilities=caps, sizes=None,
                       machines=sum(h.machines for h in loads), images=images)


def _upstream_offer(handle, request, image):
    if request.providers and handle.name not in request.providers and handle.provider not in request.providers:
        # not wished: not asked either (match.check rejects it for the wish)
        return match.Offer(label=handle.name, provider=handle.provider,
                           capabilities=Capabilities(provider=handle.provider, operations=frozenset()))
    offer = handle.offer()
    if offer.error is None and image:
        offer.images = [model.MachineImage(id=native, name=name) for name, native in handle.cfg.images.items()]
    return offer


def route(pool, placer, loads, session, meta, template, plan, pinned_host):
    """The Route of a new machine among the daemon's hosts (``loads``, placed by ``placer``) and the
    upstreams of ``pool``; raises InvalidInput, Conflict (match.NoCandidate) or ProviderUnavailable with
    the reasons. It decides only: the caller records the machine."""
    props = properties(meta, template)
    config = plan.config
    image = _image_name(session, template)
    request = match.Request.build(config=model.MachineConfiguration(**config), properties=props, image=image)
    if pinned_host is not None or plan.volumes or plan.networks:
        why = ("pinned to host %s by %s" % (pinned_host, placing.HOST_PROPERTY) if pinned_host is not None
               else "it uses this daemon's volumes or networks")
        if request.providers and LOCAL not in request.providers:
            raise InvalidInput("properties['%s']: the machine must stay on this daemon's hosts (%s)"
                               % (match.WISH_PROVIDER, why), attribute="properties")
        return Route(LOCAL, None, None, "%s: %s" % (LOCAL, why), image=image)
    policy = pool.config.routing_policy
    upstreams = list(pool.upstreams.values())
    offers = [local_offer(pool, placer, loads, request, plan, image)]
    offers += _survey(upstreams, request, image)
    offers, request, refused = _guest_capable(offers, request, plan, upstreams)
    try:
        placement = match.match(offers, request, policy)
    except match.NoCandidate as exc:
        down = {o.label: o.error for o in offers if o.error is not None}
        if down:
            raise ProviderUnavailable(
                "no provider can take a machine of %s now: could not ask %s; the others: %s"
                % (request.describe(), "; ".join("%s (%s)" % kv for kv in down.items()),
                   match.rejected_text({k: v for k, v in dict(exc.rejected, **refused).items() if k not in down})
                   or "none"), rejected=dict(exc.rejected, **refused)) from None
        if refused:
            rejected = dict(exc.rejected, **refused)
            raise match.NoCandidate("no provider can take a machine of %s: %s"
                                    % (request.describe(), match.rejected_text(rejected)), rejected) from None
        raise
    log.info("machine routed: %s", placement.why)
    handle = next((u for u in upstreams if u.name == placement.label), None)
    host = request.location if handle is None and request.location in offers[0].capabilities.locations else None
    return Route(placement.label, handle, placement.size, placement.why, host, image)


def _guest_capable(offers, request, plan, upstreams):
    """The offers that can put the machine's credential and userData into its guest, the request without
    wishes for the others, and why each other one cannot (label -> reasons). None can: InvalidInput (400)
    naming the attribute. ``local`` can when one of the hosts can (local_offer left out the others)."""
    needs = guests.guest_inputs(plan)
    if not needs:
        return offers, request, {}
    by_label = {u.name: u for u in upstreams}
    kept, refused, first = [], {}, None
    for offer in offers:
        if offer.error is not None:  # could not be asked: said as such if nothing fits
            kept.append(offer)
            continue
        if offer.label == LOCAL:
            refusal = None if offer.capabilities.locations else InvalidInput(
                "no host of this daemon can put %s into a guest" % " or ".join(sorted(needs)),
                attribute=sorted(needs)[0])
        else:
            refusal = guests.guest_refusal(by_label.get(offer.label), plan, name=offer.label, upstream=True)
        if refusal is None:
            kept.append(offer)
        else:
            refused[offer.label] = [refusal.message]
            first = first or refusal
    if not refused:
        return offers, request, {}

    def names(offer):
        return (offer.label, offer.provider)
    # a wish that names only providers refused here is dropped from the request (match.py would read it
    # as unknown); a wish naming no provider at all is left for match.py to refuse
    only_refused = [w for w in request.providers if not any(w in names(o) for o in kept)
                    and any(w in names(o) for o in offers if o.label in refused)]
    wished = tuple(w for w in request.providers if w not in only_refused)
    if not kept or (request.providers and not wished):
        raise InvalidInput("no provider can put %s into this machine's guest: %s"
                           % (" or ".join(sorted(needs)), match.rejected_text(refused)), attribute=first.attribute)
    return kept, replace(request, providers=wished), refused


def _survey(upstreams, request, image):
    if len(upstreams) <= 1:
        return [_upstream_offer(u, request, image) for u in upstreams]
    with ThreadPoolExecutor(max_workers=min(8, len(upstreams)), thread_name_prefix="siroccod-survey") as pool:
        return list(pool.map(lambda u: _upstream_offer(u, request, image), upstreams))


def upstream_spec(route_, plan, props):
    """The creation spec (private.spec) of a machine the upstream of ``route_`` will make."""
    spec = plan.spec()
    if route_.size is not None:  # the size match chose: the upstream maps these figures back to it
        size = route_.size.to_json()
        spec["config"] = dict(spec["config"], **{k: size[k] for k in ("cpu", "memory") if size.get(k)})
        spec["size"] = route_.size.name or route_.size.id
    image = route_.handle.cfg.images.get(route_.image) if route_.image else None
    spec["image"] = {route_.handle.name: image} if image else None
    location = props.get(match.WISH_LOCATION)
    spec["location"] = location if location and location != route_.handle.cfg.location else None
    return spec

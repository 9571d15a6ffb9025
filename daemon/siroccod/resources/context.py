"""What every kind's request handling shares: the Context (the daemon's parts a request needs), lookups
through cmdb.py, templates by reference or by value, reference checks, quotas, a host for a new volume or
network, and the queueing of a request's job (jobs.py's ledger writes it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import REF, type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, Unsupported
from siroccod import capacity, cmdb, guests, hrefs, jobs, placing, quotas
from siroccod.auth import Principal, Users
from siroccod.config import Config
from siroccod.hosts import HostPool
from siroccod.kinds import REF_TYPES, SYSTEM_COMPONENTS
from siroccod.sealing import Sealer
from siroccod.store import Job, Resource, Store, Tenant

if TYPE_CHECKING:  # for the annotations only
    from siroccod.backends import Backend
    from siroccod.plans import MachinePlan

# what every resource's document carries beside its type's own attributes
COMMON = ("name", "description", "properties")


@dataclass
class Context:
    """The daemon's parts request handling uses, and its caches."""

    store: Store
    pool: HostPool
    users: Users | None = None
    sealer: Sealer | None = None  # secrets are written to the CMDB sealed
    config: Config | None = None
    placer: Callable = placing.place  # placing.PLACERS: which host takes a new machine
    wake: Callable[[], None] = lambda: None  # a job was queued: the workers look now
    rendered: dict = field(default_factory=dict)  # (base URI, uuid) -> (version, document): reading.py
    statements: dict = field(default_factory=dict)  # (collection, one?) -> SELECT: reading.statement

    def find(self, session: Session, p: Principal, type_name: str, uuid: object, write: bool = False,
             what: str | None = None, lock: bool = False) -> Resource:
        return cmdb.find(self.store, session, p, type_name, uuid, write=write, what=what, lock=lock)

    def find_ref(self, session: Session, p: Principal, href: str, type_name: str, path: str) -> Resource:
        return cmdb.find_ref(self.store, session, p, href, type_name, path)

    def handle(self, host_id: int | None) -> Backend | None:
        """The host or upstream handle of ``host_id``, else None."""
        return self.pool.handles.get(host_id) or self.pool.upstreams.get(host_id)

    def host_supports(self, host_id: int | None, operation: str) -> bool:
        if host_id is None:
            return True
        handle = self.handle(host_id)
        return handle is not None and handle.supports(operation)

    def host_loads(self, session: Session) -> list[placing.HostLoad]:
        """Capacity and claims of every enabled, reachable host, in configuration order."""
        return capacity.loads(self.pool, session)

    def guest_hosts(self, loads: list[placing.HostLoad],
                    plan: MachinePlan) -> tuple[list[placing.HostLoad], dict[str, InvalidInput]]:
        return guests.guest_hosts(self.pool, loads, plan)


def uri_verb(action):
    prefix = type_uri("action/")
    return action[len(prefix):] if isinstance(action, str) and action.startswith(prefix) else None


def queue(session: Session, p: Principal, op: str, target: Resource | None, params: dict | None = None,
          affected: Iterable[str] = (), parent: Job | None = None, tenant_id: int | None = None,
          action: str | None = None) -> Job:
    """A request's job (of the caller's tenant, unless ``tenant_id`` says whose)."""
    return jobs.queue(session, p.tenant_id if tenant_id is None else tenant_id, op, target, params=params,
                      affected=affected, parent=parent, action=action)


def check_refs(ctx, session, p, cls, parsed, path):
    """Every href in a parsed document points to a resource of the right type the caller sees."""
    for wire, attr in cls.attributes.items():
        value = parsed.get(wire)
        if value is None:
            continue
        if attr.kind == REF and not attr.many and isinstance(value, dict) and "href" in value:
            target = REF_TYPES.get(wire)
            if target is None:
                raise InvalidInput("%s.%s: this endpoint serves no such resources" % (path, wire),
                                   attribute=wire)
            ctx.find_ref(session, p, value["href"], target, "%s.%s" % (path, wire))
        elif attr.kind == REF and attr.many and value:  # e.g. a NetworkTemplate's segments (Table 31)
            target = REF_TYPES.get(wire)
            if target is None:
                raise InvalidInput("%s.%s: not supported by this endpoint (it has no such resources or relations): "
                                   "leave it out or empty" % (path, wire), attribute=wire)
            for i, item in enumerate(value):
                ctx.find_ref(session, p, item["href"], target, "%s.%s[%d]" % (path, wire, i))
        elif wire == "volumes" and attr.many:
            for i, item in enumerate(value):
                ctx.find_ref(session, p, item["volume"]["href"], "Volume", "%s.volumes[%d].volume" % (path, i))
        elif wire == "volumeTemplates" and attr.many:
            for i, item in enumerate(value):
                ctx.find_ref(session, p, item["volumeTemplate"]["href"], "VolumeTemplate",
                             "%s.volumeTemplates[%d].volumeTemplate" % (path, i))
        elif wire == "componentDescriptors":
            for i, item in enumerate(value):
                check_component(ctx, session, p, item, "%s.componentDescriptors[%d]" % (path, i))


def check_component(ctx, session, p, item, path):
    """A SystemTemplate's component descriptor (Table 14; one stored in siroccod's former shape is read as
    Table 14's): a type this endpoint creates, its template under the attribute that type names, by reference
    or by value, with its references checked; any other component template refused, naming its attribute."""
    item = model.spec_descriptor(item)
    creatable = {model.COMPONENT_TEMPLATES[t]: t for t in SYSTEM_COMPONENTS}
    given = [w for w in model.COMPONENT_TEMPLATES.values() if item.get(w) is not None]
    for wire in given:
        if wire not in creatable:
            raise InvalidInput("%s.%s: this endpoint creates no such component in a System (only %s)"
                               % (path, wire, ", ".join(SYSTEM_COMPONENTS[t][0] for t in SYSTEM_COMPONENTS)),
                               attribute=path + "." + wire)
    if item.get("type") not in SYSTEM_COMPONENTS:
        raise InvalidInput("%s.type: components may be %s" % (path, ", ".join(sorted(SYSTEM_COMPONENTS))),
                           attribute=path + ".type")
    rtype, ttype = SYSTEM_COMPONENTS[item["type"]]
    wire = model.COMPONENT_TEMPLATES[item["type"]]
    for other in given:
        if other != wire:
            raise InvalidInput("%s.%s: a %s component takes its template as %s" % (path, other, rtype, wire),
                               attribute=path + "." + other)
    component = item.get(wire)
    where = "%s.%s" % (path, wire)
    if not isinstance(component, dict):
        raise InvalidInput("%s: expected the %s by reference or by value" % (where, ttype), attribute=where)
    tcls = model.RESOURCE_TYPES[ttype]
    parsed = tcls.from_json({k: v for k, v in component.items() if k != "href"}, path=where,
                            partial="href" in component).to_json()
    parsed.pop("resourceURI", None)
    if "href" in component:
        ctx.find_ref(session, p, component["href"], ttype, where)
    check_refs(ctx, session, p, tcls, hrefs.stored(parsed), where)


def template(ctx, session, p, value, type_name, path):
    """A template given by reference (plus overriding attributes) or by value, as one
    stored-form dict (hrefs relative), with its references checked."""
    tcls = model.RESOURCE_TYPES[type_name]
    merged = {}
    overrides = {k: v for k, v in value.items() if k != "href"}
    if "href" in value:
        row = ctx.find_ref(session, p, value["href"], type_name, path)
        merged.update({k: v for k, v in row.doc.items() if k not in COMMON})
    merged.update(hrefs.stored(overrides))
    check_refs(ctx, session, p, tcls, merged, path)
    return merged


def request_template(ctx: Context, session: Session, p: Principal, body: Any, create_cls: type[model.Resource],
                     attr: str, template_type: str, given: dict | None,
                     name: str | dict | None) -> tuple[dict, dict]:
    """(template, attributes of the new resource) of a creation: from its ``create_cls`` ``body`` (a
    MachineCreate, VolumeCreate, NetworkCreate, whose ``attr`` is a ``template_type`` by reference or by
    value, with its name, description and properties), or a System component's checked template ``given``
    (and ``name``: the name it gives the member, or a dict of the member's name, description and properties,
    its component descriptor's: Table 14)."""
    if given is None:
        req = create_cls.from_json(body)
        given = template(ctx, session, p, req.get(attr), template_type, "%s.%s" % (create_cls.__name__, attr))
        meta = {k: req.get(k) for k in COMMON if req.get(k) is not None}
    else:
        meta = {}
    if isinstance(name, dict):
        meta.update({k: v for k, v in name.items() if k in COMMON and v is not None})
    elif name:
        meta["name"] = name
    return given, meta


def by_ref_or_value(ctx: Context, session: Session, p: Principal, value: dict | None, type_name: str,
                    path: str) -> tuple[dict | None, Resource | None]:
    """A referenced resource's attributes with inline overrides (e.g. a machineConfig), and the row
    referenced (None: given by value); (None, None) when ``value`` is None."""
    if value is None:
        return None, None
    merged, row = {}, None
    if "href" in value:
        row = ctx.find_ref(session, p, value["href"], type_name, path)
        merged.update({k: v for k, v in row.doc.items() if k not in COMMON})
    merged.update({k: v for k, v in value.items() if k != "href"})
    return merged, row


def check_quota(session, p, tenant_id, **asked):
    tenant_id = p.tenant_id if tenant_id is None else tenant_id
    name = p.tenant if tenant_id == p.tenant_id else session.get(Tenant, tenant_id).name
    quotas.check(session, tenant_id, name, **asked)


def host_for(ctx, session, p, operation, properties, prefer=None):
    pinned = (properties or {}).get(placing.HOST_PROPERTY)
    candidates = [h for h in ctx.host_loads(session) if ctx.host_supports(h.id, operation)]
    if pinned is not None:
        candidates = [h for h in candidates if h.name == pinned]
        if not candidates:
            raise InvalidInput("properties.%s: no available host '%s' offering %s"
                               % (placing.HOST_PROPERTY, pinned, operation), attribute="properties")
    if prefer is not None:
        candidates = [h for h in candidates if h.id == prefer] or candidates
    if not candidates:
        raise Unsupported("siroccod", operation, "no host of this daemon offers %s" % operation)
    return candidates[0]


@dataclass(frozen=True)
class Outcome:
    """What a request did, for api/ to answer (api.common.reply): ``doc`` (None: no body); a new resource
    recorded at once (``created``: 201 and its Location); or accepted, carried out by the job ``job`` (202
    with CIMI-Job-URI, and Location: ``location``)."""

    doc: dict | None
    created: bool = False
    job: str | None = None
    location: str | None = None


def accepted(doc: dict, job_doc: dict, location: str | None = None) -> Outcome:
    """A request carried out by the job ``job_doc``; Location: ``location``, else the document's id."""
    return Outcome(doc, job=job_doc["id"], location=location or doc["id"])

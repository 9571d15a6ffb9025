"""What the CIMI endpoint does, framework-free: validate, check, record, queue a job.

Every request-side method runs in one CMDB transaction: it validates everything
first (bad input raises before anything is written), then records the change
and the job that will carry it out, all or nothing. The job handlers that talk
to the hosts are in work.py.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
from types import SimpleNamespace

from sqlalchemy import Text, bindparam, cast, func, or_, select
from sqlalchemy.orm.attributes import flag_modified

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import REF, action_uri, type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    SiroccoError,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    public_key,
)
from siroccod import capacity, cmdb, guests, hrefs, image_sources, jobs, metering, placing, quotas, routing
from siroccod.jobs import ACTIVE
from siroccod.kinds import ASYNC, BY_TYPE, KINDS, READONLY, REF_TYPES, RESIZE_PARAMETERS, SYNC, SYSTEM_COMPONENTS
from siroccod.store import Job, Resource, Tenant, iso, new_uuid, utcnow

log = logging.getLogger(__name__)
COMMON = ("name", "description", "properties")
# doc as its stored text: decoded only when the rendered document is not cached yet
LIST_COLUMNS = (Resource.uuid, Resource.tenant_id, Resource.type, Resource.host_id, Resource.native_id,
                Resource.state, cast(Resource.doc, Text).label("doc"), Resource.created, Resource.updated)
# rendered documents kept (one per resource and base URI): ~6.5 KB each for a machine, so at most
# ~130 MB; past that the cache starts again (a larger listing is then rendered as without it)
RENDERED_MAX = 20000
STABLE_FOR_VOLUMES = (states.STARTED, states.STOPPED, states.PAUSED, states.SUSPENDED)
# Sirocco's resize action (model.SIROCCO_RESIZE), offered on machines and volumes: the operation name a
# machine's operations list carries, and the contract operation behind it on each kind
RESIZE = "resize"
# what a machine's plan carries for the checks made before 202 only, never kept with the machine


def _decoded(row):
    """A listed row (doc as stored text) with its doc decoded, for rendering."""
    values = dict(row._mapping)
    if isinstance(values["doc"], str):
        values["doc"] = json.loads(values["doc"])
    return SimpleNamespace(**values)


def checked_cidr(text, path):
    """A network's cidr as the host's connector takes it: an IPv4 network written canonically
    (10.20.0.0/24), with room for a gateway and a guest; else InvalidInput naming ``path``."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise InvalidInput("%s: '%s' is not an IPv4 network such as 10.20.0.0/24 (%s)" % (path, text, exc),
                           attribute="cidr") from None
    if net.version != 4 or net.prefixlen > 29:
        raise InvalidInput("%s: '%s' must be an IPv4 network of /29 or larger" % (path, text), attribute="cidr")
    return str(net)


def _uri_verb(action):
    prefix = type_uri("action/")
    return action[len(prefix):] if isinstance(action, str) and action.startswith(prefix) else None


class Service:
    def __init__(self, store, pool, users, placer=None, wake=None, sealer=None, config=None):
        self.store = store
        self.pool = pool
        self.config = config
        self.users = users
        self.sealer = sealer  # sealing.Sealer: secrets are written to the CMDB sealed
        self.placer = placer or placing.place
        self.wake = wake or (lambda: None)
        self.rendered = {}  # (base URI, uuid) -> (version, document): see list_docs
        self._statements = {}  # (collection, one?) -> SELECT: see _statement

    # ================================================================================
    # reading
    # ================================================================================
    def find(self, session, p, type_name, uuid, write=False, what=None, lock=False):
        return cmdb.find(self.store, session, p, type_name, uuid, write=write, what=what, lock=lock)

    def find_ref(self, session, p, href, type_name, path):
        return cmdb.find_ref(self.store, session, p, href, type_name, path)

    def list_rows(self, session, p, key):
        if key == "jobs":
            return list(session.scalars(select(Job).where(Job.tenant_id == p.tenant_id).order_by(Job.created)))
        # plain rows, not ORM objects, on the session's connection (Core), from a statement built
        # once: listing 1,000 machines must stay cheap
        return session.connection().execute(self._statement(key, False), {"tenant": p.tenant_id}).all()

    def _statement(self, key, one):
        """SELECT LIST_COLUMNS of a collection the caller (:tenant) sees, ordered; ``one``: of :uuid."""
        stmt = self._statements.get((key, one))
        if stmt is None:
            kind = KINDS[key]
            tenant = Resource.tenant_id == bindparam("tenant")
            query = select(*LIST_COLUMNS).where(
                Resource.type == kind.type_name, or_(tenant, Resource.tenant_id.is_(None)) if kind.shared else tenant)
            if one:
                query = query.where(Resource.uuid == bindparam("uuid"))
            stmt = self._statements[(key, one)] = query.order_by(Resource.created, Resource.uuid)
        return stmt

    def list_docs(self, p, key, base):
        """The rendered documents of a collection. Rendering is cached per resource and base URI,
        keyed by everything it reads (stored text, state, host, native id, updated): a row that
        did not change is not decoded or rendered again. The documents returned are shared:
        callers copy before changing one (query.apply_query does)."""
        with self.store.read() as session:
            rows = self.list_rows(session, p, key)
            if key == "jobs":
                return [self.render_job(row, base, p, session) for row in rows]
            if key == "systems":  # a system's state and operations follow its machines': not cached
                rows = [_decoded(row) for row in rows]
                extra = self._render_context(session, rows)
                return [self.render(row, base, p, session, extra) for row in rows]
            return self._rendered(rows, base, p, session, {"ops": {}})

    def _rendered(self, rows, base, p, session, extra):
        """The rendered documents of listed rows, from the cache while each row is unchanged (a
        plain loop: this runs once per resource of a listing)."""
        cache, admin, out = self.rendered, p.is_admin, []
        for row in rows:
            uuid, tenant_id, _type, host_id, native_id, state, doc, _created, updated = row  # LIST_COLUMNS
            version = (doc, state, host_id, native_id, updated, tenant_id is None and admin)
            hit = cache.get((base, uuid))
            if hit is None or hit[0] != version:
                hit = (version, self.render(_decoded(row), base, p, session, extra))
                if len(cache) >= RENDERED_MAX:
                    cache.clear()
                cache[(base, uuid)] = hit
            out.append(hit[1])
        return out

    def get_doc(self, p, key, uuid, base):
        if key == "machines" and self.pool.upstreams:
            self.refresh_routed(p, uuid)  # a routed machine's state from its upstream
        with self.store.read() as session:
            if key == "jobs":
                return self.render_job(self.find_job(session, p, uuid), base, p, session)
            if key not in ("meters", "systems"):  # one row as listed (no ORM object), rendered once
                row = session.connection().execute(self._statement(key, True), {
                    "tenant": p.tenant_id, "uuid": uuid}).first() if isinstance(uuid, str) and len(uuid) <= 64 else None
                if row is None:
                    raise NotFound("%s: no %s '%s'" % (key, KINDS[key].type_name, uuid))
                return self._rendered((row,), base, p, session, None)[0]
            row = self.find(session, p, KINDS[key].type_name, uuid)
            if key == "meters":
                return self.render(row, base, p, session, live=True)
            return self.render(row, base, p, session)

    def resolve(self, p, href, base):
        """The rendered document behind an href the caller may see, else None ($expand)."""
        parts = hrefs.split(href)
        if not parts or len(parts) != 2 or parts[0] not in KINDS:
            return None
        try:
            return self.get_doc(p, parts[0], parts[1], base)
        except NotFound:
            return None

    def find_job(self, session, p, uuid):
        job = session.get(Job, uuid) if isinstance(uuid, str) and len(uuid) <= 64 else None
        if job is None or job.tenant_id != p.tenant_id:
            raise NotFound("jobs: no Job '%s'" % uuid)
        return job

    # ================================================================================
    # rendering
    # ================================================================================
    def _render_context(self, session, rows):
        """What rendering many machines/systems needs, fetched once: host capabilities and,
        for systems, their machines' states."""
        ctx = {"ops": {}}
        if rows and rows[0].type == "System":
            ids = {h["href"].rsplit("/", 1)[1] for row in rows for h in row.doc.get("machines", [])}
            ctx["states"] = dict(session.execute(select(Resource.uuid, Resource.state)
                                                 .where(Resource.uuid.in_(ids))).all()) if ids else {}
        return ctx

    def host_supports(self, host_id, operation):
        if host_id is None:
            return True
        handle = self.pool.handles.get(host_id) or self.pool.upstreams.get(host_id)
        return handle is not None and handle.supports(operation)

    def machine_operations(self, row):
        """Names of the operations a machine allows now: its state's, less what its host lacks."""
        ops = []
        for op in states.allowed_operations(row.state):
            if op in states.MACHINE_ACTIONS and row.native_id is not None and not self.host_supports(
                    row.host_id, "machine." + op):
                continue
            if op in states.MACHINE_ACTIONS and row.native_id is None:
                continue
            ops.append(op)
        if self.resize_offered(row):
            ops.append(RESIZE)
        return ops

    def resize_offered(self, row):
        """Whether a machine may be resized now: its host resizes machines, and it is stopped, or it runs
        on a host that may resize it live (hosts.HostHandle.resizes_live)."""
        if row.native_id is None or row.state not in (states.STOPPED, states.STARTED):
            return False
        if not self.host_supports(row.host_id, "machine.resize"):
            return False
        if row.state == states.STOPPED:
            return True
        handle = self.pool.handles.get(row.host_id)
        try:
            return handle is not None and handle.resizes_live()
        except SiroccoError:
            return False

    def _operations(self, row, rid, p, session, extra):
        if row.tenant_id is None and not p.is_admin:
            return []
        if row.type == "Machine":
            out = []
            key = (row.state, row.host_id, row.native_id is None)
            cache = extra.setdefault("ops", {}) if extra is not None else {}
            if key not in cache:
                cache[key] = self.machine_operations(row)
            for op in cache[key]:
                if op in (states.EDIT, states.DELETE):
                    out.append({"rel": op, "href": rid})
                elif op == RESIZE:
                    out.append({"rel": model.SIROCCO_RESIZE, "href": rid + "/" + RESIZE})
                else:
                    out.append({"rel": action_uri(op), "href": rid + "/" + op})
            return out
        if row.type == "System":
            machine_states = self._system_states(row, session, extra)
            out = [{"rel": "edit", "href": rid}]
            if any(states.is_allowed(s, states.START) for s in machine_states if s):
                out.append({"rel": action_uri("start"), "href": rid + "/start"})
            if any(states.is_allowed(s, states.STOP) for s in machine_states if s):
                out.append({"rel": action_uri("stop"), "href": rid + "/stop"})
            if self.system_deletable(machine_states):
                out.append({"rel": "delete", "href": rid})
            return out
        if row.type in ("Volume", "Network", "MachineImage"):
            if row.state in ("CREATING", "DELETING", "STARTING", "STOPPING", "CAPTURING"):
                return []
            out = [{"rel": "edit", "href": rid}]
            if not (row.type == "Volume" and row.doc.get("attachedTo")):
                out.append({"rel": "delete", "href": rid})
            if row.type == "Volume" and self.volume_resizable(row):
                out.append({"rel": model.SIROCCO_RESIZE, "href": rid + "/" + RESIZE})
            return out
        if row.type in ("Meter", "MeterConfiguration"):  # written by the daemon only
            return []
        return [{"rel": "edit", "href": rid}, {"rel": "delete", "href": rid}]

    def volume_resizable(self, row):
        """Whether a volume may be resized now: AVAILABLE on a host that resizes volumes."""
        return row.state == "AVAILABLE" and row.native_id is not None and self.host_supports(
            row.host_id, "volume.resize")

    @staticmethod
    def _system_states(row, session, extra=None):
        ids = [h["href"].rsplit("/", 1)[1] for h in row.doc.get("machines", [])]
        if extra is not None and "states" in extra:
            return [extra["states"].get(i) for i in ids]
        if not ids:
            return []
        found = dict(session.execute(select(Resource.uuid, Resource.state).where(Resource.uuid.in_(ids))).all())
        return [found.get(i) for i in ids]

    @staticmethod
    def system_deletable(machine_states):
        return all(s is None or states.is_allowed(s, states.DELETE) for s in machine_states)

    @staticmethod
    def system_state(row, machine_states):
        if row.state in ("CREATING", "DELETING", "ERROR"):
            return row.state
        known = [s for s in machine_states if s]
        if not known:
            return states.STOPPED if row.doc.get("machines") is not None else row.state
        if all(s == known[0] for s in known):
            return known[0] if known[0] in states.SYSTEM_STATES else "MIXED"
        return "MIXED"

    def render(self, row, base, p, session=None, extra=None, live=False):
        kind = BY_TYPE[row.type]
        rid = base + hrefs.ref(kind.key, row.uuid)
        doc = {"resourceURI": type_uri(row.type), "id": rid}
        stored = row.doc or {}
        for key in COMMON[:2]:
            if stored.get(key) is not None:
                doc[key] = stored[key]
        doc["created"] = iso(row.created)
        doc["updated"] = iso(row.updated)
        if stored.get("properties"):
            doc["properties"] = dict(stored["properties"])
        body = hrefs.absolute({k: v for k, v in stored.items() if k not in COMMON}, base)
        if row.type == "System":
            body["state"] = self.system_state(row, self._system_states(row, session, extra))
        elif row.state is not None and "state" in kind.cls.attributes:
            body["state"] = row.state
        if row.type == "Machine":
            body["machineVolumes"] = {"href": rid + "/volumes"}  # Sirocco extension: attach/detach here
        if row.type == "Meter" and live and session is not None:
            body.update(metering.latest(session, row.uuid))  # sampled in the background: no host asked
        doc.update(body)
        ops = self._operations(row, rid, p, session, extra)
        if ops:
            doc["operations"] = ops
        return doc

    def render_job(self, job, base, p=None, session=None, extra=None):
        doc = {"resourceURI": type_uri("Job"), "id": base + hrefs.ref("jobs", job.uuid),
               "created": iso(job.created), "updated": iso(job.updated), "state": job.state,
               "action": job.action, "progress": job.progress, "timeOfStatusChange": iso(job.status_changed),
               "isCancellable": False}
        if job.target_uuid and job.target_type in BY_TYPE:
            doc["targetResource"] = {"href": base + hrefs.ref(BY_TYPE[job.target_type].key, job.target_uuid)}
        if job.affected:
            doc["affectedResources"] = [{"href": base + h} for h in job.affected]
        if job.return_code is not None:
            doc["returnCode"] = job.return_code
        if job.status_message:
            doc["statusMessage"] = job.status_message
        if job.parent_uuid:
            doc["parentJob"] = {"href": base + hrefs.ref("jobs", job.parent_uuid)}
        if session is not None:
            nested = session.scalars(select(Job.uuid).where(Job.parent_uuid == job.uuid).order_by(Job.created)).all()
            if nested:
                doc["nestedJobs"] = [{"href": base + hrefs.ref("jobs", u)} for u in nested]
        return doc

    # ================================================================================
    # jobs
    # ================================================================================
    @staticmethod
    def queue(session, p, op, target, params=None, affected=(), parent=None, tenant_id=None):
        return jobs.queue(session, p.tenant_id if tenant_id is None else tenant_id, op, target, params=params,
                          affected=affected, parent=parent)

    # ================================================================================
    # create
    # ================================================================================
    def create(self, p, key, body, base):
        """Returns (status, document, headers)."""
        kind = KINDS.get(key)
        if kind is None or kind.create_cls is None:
            raise InvalidInput("resources cannot be created in the %s collection" % key)
        if kind.lifecycle == SYNC:
            if key == "machineImages":
                location = body.get("imageLocation") if isinstance(body, dict) else None
                parts = hrefs.split(location) if isinstance(location, str) else None
                if parts and parts[0] == "machines":
                    return self.capture_by_image(p, body, base)
                return self.import_image(p, body, base)
            with self.store.transaction() as session:
                row = self.create_sync(session, p, kind, body)
                doc = self.render(row, base, p, session)
            return 201, doc, {"Location": doc["id"]}
        handler = {"machines": self.create_machine, "volumes": self.create_volume,
                   "networks": self.create_network, "systems": self.create_system}[key]
        with self.store.transaction() as session:
            row, job = handler(session, p, body)
            doc = self.render(row, base, p, session)
            job_doc = self.render_job(job, base)
        self.wake()
        return 202, doc, {"Location": doc["id"], "CIMI-Job-URI": job_doc["id"]}

    def _check_refs(self, session, p, cls, parsed, path):
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
                self.find_ref(session, p, value["href"], target, "%s.%s" % (path, wire))
            elif wire == "volumes" and attr.many:
                for i, item in enumerate(value):
                    self.find_ref(session, p, item["volume"]["href"], "Volume", "%s.volumes[%d].volume" % (path, i))
            elif wire == "volumeTemplates" and attr.many:
                for i, item in enumerate(value):
                    self.find_ref(session, p, item["volumeTemplate"]["href"], "VolumeTemplate",
                                  "%s.volumeTemplates[%d].volumeTemplate" % (path, i))
            elif wire == "componentDescriptors":
                for i, item in enumerate(value):
                    self._check_component(session, p, item, "%s.componentDescriptors[%d]" % (path, i))

    def _check_component(self, session, p, item, path):
        if item.get("type") not in SYSTEM_COMPONENTS:
            raise InvalidInput("%s.type: components may be %s" % (path, ", ".join(sorted(SYSTEM_COMPONENTS))),
                               attribute=path + ".type")
        _rtype, ttype = SYSTEM_COMPONENTS[item["type"]]
        component = item.get("component")
        if not isinstance(component, dict):
            raise InvalidInput("%s.component: expected the %s by reference or by value" % (path, ttype),
                               attribute=path + ".component")
        tcls = model.RESOURCE_TYPES[ttype]
        parsed = tcls.from_json({k: v for k, v in component.items() if k != "href"}, path=path + ".component",
                                partial="href" in component).to_json()
        parsed.pop("resourceURI", None)
        if "href" in component:
            self.find_ref(session, p, component["href"], ttype, path + ".component")
        self._check_refs(session, p, tcls, hrefs.stored(parsed), path + ".component")

    def create_sync(self, session, p, kind, body):
        parsed = kind.cls.from_json(body)
        doc = hrefs.stored(parsed.to_json())
        doc.pop("resourceURI", None)
        self._check_refs(session, p, kind.cls, doc, kind.type_name)
        private = {}
        if kind.type_name == "Credential":
            self._check_credential_key(doc)
        if kind.type_name == "Credential" and parsed.get("password") is not None:
            private["password"] = self.sealer.seal(parsed.get("password"))
        state = None
        if kind.type_name in ("MachineImage", "VolumeImage"):
            state = "AVAILABLE"
        uuid = new_uuid()
        row = Resource(uuid=uuid, tenant_id=p.tenant_id, type=kind.type_name, name=doc.get("name"),
                       state=state, doc=doc, private=private)
        row.created = row.updated = utcnow()
        session.add(row)
        session.flush()
        return row

    @staticmethod
    def _check_credential_key(doc):
        """A Credential's public key, when it has one, is an OpenSSH public key line (normalised)."""
        if doc.get("key") is not None:
            try:
                doc["key"] = public_key(doc["key"], "Credential.key")
            except InvalidInput as exc:
                raise InvalidInput(exc.message, attribute="key") from None

    # -- templates ------------------------------------------------------------------------
    def _template(self, session, p, value, type_name, path):
        """A template given by reference (plus overriding attributes) or by value, as one
        stored-form dict (hrefs relative), with its references checked."""
        tcls = model.RESOURCE_TYPES[type_name]
        merged = {}
        overrides = {k: v for k, v in value.items() if k != "href"}
        if "href" in value:
            row = self.find_ref(session, p, value["href"], type_name, path)
            merged.update({k: v for k, v in row.doc.items() if k not in COMMON})
        merged.update(hrefs.stored(overrides))
        self._check_refs(session, p, tcls, merged, path)
        return merged

    def _by_ref_or_value(self, session, p, value, type_name, path):
        """A referenced resource's attributes with inline overrides (e.g. a machineConfig)."""
        if value is None:
            return None
        merged = {}
        if "href" in value:
            row = self.find_ref(session, p, value["href"], type_name, path)
            merged.update({k: v for k, v in row.doc.items() if k not in COMMON})
            merged["__row"] = row
        merged.update({k: v for k, v in value.items() if k != "href"})
        return merged

    # -- what a host can honour, checked before 202 ----------------------------------------------
    def guest_hosts(self, loads, plan):
        return guests.guest_hosts(self.pool, loads, plan)

    def _check_guest_inputs(self, handle, plan, upstream=False):
        refusal = guests.guest_refusal(handle, plan, upstream=upstream)
        if refusal is not None:
            raise refusal

    def _check_hot_plug(self, machine):
        """A volume goes onto (or off) a running machine only where the host can plug it live."""
        if machine.state == states.STOPPED:
            return
        handle = self.pool.handles.get(machine.host_id)
        try:
            live = handle is None or handle.capabilities().hot_plug
        except SiroccoError:
            live = True  # the host cannot say now: its job will
        if not live:
            raise Conflict("host %s cannot plug volumes into a running machine: stop machine '%s' first"
                           % (handle.name, machine.name or machine.uuid))

    # -- quotas (quotas.py) -----------------------------------------------------------------
    @staticmethod
    def _check_quota(session, p, tenant_id, **asked):
        tenant_id = p.tenant_id if tenant_id is None else tenant_id
        name = p.tenant if tenant_id == p.tenant_id else session.get(Tenant, tenant_id).name
        quotas.check(session, tenant_id, name, **asked)

    # -- machines -------------------------------------------------------------------------
    def host_loads(self, session):
        """Capacity and claims of every enabled, reachable host, in configuration order."""
        return capacity.loads(self.pool, session)

    def machine_request(self, session, p, template, path):
        """Resolve a MachineTemplate (stored form) to what the worker needs; nothing written."""
        config = self._by_ref_or_value(session, p, template.get("machineConfig"), "MachineConfiguration",
                                       path + ".machineConfig")
        if config is None:
            raise InvalidInput("%s.machineConfig: a machine needs a configuration (cpu, memory)" % path,
                               attribute="machineConfig")
        config.pop("__row", None)
        checked = model.MachineConfiguration.from_json(
            {k: v for k, v in config.items() if k in model.MachineConfiguration.attributes and k not in COMMON},
            path=path + ".machineConfig").to_json()
        checked.pop("resourceURI", None)
        image = self._by_ref_or_value(session, p, template.get("machineImage"), "MachineImage",
                                      path + ".machineImage")
        image_native, allowed = None, None
        if image is not None and "__row" not in image:
            raise InvalidInput("%s.machineImage: give a MachineImage by reference (create it first from its "
                               "imageLocation)" % path, attribute="machineImage")
        if image is not None:
            image_row = image.pop("__row")
            if image_row.state != "AVAILABLE":
                raise Conflict("%s.machineImage: image is %s, not AVAILABLE" % (path, image_row.state))
            natives = cmdb.image_natives(image_row)
            if not natives:  # a record without a disk on any host: never a blank machine instead
                raise Conflict("%s.machineImage: image '%s' holds no disk on any host of this daemon"
                               % (path, image_row.name or image_row.uuid))
            image_native = natives
            allowed = tuple(natives)
        credential = self._by_ref_or_value(session, p, template.get("credential"), "Credential",
                                           path + ".credential")
        credential_ref, guest = None, {}
        if credential is not None:
            row = credential.pop("__row", None)
            overrides = any(k != "href" for k in template.get("credential") or {})
            if row is not None and not overrides:
                credential_ref = row.uuid
                credential["password"] = row.private.get("password")  # for the checks below only
            elif credential.get("password") is not None:  # given by value: kept with the machine, sealed
                credential["password"] = self.sealer.seal(credential["password"])
            elif row is not None and row.private.get("password"):  # by reference with overrides: by value
                credential["password"] = row.private["password"]
            guest["credential"] = guests.checked_credential(credential, path)
            credential["key"] = guest["credential"]["key"]
            if credential_ref:
                credential = None
        volumes = []
        for i, item in enumerate(template.get("volumes") or []):
            vol = self.find_ref(session, p, item["volume"]["href"], "Volume", "%s.volumes[%d].volume" % (path, i))
            self._check_attachable(session, vol)
            volumes.append({"volume": vol.uuid, "initialLocation": item.get("initialLocation")})
            if vol.host_id is not None:
                name = vol.host.name
                if allowed is not None and name not in allowed:
                    raise Conflict("%s.volumes[%d]: volume is on host %s, which cannot have the machine"
                                   % (path, i, name))
                allowed = (name,)
        if template.get("volumeTemplates"):
            raise Unsupported("siroccod", "machine.create with volumeTemplates",
                              "create the volumes first, then list them in 'volumes'")
        networks = []
        for i, item in enumerate(template.get("interfaceTemplates") or []):
            if not isinstance(item, dict):
                raise InvalidInput("%s.interfaceTemplates[%d]: expected an object" % (path, i), attribute=path)
            net_ref = item.get("network") or (item.get("networkTemplate") or {}).get("network")
            if isinstance(net_ref, dict) and "href" in net_ref:
                net = self.find_ref(session, p, net_ref["href"], "Network", "%s.interfaceTemplates[%d].network"
                                    % (path, i))
                networks.append(net.uuid)
                if net.host_id is not None:
                    allowed = (net.host.name,) if allowed is None or net.host.name in allowed else ()
        return {"config": checked, "image": image_native,
                "credential": credential_ref, "credential_value": credential,
                "initial_state": template.get("initialState") or states.STOPPED, "user_data": template.get("userData"),
                "volumes": volumes, "networks": networks, "allowed": allowed, "guest": guest}

    def create_machine(self, session, p, body, parent=None, name=None, tenant_id=None, pinned=None,
                       template=None):
        """From a MachineCreate ``body``, or (system components) from a checked ``template``."""
        if template is None:
            req = model.MachineCreate.from_json(body)
            template = self._template(session, p, req.machineTemplate, "MachineTemplate",
                                      "MachineCreate.machineTemplate")
            meta = {k: req.get(k) for k in COMMON if req.get(k) is not None}
        else:
            meta = {}
        if name:
            meta["name"] = name
        plan = self.machine_request(session, p, template, "MachineCreate.machineTemplate")
        raw = body.get("machineTemplate") if isinstance(body, dict) else None
        raw = raw.get("credential") if isinstance(raw, dict) else None
        if isinstance(raw, dict) and raw.get("password") is not None and plan["guest"].get("credential"):
            # a password by value (the model does not keep it: write-only) is one the hosts must refuse
            plan["guest"]["credential"]["password"] = "set"
        config = plan["config"]
        host_name = pinned or (meta.get("properties") or {}).get(placing.HOST_PROPERTY) or (
            template.get("properties") or {}).get(placing.HOST_PROPERTY)
        # from here to the commit, no other placement decides: the loads read below stay true (capacity.py)
        capacity.lock(self.store, session)
        self._check_quota(session, p, tenant_id, cpu=config["cpu"], memory_kib=config["memory"], machines=1)
        # the hosts or an upstream (routing.py), when upstreams are configured or the request wishes
        loads = self.host_loads(session)
        route = routing.route(self.pool, self.placer, loads, session, meta, template, plan, host_name) \
            if routing.wanted(self.pool, meta, template) else None
        needs = guests.guest_inputs(plan)
        if route is not None and route.handle is not None:
            self._check_guest_inputs(route.handle, plan, upstream=True)
            return self.create_routed(session, p, route, meta, template, plan, parent, tenant_id)
        host_name = host_name or (route.host if route is not None else None)
        request = placing.PlacementRequest(cpu=config["cpu"], memory_kib=config["memory"], arch=config.get("cpuArch"),
                                           host=host_name, hosts_allowed=plan["allowed"])
        if host_name is not None and host_name not in {h.name for h in loads}:
            raise InvalidInput("properties.%s: no available host '%s'" % (placing.HOST_PROPERTY, host_name),
                               attribute="properties")
        if needs:  # only hosts that can put them into the guest, checked now rather than failing in the job
            if host_name is not None:
                self._check_guest_inputs(self.pool.by_name(host_name), plan)
            capable, refused = self.guest_hosts(loads, plan)
            allowed = plan["allowed"]
            if allowed is not None:  # the hosts holding its image, volumes, networks
                capable = [h for h in capable if h.name in allowed]
                refused = {name: why for name, why in refused.items() if name in allowed}
            if not capable:  # the error names what the user can change first (a host that takes such inputs)
                first = max(refused.values(), key=lambda why: getattr(why, "specific", False), default=None)
                raise InvalidInput("no host of this daemon can put %s into a guest%s%s" % (
                    " or ".join(sorted(needs)), "" if allowed is None else " among those the machine may use (%s)"
                    % ", ".join(allowed), ": %s" % "; ".join(str(why) for why in refused.values()) if refused else ""),
                    attribute=first.attribute if first is not None else sorted(needs)[0])
            loads = capable
        chosen = self.placer(request, loads)
        if chosen is None:
            raise Conflict("no host can take a machine of %d cpu and %d MiB%s" % (
                config["cpu"], config["memory"] // 1024, " on host %s" % host_name if host_name else ""))
        uuid = new_uuid()
        doc = dict(meta)
        doc.setdefault("name", "machine-" + uuid[:8])
        for key in ("cpu", "memory", "disks", "cpuArch", "cpuSpeed"):
            if config.get(key) is not None:
                doc[key] = config[key]
        if route is not None:
            routing.note(doc, route)
        if plan["volumes"]:
            doc["volumes"] = []
        private = {"domain": self.pool.get(chosen.id).native_name(uuid),
                   "spec": {k: v for k, v in plan.items() if k not in routing.PLAN_ONLY}}
        row = Resource(uuid=uuid, tenant_id=p.tenant_id if tenant_id is None else tenant_id, type="Machine",
                       name=doc["name"], host_id=chosen.id, state=states.CREATING, doc=doc, private=private)
        row.created = row.updated = utcnow()
        session.add(row)
        session.flush()
        for vol in plan["volumes"]:
            self._mark_attaching(session, vol["volume"], row.uuid)
        job = self.queue(session, p, "create", row, params=routing.job_params(route),
                         affected=[hrefs.ref("machines", uuid)], parent=parent, tenant_id=row.tenant_id)
        return row, job

    def create_routed(self, session, p, route, meta, template, plan, parent, tenant_id):
        """Record a machine the upstream of ``route`` will make, and queue its creation job (the same
        job as on a host: the handler reaches the upstream through the handle)."""
        handle = route.handle
        uuid = new_uuid()
        doc = dict(meta)
        doc.setdefault("name", "machine-" + uuid[:8])
        spec = routing.upstream_spec(route, plan, routing.properties(meta, template))
        for key in ("cpu", "memory", "disks", "cpuArch", "cpuSpeed"):
            if spec["config"].get(key) is not None:
                doc[key] = spec["config"][key]
        routing.note(doc, route)
        row = cmdb.new_resource(session, "Machine", p.tenant_id if tenant_id is None else tenant_id, doc,
                                host_id=handle.id, state=states.CREATING, uuid=uuid,
                                private={"domain": handle.native_name(uuid), "spec": spec, "upstream": handle.name})
        job = jobs.queue(session, row.tenant_id, "create", row, params=routing.job_params(route),
                         affected=[hrefs.ref("machines", uuid)], parent=parent,
                         message="routed to upstream %s" % handle.name)
        return row, job

    def refresh_routed(self, p, uuid):
        """GET of a routed machine asks its upstream: the state it reports now is recorded (a machine
        gone from there is marked gone, as reconcile does). When the upstream cannot say, the record is
        served as it is. Machines with a job under way are left to their job."""
        with self.store.read() as session:
            try:
                row = self.find(session, p, "Machine", uuid)
            except NotFound:
                return
            handle = self.pool.upstreams.get(row.host_id)
            if handle is None or row.native_id is None or row.state not in states.STABLE_MACHINE_STATES \
                    or handle.recently_failed():
                return
            pending = select(func.count()).select_from(Job).where(Job.target_uuid == uuid, Job.state.in_(ACTIVE))
            if session.scalar(pending):
                return
            native, recorded = row.native_id, row.state
        try:
            machine = handle.call("get_machine", native)
        except NotFound:
            machine = None
        except SiroccoError as exc:
            log.info("machine %s: upstream %s cannot say its state: %s", uuid, handle.name, exc)
            return
        with self.store.transaction() as session:
            row = session.get(Resource, uuid)
            if row is None or row.state != recorded or row.native_id != native:
                return  # changed meanwhile: that change wins
            if machine is None:
                cmdb.mark_gone(row, "vanished from upstream %s" % handle.name)
            elif machine.state != row.state:
                row.state, row.updated = machine.state, utcnow()

    # -- volumes --------------------------------------------------------------------------
    def _host_for(self, session, p, operation, properties, prefer=None):
        pinned = (properties or {}).get(placing.HOST_PROPERTY)
        candidates = [h for h in self.host_loads(session) if self.host_supports(h.id, operation)]
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

    def create_volume(self, session, p, body, parent=None, name=None, tenant_id=None, template=None):
        if template is None:
            req = model.VolumeCreate.from_json(body)
            template = self._template(session, p, req.volumeTemplate, "VolumeTemplate", "VolumeCreate.volumeTemplate")
            meta = {k: req.get(k) for k in COMMON if req.get(k) is not None}
        else:
            meta = {}
        if name:
            meta["name"] = name
        config = self._by_ref_or_value(session, p, template.get("volumeConfig"), "VolumeConfiguration",
                                       "VolumeCreate.volumeTemplate.volumeConfig")
        if config is None:
            raise InvalidInput("VolumeCreate.volumeTemplate.volumeConfig: a volume needs a configuration "
                               "(capacity)", attribute="volumeConfig")
        config.pop("__row", None)
        checked = model.VolumeConfiguration.from_json(
            {k: v for k, v in config.items() if k in model.VolumeConfiguration.attributes and k not in COMMON},
            path="VolumeCreate.volumeTemplate.volumeConfig").to_json()
        checked.pop("resourceURI", None)
        capacity.lock(self.store, session)  # quotas counted below stay true until the commit
        self._check_quota(session, p, tenant_id, volumes=1)
        host = self._host_for(session, p, "volume.create", meta.get("properties"))
        uuid = new_uuid()
        doc = dict(meta)
        doc.setdefault("name", "volume-" + uuid[:8])
        doc.update({k: checked[k] for k in ("type", "capacity") if checked.get(k) is not None})
        image = template.get("volumeImage")
        if image and "href" in image:
            doc["images"] = [{"href": image["href"]}]
            doc["bootable"] = True
        row = Resource(uuid=uuid, tenant_id=p.tenant_id if tenant_id is None else tenant_id, type="Volume",
                       name=doc["name"], host_id=host.id, state="CREATING", doc=doc,
                       private={"native_name": self.pool.get(host.id).native_name(uuid),
                                "format": checked.get("format")})
        row.created = row.updated = utcnow()
        session.add(row)
        session.flush()
        job = self.queue(session, p, "create", row, affected=[hrefs.ref("volumes", uuid)], parent=parent,
                         tenant_id=row.tenant_id)
        return row, job

    def _check_attachable(self, session, vol):
        if vol.state != "AVAILABLE":
            raise Conflict("volume '%s' is %s, not AVAILABLE" % (vol.name or vol.uuid, vol.state))
        if vol.doc.get("attachedTo") or vol.private.get("attaching"):
            raise Conflict("volume '%s' is already attached to a machine" % (vol.name or vol.uuid))
        if vol.private.get("resizing"):
            raise Conflict("volume '%s' is being resized: attach it when its job is done" % (vol.name or vol.uuid))

    def _mark_attaching(self, session, volume_uuid, machine_uuid):
        vol = session.get(Resource, volume_uuid)
        vol.private = dict(vol.private, attaching=machine_uuid)

    # -- networks -------------------------------------------------------------------------
    def create_network(self, session, p, body, parent=None, name=None, tenant_id=None, template=None):
        if template is None:
            req = model.NetworkCreate.from_json(body)
            template = self._template(session, p, req.networkTemplate, "NetworkTemplate",
                                      "NetworkCreate.networkTemplate")
            meta = {k: req.get(k) for k in COMMON if req.get(k) is not None}
        else:
            meta = {}
        if name:
            meta["name"] = name
        config = self._by_ref_or_value(session, p, template.get("networkConfig"), "NetworkConfiguration",
                                       "NetworkCreate.networkTemplate.networkConfig") or {}
        config.pop("__row", None)
        if config.get("cidr") is not None:
            config["cidr"] = checked_cidr(config["cidr"], "NetworkCreate.networkTemplate.networkConfig.cidr")
        elif config.get("dhcp"):  # the hosts lease addresses from the network's own range only
            raise InvalidInput("NetworkCreate.networkTemplate.networkConfig.dhcp: dhcp needs a cidr (the addresses "
                               "it leases): give one, or leave dhcp out", attribute="dhcp")
        host = self._host_for(session, p, "network.create", meta.get("properties"))
        uuid = new_uuid()
        doc = dict(meta)
        doc.setdefault("name", "network-" + uuid[:8])
        doc.update({k: config[k] for k in ("networkType", "mtu", "classOfService", "cidr", "dhcp")
                    if config.get(k) is not None})
        row = Resource(uuid=uuid, tenant_id=p.tenant_id if tenant_id is None else tenant_id, type="Network",
                       name=doc["name"], host_id=host.id, state="CREATING", doc=doc,
                       private={"native_name": self.pool.get(host.id).native_name(uuid[:18])})
        row.created = row.updated = utcnow()
        session.add(row)
        session.flush()
        job = self.queue(session, p, "create", row, affected=[hrefs.ref("networks", uuid)], parent=parent,
                         tenant_id=row.tenant_id)
        return row, job

    # -- systems --------------------------------------------------------------------------
    def create_system(self, session, p, body):
        req = model.SystemCreate.from_json(body)
        template = self._template(session, p, req.systemTemplate, "SystemTemplate", "SystemCreate.systemTemplate")
        meta = {k: req.get(k) for k in COMMON if req.get(k) is not None}
        uuid = new_uuid()
        doc = dict(meta)
        doc.setdefault("name", "system-" + uuid[:8])
        doc.update({"machines": [], "volumes": [], "networks": []})
        row = Resource(uuid=uuid, tenant_id=p.tenant_id, type="System", name=doc["name"], state="CREATING",
                       doc={"name": doc["name"]}, private={})
        row.created = row.updated = utcnow()
        session.add(row)
        session.flush()
        parent = self.queue(session, p, "create", row, affected=[hrefs.ref("systems", uuid)])
        creators = {"Machine": (self.create_machine, "machines"), "Volume": (self.create_volume, "volumes"),
                    "Network": (self.create_network, "networks")}
        descriptors = template.get("componentDescriptors") or []
        if sum(int(d.get("quantity") or 1) for d in descriptors) > 100:
            raise InvalidInput("SystemCreate: at most 100 components", attribute="componentDescriptors")
        for i, desc in enumerate(descriptors):
            rtype, ttype = SYSTEM_COMPONENTS[desc["type"]]
            component = self._template(session, p, desc["component"], ttype,
                                       "SystemCreate.systemTemplate.componentDescriptors[%d].component" % i)
            create, key = creators[rtype]
            quantity = int(desc.get("quantity") or 1)
            for n in range(quantity):
                base_name = desc.get("name") or component.get("name") or rtype.lower()
                child_name = "%s-%s" % (doc["name"], base_name) + ("-%d" % (n + 1) if quantity > 1 else "")
                child, _job = create(session, p, None, parent=parent, name=child_name, template=component)
                child.private = dict(child.private, system=uuid)
                doc[key].append({"href": hrefs.ref(key, child.uuid)})
        row.doc = doc
        flag_modified(row, "doc")  # JSON columns are not mutation-tracked
        return row, parent

    def import_image(self, p, body, base):
        """POST of a MachineImage whose imageLocation is a source to fetch (image_sources.py): recorded
        CREATING, fetched and registered on every host that imports images by its job."""
        parsed = model.MachineImage.from_json(body)
        doc = hrefs.stored(parsed.to_json())
        doc.pop("resourceURI", None)
        location = image_sources.check(self.config.image_sources, doc.get("imageLocation"))
        checksum = (doc.get("properties") or {}).get(image_sources.CHECKSUM_PROPERTY)
        if checksum is not None and not re.fullmatch(r"sha256:[0-9a-fA-F]{64}", checksum):
            raise InvalidInput("properties.%s: expected sha256:<64 hex digits>" % image_sources.CHECKSUM_PROPERTY,
                               attribute=image_sources.CHECKSUM_PROPERTY)
        if not any(h.supports("machine_image.import") for h in self.pool.handles.values()):
            raise Unsupported("siroccod", "machine_image.import", "no host of this daemon imports images")
        doc.setdefault("type", "IMAGE")
        with self.store.transaction() as session:
            uuid = new_uuid()
            doc.setdefault("name", "image-" + uuid[:8])
            row = Resource(uuid=uuid, tenant_id=p.tenant_id, type="MachineImage", name=doc["name"], state="CREATING",
                           doc=doc, private={"source": location})
            row.created = row.updated = utcnow()
            session.add(row)
            session.flush()
            job = self.queue(session, p, "import", row, affected=[hrefs.ref("machineImages", uuid)])
            rendered = self.render(row, base, p, session)
            job_doc = self.render_job(job, base)
        self.wake()
        return 202, rendered, {"Location": rendered["id"], "CIMI-Job-URI": job_doc["id"]}

    def capture_by_image(self, p, body, base):
        """POST of a MachineImage whose imageLocation is a machine: capture it."""
        parts = hrefs.split(body["imageLocation"])
        action = {"resourceURI": type_uri("Action"), "action": action_uri("capture"),
                  "image": {k: v for k, v in body.items() if k not in ("imageLocation", "resourceURI")}}
        status, job_doc, headers = self.action(p, "machines", parts[1], "capture", action, base)
        with self.store.read() as session:
            job = session.get(Job, headers["CIMI-Job-URI"].rsplit("/", 1)[1])
            image = session.get(Resource, job.params["image"])
            doc = self.render(image, base, p, session)
        return status, doc, {"Location": doc["id"], "CIMI-Job-URI": headers["CIMI-Job-URI"]}

    # ================================================================================
    # update
    # ================================================================================
    def update(self, p, key, uuid, body, base):
        kind = KINDS[key]
        if kind.lifecycle == READONLY:
            raise Forbidden("%s are written by the daemon only" % key)
        with self.store.transaction() as session:
            row = self.find(session, p, kind.type_name, uuid, write=True)
            parsed = kind.cls.from_json(body, partial=True)
            changes = hrefs.stored(parsed.to_json())
            changes.pop("resourceURI", None)
            if row.type == "Machine":
                states.check_allowed(row.state, states.EDIT, "machine '%s'" % (row.name or row.uuid))
            if kind.lifecycle == ASYNC or row.type == "MachineImage":  # what the hosts hold is not edited here
                changes = {k: v for k, v in changes.items() if k in COMMON}
            else:
                self._check_refs(session, p, kind.cls, changes, kind.type_name)
            if kind.type_name == "Credential":
                self._check_credential_key(changes)
                if changes.get("userName") is not None:  # a record made before migration 0006 had username
                    row.doc = {k: v for k, v in row.doc.items() if k != "username"}
            if kind.type_name == "Credential" and parsed.get("password") is not None:
                row.private = dict(row.private, password=self.sealer.seal(parsed.get("password")))
            changes.pop("password", None)
            if row.type == "Machine" and "properties" in changes:
                kept = {k: v for k, v in (row.doc.get("properties") or {}).items() if k in guests.GUEST_REACH}
                changes["properties"] = dict(changes["properties"] or {}, **kept)
            doc = dict(row.doc)
            doc.update(changes)
            if "properties" in changes and not changes["properties"]:
                doc.pop("properties")
            row.doc = doc
            row.name = doc.get("name")
            row.updated = utcnow()
            session.flush()
            return self.render(row, base, p, session)

    # ================================================================================
    # delete
    # ================================================================================
    def delete(self, p, key, uuid, base):
        """Returns (status, body or None, headers)."""
        kind = KINDS[key]
        if kind.lifecycle == READONLY:
            raise Forbidden("%s are written by the daemon only" % key)
        with self.store.transaction() as session:
            row = self.find(session, p, kind.type_name, uuid, write=True)
            held_by_hosts = row.type == "MachineImage" and (row.native_id or cmdb.image_natives(row))
            if kind.lifecycle == SYNC and not held_by_hosts:
                if row.type == "MachineImage" and row.state == "CREATING":
                    raise Conflict("machine image '%s' is being captured" % (row.name or row.uuid))
                session.delete(row)
                return 200, None, {}
            if row.type == "Machine":
                states.check_allowed(row.state, states.DELETE, "machine '%s'" % (row.name or row.uuid))
                if row.private.get("system"):
                    pass  # a system's machine may be deleted alone; the system forgets it when it is gone
                row.private = dict(row.private, before=row.state)
                row.state = states.DELETING
                job = self.queue(session, p, "delete", row)
            elif row.type == "System":
                job = self._delete_system(session, p, row)
            else:
                if row.state in ("CREATING", "DELETING"):
                    raise Conflict("%s '%s' is %s" % (row.type, row.name or row.uuid, row.state))
                if row.type == "Volume" and (row.doc.get("attachedTo") or row.private.get("attaching")):
                    raise Conflict("volume '%s' is attached to a machine: detach it first" % (row.name or row.uuid))
                row.private = dict(row.private, before=row.state)
                row.state = "DELETING"
                job = self.queue(session, p, "delete", row)
            row.updated = utcnow()
            job_doc = self.render_job(job, base)
        self.wake()
        return 202, job_doc, {"CIMI-Job-URI": job_doc["id"], "Location": job_doc["id"]}

    def _delete_system(self, session, p, row):
        machine_rows = [session.get(Resource, h["href"].rsplit("/", 1)[1]) for h in row.doc.get("machines", [])]
        machine_states = [m.state if m is not None else None for m in machine_rows]
        if row.state in ("CREATING", "DELETING") or not self.system_deletable(machine_states):
            raise Conflict("system '%s' cannot be deleted while its machines are %s"
                           % (row.name or row.uuid, ", ".join(sorted({s for s in machine_states if s}))
                              or row.state))
        row.state = "DELETING"
        parent = self.queue(session, p, "delete", row)
        for m in machine_rows:
            if m is not None:
                m.private = dict(m.private, before=m.state)
                m.state = states.DELETING
                self.queue(session, p, "delete", m, parent=parent)
        for key in ("volumes", "networks"):
            for h in row.doc.get(key, []):
                child = session.get(Resource, h["href"].rsplit("/", 1)[1])
                if child is not None and child.state not in ("CREATING", "DELETING") and not child.doc.get(
                        "attachedTo"):
                    child.state = "DELETING"
                    self.queue(session, p, "delete", child, parent=parent)
        return parent

    # ================================================================================
    # actions
    # ================================================================================
    def action(self, p, key, uuid, verb, body, base):
        if key == "systems":
            return self.system_action(p, uuid, verb, body, base)
        act = model.Action.from_json(body)
        if _uri_verb(act.action) != verb:
            raise InvalidInput("Action.action: this href takes '%s', got '%s'" % (action_uri(verb), act.action),
                               attribute="action")
        with self.store.transaction() as session:
            row = self.find(session, p, "Machine", uuid, lock=True)
            if row.tenant_id is None:
                raise Forbidden("this machine is not yours to act on")
            what = "machine '%s'" % (row.name or row.uuid)
            states.check_allowed(row.state, verb, what)
            if verb not in self.machine_operations(row):
                host = self.pool.handles.get(row.host_id)
                raise Unsupported(host.provider if host else "siroccod", "machine." + verb,
                                  "host of %s does not support %s" % (what, verb))
            params = {"before": row.state}
            affected = [hrefs.ref("machines", row.uuid)]
            if verb in (states.STOP, states.RESTART):
                params["force"] = bool(act.force)
            if verb == states.CAPTURE:
                image_meta = act.image or {}
                if "href" in image_meta:
                    raise InvalidInput("Action.image: give the new image's attributes, not an href",
                                       attribute="image")
                image = Resource(uuid=new_uuid(), tenant_id=row.tenant_id, type="MachineImage",
                                 name=image_meta.get("name") or "%s-capture" % (row.name or "machine"),
                                 state="CREATING",
                                 doc={**{k: image_meta[k] for k in COMMON if image_meta.get(k) is not None},
                                      "type": "IMAGE", "imageLocation": hrefs.ref("machines", row.uuid)},
                                 private={"machine": row.uuid})
                image.private = dict(image.private,
                                     native_name=self.pool.get(row.host_id).native_name(image.uuid))
                image.doc.setdefault("name", image.name)
                image.created = image.updated = utcnow()
                session.add(image)
                session.flush()
                params["image"] = image.uuid
                affected.append(hrefs.ref("machineImages", image.uuid))
            row.private = dict(row.private, before=row.state)
            row.state = states.transient_state(row.state, verb)
            row.updated = utcnow()
            job = self.queue(session, p, verb, row, params=params, affected=affected)
            job_doc = self.render_job(job, base)
        self.wake()
        return 202, job_doc, {"CIMI-Job-URI": job_doc["id"], "Location": job_doc["id"]}

    def system_action(self, p, uuid, verb, body, base):
        act = model.Action.from_json(body)
        if verb not in (states.START, states.STOP) or _uri_verb(act.action) != verb:
            raise InvalidInput("Action.action: this href takes '%s', got '%s'" % (action_uri(verb), act.action),
                               attribute="action")
        with self.store.transaction() as session:
            row = self.find(session, p, "System", uuid, lock=True)
            machines = [session.get(Resource, h["href"].rsplit("/", 1)[1]) for h in row.doc.get("machines", [])]
            targets = [m for m in machines if m is not None and verb in self.machine_operations(m)]
            if not targets:
                raise Conflict("no machine of system '%s' can %s now" % (row.name or row.uuid, verb))
            parent = self.queue(session, p, verb, row, affected=[hrefs.ref("systems", row.uuid)])
            for m in targets:
                params = {"before": m.state}
                if verb == states.STOP:
                    params["force"] = bool(act.force)
                m.private = dict(m.private, before=m.state)
                m.state = states.transient_state(m.state, verb)
                self.queue(session, p, verb, m, params=params, parent=parent)
            job_doc = self.render_job(parent, base, p, session)
        self.wake()
        return 202, job_doc, {"CIMI-Job-URI": job_doc["id"], "Location": job_doc["id"]}

    # ================================================================================
    # resize: Sirocco's extension action (model.SIROCCO_RESIZE) on machines and volumes
    # ================================================================================
    def resize(self, p, key, uuid, body, base, dry_run=False):
        """POST of a resize Action: a machine's new machineConfig, or a volume's new capacity (grow only).
        Everything is checked before 202; the job (work.py) calls the host and records the new size.
        ``dry_run`` (machines): the checks only, and whether a stop is needed first (_resize_dry_run)."""
        act = model.Action.from_json(body)
        if act.action != model.SIROCCO_RESIZE:
            raise InvalidInput("Action.action: this href takes '%s', got '%s'" % (model.SIROCCO_RESIZE, act.action),
                               attribute="action")
        takes = "capacity" if key == "volumes" else "machineConfig"
        for wire in RESIZE_PARAMETERS:
            if wire != takes and act.get(wire) is not None:
                raise InvalidInput("Action.%s: a resize of %s takes %s, not %s" % (wire, key, takes, wire),
                                   attribute=wire)
        if key == "volumes":
            return self._resize_volume(p, uuid, act, base)
        if dry_run:
            return 200, self._resize_dry_run(p, uuid, act), {}
        return self._resize_machine(p, uuid, act, base)

    def _resize_config(self, session, p, value):
        """The new size a resize asks for ({cpu, memory[, cpuArch]}), checked like a creation's."""
        if value is None:
            raise InvalidInput("Action.machineConfig: a resize needs the machine's new configuration (cpu, memory), "
                               "by reference or by value", attribute="machineConfig")
        config = self._by_ref_or_value(session, p, value, "MachineConfiguration", "Action.machineConfig")
        config.pop("__row", None)
        checked = model.MachineConfiguration.from_json(
            {k: v for k, v in config.items() if k in ("cpu", "memory", "cpuArch")},
            path="Action.machineConfig").to_json()
        checked.pop("resourceURI", None)
        return checked

    def _resize_check(self, session, p, uuid, value):
        """(row, handle, config, what) of a machine resize, or the reason it cannot be (nothing written)."""
        row = self.find(session, p, "Machine", uuid)
        if row.tenant_id is None:
            raise Forbidden("this machine is not yours to resize")
        config = self._resize_config(session, p, value)
        what = "machine '%s'" % (row.name or row.uuid)
        handle = self.pool.handles.get(row.host_id) or self.pool.upstreams.get(row.host_id)
        if handle is None or row.native_id is None or not self.host_supports(row.host_id, "machine.resize"):
            raise Conflict("%s cannot be resized: its host%s does not resize machines" % (
                what, " " + handle.name if handle is not None else ""))
        if config.get("cpuArch") and row.doc.get("cpuArch") and config["cpuArch"] != row.doc["cpuArch"]:
            raise InvalidInput("Action.machineConfig.cpuArch: %s is %s; a resize keeps the architecture"
                               % (what, row.doc["cpuArch"]), attribute="machineConfig.cpuArch")
        try:
            reasons = handle.capabilities().fits(cpu=config["cpu"], memory_mib=-(-config["memory"] // 1024))
        except SiroccoError:
            reasons = []  # the host cannot say now: its job will
        if reasons:
            raise InvalidInput("Action.machineConfig: host %s cannot give a machine that: %s"
                               % (handle.name, "; ".join(reasons)), attribute="machineConfig")
        if row.private.get("resizing"):
            raise Conflict("%s is being resized already: wait for its job" % what)
        return row, handle, config, what

    @staticmethod
    def _stop_reason(handle, row, config, what):
        """Why the host must have the machine stopped for this resize (it says what to do), else None."""
        if row.state == states.STOPPED:
            return None
        if row.state != states.STARTED:
            return "cannot resize %s in state %s: stop it first" % (what, row.state)
        if not getattr(handle, "resizes_live", lambda: False)():
            return "%s is %s and host %s resizes stopped machines only: stop it first, then resize" % (
                what, row.state, handle.name)
        machine = handle.call("get_machine", row.native_id)
        if handle.call("resize_needs_stop", machine, model.MachineConfiguration(**config)):
            return "%s is %s and host %s must have it stopped to give it %d cpu and %d MiB: stop it first, " \
                   "then resize" % (what, machine.state, handle.name, config["cpu"], config["memory"] // 1024)
        return None

    def _resize_dry_run(self, p, uuid, act):
        """A machine resize's dry run (POST .../resize?dryRun=true): its input checked, nothing written, and
        whether the machine must be stopped first (the host's own resize_needs_stop, which a client cannot
        compute: it needs the host's live limits). Room and quota are the real resize's to check."""
        with self.store.read() as session:
            row, handle, config, what = self._resize_check(session, p, uuid, act.machineConfig)
        reason = self._stop_reason(handle, row, config, what)
        return {"needsStop": reason is not None, **({"reason": reason} if reason else {})}

    def _resize_machine(self, p, uuid, act, base):
        with self.store.read() as session:  # bad input and what the host refuses: before anything is written
            row, handle, config, what = self._resize_check(session, p, uuid, act.machineConfig)
            seen = row.state
        reason = self._stop_reason(handle, row, config, what)  # may ask the host: outside any transaction
        if reason is not None:
            raise Conflict(reason)
        with self.store.transaction() as session:
            capacity.lock(self.store, session)  # the grow's room stays true until the commit
            self.find(session, p, "Machine", uuid, lock=True)  # one request at a time changes it
            row, handle, config, what = self._resize_check(session, p, uuid, act.machineConfig)
            if row.state != seen:
                raise Conflict("%s went from %s to %s meanwhile: ask again" % (what, seen, row.state))
            old_cpu, old_memory = capacity.machine_claim(row.doc, None)
            grow_cpu, grow_memory = max(0, config["cpu"] - old_cpu), max(0, config["memory"] - old_memory)
            self._check_quota(session, p, row.tenant_id, cpu=grow_cpu, memory_kib=grow_memory)
            if row.host_id in self.pool.handles and (grow_cpu or grow_memory):
                free_cpu, free_memory = capacity.room(session, row.host_id)
                if grow_cpu > free_cpu or grow_memory > free_memory:
                    raise Conflict("host %s cannot give %s %d cpu and %d MiB: it has %d cpu and %d MiB free, the "
                                   "resize needs %d cpu and %d MiB more" % (
                                       handle.name, what, config["cpu"], config["memory"] // 1024, free_cpu,
                                       free_memory // 1024, grow_cpu, grow_memory // 1024))
            row.private = dict(row.private, resizing={"cpu": config["cpu"], "memory": config["memory"]})
            row.updated = utcnow()
            job = self.queue(session, p, RESIZE, row, params={"config": config, "before": row.state},
                             affected=[hrefs.ref("machines", row.uuid)])
            job.action = model.SIROCCO_RESIZE
            job_doc = self.render_job(job, base)
        self.wake()
        return 202, job_doc, {"CIMI-Job-URI": job_doc["id"], "Location": job_doc["id"]}

    def _resize_volume(self, p, uuid, act, base):
        if act.capacity is None:
            raise InvalidInput("Action.capacity: a volume's resize needs its new capacity (kilobytes)",
                               attribute="capacity")
        with self.store.transaction() as session:
            row = self.find(session, p, "Volume", uuid, lock=True)
            what = "volume '%s'" % (row.name or row.uuid)
            present = int(row.doc.get("capacity") or 0)
            if act.capacity <= present:
                raise InvalidInput("Action.capacity: %s has %d KB; a resize only grows a volume: give more than that"
                                   % (what, present), attribute="capacity")
            if row.native_id is None or not self.host_supports(row.host_id, "volume.resize"):
                raise Conflict("%s cannot be resized: its host does not resize volumes" % what)
            if row.state != "AVAILABLE" or row.private.get("resizing") or row.private.get("attaching"):
                raise Conflict("cannot resize %s now (%s): wait for its job" % (
                    what, "being resized" if row.private.get("resizing") else
                    "being attached" if row.private.get("attaching") else row.state))
            row.private = dict(row.private, resizing=act.capacity)
            row.updated = utcnow()
            job = self.queue(session, p, RESIZE, row, params={"capacity": act.capacity},
                             affected=[hrefs.ref("volumes", row.uuid)])
            job.action = model.SIROCCO_RESIZE
            job_doc = self.render_job(job, base)
        self.wake()
        return 202, job_doc, {"CIMI-Job-URI": job_doc["id"], "Location": job_doc["id"]}

    # ================================================================================
    # a machine's volumes (attach / detach)
    # ================================================================================
    def machine_volumes(self, p, uuid, base):
        with self.store.read() as session:
            row = self.find(session, p, "Machine", uuid)
            rid = base + hrefs.ref("machines", row.uuid)
            items = []
            for entry in row.doc.get("volumes", []):
                vuuid = entry["volume"]["href"].rsplit("/", 1)[1]
                item = {"resourceURI": type_uri("MachineVolume"), "id": "%s/volumes/%s" % (rid, vuuid),
                        "volume": {"href": base + entry["volume"]["href"]}}
                if entry.get("initialLocation"):
                    item["initialLocation"] = entry["initialLocation"]
                item["operations"] = [{"rel": "delete", "href": item["id"]}]
                items.append(item)
            return {"resourceURI": type_uri("MachineVolumeCollection"), "id": rid + "/volumes",
                    "count": len(items), "machineVolumes": items,
                    "operations": [{"rel": "add", "href": rid + "/volumes"}]}

    def attach(self, p, uuid, body, base):
        if not isinstance(body, dict):
            raise InvalidInput("MachineVolume: expected a JSON object", attribute="MachineVolume")
        body = dict(body)
        uri = body.pop("resourceURI", None)
        if uri is not None and uri not in (type_uri("MachineVolume"), type_uri("locatedVolume")):
            raise InvalidInput("MachineVolume.resourceURI: expected '%s'" % type_uri("MachineVolume"),
                               attribute="resourceURI")
        parsed = model.MachineVolume.from_json(body, path="MachineVolume")
        with self.store.transaction() as session:
            machine = self.find(session, p, "Machine", uuid, lock=True)
            vol = self.find_ref(session, p, parsed.volume["href"], "Volume", "MachineVolume.volume")
            if not self.store.is_sqlite:  # two machines asking for one volume at once take turns
                session.refresh(vol, with_for_update=cmdb.ROW_LOCK)
            if machine.state not in STABLE_FOR_VOLUMES or machine.native_id is None:
                raise Conflict("cannot attach a volume to machine '%s' in state %s"
                               % (machine.name or machine.uuid, machine.state))
            self._check_attachable(session, vol)
            if vol.host_id != machine.host_id:
                raise Conflict("volume '%s' is on another host than machine '%s'"
                               % (vol.name or vol.uuid, machine.name or machine.uuid))
            if not self.host_supports(machine.host_id, "volume.attach"):
                raise Unsupported("siroccod", "volume.attach", "the machine's host cannot attach volumes")
            self._check_hot_plug(machine)
            self._mark_attaching(session, vol.uuid, machine.uuid)
            job = self.queue(session, p, "attach", machine,
                             params={"volume": vol.uuid, "initialLocation": parsed.initialLocation},
                             affected=[hrefs.ref("machines", machine.uuid), hrefs.ref("volumes", vol.uuid)])
            job_doc = self.render_job(job, base)
            location = "%s/volumes/%s" % (base + hrefs.ref("machines", machine.uuid), vol.uuid)
        self.wake()
        return 202, job_doc, {"CIMI-Job-URI": job_doc["id"], "Location": location}

    def detach(self, p, uuid, volume_uuid, base):
        with self.store.transaction() as session:
            machine = self.find(session, p, "Machine", uuid, lock=True)
            entries = [e for e in machine.doc.get("volumes", []) if e["volume"]["href"].endswith("/" + volume_uuid)]
            if not entries:
                raise NotFound("machine '%s' has no volume '%s'" % (machine.name or machine.uuid, volume_uuid))
            if machine.state not in STABLE_FOR_VOLUMES:
                raise Conflict("cannot detach a volume from machine '%s' in state %s"
                               % (machine.name or machine.uuid, machine.state))
            self._check_hot_plug(machine)
            pending = session.scalar(select(func.count()).select_from(Job).where(
                Job.target_uuid == machine.uuid, Job.state.in_(ACTIVE)))
            if pending:
                raise Conflict("machine '%s' has a job under way; detach when it is done" % (machine.name or uuid))
            job = self.queue(session, p, "detach", machine, params={"volume": volume_uuid},
                             affected=[hrefs.ref("machines", machine.uuid), hrefs.ref("volumes", volume_uuid)])
            job_doc = self.render_job(job, base)
        self.wake()
        return 202, job_doc, {"CIMI-Job-URI": job_doc["id"], "Location": job_doc["id"]}

"""How a CMDB row reads on the wire: its document, the operations it allows now, a Job's document."""

from __future__ import annotations

import logging

from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri, type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    SiroccoError,
)
from siroccod import hrefs, jobs, metering
from siroccod.kinds import BY_TYPE, collection_references
from siroccod.resources.context import COMMON
from siroccod.store import Job, Resource, iso

log = logging.getLogger(__name__)
# Sirocco's resize action (model.SIROCCO_RESIZE), offered on machines and volumes: the operation name a
# machine's operations list carries
RESIZE = "resize"


def render_context(ctx, session, rows):
    """What rendering many machines/systems needs, fetched once: host capabilities and,
    for systems, their machines' states."""
    ctx = {"ops": {}}
    if rows and rows[0].type == "System":
        ids = {h["href"].rsplit("/", 1)[1] for row in rows for h in row.doc.get("machines", [])}
        ctx["states"] = dict(session.execute(select(Resource.uuid, Resource.state)
                                             .where(Resource.uuid.in_(ids))).all()) if ids else {}
    return ctx


def machine_operations(ctx, row):
    """Names of the operations a machine allows now: its state's, less what its host lacks."""
    ops = []
    for op in states.allowed_operations(row.state):
        if op in states.MACHINE_ACTIONS and row.native_id is not None and not ctx.host_supports(
                row.host_id, "machine." + op):
            continue
        if op in states.MACHINE_ACTIONS and row.native_id is None:
            continue
        ops.append(op)
    if resize_offered(ctx, row):
        ops.append(RESIZE)
    return ops


def resize_offered(ctx, row):
    """Whether a machine may be resized now: its host resizes machines, and it is stopped, or it runs
    on a host that may resize it live (hosts.HostHandle.resizes_live)."""
    if row.native_id is None or row.state not in (states.STOPPED, states.STARTED):
        return False
    if not ctx.host_supports(row.host_id, "machine.resize"):
        return False
    if row.state == states.STOPPED:
        return True
    handle = ctx.pool.handles.get(row.host_id)
    try:
        return handle is not None and handle.resizes_live()
    except SiroccoError:
        return False


def operations(ctx, row, rid, p, session, extra):
    if row.tenant_id is None and not p.is_admin:
        return []
    if row.type == "Machine":
        out = []
        key = (row.state, row.host_id, row.native_id is None)
        cache = extra.setdefault("ops", {}) if extra is not None else {}
        if key not in cache:
            cache[key] = machine_operations(ctx, row)
        for op in cache[key]:
            if op in (states.EDIT, states.DELETE):
                out.append({"rel": op, "href": rid})
            elif op == RESIZE:
                out.append({"rel": model.SIROCCO_RESIZE, "href": rid + "/" + RESIZE})
            else:
                out.append({"rel": action_uri(op), "href": rid + "/" + op})
        return out
    if row.type == "System":
        machine_states = system_states(row, session, extra)
        out = [{"rel": "edit", "href": rid}]
        if any(states.is_allowed(s, states.START) for s in machine_states if s):
            out.append({"rel": action_uri("start"), "href": rid + "/start"})
        if any(states.is_allowed(s, states.STOP) for s in machine_states if s):
            out.append({"rel": action_uri("stop"), "href": rid + "/stop"})
        if system_deletable(machine_states):
            out.append({"rel": "delete", "href": rid})
        return out
    if row.type in ("Volume", "Network", "MachineImage"):
        if row.state in ("CREATING", "DELETING", "STARTING", "STOPPING", "CAPTURING"):
            return []
        out = [{"rel": "edit", "href": rid}]
        if not (row.type == "Volume" and row.doc.get("attachedTo")):
            out.append({"rel": "delete", "href": rid})
        if row.type == "Volume" and volume_resizable(ctx, row):
            out.append({"rel": model.SIROCCO_RESIZE, "href": rid + "/" + RESIZE})
        return out
    if row.type in ("Meter", "MeterConfiguration"):  # written by the daemon only
        return []
    return [{"rel": "edit", "href": rid}, {"rel": "delete", "href": rid}]


def volume_resizable(ctx, row):
    """Whether a volume may be resized now: AVAILABLE on a host that resizes volumes."""
    return row.state == "AVAILABLE" and row.native_id is not None and ctx.host_supports(
        row.host_id, "volume.resize")


def system_states(row, session, extra=None):
    ids = [h["href"].rsplit("/", 1)[1] for h in row.doc.get("machines", [])]
    if extra is not None and "states" in extra:
        return [extra["states"].get(i) for i in ids]
    if not ids:
        return []
    found = dict(session.execute(select(Resource.uuid, Resource.state).where(Resource.uuid.in_(ids))).all())
    return [found.get(i) for i in ids]


def system_deletable(machine_states):
    return all(s is None or states.is_allowed(s, states.DELETE) for s in machine_states)


def system_state(row, machine_states):
    if row.state in ("CREATING", "DELETING", "ERROR"):
        return row.state
    known = [s for s in machine_states if s]
    if not known:
        return states.STOPPED if row.doc.get("machines") is not None else row.state
    if all(s == known[0] for s in known):
        return known[0] if known[0] in states.SYSTEM_STATES else "MIXED"
    return "MIXED"


def render(ctx, row, base, p, session=None, extra=None, live=False):
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
        body["state"] = system_state(row, system_states(row, session, extra))
    elif row.state is not None and "state" in kind.cls.attributes:
        body["state"] = row.state
    if row.type == "Meter" and live and session is not None:
        # sampled in the background: no host asked; the samples themselves are the meter's collection
        body.update({k: v for k, v in metering.latest(session, row.uuid).items() if k != "samples"})
    body.update(collection_references(kind.key, rid))  # collections as references (5.5.12)
    doc.update(body)
    ops = operations(ctx, row, rid, p, session, extra)
    if ops:
        doc["operations"] = ops
    return doc


# the actions of an "add" job (a POST to a collection: its target row is the resource it adds); a job of
# another action records the collection it adds to in its params under ADDED_TO (a capture POSTed to
# machineImages: images.capture_by_image)
ADD_ACTIONS = (action_uri("create"), action_uri("import"))
DELETE_ACTION = action_uri("delete")
ADDED_TO = "addedTo"


def job_target(job, base):
    """(targetResource href, affectedResources hrefs) of a job (Table 46): an add job targets the
    Collection it adds to, the new resource among its affected resources; any other job the resource it
    acts on. Derived from the row (its action, target and params): no stored column changes meaning.
    affectedResources lists targetResource first (Table 46: "shall always contain" it) -- except once a delete
    has succeeded: 5.17.1 says a deleted resource shall not appear there, the specific rule of the two."""
    affected = [base + h for h in job.affected or ()]
    if not job.target_uuid or job.target_type not in BY_TYPE:
        return None, affected
    key = BY_TYPE[job.target_type].key
    own = base + hrefs.ref(key, job.target_uuid)
    added = (job.params or {}).get(ADDED_TO) or (key if job.action in ADD_ACTIONS else None)
    target = base + added if added else own
    if job.action == DELETE_ACTION and job.state == jobs.SUCCESS:
        return target, [h for h in affected if h != own]
    return target, list(dict.fromkeys([target, *([own] if added else []), *affected]))


def render_job(ctx, job, base, p=None, session=None, extra=None):
    doc = {"resourceURI": type_uri("Job"), "id": base + hrefs.ref("jobs", job.uuid),
           "created": iso(job.created), "updated": iso(job.updated), "state": job.state,
           "action": job.action, "progress": job.progress, "timeOfStatusChange": iso(job.status_changed),
           "isCancellable": False}
    target, affected = job_target(job, base)
    if target is not None:
        doc["targetResource"] = {"href": target}
    if affected:
        doc["affectedResources"] = [{"href": h} for h in affected]
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
    # a finished job may be deleted by its owner (5.17.1.1; resources/jobs.py), unless nested in a running one
    if jobs.is_final(job.state) and (jobs.delete_refusal(session, job) is None if session is not None
                                     else not job.parent_uuid):
        doc["operations"] = [{"rel": "delete", "href": doc["id"]}]
    return doc

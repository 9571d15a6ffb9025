"""Requests on any kind: create (sent on to each kind's own code), the CMDB-only kinds' create, update, delete."""

from __future__ import annotations

import logging

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
)
from siroccod import cmdb, guests, hrefs
from siroccod.kinds import ASYNC, KINDS, READONLY, SYNC
from siroccod.resources import context, credentials, images, machines, networks, rendering, systems, volumes
from siroccod.resources.context import COMMON
from siroccod.store import utcnow

log = logging.getLogger(__name__)


def create(ctx, p, key, body, base):
    """A new resource (context.Outcome)."""
    kind = KINDS.get(key)
    if kind is None or kind.create_cls is None:
        raise InvalidInput("resources cannot be created in the %s collection" % key)
    if kind.lifecycle == SYNC:
        if key == "machineImages":
            location = body.get("imageLocation") if isinstance(body, dict) else None
            parts = hrefs.split(location) if isinstance(location, str) else None
            if parts and parts[0] == "machines":
                return images.capture_by_image(ctx, p, body, base)
            return images.import_image(ctx, p, body, base)
        with ctx.store.transaction() as session:
            if key == "credentials" and credentials.is_create(body):
                row = credentials.create_from_template(ctx, session, p, body)
            else:
                row = create_sync(ctx, session, p, kind, body)
            doc = rendering.render(ctx, row, base, p, session)
        return context.Outcome(doc, created=True)
    handler = {"machines": machines.create_machine, "volumes": volumes.create_volume,
               "networks": networks.create_network, "systems": systems.create_system}[key]
    with ctx.store.transaction() as session:
        row, job = handler(ctx, session, p, body)
        doc = rendering.render(ctx, row, base, p, session)
        job_doc = rendering.render_job(ctx, job, base)
    ctx.wake()
    return context.accepted(doc, job_doc)


def create_sync(ctx, session, p, kind, body):
    parsed = kind.cls.from_json(body)
    doc = hrefs.stored(parsed.to_json())
    doc.pop("resourceURI", None)
    context.check_refs(ctx, session, p, kind.cls, doc, kind.type_name)
    private = {}
    if kind.type_name in credentials.SECRET_HOLDERS:
        credentials.check(doc, kind.type_name)
    if kind.type_name in credentials.SECRET_HOLDERS and parsed.get("password") is not None:
        private["password"] = ctx.sealer.seal(parsed.get("password"))
    state = None
    if kind.type_name in ("MachineImage", "VolumeImage"):
        state = "AVAILABLE"
    return cmdb.new_resource(session, kind.type_name, p.tenant_id, doc, state=state, private=private)


def update(ctx, p, key, uuid, body, base):
    kind = KINDS[key]
    if kind.lifecycle == READONLY:
        raise Forbidden("%s are written by the daemon only" % key)
    with ctx.store.transaction() as session:
        row = ctx.find(session, p, kind.type_name, uuid, write=True)
        parsed = kind.cls.from_json(body, partial=True)
        changes = hrefs.stored(parsed.to_json())
        changes.pop("resourceURI", None)
        if row.type == "Machine":
            states.check_allowed(row.state, states.EDIT, "machine '%s'" % (row.name or row.uuid))
        if kind.lifecycle == ASYNC or row.type == "MachineImage":  # what the hosts hold is not edited here
            changes = {k: v for k, v in changes.items() if k in COMMON}
        else:
            context.check_refs(ctx, session, p, kind.cls, changes, kind.type_name)
        if kind.type_name in credentials.SECRET_HOLDERS:
            credentials.check(changes, kind.type_name)
            if changes.get("userName") is not None:  # a record made before migration 0006 had username
                row.doc = {k: v for k, v in row.doc.items() if k != "username"}
        if kind.type_name in credentials.SECRET_HOLDERS and parsed.get("password") is not None:
            row.private = dict(row.private, password=ctx.sealer.seal(parsed.get("password")))
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
        return rendering.render(ctx, row, base, p, session)


def delete(ctx, p, key, uuid, base):
    """Forgotten at once (CMDB-only kinds) or by a job (context.Outcome)."""
    kind = KINDS[key]
    if kind.lifecycle == READONLY:
        raise Forbidden("%s are written by the daemon only" % key)
    with ctx.store.transaction() as session:
        row = ctx.find(session, p, kind.type_name, uuid, write=True)
        held_by_hosts = row.type == "MachineImage" and (row.native_id or cmdb.image_natives(row))
        if kind.lifecycle == SYNC and not held_by_hosts:
            if row.type == "MachineImage" and row.state == "CREATING":
                raise Conflict("machine image '%s' is being captured" % (row.name or row.uuid))
            session.delete(row)
            return context.Outcome(None)
        if row.type == "Machine":
            states.check_allowed(row.state, states.DELETE, "machine '%s'" % (row.name or row.uuid))
            if row.private.get("system"):
                pass  # a system's machine may be deleted alone; the system forgets it when it is gone
            row.private = dict(row.private, before=row.state)
            row.state = states.DELETING
            job = context.queue(session, p, "delete", row)
        elif row.type == "System":
            job = systems.delete_system(ctx, session, p, row)
        else:
            if row.state in ("CREATING", "DELETING"):
                raise Conflict("%s '%s' is %s" % (row.type, row.name or row.uuid, row.state))
            if row.type == "Volume" and (row.doc.get("attachedTo") or row.private.get("attaching")):
                raise Conflict("volume '%s' is attached to a machine: detach it first" % (row.name or row.uuid))
            row.private = dict(row.private, before=row.state)
            row.state = "DELETING"
            job = context.queue(session, p, "delete", row)
        row.updated = utcnow()
        job_doc = rendering.render_job(ctx, job, base)
    ctx.wake()
    return context.accepted(job_doc, job_doc)

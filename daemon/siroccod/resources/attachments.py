"""A machine's volumes: attach and detach (the collection itself is resources.subcollections')."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri, type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Unsupported,
)
from siroccod import cmdb, hrefs
from siroccod.jobs import ACTIVE
from siroccod.resources import context, machines, rendering, volumes
from siroccod.store import Job

log = logging.getLogger(__name__)
# the states a machine takes and gives back volumes in
STABLE_FOR_VOLUMES = (states.STARTED, states.STOPPED, states.PAUSED, states.SUSPENDED)


# the Actions a machine's volumes collection takes beside a new locatedVolume (5.5.12.2-3)
INSERT, REMOVE = action_uri("insert"), action_uri("remove")


def post(ctx, p, uuid, body, base):
    """A POST to a machine's volumes collection: a locatedVolume (add, 5.5.12.1), or an Action inserting
    (5.5.12.2) or removing (5.5.12.3) a volume; either way a job attaches or detaches it."""
    if isinstance(body, dict) and ("action" in body or body.get("resourceURI") == type_uri("Action")):
        action = model.Action.from_json(body, path="Action")
        if action.action not in (INSERT, REMOVE):
            raise InvalidInput("Action.action: a machine's volumes collection takes '%s' or '%s'" % (INSERT, REMOVE),
                               attribute="action")
        if action.volume is None:
            raise InvalidInput("Action.volume: required to %s a volume" % action.action.rsplit("/", 1)[1],
                               attribute="volume")
        if action.action == INSERT:
            located = {"volume": action.volume}
            if action.initialLocation is not None:
                located["initialLocation"] = action.initialLocation
            return attach(ctx, p, uuid, located, base)
        parts = hrefs.split(action.volume["href"])
        if not parts or len(parts) != 2 or parts[0] != "volumes":
            raise InvalidInput("Action.volume.href: not a volume of this endpoint", attribute="volume")
        return detach(ctx, p, uuid, parts[1], base)
    return attach(ctx, p, uuid, body, base)


def attach(ctx, p, uuid, body, base):
    if not isinstance(body, dict):
        raise InvalidInput("locatedVolume: expected a JSON object", attribute="locatedVolume")
    body = dict(body)
    uri = body.pop("resourceURI", None)
    if uri is not None and uri not in (type_uri("MachineVolume"), type_uri("locatedVolume")):
        raise InvalidInput("locatedVolume.resourceURI: expected '%s'" % type_uri("locatedVolume"),
                           attribute="resourceURI")
    parsed = model.MachineVolume.from_json(body, path="locatedVolume")
    with ctx.store.transaction() as session:
        machine = ctx.find(session, p, "Machine", uuid, lock=True)
        vol = ctx.find_ref(session, p, parsed.volume["href"], "Volume", "locatedVolume.volume")
        if not ctx.store.is_sqlite:  # two machines asking for one volume at once take turns
            session.refresh(vol, with_for_update=cmdb.ROW_LOCK)
        if machine.state not in STABLE_FOR_VOLUMES or machine.native_id is None:
            raise Conflict("cannot attach a volume to machine '%s' in state %s"
                           % (machine.name or machine.uuid, machine.state))
        volumes.check_attachable(ctx, session, vol)
        if vol.host_id != machine.host_id:
            raise Conflict("volume '%s' is on another host than machine '%s'"
                           % (vol.name or vol.uuid, machine.name or machine.uuid))
        if not ctx.host_supports(machine.host_id, "volume.attach"):
            raise Unsupported("siroccod", "volume.attach", "the machine's host cannot attach volumes")
        machines.check_hot_plug(ctx, machine)
        volumes.mark_attaching(ctx, session, vol.uuid, machine.uuid)
        job = context.queue(session, p, "attach", machine,
                            params={"volume": vol.uuid, "initialLocation": parsed.initialLocation},
                            affected=[hrefs.ref("machines", machine.uuid), hrefs.ref("volumes", vol.uuid)])
        job_doc = rendering.render_job(ctx, job, base)
        location = "%s/volumes/%s" % (base + hrefs.ref("machines", machine.uuid), vol.uuid)
    ctx.wake()
    return context.accepted(job_doc, job_doc, location)


def detach(ctx, p, uuid, volume_uuid, base):
    with ctx.store.transaction() as session:
        machine = ctx.find(session, p, "Machine", uuid, lock=True)
        entries = [e for e in machine.doc.get("volumes", []) if e["volume"]["href"].endswith("/" + volume_uuid)]
        if not entries:
            raise NotFound("machine '%s' has no volume '%s'" % (machine.name or machine.uuid, volume_uuid))
        if machine.state not in STABLE_FOR_VOLUMES:
            raise Conflict("cannot detach a volume from machine '%s' in state %s"
                           % (machine.name or machine.uuid, machine.state))
        machines.check_hot_plug(ctx, machine)
        pending = session.scalar(select(func.count()).select_from(Job).where(
            Job.target_uuid == machine.uuid, Job.state.in_(ACTIVE)))
        if pending:
            raise Conflict("machine '%s' has a job under way; detach when it is done" % (machine.name or uuid))
        job = context.queue(session, p, "detach", machine, params={"volume": volume_uuid},
                            affected=[hrefs.ref("machines", machine.uuid), hrefs.ref("volumes", volume_uuid)])
        job_doc = rendering.render_job(ctx, job, base)
    ctx.wake()
    return context.accepted(job_doc, job_doc)

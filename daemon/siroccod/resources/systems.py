"""Systems: created from a SystemTemplate's components (each a nested job), deleted, started and stopped."""

from __future__ import annotations

import logging

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
)
from siroccod import cmdb, hrefs
from siroccod.kinds import SYSTEM_COMPONENTS
from siroccod.resources import context, machines, networks, rendering, volumes
from siroccod.resources.context import COMMON
from siroccod.store import Resource, new_uuid

log = logging.getLogger(__name__)


def create_system(ctx, session, p, body):
    req = model.SystemCreate.from_json(body)
    template = context.template(ctx, session, p, req.systemTemplate, "SystemTemplate", "SystemCreate.systemTemplate")
    meta = {k: req.get(k) for k in COMMON if req.get(k) is not None}
    uuid = new_uuid()
    doc = dict(meta)
    doc.setdefault("name", "system-" + uuid[:8])
    doc.update({"machines": [], "volumes": [], "networks": []})
    row = cmdb.new_resource(session, "System", p.tenant_id, doc, state="CREATING", uuid=uuid)
    parent = context.queue(session, p, "create", row, affected=[hrefs.ref("systems", uuid)])
    creators = {"Machine": machines.create_machine, "Volume": volumes.create_volume,
                "Network": networks.create_network}
    descriptors = template.get("componentDescriptors") or []
    if sum(int(d.get("quantity") or 1) for d in descriptors) > 100:
        raise InvalidInput("SystemCreate: at most 100 components", attribute="componentDescriptors")
    for i, desc in enumerate(descriptors):
        desc = model.spec_descriptor(desc)  # a template stored before Table 14's shape: read as Table 14's
        rtype, ttype = SYSTEM_COMPONENTS[desc["type"]]
        wire = model.COMPONENT_TEMPLATES[desc["type"]]
        component = context.template(ctx, session, p, desc[wire], ttype,
                                     "SystemCreate.systemTemplate.componentDescriptors[%d].%s" % (i, wire))
        create = creators[rtype]
        quantity = int(desc.get("quantity") or 1)
        for child_name in member_names(desc, quantity, "%s-%s" % (doc["name"], rtype.lower())):
            meta = {"name": child_name, "description": desc.get("description"), "properties": desc.get("properties")}
            child, _job = create(ctx, session, p, None, parent=parent, name=meta, template=component)
            cmdb.join_system(child, row)
    return row, parent


def member_names(desc: dict, quantity: int, unnamed: str) -> list[str]:
    """The names of a component descriptor's members (Table 14): its ``name``, with the sequence number
    appended (no separator: mymachine1, mymachine2) when it makes two or more; ``unnamed`` when it has none."""
    base = desc.get("name") or unnamed
    return [base] if quantity < 2 else ["%s%d" % (base, n + 1) for n in range(quantity)]


def delete_system(ctx, session, p, row):
    machine_rows = [session.get(Resource, h["href"].rsplit("/", 1)[1]) for h in row.doc.get("machines", [])]
    machine_states = [m.state if m is not None else None for m in machine_rows]
    if row.state in ("CREATING", "DELETING") or not rendering.system_deletable(machine_states):
        raise Conflict("system '%s' cannot be deleted while its machines are %s"
                       % (row.name or row.uuid, ", ".join(sorted({s for s in machine_states if s}))
                          or row.state))
    row.state = "DELETING"
    parent = context.queue(session, p, "delete", row)
    for m in machine_rows:
        if m is not None:
            m.private = dict(m.private, before=m.state)
            m.state = states.DELETING
            context.queue(session, p, "delete", m, parent=parent)
    for key in ("volumes", "networks"):
        for h in row.doc.get(key, []):
            child = session.get(Resource, h["href"].rsplit("/", 1)[1])
            if child is not None and child.state not in ("CREATING", "DELETING") and not child.doc.get(
                    "attachedTo"):
                child.state = "DELETING"
                context.queue(session, p, "delete", child, parent=parent)
    return parent


def system_action(ctx, p, uuid, verb, body, base):
    act = model.Action.from_json(body)
    if verb not in (states.START, states.STOP) or context.uri_verb(act.action) != verb:
        raise InvalidInput("Action.action: this href takes '%s', got '%s'" % (action_uri(verb), act.action),
                           attribute="action")
    with ctx.store.transaction() as session:
        row = ctx.find(session, p, "System", uuid, lock=True)
        members = [session.get(Resource, h["href"].rsplit("/", 1)[1]) for h in row.doc.get("machines", [])]
        targets = [m for m in members if m is not None and verb in rendering.machine_operations(ctx, m)]
        if not targets:
            raise Conflict("no machine of system '%s' can %s now" % (row.name or row.uuid, verb))
        parent = context.queue(session, p, verb, row, affected=[hrefs.ref("systems", row.uuid)])
        for m in targets:
            params = {"before": m.state}
            if verb == states.STOP:
                params["force"] = bool(act.force)
            m.private = dict(m.private, before=m.state)
            m.state = states.transient_state(m.state, verb)
            context.queue(session, p, verb, m, params=params, parent=parent)
        job_doc = rendering.render_job(ctx, parent, base, p, session)
    ctx.wake()
    return context.accepted(job_doc, job_doc)

"""Sirocco's resize action (model.SIROCCO_RESIZE) on machines and volumes: checked before 202, claimed, queued."""

from __future__ import annotations

import logging

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    SiroccoError,
)
from siroccod import capacity, hrefs
from siroccod.kinds import RESIZE_PARAMETERS
from siroccod.resources import context, rendering
from siroccod.resources.rendering import RESIZE
from siroccod.store import utcnow

log = logging.getLogger(__name__)


def resize(ctx, p, key, uuid, body, base, dry_run=False):
    """POST of a resize Action: a machine's new machineConfig, or a volume's new capacity (grow only).
    Everything is checked before 202; the job (handlers/) calls the host and records the new size.
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
        return resize_volume(ctx, p, uuid, act, base)
    if dry_run:
        return context.Outcome(resize_dry_run(ctx, p, uuid, act))
    return resize_machine(ctx, p, uuid, act, base)


def resize_config(ctx, session, p, value):
    """The new size a resize asks for ({cpu, memory[, cpuArch]}), checked like a creation's."""
    if value is None:
        raise InvalidInput("Action.machineConfig: a resize needs the machine's new configuration (cpu, memory), "
                           "by reference or by value", attribute="machineConfig")
    config = context.by_ref_or_value(ctx, session, p, value, "MachineConfiguration", "Action.machineConfig")[0]
    checked = model.MachineConfiguration.from_json(
        {k: v for k, v in config.items() if k in ("cpu", "memory", "cpuArch")},
        path="Action.machineConfig").to_json()
    checked.pop("resourceURI", None)
    return checked


def resize_check(ctx, session, p, uuid, value):
    """(row, handle, config, what) of a machine resize, or the reason it cannot be (nothing written)."""
    row = ctx.find(session, p, "Machine", uuid)
    if row.tenant_id is None:
        raise Forbidden("this machine is not yours to resize")
    config = resize_config(ctx, session, p, value)
    what = "machine '%s'" % (row.name or row.uuid)
    handle = ctx.handle(row.host_id)
    if handle is None or row.native_id is None or not ctx.host_supports(row.host_id, "machine.resize"):
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


def stop_reason(handle, row, config, what):
    """Why the host must have the machine stopped for this resize (it says what to do), else None."""
    if row.state == states.STOPPED:
        return None
    if row.state != states.STARTED:
        return "cannot resize %s in state %s: stop it first" % (what, row.state)
    if not handle.resizes_live():
        return "%s is %s and host %s resizes stopped machines only: stop it first, then resize" % (
            what, row.state, handle.name)
    machine = handle.get_machine(row.native_id)
    if handle.resize_needs_stop(machine, model.MachineConfiguration(**config)):
        return "%s is %s and host %s must have it stopped to give it %d cpu and %d MiB: stop it first, " \
               "then resize" % (what, machine.state, handle.name, config["cpu"], config["memory"] // 1024)
    return None


def resize_dry_run(ctx, p, uuid, act):
    """A machine resize's dry run (POST .../resize?dryRun=true): its input checked, nothing written, and
    whether the machine must be stopped first (the host's own resize_needs_stop, which a client cannot
    compute: it needs the host's live limits). Room and quota are the real resize's to check."""
    with ctx.store.read() as session:
        row, handle, config, what = resize_check(ctx, session, p, uuid, act.machineConfig)
    reason = stop_reason(handle, row, config, what)
    return {"needsStop": reason is not None, **({"reason": reason} if reason else {})}


def resize_machine(ctx, p, uuid, act, base):
    with ctx.store.read() as session:  # bad input and what the host refuses: before anything is written
        row, handle, config, what = resize_check(ctx, session, p, uuid, act.machineConfig)
        seen = row.state
    reason = stop_reason(handle, row, config, what)  # may ask the host: outside any transaction
    if reason is not None:
        raise Conflict(reason)
    with ctx.store.transaction() as session:
        capacity.lock(ctx.store, session)  # the grow's room stays true until the commit
        ctx.find(session, p, "Machine", uuid, lock=True)  # one request at a time changes it
        row, handle, config, what = resize_check(ctx, session, p, uuid, act.machineConfig)
        if row.state != seen:
            raise Conflict("%s went from %s to %s meanwhile: ask again" % (what, seen, row.state))
        old_cpu, old_memory = capacity.machine_claim(row.doc, None)
        grow_cpu, grow_memory = max(0, config["cpu"] - old_cpu), max(0, config["memory"] - old_memory)
        context.check_quota(session, p, row.tenant_id, cpu=grow_cpu, memory_kib=grow_memory)
        if row.host_id in ctx.pool.handles and (grow_cpu or grow_memory):
            free_cpu, free_memory = capacity.room(session, row.host_id)
            if grow_cpu > free_cpu or grow_memory > free_memory:
                raise Conflict("host %s cannot give %s %d cpu and %d MiB: it has %d cpu and %d MiB free, the "
                               "resize needs %d cpu and %d MiB more" % (
                                   handle.name, what, config["cpu"], config["memory"] // 1024, free_cpu,
                                   free_memory // 1024, grow_cpu, grow_memory // 1024))
        row.private = dict(row.private, resizing={"cpu": config["cpu"], "memory": config["memory"]})
        row.updated = utcnow()
        job = context.queue(session, p, RESIZE, row, params={"config": config, "before": row.state},
                            affected=[hrefs.ref("machines", row.uuid)], action=model.SIROCCO_RESIZE)
        job_doc = rendering.render_job(ctx, job, base)
    ctx.wake()
    return context.accepted(job_doc, job_doc)


def resize_volume(ctx, p, uuid, act, base):
    if act.capacity is None:
        raise InvalidInput("Action.capacity: a volume's resize needs its new capacity (kilobytes)",
                           attribute="capacity")
    with ctx.store.transaction() as session:
        row = ctx.find(session, p, "Volume", uuid, lock=True)
        what = "volume '%s'" % (row.name or row.uuid)
        present = int(row.doc.get("capacity") or 0)
        if act.capacity <= present:
            raise InvalidInput("Action.capacity: %s has %d KB; a resize only grows a volume: give more than that"
                               % (what, present), attribute="capacity")
        if row.native_id is None or not ctx.host_supports(row.host_id, "volume.resize"):
            raise Conflict("%s cannot be resized: its host does not resize volumes" % what)
        if row.state != "AVAILABLE" or row.private.get("resizing") or row.private.get("attaching"):
            raise Conflict("cannot resize %s now (%s): wait for its job" % (
                what, "being resized" if row.private.get("resizing") else
                "being attached" if row.private.get("attaching") else row.state))
        row.private = dict(row.private, resizing=act.capacity)
        row.updated = utcnow()
        job = context.queue(session, p, RESIZE, row, params={"capacity": act.capacity},
                            affected=[hrefs.ref("volumes", row.uuid)], action=model.SIROCCO_RESIZE)
        job_doc = rendering.render_job(ctx, job, base)
    ctx.wake()
    return context.accepted(job_doc, job_doc)

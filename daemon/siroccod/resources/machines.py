"""Machines: a creation request resolved and placed (a host, or an upstream through routing), actions."""

from __future__ import annotations

import logging

from sqlalchemy import func, select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    SiroccoError,
    Unsupported,
)
from siroccod import capacity, cmdb, guests, hrefs, jobs, placing, routing
from siroccod.jobs import ACTIVE
from siroccod.plans import MachinePlan
from siroccod.resources import context, rendering, volumes
from siroccod.resources.context import COMMON
from siroccod.store import Job, Resource, new_uuid, utcnow

log = logging.getLogger(__name__)


def check_guest_inputs(ctx, handle, plan, upstream=False):
    refusal = guests.guest_refusal(handle, plan, upstream=upstream)
    if refusal is not None:
        raise refusal


def check_hot_plug(ctx, machine):
    """A volume goes onto (or off) a running machine only where the host can plug it live."""
    if machine.state == states.STOPPED:
        return
    handle = ctx.pool.handles.get(machine.host_id)
    try:
        live = handle is None or handle.capabilities().hot_plug
    except SiroccoError:
        live = True  # the host cannot say now: its job will
    if not live:
        raise Conflict("host %s cannot plug volumes into a running machine: stop machine '%s' first"
                       % (handle.name, machine.name or machine.uuid))


def machine_request(ctx, session, p, template, path):
    """Resolve a MachineTemplate (stored form) to what the worker needs; nothing written."""
    config, config_row = context.by_ref_or_value(ctx, session, p, template.get("machineConfig"),
                                                 "MachineConfiguration", path + ".machineConfig")
    if config is None:
        raise InvalidInput("%s.machineConfig: a machine needs a configuration (cpu, memory)" % path,
                           attribute="machineConfig")
    checked = model.MachineConfiguration.from_json(
        {k: v for k, v in config.items() if k in model.MachineConfiguration.attributes and k not in COMMON},
        path=path + ".machineConfig").to_json()
    checked.pop("resourceURI", None)
    if config_row is not None and config_row.private.get("stock") and "cpuSpeed" not in template["machineConfig"]:
        checked.pop("cpuSpeed", None)  # a stock size's says what its hosts run at (app._slowest): no one's wish
    image, image_row = context.by_ref_or_value(ctx, session, p, template.get("machineImage"), "MachineImage",
                                               path + ".machineImage")
    image_native, allowed = None, None
    if image is not None and image_row is None:
        raise InvalidInput("%s.machineImage: give a MachineImage by reference (create it first from its "
                           "imageLocation)" % path, attribute="machineImage")
    if image is not None:
        if image_row.state != "AVAILABLE":
            raise Conflict("%s.machineImage: image is %s, not AVAILABLE" % (path, image_row.state))
        natives = cmdb.image_natives(image_row)
        if not natives:  # a record without a disk on any host: never a blank machine instead
            raise Conflict("%s.machineImage: image '%s' holds no disk on any host of this daemon"
                           % (path, image_row.name or image_row.uuid))
        image_native = natives
        allowed = tuple(natives)
    credential, row = context.by_ref_or_value(ctx, session, p, template.get("credential"), "Credential",
                                              path + ".credential")
    credential_ref, guest = None, {}
    if credential is not None:
        overrides = any(k != "href" for k in template.get("credential") or {})
        if row is not None and not overrides:
            credential_ref = row.uuid
            credential["password"] = row.private.get("password")  # for the checks below only
        elif credential.get("password") is not None:  # given by value: kept with the machine, sealed
            credential["password"] = ctx.sealer.seal(credential["password"])
        elif row is not None and row.private.get("password"):  # by reference with overrides: by value
            credential["password"] = row.private["password"]
        guest["credential"] = guests.checked_credential(credential, path)
        credential["key"] = guest["credential"]["key"]
        if credential_ref:
            credential = None
    attached = []  # the volumes it is made with
    for i, item in enumerate(template.get("volumes") or []):
        vol = ctx.find_ref(session, p, item["volume"]["href"], "Volume", "%s.volumes[%d].volume" % (path, i))
        volumes.check_attachable(ctx, session, vol)
        attached.append({"volume": vol.uuid, "initialLocation": item.get("initialLocation")})
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
            net = ctx.find_ref(session, p, net_ref["href"], "Network", "%s.interfaceTemplates[%d].network"
                               % (path, i))
            networks.append(net.uuid)
            if net.host_id is not None:
                allowed = (net.host.name,) if allowed is None or net.host.name in allowed else ()
    return MachinePlan(config=checked, image=image_native, credential=credential_ref, credential_value=credential,
                       initial_state=template.get("initialState") or states.STOPPED,
                       user_data=template.get("userData"), volumes=attached, networks=networks, allowed=allowed,
                       guest=guest)


def create_machine(ctx, session, p, body, parent=None, name=None, tenant_id=None, pinned=None,
                   template=None):
    """From a MachineCreate ``body``, or (system components) from a checked ``template``."""
    template, meta = context.request_template(ctx, session, p, body, model.MachineCreate, "machineTemplate",
                                              "MachineTemplate", template, name)
    plan = machine_request(ctx, session, p, template, "MachineCreate.machineTemplate")
    raw = body.get("machineTemplate") if isinstance(body, dict) else None
    raw = raw.get("credential") if isinstance(raw, dict) else None
    if isinstance(raw, dict) and raw.get("password") is not None and plan.guest.get("credential"):
        # a password by value (the model does not keep it: write-only) is one the hosts must refuse
        plan.guest["credential"]["password"] = "set"
    config = plan.config
    host_name = pinned or (meta.get("properties") or {}).get(placing.HOST_PROPERTY) or (
        template.get("properties") or {}).get(placing.HOST_PROPERTY)
    # from here to the commit, no other placement decides: the loads read below stay true (capacity.py)
    capacity.lock(ctx.store, session)
    context.check_quota(session, p, tenant_id, cpu=config["cpu"], memory_kib=config["memory"], machines=1)
    # the hosts or an upstream (routing.py), when upstreams are configured or the request wishes
    loads = ctx.host_loads(session)
    route = routing.route(ctx.pool, ctx.placer, loads, session, meta, template, plan, host_name) \
        if routing.wanted(ctx.pool, meta, template) else None
    needs = guests.guest_inputs(plan)
    if route is not None and route.handle is not None:
        check_guest_inputs(ctx, route.handle, plan, upstream=True)
        return create_routed(ctx, session, p, route, meta, template, plan, parent, tenant_id)
    host_name = host_name or (route.host if route is not None else None)
    request = placing.PlacementRequest(cpu=config["cpu"], memory_kib=config["memory"], arch=config.get("cpuArch"),
                                       host=host_name, hosts_allowed=plan.allowed)
    if host_name is not None and host_name not in {h.name for h in loads}:
        raise InvalidInput("properties.%s: no available host '%s'" % (placing.HOST_PROPERTY, host_name),
                           attribute="properties")
    if needs:  # only hosts that can put them into the guest, checked now rather than failing in the job
        if host_name is not None:
            check_guest_inputs(ctx, ctx.pool.by_name(host_name), plan)
        capable, refused = ctx.guest_hosts(loads, plan)
        allowed = plan.allowed
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
    chosen = ctx.placer(request, loads)
    if chosen is None:
        raise Conflict("no host can take a machine of %d cpu and %d MiB%s" % (
            config["cpu"], config["memory"] // 1024, " on host %s" % host_name if host_name else ""))
    uuid = new_uuid()
    doc = dict(meta)
    doc.setdefault("name", "machine-" + uuid[:8])
    for key in model.HARDWARE:
        if config.get(key) is not None:
            doc[key] = config[key]
    if route is not None:
        routing.note(doc, route)
    if plan.volumes:
        doc["volumes"] = []
    private = {"domain": ctx.pool.get(chosen.id).native_name(uuid),
               "spec": plan.spec()}
    row = cmdb.new_resource(session, "Machine", p.tenant_id if tenant_id is None else tenant_id, doc,
                            host_id=chosen.id, state=states.CREATING, private=private, uuid=uuid)
    for vol in plan.volumes:
        volumes.mark_attaching(ctx, session, vol["volume"], row.uuid)
    job = context.queue(session, p, "create", row, params=routing.job_params(route),
                        affected=[hrefs.ref("machines", uuid)], parent=parent, tenant_id=row.tenant_id)
    return row, job


def create_routed(ctx, session, p, route, meta, template, plan, parent, tenant_id):
    """Record a machine the upstream of ``route`` will make, and queue its creation job (the same
    job as on a host: the handler reaches the upstream through the handle)."""
    handle = route.handle
    uuid = new_uuid()
    doc = dict(meta)
    doc.setdefault("name", "machine-" + uuid[:8])
    spec = routing.upstream_spec(route, plan, routing.properties(meta, template))
    for key in model.HARDWARE:
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


def refresh_routed(ctx, p, uuid):
    """GET of a routed machine asks its upstream: the state it reports now is recorded (a machine
    gone from there is marked gone, as reconcile does). When the upstream cannot say, the record is
    served as it is. Machines with a job under way are left to their job."""
    with ctx.store.read() as session:
        try:
            row = ctx.find(session, p, "Machine", uuid)
        except NotFound:
            return
        handle = ctx.pool.upstreams.get(row.host_id)
        if handle is None or row.native_id is None or row.state not in states.STABLE_MACHINE_STATES \
                or handle.recently_failed():
            return
        pending = select(func.count()).select_from(Job).where(Job.target_uuid == uuid, Job.state.in_(ACTIVE))
        if session.scalar(pending):
            return
        native, recorded = row.native_id, row.state
    try:
        machine = handle.get_machine(native)
    except NotFound:
        machine = None
    except SiroccoError as exc:
        log.info("machine %s: upstream %s cannot say its state: %s", uuid, handle.name, exc)
        return
    with ctx.store.transaction() as session:
        row = session.get(Resource, uuid)
        if row is None or row.state != recorded or row.native_id != native:
            return  # changed meanwhile: that change wins
        if machine is None:
            cmdb.mark_gone(row, "vanished from upstream %s" % handle.name)
        elif machine.state != row.state:
            row.state, row.updated = machine.state, utcnow()


def action(ctx, p, uuid, verb, body, base, added_to=None):
    """POST of a CIMI Action on a machine (start, stop, ..., capture); ``added_to``: the collection the
    request was POSTed to instead (a capture through machineImages), which its job then targets."""
    act = model.Action.from_json(body)
    if context.uri_verb(act.action) != verb:
        raise InvalidInput("Action.action: this href takes '%s', got '%s'" % (action_uri(verb), act.action),
                           attribute="action")
    with ctx.store.transaction() as session:
        row = ctx.find(session, p, "Machine", uuid, lock=True)
        if row.tenant_id is None:
            raise Forbidden("this machine is not yours to act on")
        what = "machine '%s'" % (row.name or row.uuid)
        states.check_allowed(row.state, verb, what)
        if verb not in rendering.machine_operations(ctx, row):
            host = ctx.pool.handles.get(row.host_id)
            raise Unsupported(host.provider if host else "siroccod", "machine." + verb,
                              "host of %s does not support %s" % (what, verb))
        params = {"before": row.state}
        if added_to:
            params[rendering.ADDED_TO] = added_to
        affected = [hrefs.ref("machines", row.uuid)]
        if verb in (states.STOP, states.RESTART):
            params["force"] = bool(act.force)
        if verb == states.CAPTURE:
            image_meta = act.image or {}
            if "href" in image_meta:
                raise InvalidInput("Action.image: give the new image's attributes, not an href",
                                   attribute="image")
            image_uuid = new_uuid()
            image_doc = {**{k: image_meta[k] for k in COMMON if image_meta.get(k) is not None},
                         "type": "IMAGE", "imageLocation": hrefs.ref("machines", row.uuid)}
            image_doc.setdefault("name", "%s-capture" % (row.name or "machine"))
            image = cmdb.new_resource(session, "MachineImage", row.tenant_id, image_doc, state="CREATING",
                                      uuid=image_uuid, private={
                                          "machine": row.uuid,
                                          "native_name": ctx.pool.get(row.host_id).native_name(image_uuid)})
            params["image"] = image.uuid
            affected.append(hrefs.ref("machineImages", image.uuid))
        row.private = dict(row.private, before=row.state)
        row.state = states.transient_state(row.state, verb)
        row.updated = utcnow()
        job = context.queue(session, p, verb, row, params=params, affected=affected)
        job_doc = rendering.render_job(ctx, job, base)
    ctx.wake()
    return context.accepted(job_doc, job_doc)

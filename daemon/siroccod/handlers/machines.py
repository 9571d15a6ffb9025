"""Machine jobs: create, the actions (start, stop, restart, pause, suspend, capture), delete, resize,
attach and detach a volume. Each talks to the machine's host outside any CMDB transaction, then records
the outcome through ``worker.finish`` (the ledger) with the resources' new state."""

from __future__ import annotations

import logging

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import NotFound, SiroccoError
from siroccod import cmdb, hrefs, metering
from siroccod.guests import guest_properties
from siroccod.jobs import FAILED, SUCCESS, handles
from siroccod.store import Job, MeterSample, Resource, utcnow

log = logging.getLogger(__name__)


@handles("Machine", "create")
def create(w, job_uuid):
    with w.store.read() as session:
        job = session.get(Job, job_uuid)
        row = session.get(Resource, job.target_uuid)
        host = w.pool.get(row.host_id)
        spec = w.machine_spec(session, row)
        volumes = list(row.private.get("spec", {}).get("volumes") or [])
        resumed = bool(job.params.get("resumed"))
        routed = job.params.get("routing")  # where routing.py sent it, and why
    spec.validate()
    # run again after an interruption: the first run may have made the domain already
    machine = host.find_machine(spec.name) if resumed else None
    if machine is None:
        machine = host.create_machine(spec)
    else:
        for verb in states.path_to(machine.state, spec.initial_state):
            host.act(verb, machine.id)
    w.progress(job_uuid, 70)
    if machine.state not in (spec.initial_state,):
        machine = w.wait_state(host, machine.id, (spec.initial_state, states.ERROR))
    caps = host.capabilities()
    readings = {}  # the first sample of each meter, recorded with it (metering.py takes the next ones)
    if caps.meters and host.supports("meter.list"):
        try:
            readings = {m.aspect: m for m in host.list_meters(machine.id)}
        except SiroccoError as exc:
            log.info("job %s: no first meter samples: %s", job_uuid, exc)

    def done(session, job):
        row = session.get(Resource, job.target_uuid)
        row.native_id = machine.id
        row.state = machine.state
        doc = dict(row.doc)
        found = machine.to_json()
        # what the host reports beyond what was asked (disks, cpuArch), and the clock it runs at (cpuSpeed:
        # the host's, whatever its configuration said)
        for key in model.HARDWARE:
            if found.get(key) and (not doc.get(key) or key == "cpuSpeed"):
                doc[key] = found[key]
        if found.get("interfaces"):
            doc["interfaces"] = cmdb.interfaces(session, row.host_id, found["interfaces"])
        reach = guest_properties(machine)
        if reach:  # how a controller reaches the guest: its user, the SSH host key it presents
            doc["properties"] = dict(doc.get("properties") or {}, **reach)
        doc.pop("volumes", None)
        meters = []
        for aspect in caps.meters:
            label = "%s %s" % (doc.get("name"), aspect.rsplit("/", 1)[-1])
            reading = metering.reading(readings.get(aspect))
            meter = cmdb.new_resource(
                session, "Meter", row.tenant_id, dict({
                    "name": label, "aspect": aspect, "targetResource": {"href": hrefs.ref("machines", row.uuid)},
                    "timeScope": "Point", "isContinuous": True}, **({"units": reading[1]} if reading else {})),
                native_id=row.uuid + "/" + aspect.rsplit("/", 1)[-1], private={"machine": row.uuid},
                machine_uuid=row.uuid)
            if reading is not None:
                session.add(MeterSample(meter_uuid=meter.uuid, taken=utcnow(), value=reading[0]))
            meters.append({"href": hrefs.ref("meters", meter.uuid)})
        if meters:
            doc["meters"] = meters
        row.doc = doc
        for vol in volumes:  # the volumes it was made with, attached now
            vrow = session.get(Resource, vol["volume"])
            if vrow is not None:
                cmdb.attached(vrow, row, vol.get("initialLocation"))
        row.updated = utcnow()
    w.finish(job_uuid, SUCCESS, "machine created in state %s%s%s" % (
        machine.state, " (run again after an interruption)" if resumed else "",
        "; " + routed if routed else ""), 201, done)


def _machine_action(w, job_uuid, verb):
    params, uuid, native, private, doc, host = w.load(job_uuid)
    if native is None:
        raise NotFound("machine has no domain on its host")
    kwargs = {"force": bool(params.get("force"))} if verb in (states.STOP, states.RESTART) else {}
    before = params.get("before")
    if verb == states.CAPTURE:
        with w.store.read() as session:
            image = session.get(Resource, params["image"])
            private_name = image.private.get("native_name") or image.uuid
        captured = host.capture_machine(native, private_name)
        machine = host.get_machine(native)

        def done(session, job):
            row = session.get(Resource, uuid)
            row.state = machine.state if machine.state in states.STABLE_MACHINE_STATES else before
            row.updated = utcnow()
            image = session.get(Resource, params["image"])
            image.state, image.native_id, image.host_id = "AVAILABLE", captured.id, row.host_id
            extra = captured.to_json()
            image.doc = dict(image.doc, **{k: extra[k] for k in ("imageLocation",) if extra.get(k)},
                             relatedImage=image.doc.get("relatedImage"))
            if image.doc.get("relatedImage") is None:
                image.doc = {k: v for k, v in image.doc.items() if k != "relatedImage"}
            image.updated = utcnow()
        return w.finish(job_uuid, SUCCESS, "machine captured", 200, done)
    host.act(verb, native, **kwargs)
    wanted = states.result_state(before, verb)
    machine = w.wait_state(host, native, (wanted, states.ERROR))

    def done(session, job):
        row = session.get(Resource, uuid)
        row.state = machine.state
        row.updated = utcnow()
    if machine.state == states.ERROR:
        return w.finish(job_uuid, FAILED, "machine went to ERROR during %s" % verb, 500, done)
    w.finish(job_uuid, SUCCESS, "machine %s" % machine.state, 200, done)


def _registered_action(verb):
    @handles("Machine", verb)
    def action(w, job_uuid):
        _machine_action(w, job_uuid, verb)
    action.__name__ = action.__qualname__ = verb
    return action


for _verb in (states.START, states.STOP, states.RESTART, states.PAUSE, states.SUSPEND, states.CAPTURE):
    _registered_action(_verb)


@handles("Machine", "delete")
def delete(w, job_uuid):
    params, uuid, native, private, doc, host = w.load(job_uuid)
    if native is not None and host is not None:
        try:
            host.delete_machine(native)
        except NotFound:
            pass  # already gone: the end is the same

    def done(session, job):
        cmdb.forget_machine(session, uuid)
    w.finish(job_uuid, SUCCESS, "machine deleted", 200, done)


@handles("Machine", "resize")
def resize(w, job_uuid):
    """Give the machine its new cpu and memory on its host (resources.resize checked the room and the
    state); the CMDB records the size the host reports, which its claim then is."""
    params, uuid, native, private, doc, host = w.load(job_uuid)
    if native is None:
        raise NotFound("machine has no domain on its host")
    wanted = model.MachineConfiguration(**params["config"])
    machine = host.resize_machine(native, wanted)

    def done(session, job):
        row = session.get(Resource, uuid)
        found = machine.to_json() if machine is not None else {}
        size = {"cpu": found.get("cpu") or wanted.cpu, "memory": found.get("memory") or wanted.memory}
        row.doc = dict(row.doc, **size)
        spec = dict(row.private.get("spec") or {})
        if spec.get("config"):  # a simulated host's restore re-creates it at this size
            spec["config"] = dict(spec["config"], **size)
        row.private = dict({k: v for k, v in row.private.items() if k != "resizing"}, spec=spec)
        if machine is not None and machine.state in states.STABLE_MACHINE_STATES:
            row.state = machine.state
        row.updated = utcnow()
    w.finish(job_uuid, SUCCESS, "machine resized to %d cpu and %d MiB" % (
        (machine.cpu if machine is not None and machine.cpu else wanted.cpu),
        (machine.memory if machine is not None and machine.memory else wanted.memory) // 1024), 200, done)


def _volume_native(w, volume_uuid):
    """The native id of a recorded volume, None when it is gone (or never made)."""
    with w.store.read() as session:
        vol = session.get(Resource, volume_uuid)
        return vol.native_id if vol is not None else None


@handles("Machine", "attach")
def attach(w, job_uuid):
    params, uuid, native, private, doc, host = w.load(job_uuid)
    vol_native = _volume_native(w, params["volume"])
    if vol_native is None:
        raise NotFound("the volume no longer exists")
    host.attach_volume(native, vol_native, params.get("initialLocation"))

    def done(session, job):
        cmdb.attached(session.get(Resource, params["volume"]), session.get(Resource, uuid),
                      params.get("initialLocation"))
    w.finish(job_uuid, SUCCESS, "volume attached", 200, done)


@handles("Machine", "detach")
def detach(w, job_uuid):
    params, uuid, native, private, doc, host = w.load(job_uuid)
    vol_native = _volume_native(w, params["volume"])
    if vol_native is not None:
        try:
            host.detach_volume(native, vol_native)
        except NotFound:
            pass

    def done(session, job):
        cmdb.detached(session.get(Resource, params["volume"]), session.get(Resource, uuid), params["volume"])
    w.finish(job_uuid, SUCCESS, "volume detached", 200, done)

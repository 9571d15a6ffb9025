"""Job handlers: carry out a claimed job on its host, then record the outcome.

A handler talks to the host outside any CMDB transaction (hosts can be slow),
then writes the resource's new state and the job's end in one transaction. A
SiroccoError ends the job FAILED with its message and status code; anything
else ends it FAILED with a generic message (details only in the daemon log).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    NotFound,
    OperationTimeout,
    SiroccoError,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    IMAGE_ARCH_PROPERTY,
    IMAGE_FORMAT_PROPERTY,
    IMAGE_NAME_PROPERTY,
    IMAGE_SIZE_PROPERTY,
    DiskImage,
    MachineSpec,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.images.disks import convert_disk, disk_facts
from siroccod import hrefs, image_sources, jobs, metering, routing
from siroccod.jobs import FAILED, RUNNING, SUCCESS
from siroccod.service import ACTION_METHODS, GUEST_REACH, image_natives
from siroccod.store import Job, MeterSample, Resource, new_uuid, utcnow

log = logging.getLogger(__name__)
GENERIC_FAILURE = "internal error while running this job (details are in the daemon's log)"
# what a user reads when a host's connector failed, by the kind of the error (cimi/errors.py)
HOST_FAILURES = {
    "not-found": "not found there (any more)",
    "conflict": "refused in the present state",
    "invalid-input": "refused there as invalid",
    "unsupported": "not supported there",
    "auth": "the daemon's credentials were refused",
    "forbidden": "the daemon's credentials were refused",
    "provider-unavailable": "unavailable, or it failed",
    "timeout": "not finished in time",
}


class Worker:
    def __init__(self, store, pool, action_timeout=120.0, sealer=None, config=None):
        self.store = store
        self.pool = pool
        self.action_timeout = action_timeout
        self.sealer = sealer  # sealing.Sealer: opens the secrets a host needs
        self.config = config  # image imports: where they may come from, where to keep them meanwhile

    # ----------------------------------------------------------------------------------
    def __call__(self, job_uuid):
        with self.store.read() as session:
            job = session.get(Job, job_uuid)
            if job is None or job.state != RUNNING:
                return
            op, target_type = job.params.get("op"), job.target_type
            nested = session.scalars(select(Job.uuid).where(Job.parent_uuid == job_uuid)
                                     .order_by(Job.created, Job.uuid)).all()
        if nested:
            return self._run_parent(job_uuid, op, target_type, nested)
        handler = getattr(self, "%s_%s" % ((target_type or "none").lower(), op), None)
        if handler is None:
            return self.finish(job_uuid, FAILED, "no handler for %s on %s" % (op, target_type), 501)
        try:
            handler(job_uuid)
        except SiroccoError as exc:
            self._failed(job_uuid, op, target_type, self.public_message(job_uuid, op, target_type, exc),
                         exc.http_status)
        except Exception:
            log.exception("job %s (%s %s) failed", job_uuid, op, target_type)
            self._failed(job_uuid, op, target_type, GENERIC_FAILURE, 500)

    @staticmethod
    def public_message(job_uuid, op, target_type, exc):
        """What a job's user reads of its failure. A host's error (``error.host``) carries the provider's own
        text (its URI, the daemon's paths, raw libvirt or SDK messages): the user reads what kind of
        failure it was on which host, the log keeps the text under the job's id. The daemon's own errors
        are written for users and are shown as they are."""
        host = getattr(exc, "host", None)
        if host is None:
            return str(exc)
        log.warning("job %s (%s %s) failed on %s: %s: %s", job_uuid, op, target_type, host, type(exc).__name__, exc)
        return "%s %s failed on %s: %s (the daemon's log has the details under job %s)" % (
            (target_type or "job").lower(), op, host if host.startswith("upstream") else "host " + host,
            HOST_FAILURES.get(exc.kind, "it failed"), job_uuid)

    @staticmethod
    def resumable(job):
        """Whether an interrupted run of ``job`` may simply be redone: a machine's creation is (its
        domain, if the first run made it, is found again by its name)."""
        return job.target_type == "Machine" and (job.params or {}).get("op") == "create"

    def _run_parent(self, job_uuid, op, target_type, nested):
        failures = 0
        for child in nested:
            with self.store.transaction() as session:
                if jobs.claim_nested(self.store, session, job_uuid, child) is None:
                    row = session.get(Job, child)
                    if row.state == "QUEUED":  # the parent is not ours any more: leave the rest to its runner
                        return None
                    failures += row.state != SUCCESS
                    continue
            self(child)
            with self.store.read() as session:
                failures += session.get(Job, child).state != SUCCESS
            self.progress(job_uuid, 10 + 80 * (nested.index(child) + 1) // len(nested))

        def settle(session, job):
            row = session.get(Resource, job.target_uuid) if job.target_uuid else None
            if row is not None and target_type == "System":
                if op == "delete" and not failures:
                    session.delete(row)
                elif op in ("create", "delete"):
                    row.state = "ERROR" if failures else "READY"
                    row.updated = utcnow()
        return self.finish(job_uuid, FAILED if failures else SUCCESS,
                           "%d of %d nested jobs failed" % (failures, len(nested)) if failures
                           else "%d nested jobs succeeded" % len(nested), 500 if failures else 200, settle)

    # -- bookkeeping: through the fence of jobs.py (only the current claim records) -----------
    def finish(self, job_uuid, state, message, code, change=None):
        return jobs.finish(self.store, job_uuid, state, message, code, change)

    def progress(self, job_uuid, percent, message=None):
        return jobs.progress(self.store, job_uuid, percent, message)

    def _load(self, job_uuid):
        """(job params, target row copy fields, host handle) read in a short transaction."""
        with self.store.read() as session:
            job = session.get(Job, job_uuid)
            row = session.get(Resource, job.target_uuid)
            if row is None:
                raise NotFound("the job's target no longer exists")
            host = self.pool.get(row.host_id) if row.host_id is not None else None
            return dict(job.params), row.uuid, row.native_id, dict(row.private), dict(row.doc), host

    def _failed(self, job_uuid, op, target_type, message, code):
        def undo(session, job):
            row = session.get(Resource, job.target_uuid) if job.target_uuid else None
            if row is None:
                return
            before = job.params.get("before") or row.private.get("before")
            if target_type == "Machine":
                if op == "create":
                    row.state = states.FAILED
                else:
                    row.state = self._host_state(row) or before or states.ERROR
                if op == "capture" and job.params.get("image"):
                    image = session.get(Resource, job.params["image"])
                    if image is not None:
                        image.state = "ERROR"
                if op == "resize":  # the old size again: the claim of the larger one ends
                    row.private = {k: v for k, v in row.private.items() if k != "resizing"}
                if op in ("attach",) or (op == "create"):
                    for vol in session.scalars(select(Resource).where(Resource.type == "Volume")):
                        if vol.private.get("attaching") == row.uuid:
                            vol.private = {k: v for k, v in vol.private.items() if k != "attaching"}
            elif op == "resize":  # a volume keeps its capacity and state
                row.private = {k: v for k, v in row.private.items() if k != "resizing"}
            elif op in ("create", "import"):
                row.state = "ERROR"
            elif op == "delete":
                row.state = before or "ERROR"
            row.updated = utcnow()
        log.info("job %s (%s %s) FAILED: %s", job_uuid, op, target_type, message)
        self.finish(job_uuid, FAILED, message, code, undo)

    def _host_state(self, row):
        if row.native_id is None or row.host_id is None:
            return None
        try:
            return self.pool.get(row.host_id).call("get_machine", row.native_id).state
        except Exception:  # the host is the problem: keep the recorded state
            return None

    def wait_state(self, host, native, wanted, timeout=None):
        deadline = time.monotonic() + (self.action_timeout if timeout is None else timeout)
        while True:
            machine = host.call("get_machine", native)
            if machine.state in wanted:
                return machine
            if time.monotonic() >= deadline:
                raise OperationTimeout("machine still %s after %ds (wanted %s)"
                                       % (machine.state, self.action_timeout, "/".join(wanted)))
            time.sleep(0.2)

    # -- machines ----------------------------------------------------------------------------
    def machine_spec(self, session, row):
        """The connector's MachineSpec of a recorded machine (creation and restore)."""
        spec = row.private.get("spec") or {}
        config = spec.get("config") or {"cpu": row.doc.get("cpu") or 1, "memory": row.doc.get("memory") or 65536}
        credential = guest_credential(spec.get("credential_value") or {})
        if spec.get("credential"):
            cred = session.get(Resource, spec["credential"])
            if cred is not None:
                credential = guest_credential(dict(cred.doc, password=cred.private.get("password")))
        if credential.get("password") is not None:
            credential["password"] = self.sealer.open(credential["password"])
        credential = {k: v for k, v in credential.items() if v is not None} or None
        natives = []
        for vol in spec.get("volumes") or []:
            vrow = session.get(Resource, vol["volume"])
            if vrow is not None and vrow.native_id is not None:
                natives.append(vrow.native_id)
        networks = []
        for net in spec.get("networks") or []:
            nrow = session.get(Resource, net)
            if nrow is not None and nrow.native_id is not None:
                networks.append(nrow.native_id)
        image = spec.get("image")
        if isinstance(image, dict):  # host name -> native id: the one of this machine's host
            image = image.get(row.host.name) if row.host is not None else None
        return MachineSpec(
            name=row.private.get("domain") or row.name, config=model.MachineConfiguration(**config),
            image=image, initial_state=spec.get("initial_state") or states.STOPPED,
            description=row.doc.get("description"), properties=routing.provider_properties(row.doc),
            user_data=spec.get("user_data"), credential=credential, volumes=natives, networks=networks,
            location=spec.get("location"))

    def machine_create(self, job_uuid):
        with self.store.read() as session:
            job = session.get(Job, job_uuid)
            row = session.get(Resource, job.target_uuid)
            host = self.pool.get(row.host_id)
            spec = self.machine_spec(session, row)
            volumes = list(row.private.get("spec", {}).get("volumes") or [])
            resumed = bool(job.params.get("resumed"))
            routed = job.params.get("routing")  # where routing.py sent it, and why
        spec.validate()
        # run again after an interruption: the first run may have made the domain already
        machine = host.call("find_machine", spec.name) if resumed else None
        if machine is None:
            machine = host.call("create_machine", spec)
        else:
            for verb in states.path_to(machine.state, spec.initial_state):
                host.call(ACTION_METHODS[verb], machine.id)
        self.progress(job_uuid, 70)
        if machine.state not in (spec.initial_state,):
            machine = self.wait_state(host, machine.id, (spec.initial_state, states.ERROR))
        caps = host.capabilities()
        readings = {}  # the first sample of each meter, recorded with it (metering.py takes the next ones)
        if caps.meters and host.supports("meter.list"):
            try:
                readings = {m.aspect: m for m in host.call("list_meters", machine.id)}
            except SiroccoError as exc:
                log.info("job %s: no first meter samples: %s", job_uuid, exc)

        def done(session, job):
            row = session.get(Resource, job.target_uuid)
            row.native_id = machine.id
            row.state = machine.state
            doc = dict(row.doc)
            found = machine.to_json()
            for key in ("disks", "cpuArch", "cpuSpeed"):
                if found.get(key) and not doc.get(key):
                    doc[key] = found[key]
            if found.get("interfaces"):
                doc["interfaces"] = interfaces(session, row.host_id, found["interfaces"])
            reach = guest_properties(machine)
            if reach:  # how a controller reaches the guest: its user, the SSH host key it presents
                doc["properties"] = dict(doc.get("properties") or {}, **reach)
            doc["volumes"] = []
            for vol in volumes:
                vrow = session.get(Resource, vol["volume"])
                if vrow is None:
                    continue
                entry = {"volume": {"href": hrefs.ref("volumes", vrow.uuid)}}
                if vol.get("initialLocation"):
                    entry["initialLocation"] = vol["initialLocation"]
                doc["volumes"].append(entry)
                vrow.doc = dict(vrow.doc, attachedTo=[{"href": hrefs.ref("machines", row.uuid)}])
                vrow.private = {k: v for k, v in vrow.private.items() if k != "attaching"}
            if not doc["volumes"]:
                doc.pop("volumes")
            meters = []
            for aspect in caps.meters:
                label = "%s %s" % (doc.get("name"), aspect.rsplit("/", 1)[-1])
                meter = Resource(uuid=new_uuid(), tenant_id=row.tenant_id, type="Meter", name=label,
                                 native_id=row.uuid + "/" + aspect.rsplit("/", 1)[-1], private={"machine": row.uuid},
                                 doc={"name": label, "aspect": aspect,
                                      "targetResource": {"href": hrefs.ref("machines", row.uuid)},
                                      "timeScope": "Point", "isContinuous": True})
                meter.created = meter.updated = utcnow()
                reading = metering.reading(readings.get(aspect))
                if reading is not None:
                    meter.doc["units"] = reading[1]
                    session.add(MeterSample(meter_uuid=meter.uuid, taken=utcnow(), value=reading[0]))
                session.add(meter)
                meters.append({"href": hrefs.ref("meters", meter.uuid)})
            if meters:
                doc["meters"] = meters
            row.doc = doc
            row.updated = utcnow()
        self.finish(job_uuid, SUCCESS, "machine created in state %s%s%s" % (
            machine.state, " (run again after an interruption)" if resumed else "",
            "; " + routed if routed else ""), 201, done)

    def _machine_action(self, job_uuid, verb):
        params, uuid, native, private, doc, host = self._load(job_uuid)
        if native is None:
            raise NotFound("machine has no domain on its host")
        method = ACTION_METHODS[verb]
        kwargs = {"force": bool(params.get("force"))} if verb in (states.STOP, states.RESTART) else {}
        before = params.get("before")
        if verb == states.CAPTURE:
            with self.store.read() as session:
                image = session.get(Resource, params["image"])
                private_name = image.private.get("native_name") or image.uuid
            captured = host.call(method, native, private_name, description=None)
            machine = host.call("get_machine", native)

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
            return self.finish(job_uuid, SUCCESS, "machine captured", 200, done)
        host.call(method, native, **kwargs)
        wanted = states.result_state(before, verb)
        machine = self.wait_state(host, native, (wanted, states.ERROR))

        def done(session, job):
            row = session.get(Resource, uuid)
            row.state = machine.state
            row.updated = utcnow()
        if machine.state == states.ERROR:
            return self.finish(job_uuid, FAILED, "machine went to ERROR during %s" % verb, 500, done)
        self.finish(job_uuid, SUCCESS, "machine %s" % machine.state, 200, done)

    def machine_start(self, job_uuid):
        self._machine_action(job_uuid, states.START)

    def machine_stop(self, job_uuid):
        self._machine_action(job_uuid, states.STOP)

    def machine_restart(self, job_uuid):
        self._machine_action(job_uuid, states.RESTART)

    def machine_pause(self, job_uuid):
        self._machine_action(job_uuid, states.PAUSE)

    def machine_suspend(self, job_uuid):
        self._machine_action(job_uuid, states.SUSPEND)

    def machine_capture(self, job_uuid):
        self._machine_action(job_uuid, states.CAPTURE)

    def machine_delete(self, job_uuid):
        params, uuid, native, private, doc, host = self._load(job_uuid)
        if native is not None and host is not None:
            try:
                host.call("delete_machine", native)
            except NotFound:
                pass  # already gone: the end is the same

        def done(session, job):
            forget_machine(session, uuid)
        self.finish(job_uuid, SUCCESS, "machine deleted", 200, done)

    def machine_resize(self, job_uuid):
        """Give the machine its new cpu and memory on its host (service.resize checked the room and the
        state); the CMDB records the size the host reports, which its claim then is."""
        params, uuid, native, private, doc, host = self._load(job_uuid)
        if native is None:
            raise NotFound("machine has no domain on its host")
        wanted = model.MachineConfiguration(**params["config"])
        machine = host.call("resize_machine", native, wanted)

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
        self.finish(job_uuid, SUCCESS, "machine resized to %d cpu and %d MiB" % (
            (machine.cpu if machine is not None and machine.cpu else wanted.cpu),
            (machine.memory if machine is not None and machine.memory else wanted.memory) // 1024), 200, done)

    def machine_attach(self, job_uuid):
        params, uuid, native, private, doc, host = self._load(job_uuid)
        with self.store.read() as session:
            vol = session.get(Resource, params["volume"])
            vol_native = vol.native_id if vol is not None else None
        if vol_native is None:
            raise NotFound("the volume no longer exists")
        host.call("attach_volume", native, vol_native, params.get("initialLocation"))

        def done(session, job):
            row = session.get(Resource, uuid)
            vol = session.get(Resource, params["volume"])
            entry = {"volume": {"href": hrefs.ref("volumes", vol.uuid)}}
            if params.get("initialLocation"):
                entry["initialLocation"] = params["initialLocation"]
            row.doc = dict(row.doc, volumes=list(row.doc.get("volumes", [])) + [entry])
            vol.doc = dict(vol.doc, attachedTo=[{"href": hrefs.ref("machines", uuid)}])
            vol.private = {k: v for k, v in vol.private.items() if k != "attaching"}
            row.updated = vol.updated = utcnow()
        self.finish(job_uuid, SUCCESS, "volume attached", 200, done)

    def machine_detach(self, job_uuid):
        params, uuid, native, private, doc, host = self._load(job_uuid)
        with self.store.read() as session:
            vol = session.get(Resource, params["volume"])
            vol_native = vol.native_id if vol is not None else None
        if vol_native is not None:
            try:
                host.call("detach_volume", native, vol_native)
            except NotFound:
                pass

        def done(session, job):
            row = session.get(Resource, uuid)
            row.doc = dict(row.doc, volumes=[e for e in row.doc.get("volumes", [])
                                             if not e["volume"]["href"].endswith("/" + params["volume"])])
            if not row.doc["volumes"]:
                row.doc = {k: v for k, v in row.doc.items() if k != "volumes"}
            vol = session.get(Resource, params["volume"])
            if vol is not None:
                vol.doc = {k: v for k, v in vol.doc.items() if k != "attachedTo"}
                vol.updated = utcnow()
            row.updated = utcnow()
        self.finish(job_uuid, SUCCESS, "volume detached", 200, done)

    # -- volumes and networks -----------------------------------------------------------------
    def volume_create(self, job_uuid):
        params, uuid, native, private, doc, host = self._load(job_uuid)
        # name, description and properties live in the CMDB; the host only gets a unique name
        volume = host.call("create_volume", private["native_name"], int(doc.get("capacity") or 0),
                           **volume_options(doc))

        def done(session, job):
            row = session.get(Resource, uuid)
            row.native_id, row.state = volume.id, "AVAILABLE"
            found = volume.to_json()
            row.doc = dict(row.doc, **{k: found[k] for k in ("capacity", "type") if found.get(k) is not None})
            row.updated = utcnow()
        self.finish(job_uuid, SUCCESS, "volume created", 201, done)

    def volume_resize(self, job_uuid):
        """Grow the volume on its host (service.resize checked it grows); the CMDB records its new capacity."""
        params, uuid, native, private, doc, host = self._load(job_uuid)
        volume = host.call("resize_volume", native, int(params["capacity"]))
        capacity = (volume.capacity if volume is not None else None) or int(params["capacity"])

        def done(session, job):
            row = session.get(Resource, uuid)
            row.doc = dict(row.doc, capacity=capacity)
            row.private = {k: v for k, v in row.private.items() if k != "resizing"}
            row.updated = utcnow()
        self.finish(job_uuid, SUCCESS, "volume resized to %d KB" % capacity, 200, done)

    def _delete_native(self, job_uuid, method, message, in_systems=True, host_optional=False):
        """Delete the provider's object (already gone is fine), then its record."""
        params, uuid, native, private, doc, host = self._load(job_uuid)
        if native is not None and (host is not None or not host_optional):
            try:
                host.call(method, native)
            except NotFound:
                pass

        def done(session, job):
            row = session.get(Resource, uuid)
            if row is not None:
                if in_systems:
                    forget_in_systems(session, row)
                session.delete(row)
        self.finish(job_uuid, SUCCESS, message, 200, done)

    def volume_delete(self, job_uuid):
        self._delete_native(job_uuid, "delete_volume", "volume deleted")

    def network_create(self, job_uuid):
        params, uuid, native, private, doc, host = self._load(job_uuid)
        network = host.call("create_network", private["native_name"], **network_options(doc))

        def done(session, job):
            row = session.get(Resource, uuid)
            row.native_id = network.id
            row.state = network.state if network.state in states.NETWORK_STATES else states.STARTED
            row.updated = utcnow()
        self.finish(job_uuid, SUCCESS, "network created", 201, done)

    def network_delete(self, job_uuid):
        self._delete_native(job_uuid, "delete_network", "network deleted")

    def machineimage_delete(self, job_uuid):
        params, uuid, native, private, doc, host = self._load(job_uuid)
        with self.store.read() as session:
            natives = image_natives(session.get(Resource, uuid))
        for host_name, native_id in natives.items():  # every host holding it (imported or stock images)
            try:
                self.pool.by_name(host_name).call("delete_machine_image", native_id)
            except NotFound:
                pass

        def done(session, job):
            row = session.get(Resource, uuid)
            if row is not None:
                session.delete(row)
        self.finish(job_uuid, SUCCESS, "machine image deleted", 200, done)

    def machineimage_import(self, job_uuid):
        """Fetch the image from its source (image_sources.py), then register it on every host that imports
        images, in the format each takes (qemu-img converts); the CMDB records the native id of each."""
        params, uuid, native, private, doc, _host = self._load(job_uuid)
        props = doc.get("properties") or {}
        generic = props.get(IMAGE_NAME_PROPERTY) or doc.get("name")  # the name for all clouds, if the POST gave one
        work = Path(self.config.data_dir) / "image-imports"
        work.mkdir(mode=0o700, exist_ok=True)
        fetched = work / uuid
        made = [fetched]
        try:
            size, sha256 = image_sources.fetch(self.config.image_sources, private["source"], fetched,
                                               props.get(image_sources.CHECKSUM_PROPERTY))
            self.progress(job_uuid, 40)
            fmt_found, virtual_size = disk_facts(str(fetched), "imageLocation", shown="the image fetched")
            found = {"format": fmt_found, "virtual_size": virtual_size}
            hosts = [h for h in self.pool.handles.values() if h.supports("machine_image.import")]
            natives, files = {}, {found["format"]: str(fetched)}
            try:
                for number, handle in enumerate(hosts, 1):
                    formats = handle.capabilities().image_formats
                    fmt = next((f for f in formats if f in files), formats[0])
                    if fmt not in files:
                        files[fmt] = convert_disk(str(fetched), found["format"], fmt, "%s.%s" % (fetched, fmt),
                                                  "imageLocation", shown="the image fetched")
                        made.append(Path(files[fmt]))
                    image = DiskImage(name=handle.native_name(uuid), files={fmt: files[fmt]},
                                      virtual_size=found["virtual_size"],
                                      arch=props.get(IMAGE_ARCH_PROPERTY, "x86_64"),
                                      generic_name=generic, description=doc.get("description"))
                    natives[handle.name] = handle.call("import_machine_image", image).id
                    self.progress(job_uuid, 40 + 55 * number // len(hosts))
            except Exception:  # all hosts or none: what the first hosts took is given back
                for host_name, native_id in natives.items():
                    try:
                        self.pool.by_name(host_name).call("delete_machine_image", native_id)
                    except SiroccoError as exc:
                        log.warning("job %s: image %s left on host %s: %s", job_uuid, native_id, host_name, exc)
                raise
        finally:
            for path in made:
                path.unlink(missing_ok=True)

        def done(session, job):
            row = session.get(Resource, uuid)
            row.state = "AVAILABLE"
            row.private = dict(row.private, natives=natives)
            facts = {IMAGE_NAME_PROPERTY: generic, IMAGE_FORMAT_PROPERTY: found["format"],
                     IMAGE_SIZE_PROPERTY: str(found["virtual_size"]),
                     IMAGE_ARCH_PROPERTY: props.get(IMAGE_ARCH_PROPERTY, "x86_64"),
                     image_sources.CHECKSUM_PROPERTY: "sha256:" + sha256}
            row.doc = dict(row.doc, properties=dict(props, **facts))
            row.updated = utcnow()
        self.finish(job_uuid, SUCCESS, "machine image fetched (%d bytes) and registered on %s"
                    % (size, ", ".join(sorted(natives))), 201, done)

    def system_create(self, job_uuid):  # a system without components
        self.finish(job_uuid, SUCCESS, "empty system created", 201,
                    lambda session, job: setattr(session.get(Resource, job.target_uuid), "state", "READY"))

    def system_delete(self, job_uuid):
        def done(session, job):
            row = session.get(Resource, job.target_uuid)
            if row is not None:
                session.delete(row)
        self.finish(job_uuid, SUCCESS, "system deleted", 200, done)

    def none_consolidate(self, job_uuid):
        from siroccod import consolidation  # the plan's executor lives beside its planner
        consolidation.run(self, job_uuid)

    def none_none(self, job_uuid):
        raise Unsupported("siroccod", "job without target")


def volume_options(doc):
    """create_volume's options for a recorded Volume: its type, when it has one (connectors without
    types refuse it, naming ``type``)."""
    return {"volume_type": doc["type"]} if doc.get("type") else {}


def network_options(doc):
    """create_network's options for a recorded Network: its cidr and dhcp, when given."""
    return {k: doc[k] for k in ("cidr", "dhcp") if doc.get(k) is not None}


def guest_properties(machine):
    """The GUEST_REACH properties a connector reported on ``machine`` (a cimi.model.Machine)."""
    found = machine.properties or {}
    return {k: found[k] for k in GUEST_REACH if isinstance(found.get(k), str) and found[k]}


def guest_credential(doc):
    """A Credential as the connectors take it (MachineSpec.credential: username, key, password) from its
    stored form: DSP0263's ``userName``, or ``username`` as CMDBs made before migration 0006 kept it."""
    user = doc.get("userName")
    return {"username": doc.get("username") if user is None else user, "key": doc.get("key"),
            "password": doc.get("password")}


def forget_in_systems(session, row):
    system_uuid = row.private.get("system")
    system = session.get(Resource, system_uuid) if system_uuid else None
    if system is not None:
        key = {"Machine": "machines", "Volume": "volumes", "Network": "networks"}[row.type]
        system.doc = dict(system.doc, **{key: [h for h in system.doc.get(key, [])
                                               if not h["href"].endswith("/" + row.uuid)]})


def forget_machine(session, uuid):
    """Remove a machine from the CMDB with everything that points to it."""
    row = session.get(Resource, uuid)
    if row is None:
        return
    for entry in row.doc.get("volumes", []):
        vol = session.get(Resource, entry["volume"]["href"].rsplit("/", 1)[1])
        if vol is not None:
            vol.doc = {k: v for k, v in vol.doc.items() if k != "attachedTo"}
            vol.updated = utcnow()
    for vol in session.scalars(select(Resource).where(Resource.type == "Volume")):
        if vol.private.get("attaching") == uuid:
            vol.private = {k: v for k, v in vol.private.items() if k != "attaching"}
    for meter in session.scalars(select(Resource).where(Resource.type == "Meter",
                                                        Resource.native_id.like(uuid + "/%"))):
        session.delete(meter)
    forget_in_systems(session, row)
    session.delete(row)


def interfaces(session, host_id, found):
    """A host's NetworkInterfaces with their network hrefs mapped to our Networks (dropped when
    the network is not one of ours: native ids are no hrefs)."""
    out = []
    for iface in found:
        iface = dict(iface)
        net = iface.pop("network", None)
        if net and net.get("href"):
            row = session.scalar(select(Resource).where(Resource.type == "Network", Resource.host_id == host_id,
                                                        Resource.native_id == net["href"]))
            if row is not None:
                iface["network"] = {"href": hrefs.ref("networks", row.uuid)}
        out.append(iface)
    return out

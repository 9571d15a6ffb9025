"""Volume and network jobs: create, resize (volumes), delete on their host, then record the outcome."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import NotFound
from siroccod import cmdb, host_specs
from siroccod.backends import Backend
from siroccod.jobs import SUCCESS, handles
from siroccod.store import Resource, utcnow


@handles("Volume", "create")
def volume_create(w, job_uuid):
    params, uuid, native, private, doc, host = w.load(job_uuid)
    # name, description and properties live in the CMDB; the host only gets a unique name
    volume = host.create_volume(private["native_name"], int(doc.get("capacity") or 0),
                                **host_specs.volume_options(doc))

    def done(session, job):
        row = session.get(Resource, uuid)
        row.native_id, row.state = volume.id, "AVAILABLE"
        found = volume.to_json()
        row.doc = dict(row.doc, **{k: found[k] for k in ("capacity", "type") if found.get(k) is not None})
        row.updated = utcnow()
    w.finish(job_uuid, SUCCESS, "volume created", 201, done)


@handles("Volume", "resize")
def volume_resize(w, job_uuid):
    """Grow the volume on its host (resources.resize checked it grows); the CMDB records its new capacity."""
    params, uuid, native, private, doc, host = w.load(job_uuid)
    volume = host.resize_volume(native, int(params["capacity"]))
    capacity = (volume.capacity if volume is not None else None) or int(params["capacity"])

    def done(session, job):
        row = session.get(Resource, uuid)
        row.doc = dict(row.doc, capacity=capacity)
        row.private = {k: v for k, v in row.private.items() if k != "resizing"}
        row.updated = utcnow()
    w.finish(job_uuid, SUCCESS, "volume resized to %d KB" % capacity, 200, done)


def delete_native(w, job_uuid, delete, message, in_systems=True, host_optional=False):
    """Delete the provider's object with ``delete(backend, native id)`` (already gone is fine), then its record."""
    params, uuid, native, private, doc, host = w.load(job_uuid)
    if native is not None and (host is not None or not host_optional):
        try:
            delete(host, native)
        except NotFound:
            pass

    def done(session, job):
        row = session.get(Resource, uuid)
        if row is not None:
            if in_systems:
                cmdb.forget_in_systems(session, row)
            session.delete(row)
    w.finish(job_uuid, SUCCESS, message, 200, done)


@handles("Volume", "delete")
def volume_delete(w, job_uuid):
    delete_native(w, job_uuid, Backend.delete_volume, "volume deleted")


@handles("Network", "create")
def network_create(w, job_uuid):
    params, uuid, native, private, doc, host = w.load(job_uuid)
    network = host.create_network(private["native_name"], **host_specs.network_options(doc))

    def done(session, job):
        row = session.get(Resource, uuid)
        row.native_id = network.id
        row.state = network.state if network.state in states.NETWORK_STATES else states.STARTED
        row.updated = utcnow()
    w.finish(job_uuid, SUCCESS, "network created", 201, done)


@handles("Network", "delete")
def network_delete(w, job_uuid):
    delete_native(w, job_uuid, Backend.delete_network, "network deleted")

"""Volumes: creation on a host that offers it; whether one may be attached."""

from __future__ import annotations

import logging

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
)
from siroccod import capacity, cmdb, hrefs
from siroccod.resources import context
from siroccod.resources.context import COMMON
from siroccod.store import Resource, new_uuid

log = logging.getLogger(__name__)


def create_volume(ctx, session, p, body, parent=None, name=None, tenant_id=None, template=None):
    template, meta = context.request_template(ctx, session, p, body, model.VolumeCreate, "volumeTemplate",
                                              "VolumeTemplate", template, name)
    config = context.by_ref_or_value(ctx, session, p, template.get("volumeConfig"), "VolumeConfiguration",
                                     "VolumeCreate.volumeTemplate.volumeConfig")[0]
    if config is None:
        raise InvalidInput("VolumeCreate.volumeTemplate.volumeConfig: a volume needs a configuration "
                           "(capacity)", attribute="volumeConfig")
    checked = model.VolumeConfiguration.from_json(
        {k: v for k, v in config.items() if k in model.VolumeConfiguration.attributes and k not in COMMON},
        path="VolumeCreate.volumeTemplate.volumeConfig").to_json()
    checked.pop("resourceURI", None)
    capacity.lock(ctx.store, session)  # quotas counted below stay true until the commit
    context.check_quota(session, p, tenant_id, volumes=1)
    host = context.host_for(ctx, session, p, "volume.create", meta.get("properties"))
    uuid = new_uuid()
    doc = dict(meta)
    doc.setdefault("name", "volume-" + uuid[:8])
    doc.update({k: checked[k] for k in ("type", "capacity") if checked.get(k) is not None})
    image = template.get("volumeImage")
    if image and "href" in image:
        doc["images"] = [{"href": image["href"]}]
        doc["bootable"] = True
    row = cmdb.new_resource(session, "Volume", p.tenant_id if tenant_id is None else tenant_id, doc,
                            host_id=host.id, state="CREATING", uuid=uuid,
                            private={"native_name": ctx.pool.get(host.id).native_name(uuid),
                                     "format": checked.get("format")})
    job = context.queue(session, p, "create", row, affected=[hrefs.ref("volumes", uuid)], parent=parent,
                        tenant_id=row.tenant_id)
    return row, job


def check_attachable(ctx, session, vol):
    if vol.state != "AVAILABLE":
        raise Conflict("volume '%s' is %s, not AVAILABLE" % (vol.name or vol.uuid, vol.state))
    if vol.doc.get("attachedTo") or vol.private.get("attaching"):
        raise Conflict("volume '%s' is already attached to a machine" % (vol.name or vol.uuid))
    if vol.private.get("resizing"):
        raise Conflict("volume '%s' is being resized: attach it when its job is done" % (vol.name or vol.uuid))


def mark_attaching(ctx, session, volume_uuid, machine_uuid):
    cmdb.mark_attaching(session.get(Resource, volume_uuid), machine_uuid)

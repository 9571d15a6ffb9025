"""MachineImages made by a job: an import from a source (image_sources.py), or a machine's capture."""

from __future__ import annotations

import logging
import re

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri, type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    InvalidInput,
    Unsupported,
)
from siroccod import cmdb, hrefs, image_sources
from siroccod.resources import context, machines, rendering
from siroccod.store import Job, Resource, new_uuid

log = logging.getLogger(__name__)


def import_image(ctx, p, body, base):
    """POST of a MachineImage whose imageLocation is a source to fetch (image_sources.py): recorded
    CREATING, fetched and registered on every host that imports images by its job."""
    parsed = model.MachineImage.from_json(body)
    doc = hrefs.stored(parsed.to_json())
    doc.pop("resourceURI", None)
    location = image_sources.check(ctx.config.image_sources, doc.get("imageLocation"))
    checksum = (doc.get("properties") or {}).get(image_sources.CHECKSUM_PROPERTY)
    if checksum is not None and not re.fullmatch(r"sha256:[0-9a-fA-F]{64}", checksum):
        raise InvalidInput("properties.%s: expected sha256:<64 hex digits>" % image_sources.CHECKSUM_PROPERTY,
                           attribute=image_sources.CHECKSUM_PROPERTY)
    if not any(h.supports("machine_image.import") for h in ctx.pool.handles.values()):
        raise Unsupported("siroccod", "machine_image.import", "no host of this daemon imports images")
    doc.setdefault("type", "IMAGE")
    with ctx.store.transaction() as session:
        uuid = new_uuid()
        doc.setdefault("name", "image-" + uuid[:8])
        row = cmdb.new_resource(session, "MachineImage", p.tenant_id, doc, state="CREATING", uuid=uuid,
                                private={"source": location})
        job = context.queue(session, p, "import", row, affected=[hrefs.ref("machineImages", uuid)])
        rendered = rendering.render(ctx, row, base, p, session)
        job_doc = rendering.render_job(ctx, job, base)
    ctx.wake()
    return context.accepted(rendered, job_doc)


def capture_by_image(ctx, p, body, base):
    """POST of a MachineImage whose imageLocation is a machine: capture it."""
    parts = hrefs.split(body["imageLocation"])
    action = {"resourceURI": type_uri("Action"), "action": action_uri("capture"),
              "image": {k: v for k, v in body.items() if k not in ("imageLocation", "resourceURI")}}
    capture = machines.action(ctx, p, parts[1], "capture", action, base, added_to="machineImages")
    with ctx.store.read() as session:
        job = session.get(Job, capture.job.rsplit("/", 1)[1])
        image = session.get(Resource, job.params["image"])
        doc = rendering.render(ctx, image, base, p, session)
    return context.Outcome(doc, job=capture.job, location=doc["id"])

"""MachineImage jobs: import (fetch from an allowed source, register on every host that imports images) and
delete (on every host holding it)."""

from __future__ import annotations

import logging
from pathlib import Path

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import NotFound, SiroccoError
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    IMAGE_ARCH_PROPERTY,
    IMAGE_FORMAT_PROPERTY,
    IMAGE_NAME_PROPERTY,
    IMAGE_SIZE_PROPERTY,
    DiskImage,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.images.disks import convert_disk, disk_facts
from siroccod import cmdb, image_sources
from siroccod.jobs import SUCCESS, handles
from siroccod.store import Resource, utcnow

log = logging.getLogger(__name__)


@handles("MachineImage", "delete")
def delete_image(w, job_uuid):
    params, uuid, native, private, doc, host = w.load(job_uuid)
    with w.store.read() as session:
        natives = cmdb.image_natives(session.get(Resource, uuid))
    for host_name, native_id in natives.items():  # every host holding it (imported or stock images)
        try:
            w.pool.by_name(host_name).delete_machine_image(native_id)
        except NotFound:
            pass

    def done(session, job):
        row = session.get(Resource, uuid)
        if row is not None:
            session.delete(row)
    w.finish(job_uuid, SUCCESS, "machine image deleted", 200, done)


@handles("MachineImage", "import")
def import_image(w, job_uuid):
    """Fetch the image from its source (image_sources.py), then register it on every host that imports
    images, in the format each takes (qemu-img converts); the CMDB records the native id of each."""
    params, uuid, native, private, doc, _host = w.load(job_uuid)
    props = doc.get("properties") or {}
    generic = props.get(IMAGE_NAME_PROPERTY) or doc.get("name")  # the name for all clouds, if the POST gave one
    work = Path(w.config.data_dir) / "image-imports"
    work.mkdir(mode=0o700, exist_ok=True)
    fetched = work / uuid
    made = [fetched]
    try:
        size, sha256 = image_sources.fetch(w.config.image_sources, private["source"], fetched,
                                           props.get(image_sources.CHECKSUM_PROPERTY))
        w.progress(job_uuid, 40)
        fmt_found, virtual_size = disk_facts(str(fetched), "imageLocation", shown="the image fetched")
        found = {"format": fmt_found, "virtual_size": virtual_size}
        hosts = [h for h in w.pool.handles.values() if h.supports("machine_image.import")]
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
                natives[handle.name] = handle.import_machine_image(image).id
                w.progress(job_uuid, 40 + 55 * number // len(hosts))
        except Exception:  # all hosts or none: what the first hosts took is given back
            for host_name, native_id in natives.items():
                try:
                    w.pool.by_name(host_name).delete_machine_image(native_id)
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
    w.finish(job_uuid, SUCCESS, "machine image fetched (%d bytes) and registered on %s"
             % (size, ", ".join(sorted(natives))), 201, done)

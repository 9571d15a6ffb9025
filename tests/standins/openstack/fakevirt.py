"""Nova's fake virt driver, plus snapshots that reach Glance (loaded by compute.py).

``fake.MediumFakeDriver`` (10 vCPUs, 8 GiB, 1 TiB per host) keeps its guests in
memory and answers every power action at once. Its ``snapshot`` only moves the
task state, so the image Nova created for a capture would stay ``queued`` in
Glance forever; a real driver uploads the guest's disk there. This one uploads
a few bytes instead, so a captured image becomes ``active`` and can boot new
servers, as with a real hypervisor.
"""

import io

from nova.image import glance
from nova.virt import fake


class SnapshotFakeDriver(fake.MediumFakeDriver):
    """MediumFakeDriver whose snapshots upload a stand-in disk to Glance."""

    def snapshot(self, context, instance, image_id, update_task_state):
        super().snapshot(context, instance, image_id, update_task_state)
        disk = io.BytesIO(("fake disk of server %s\n" % instance.uuid).encode())
        glance.API().update(context, image_id, {"disk_format": "raw", "container_format": "bare"},
                            disk, purge_props=False)

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""moto's server (the same app ``moto_server`` runs) plus what EC2's hypervisor would publish to CloudWatch.

    python tests/standins/moto/server.py [--host 127.0.0.1] [--port 0]

Prints ``MOTO_URL=http://HOST:PORT`` once it listens (``--port 0``: a free port the
kernel chose, so no race with other tests), then serves until SIGTERM.

The one addition to moto: real EC2 publishes CPUUtilization, NetworkIn and
NetworkOut of every instance to CloudWatch (namespace AWS/EC2, dimension
InstanceId); moto's CloudWatch returns only data put into it. ``Ec2Metrics`` below
is a moto ``CloudWatchMetricProvider`` (the hook moto's own S3 uses for its bucket
metrics) that publishes, for each instance that is not terminated, one datum per
metric at its last launch and, while it runs, one at the current minute. Values are
small and derived from the instance id (there is no guest to measure).

Four corrections make moto's EC2 speak as real EC2 does (botocore does not care;
libcloud's EC2 driver, which writes queries and reads the XML itself, does). ``ec2_wire`` below:

* accepts query lists numbered from 0 (``ResourceId.0``, ``Tag.0.Key``: libcloud's CreateTags),
  which EC2 takes and moto's parser ignores, by numbering them from 1 before moto reads them;

* writes the namespace of replies as ``http://ec2.amazonaws.com/doc/2016-11-15/``, with the
  trailing slash real EC2 sends (moto copies botocore's model, without it; libcloud matches
  the namespace exactly and otherwise finds nothing in a reply);
* sends error documents (``<Response><Errors><Error>...``) without a namespace, as real EC2
  does (libcloud reads ``Errors/Error`` unqualified and otherwise reports an empty error);
* adds ``<return>true</return>`` to the replies of actions whose only result is that
  boolean (RebootInstances, CreateTags, DeleteVolume, DeregisterImage, ...), as real EC2
  does and moto leaves out (libcloud reports such actions as failed without it);
* detaches a volume when DetachVolume names no instance (EC2 makes InstanceId optional; moto
  answers 500), see ``detach_volume``.

Images registered from a raw disk, as EC2 documents them (moto keeps only RegisterImage's Name and
Description, and its EBS direct APIs check nothing), see ``register_image`` and ``EbsDirect``:

* RegisterImage keeps Architecture, BootMode, VirtualizationType, RootDeviceName, EnaSupport, the
  block device mappings on the snapshots they name (checked to exist, VolumeSize defaulting to the
  snapshot's) and the image's TagSpecifications; a name already registered is
  ``InvalidAMIName.Duplicate``; the snapshots are in use (``InvalidSnapshot.InUse``) until deregistered;
  RunInstances of such an image makes its disks from those mappings;
* StartSnapshot reports EBS's 512 KiB BlockSize (moto says 512), leaves no volume behind (the snapshot
  shows EC2's placeholder volume id ``vol-ffffffff``) and the snapshot is ``pending`` until completed;
* PutSnapshotBlock checks the block (512 KiB, inside the volume size), its SHA256 checksum and that the
  snapshot is still pending (ValidationException), an unknown snapshot is ResourceNotFoundException;
* CompleteSnapshot checks ChangedBlocksCount and the LINEAR aggregated checksum when given: the
  snapshot ends ``error`` if they do not match what was written, ``completed`` otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import re
import signal
import sys
from urllib.parse import parse_qsl, urlencode

from moto.cloudwatch.models import MetricDatum
from moto.core.common_models import CloudWatchMetricProvider
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.ebs import models as ebs_models
from moto.ebs import responses as ebs_responses
from moto.ec2.exceptions import EC2ClientError, InvalidTaggableResourceType, MissingParameterError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.models.elastic_block_store import EBSBackend
from moto.ec2.models.instances import Instance
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.utils import random_ami_id
from moto.moto_server.threaded_moto_server import MotoRequestHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

# metric -> (unit, scale of the pseudo value)
EC2_METRICS = {"CPUUtilization": ("Percent", 10.0), "NetworkIn": ("Bytes", 4096.0),
               "NetworkOut": ("Bytes", 2048.0)}


def _pseudo(instance_id, metric, minute):
    digest = hashlib.sha256(("%s/%s/%s" % (instance_id, metric, minute)).encode()).digest()
    return round(digest[0] / 255.0 * EC2_METRICS[metric][1], 2)


class Ec2Metrics(CloudWatchMetricProvider):
    """AWS/EC2 metrics of every instance of ``region``, computed when CloudWatch is asked."""

    @staticmethod
    def get_cloudwatch_metrics(account_id, region):
        backend = ec2_backends[account_id][region]
        now = utcnow().replace(second=0, microsecond=0)
        data = []
        for instance in backend.all_instances():
            state = instance._state.name
            if state == "terminated":
                continue
            stamps = {instance.launch_time.replace(microsecond=0)}
            if state == "running":
                stamps.add(now)
            for stamp in sorted(stamps):
                for metric, (unit, _scale) in EC2_METRICS.items():
                    data.append(MetricDatum(namespace="AWS/EC2", name=metric, unit=unit,
                                            value=_pseudo(instance.id, metric, stamp.isoformat()),
                                            dimensions=[{"Name": "InstanceId", "Value": instance.id}],
                                            timestamp=stamp))
        return data


MOTO_XMLNS = b' xmlns="http://ec2.amazonaws.com/doc/2016-11-15"'
_moto_detach_volume = EBSBackend.detach_volume


def detach_volume(self, volume_id, instance_id, device_path):
    """EC2's DetachVolume: ``InstanceId`` is optional, the volume's own attachment is meant."""
    if not instance_id:
        attachment = self.get_volume(volume_id).attachment
        if attachment is None:
            raise EC2ClientError("IncorrectState", "Volume '%s' is in the 'available' state." % volume_id)
        instance_id = attachment.instance.id
    return _moto_detach_volume(self, volume_id, instance_id, device_path)


EBSBackend.detach_volume = detach_volume

# -- RegisterImage as EC2 documents it ------------------------------------------------------------
_moto_setup_defaults = Instance.setup_defaults


_moto_ami_mappings = Ami.block_device_mappings


def _ami_mappings(self):
    """A registered image's disks are the snapshots its mappings name; moto's own AMIs keep theirs."""
    registered = getattr(self, "registered_mappings", None)
    return _moto_ami_mappings.fget(self) if registered is None else registered


Ami.block_device_mappings = property(_ami_mappings)


def _flag(value):
    return value if value is None or isinstance(value, bool) else str(value).lower() == "true"


def _mapping(backend, item):
    """One block device mapping of RegisterImage, as DescribeImages reports it."""
    if not item.get("DeviceName"):
        raise MissingParameterError("BlockDeviceMapping.DeviceName")
    ebs = dict(item.get("Ebs") or {})
    if not ebs:
        return {k: v for k, v in item.items() if k in ("DeviceName", "VirtualName", "NoDevice")}
    size = int(ebs["VolumeSize"]) if ebs.get("VolumeSize") else None
    if ebs.get("SnapshotId"):
        snapshot = backend.get_snapshot(ebs["SnapshotId"])  # InvalidSnapshot.NotFound
        if size is not None and size < snapshot.volume.size:
            raise EC2ClientError("InvalidBlockDeviceMapping", "Volume of %d GiB is smaller than snapshot %s (%d GiB)"
                                 % (size, snapshot.id, snapshot.volume.size))
        size = size or snapshot.volume.size
        ebs.setdefault("Encrypted", snapshot.encrypted)
    if size is None:
        raise MissingParameterError("BlockDeviceMapping.Ebs.VolumeSize")
    ebs.update(VolumeSize=size, DeleteOnTermination=_flag(ebs.get("DeleteOnTermination", True)),
               VolumeType=ebs.get("VolumeType") or "standard")
    return {"DeviceName": item["DeviceName"], "Ebs": ebs}


def register_image(backend, params):
    """EC2's RegisterImage of an EBS-backed image (moto's keeps only Name and Description)."""
    name = params.get("Name")
    if not name:
        raise MissingParameterError("Name")
    taken = [a.id for a in backend.amis.values() if a.name == name and a.owner_id == backend.account_id]
    if taken:
        raise EC2ClientError("InvalidAMIName.Duplicate", "AMI name %s is already in use by AMI %s" % (name, taken[0]))
    tags = {}
    for spec in params.get("TagSpecifications") or []:
        if spec.get("ResourceType") != "image":  # RegisterImage tags the image only
            raise InvalidTaggableResourceType(spec.get("ResourceType"))
        tags.update({t["Key"]: t.get("Value", "") for t in spec.get("Tags") or []})
    mappings = [_mapping(backend, item) for item in params.get("BlockDeviceMappings") or []]
    ami = Ami(backend, random_ami_id(), name=name, description=params.get("Description") or "",
              architecture=params.get("Architecture") or "i386", boot_mode=params.get("BootMode"),
              virtualization_type=params.get("VirtualizationType") or "paravirtual",
              root_device_name=params.get("RootDeviceName") or (mappings[0]["DeviceName"] if mappings else "/dev/sda1"),
              root_device_type="ebs", tags=tags or None)
    # moto's Ami makes a snapshot of its own (CreateImage's); a registered image has only its mappings'
    backend.snapshots.pop(ami.ebs_snapshot.id, None)
    ami.ebs_snapshot = None
    ami.ena_support = _flag(params.get("EnaSupport"))
    ami.registered_mappings = mappings
    for mapping in mappings:  # in use by the image until it is deregistered
        snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
        if snapshot_id:
            backend.get_snapshot(snapshot_id).from_ami = ami.id
    backend.amis[ami.id] = ami
    return ami


def _register_image_action(self):
    self.error_on_dryrun()
    keys = ("Name", "Description", "Architecture", "BootMode", "VirtualizationType", "RootDeviceName",
            "EnaSupport", "BlockDeviceMappings", "TagSpecifications")
    image = register_image(self.ec2_backend, {key: self._get_param(key) for key in keys})
    return ActionResult({"ImageId": image.id})


def setup_defaults(self):
    """RunInstances of a registered image: its disks made from its block device mappings, as on EC2."""
    ami = self.ec2_backend.amis.get(self.image_id)
    if getattr(ami, "registered_mappings", None) is None:
        return _moto_setup_defaults(self)
    for mapping in ami.block_device_mappings:
        ebs = mapping.get("Ebs")
        if ebs:
            self.add_block_device(ebs["VolumeSize"], mapping["DeviceName"], ebs.get("SnapshotId"),
                                  bool(ebs.get("Encrypted")), ebs["DeleteOnTermination"], None, ebs["VolumeType"])
    return None


AmisResponse.register_image = _register_image_action
Instance.setup_defaults = setup_defaults

# -- the EBS direct APIs as EC2 documents them ---------------------------------------------------
EBS_BLOCK = 512 * 1024  # every snapshot block is 512 KiB
PLACEHOLDER_VOLUME = "vol-ffffffff"  # EC2's volume id of a snapshot that was not taken of a volume
_moto_start_snapshot = ebs_models.EBSBackend.start_snapshot
_moto_put_snapshot_block = ebs_models.EBSBackend.put_snapshot_block


def _ebs_error(code, message):
    return JsonRESTError(code, message)


def _sha256(data):
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")


class EbsDirect:
    """StartSnapshot, PutSnapshotBlock and CompleteSnapshot checked as EC2 documents (moto checks nothing)."""

    @staticmethod
    def snapshot(backend, snapshot_id):
        """The EBS snapshot ``snapshot_id``, while EC2 still has it."""
        if snapshot_id not in backend.snapshots or snapshot_id not in backend.ec2_backend.snapshots:
            raise _ebs_error("ResourceNotFoundException", "The snapshot '%s' does not exist." % snapshot_id)
        return backend.snapshots[snapshot_id]

    @staticmethod
    def start_snapshot(backend, volume_size, tags, description):
        snap = _moto_start_snapshot(backend, volume_size=volume_size, tags=tags, description=description)
        snap.block_size = EBS_BLOCK
        ec2_snapshot = backend.ec2_backend.snapshots[snap.snapshot_id]
        ec2_snapshot.status = "pending"
        volume = backend.ec2_backend.volumes.pop(ec2_snapshot.volume.id)  # moto made one; EC2 makes none
        volume.id = PLACEHOLDER_VOLUME
        return snap

    @staticmethod
    def put_snapshot_block(backend, snapshot_id, block_index, block_data, checksum, checksum_algorithm,
                           data_length):
        snap = EbsDirect.snapshot(backend, snapshot_id)
        if snap.status != "pending":
            raise _ebs_error("ValidationException", "The snapshot '%s' is %s: no block can be written to it"
                             % (snapshot_id, snap.status))
        data = block_data if isinstance(block_data, bytes) else (block_data or "").encode("latin-1")
        index = int(block_index)
        if not 0 <= index < snap.volume_size * 1024 * 1024 * 1024 // EBS_BLOCK:
            raise _ebs_error("ValidationException", "Block index %d is outside a volume of %d GiB"
                             % (index, snap.volume_size))
        if int(data_length or -1) != len(data) or len(data) != EBS_BLOCK:
            raise _ebs_error("ValidationException", "DataLength must be %d bytes, the size of the data sent"
                             % EBS_BLOCK)
        if checksum_algorithm != "SHA256":
            raise _ebs_error("ValidationException", "ChecksumAlgorithm must be SHA256")
        if checksum != _sha256(data):
            raise _ebs_error("ValidationException", "The checksum does not match the block data")
        return _moto_put_snapshot_block(backend, snapshot_id, index, data, checksum, checksum_algorithm,
                                        len(data))

    @staticmethod
    def complete_snapshot(backend, snapshot_id, changed_blocks_count=None, checksum=None, checksum_algorithm=None,
                          aggregation=None):
        snap = EbsDirect.snapshot(backend, snapshot_id)
        if snap.status != "pending":
            raise _ebs_error("ValidationException", "The snapshot '%s' is already %s" % (snapshot_id, snap.status))
        if changed_blocks_count is None:
            raise _ebs_error("ValidationException", "ChangedBlocksCount is required")
        written = [snap.blocks[i] for i in sorted(snap.blocks)]
        good = int(changed_blocks_count) == len(written)
        if checksum:
            if checksum_algorithm != "SHA256" or aggregation != "LINEAR":
                raise _ebs_error("ValidationException", "the checksum must be SHA256, aggregated LINEAR")
            # LINEAR: the SHA256 of the blocks' SHA256 digests in block index order
            digests = b"".join(base64.b64decode(b.checksum) for b in written)
            good = good and checksum == _sha256(digests)
        snap.status = "completed" if good else "error"
        backend.ec2_backend.snapshots[snapshot_id].status = snap.status
        return snap.status


def _complete_snapshot_action(self):
    status = EbsDirect.complete_snapshot(
        self.ebs_backend, self._get_param("SnapshotId"), self._get_param("ChangedBlocksCount"),
        self._get_param("Checksum"), self._get_param("ChecksumAlgorithm"),
        self._get_param("ChecksumAggregationMethod"))
    return ActionResult({"Status": status})


ebs_models.EBSBackend.start_snapshot = EbsDirect.start_snapshot
ebs_models.EBSBackend.put_snapshot_block = EbsDirect.put_snapshot_block
ebs_responses.EBSResponse.complete_snapshot = _complete_snapshot_action


def _known_snapshot(moto_method):
    """``moto_method`` of a snapshot EC2 still has: an unknown one is 404 (moto answers 500)."""
    def checked(self, snapshot_id, *args, **kwargs):
        EbsDirect.snapshot(self, snapshot_id)
        return moto_method(self, snapshot_id, *args, **kwargs)
    return checked


for _name in ("get_snapshot_block", "list_snapshot_blocks"):
    setattr(ebs_models.EBSBackend, _name, _known_snapshot(getattr(ebs_models.EBSBackend, _name)))

EC2_XMLNS = b' xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"'
_BARE_REPLY = re.compile(rb'^(<\?xml[^>]*>\s*<(\w+Response)%s>)(<requestId>[^<]*</requestId>)(</\2>\s*)$'
                         % re.escape(EC2_XMLNS))


def ec2_xml(body):
    """A reply of moto's EC2 as real EC2 would write it (see the module's docstring)."""
    head = body[:200]
    if MOTO_XMLNS not in head:
        return body
    if b"<Response" in head and b"<Errors>" in head:
        return body.replace(MOTO_XMLNS, b"", 1)
    body = body.replace(MOTO_XMLNS, EC2_XMLNS, 1)
    return _BARE_REPLY.sub(rb"\1\3<return>true</return>\4", body)


def ec2_query(pairs):
    """Query parameters with every list numbered from 0 renumbered from 1 (``Tag.0.Key`` -> ``Tag.1.Key``)."""
    zero_based = set()
    for key, _value in pairs:
        parts = key.split(".")
        zero_based.update(".".join(parts[:i]) for i, part in enumerate(parts) if i and part == "0")
    if not zero_based:
        return pairs
    renumbered = []
    for key, value in pairs:
        parts = key.split(".")
        parts = [str(int(part) + 1) if i and part.isdigit() and ".".join(parts[:i]) in zero_based else part
                 for i, part in enumerate(parts)]
        renumbered.append((".".join(parts), value))
    return renumbered


def _fix_request(environ):
    query = environ.get("QUERY_STRING", "")
    if "Action=" in query and ".0" in query:
        environ["QUERY_STRING"] = urlencode(ec2_query(parse_qsl(query, keep_blank_values=True)))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        text = body.decode("utf-8")
        if "Action=" in text and ".0" in text:
            body = urlencode(ec2_query(parse_qsl(text, keep_blank_values=True))).encode("utf-8")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))


def ec2_wire(app):
    """WSGI middleware: requests through ``ec2_query``, replies through ``ec2_xml``."""

    def wrapped(environ, start_response):
        _fix_request(environ)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["reply"] = (status, headers, exc_info)
            return lambda data: None  # moto's app returns its body, it never writes

        body = b"".join(app(environ, capture))
        status, headers, exc_info = captured["reply"]
        fixed = ec2_xml(body)
        if fixed is not body:
            headers = [(k, str(len(fixed)) if k.lower() == "content-length" else v) for k, v in headers]
        start_response(status, headers, exc_info)
        return [fixed]

    return wrapped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    app = ec2_wire(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("MOTO_URL=http://%s:%d" % (args.host, server.server_port), flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

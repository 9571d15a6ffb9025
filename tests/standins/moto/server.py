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
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import signal
import sys
from urllib.parse import parse_qsl, urlencode

from moto.cloudwatch.models import MetricDatum
from moto.core.common_models import CloudWatchMetricProvider
from moto.core.utils import utcnow
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_block_store import EBSBackend
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

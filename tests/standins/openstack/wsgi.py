"""gunicorn entry point for an OpenStack service of the stand-in: ``wsgi:application``.

The service's WSGI module (``SIROCCO_WSGI_MODULE``, e.g. ``nova.wsgi.osapi_compute``)
is imported after ``sys.argv`` is replaced: oslo.config parses the command line of
the process it runs in, and gunicorn's options are not the service's. A service that
finds its configuration only on its command line (Cinder's API) gets the arguments of
``SIROCCO_WSGI_ARGS`` (e.g. ``--config-file /path/cinder.conf``).
"""

import importlib
import os
import shlex
import sys

sys.argv = sys.argv[:1] + shlex.split(os.environ.get("SIROCCO_WSGI_ARGS", ""))
application = importlib.import_module(os.environ["SIROCCO_WSGI_MODULE"]).application

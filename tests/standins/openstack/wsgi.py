"""gunicorn entry point for an OpenStack service of the stand-in: ``wsgi:application``.

The service's WSGI module (``SIROCCO_WSGI_MODULE``, e.g. ``nova.wsgi.osapi_compute``)
is imported after ``sys.argv`` is emptied: oslo.config parses the command line of
the process it runs in, and gunicorn's options are not the service's.
"""

import importlib
import os
import sys

sys.argv = sys.argv[:1]
application = importlib.import_module(os.environ["SIROCCO_WSGI_MODULE"]).application

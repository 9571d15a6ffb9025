"""What every blueprint shares: the daemon object, authentication, hrefs, JSON replies."""

from __future__ import annotations

import json

from flask import current_app, g, request

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Forbidden


def daemon():
    return current_app.extensions["siroccod"]


def authenticate():
    """before_request: every request names its caller (HTTP Basic or Bearer token)."""
    g.principal = daemon().users.authenticate(request.headers.get("Authorization"))


def require_admin():
    authenticate()
    if not g.principal.is_admin:
        raise Forbidden("administrators only")


def base_uri():
    """Absolute CIMI base of this request, e.g. http://127.0.0.1:8080/cimi/."""
    return request.host_url + "cimi/"


def respond(doc, status=200, headers=None):
    response = current_app.response_class(json.dumps(doc, separators=(",", ":")), status=status,
                                          mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response

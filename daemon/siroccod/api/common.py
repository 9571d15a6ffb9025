"""What every blueprint shares: the daemon object, authentication, hrefs, JSON replies."""

from __future__ import annotations

import json

from flask import current_app, g, request

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Forbidden
from siroccod.guard import root_url
from siroccod.resources.context import Outcome

try:
    import orjson
except ImportError:  # optional: the standard library does the same, slower
    orjson = None


def daemon():
    return current_app.extensions["siroccod"]


def authenticate():
    """before_request: every request names its caller (HTTP Basic or Bearer token)."""
    g.principal = daemon().users.authenticate(request.headers.get("Authorization"), request.remote_addr)


def require_admin():
    authenticate()
    if not g.principal.is_admin:
        raise Forbidden("administrators only")


def base_uri():
    """Absolute CIMI base as clients reach it, e.g. http://127.0.0.1:8080/cimi/ (guard.root_url)."""
    return root_url() + "cimi/"


def dumps(doc):
    """Compact JSON: orjson when installed (a 1,000-machine listing in a few ms instead of ~40), else
    the standard library; the latter also for what orjson refuses (lone surrogates from a client's
    JSON, integers beyond 64 bits)."""
    if orjson is not None:
        try:
            return orjson.dumps(doc)
        except (TypeError, ValueError):  # orjson.JSONEncodeError is a TypeError
            pass
    return json.dumps(doc, separators=(",", ":"))


def reply(outcome: Outcome):
    """The one place a request's outcome becomes an HTTP answer: 201 with the new resource's Location, 202
    with its job's CIMI-Job-URI and a Location, 200 (a body, or none)."""
    if outcome.job is not None:
        return respond(outcome.doc, 202, {"Location": outcome.location, "CIMI-Job-URI": outcome.job})
    if outcome.created:
        return respond(outcome.doc, 201, {"Location": outcome.doc["id"]})
    if outcome.doc is None:
        return current_app.response_class(status=200)
    return respond(outcome.doc)


def respond(doc, status=200, headers=None):
    response = current_app.response_class(dumps(doc), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response

"""The one CIMI error handler: every failure leaves as a CIMI error document.

The body is Job-shaped (DSP0263 4.2.2: "the body describes the failure"):
``{"resourceURI": ".../Job", "state": "FAILED", "returnCode": 404,
"statusMessage": "...", "timeOfStatusChange": ..., "properties": {"error": kind}}``.
A SiroccoError gives its own status and message; a werkzeug HTTP error its code
and standard description; anything unexpected gives 500 with a generic message
while the traceback goes to the daemon's log only.
"""

from __future__ import annotations

import json
import logging

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, UnsupportedMediaType

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import check_text, type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, SiroccoError
from siroccod.store import iso, utcnow

log = logging.getLogger(__name__)
REALM = 'Basic realm="siroccod", charset="UTF-8"'
_KINDS = {400: "invalid-input", 401: "auth", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
          409: "conflict", 413: "too-large", 414: "too-long", 415: "media-type", 429: "throttled",
          501: "unsupported"}


def error_document(status, message, kind=None, attribute=None):
    doc = {"resourceURI": type_uri("Job"), "state": "FAILED", "returnCode": status, "statusMessage": message,
           "timeOfStatusChange": iso(utcnow()), "progress": 100}
    props = {"error": kind or _KINDS.get(status, "error")}
    if attribute:
        props["attribute"] = str(attribute)
    doc["properties"] = props
    return doc


def error_response(status, message, kind=None, attribute=None, headers=None):
    if status >= 500:
        daemon = current_app.extensions.get("siroccod")
        if daemon is not None:
            daemon.server_errors += 1
    response = jsonify(error_document(status, message, kind, attribute))
    response.status_code = status
    for key, value in (headers or {}).items():
        response.headers[key] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = REALM
    return response


def handle_sirocco(exc):
    if exc.http_status >= 500:
        log.warning("%s %s -> %d: %s", request.method, request.path, exc.http_status, exc)
    headers = {"Retry-After": str(exc.retry_after)} if getattr(exc, "retry_after", None) else None
    return error_response(exc.http_status, str(exc), exc.kind, getattr(exc, "attribute", None), headers)


def handle_http(exc):
    headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
    return error_response(exc.code or 500, exc.description or exc.name, headers=headers)


def handle_unexpected(exc):
    if isinstance(exc, HTTPException):
        return handle_http(exc)
    if isinstance(exc, SiroccoError):
        return handle_sirocco(exc)
    log.exception("unexpected error on %s %s", request.method, request.path)
    return error_response(500, "internal error: the daemon's log has the details")


def register(app):
    app.register_error_handler(SiroccoError, handle_sirocco)
    app.register_error_handler(HTTPException, handle_http)
    app.register_error_handler(Exception, handle_unexpected)


def _no_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def json_body():
    """The request's JSON object; 415 unless declared JSON, 400 unless it is a JSON object."""
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType("send application/json (got '%s')" % (request.mimetype or "no Content-Type"))
    raw = request.get_data(cache=True)  # 413 beyond MAX_CONTENT_LENGTH
    try:
        body = json.loads(raw.decode(request.mimetype_params.get("charset", "utf-8")), parse_constant=_no_constant)
    except (UnicodeDecodeError, LookupError):
        raise InvalidInput("request body is not valid text in its charset", attribute="body") from None
    except RecursionError:
        raise InvalidInput("request body is nested too deeply", attribute="body") from None
    except ValueError as exc:
        raise InvalidInput("request body is not valid JSON: %s" % exc, attribute="body") from None
    if not isinstance(body, dict):
        raise InvalidInput("request body must be a JSON object", attribute="body")
    try:
        _storable(body, "")
    except RecursionError:
        raise InvalidInput("request body is nested too deeply", attribute="body") from None
    return body


def _storable(value, path):
    """Every text of a body can be stored (no NUL, no lone surrogate), whatever reads it later; the error
    names the attribute (``machineTemplate.userData``)."""
    if isinstance(value, str):
        check_text(value, path or "body", max_length=None)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, "%s key" % (path or "body"), max_length=None)
            _storable(item, "%s.%s" % (path, key) if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _storable(item, "%s[%d]" % (path or "body", i))

"""The OpenAPI 3 description of the endpoint, derived — never written by hand.

Everything comes from what is already declared once:

* the collections, their lifecycle (which methods each serves) and create bodies: ``kinds.KINDS``;
* every attribute of every resource and structure: the ``Attr`` declarations of the shared model
  (wire name, kind, ``many``, ``required``, ``read_only``, ``write_only``, ``choices``,
  ``minimum``, ``of`` for references that may also come by value, ``doc``);
* the actions of each collection: ``kinds.ACTIONS``; the error body: ``errors.error_document``.

Each model type gives two schemas: ``<Type>`` (what the daemon sends: read-only attributes
included, write-only ones such as a credential's password left out) and ``<Type>Input`` (what a
client may send on create: writable attributes only, ``required`` ones required, anything else
refused); ``<Type>Update`` is the input without ``required`` (PUT takes partial documents).
Sirocco's extensions to the served documents are the few entries of ``schemas.EXTENSIONS``.

Served (no authentication needed) at ``/cimi/openapi.json``; ``servers`` is the requesting base.
The parts: ``schemas`` (the component schemas, from the model), ``operations`` (parameters, bodies,
responses), ``cimi`` and ``admin`` (the paths); here, the document assembled (:func:`build`) and
served (:func:`register`).
"""

from __future__ import annotations

import json
import threading

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from siroccod import __version__
from siroccod.guard import root_url
from siroccod.kinds import KINDS
from siroccod.openapi.admin import admin
from siroccod.openapi.cimi import cimi_paths
from siroccod.openapi.schemas import Builder, base_schemas

__all__ = ["build", "register"]


def build(server_url=None):
    """The OpenAPI 3.0 document (a dict); ``server_url`` e.g. ``http://127.0.0.1:8080``."""
    b = Builder()
    b.schemas.update(base_schemas())
    paths = {}
    job = b.structure(model.Job, "out")
    cimi_paths(b, paths, job)
    admin(b, paths)
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "siroccod CIMI endpoint", "version": __version__,
                 "description": "DMTF CIMI (DSP0263 2.0.0, JSON) over local hypervisor hosts. Clients follow "
                                "hrefs from the Cloud Entry Point; the paths below are what those hrefs look "
                                "like. Derived from the resource model's declarations (siroccod/openapi/)."},
        "paths": paths,
        "components": {"schemas": dict(sorted(b.schemas.items())), "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic", "description": "user name and password"},
            "bearer": {"type": "http", "scheme": "bearer", "description": "an API token (siroccod user token)"}}},
        "security": [{"basic": []}, {"bearer": []}],
        "tags": [{"name": "CIMI"}, *({"name": k.type_name} for k in KINDS.values()), {"name": "admin"},
                 {"name": "meta"}],
    }
    paths["/cimi/openapi.json"] = {"get": {
        "operationId": "getOpenAPI", "tags": ["meta"], "summary": "this description", "security": [],
        "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {
            "type": "object", "required": ["openapi", "paths"]}}}}}}}
    if server_url:
        doc["servers"] = [{"url": server_url.rstrip("/")}]
    return doc


def register(app):
    """``GET /cimi/openapi.json``: the description, built once per base URL; no authentication."""
    cache = {}
    lock = threading.Lock()

    def openapi_json():
        server = root_url().rstrip("/")
        with lock:
            text = cache.get(server)
            if text is None:
                if len(cache) > 64:  # one entry per name the daemon is reached by
                    cache.clear()
                text = cache[server] = json.dumps(build(server), separators=(",", ":"))
        return app.response_class(text, mimetype="application/json")

    app.add_url_rule("/cimi/openapi.json", "openapi", openapi_json, methods=["GET"])

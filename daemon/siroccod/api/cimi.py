"""The CIMI endpoint: /cimi/cloudEntryPoint and every collection of kinds.KINDS."""

from __future__ import annotations

from flask import Blueprint, g, request

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, query
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, NotFound
from siroccod.api import metadata
from siroccod.api.common import authenticate, base_uri, daemon, reply, respond
from siroccod.api.metadata import DRY_RUN
from siroccod.errors import json_body
from siroccod.guard import root_url
from siroccod.kinds import ACTIONS, ASYNC, KINDS, METADATA_KEY, READONLY, SUBCOLLECTIONS

bp = Blueprint("cimi", __name__, url_prefix="/cimi")
bp.before_request(authenticate)


@bp.before_app_request
def _authenticate_unrouted():
    """A path under /cimi or /admin that no route takes (404), or not with this method (405),
    asks for credentials first like every routed one: anonymous callers learn nothing."""
    if request.url_rule is None and request.path.startswith(("/cimi", "/admin")):
        authenticate()


SINGLE = ("$select", "$expand")


def _any(name, values):
    """A URL part matching exactly ``values``: each URL has exactly the methods it serves, so
    any other method gets 405 with a true ``Allow`` header, and unknown paths 404."""
    return "<any(%s):%s>" % (", ".join(values), name)


# the routes, derived from kinds.KINDS
ALL_KEYS = _any("key", KINDS)
CREATABLE_KEYS = _any("key", [k for k, kind in KINDS.items() if kind.create_cls is not None])
WRITABLE_KEYS = _any("key", [k for k, kind in KINDS.items() if kind.lifecycle != READONLY])


def _kind(key):
    kind = KINDS.get(key)
    if kind is None:
        raise NotFound("no collection '%s' at this endpoint" % key)
    return kind


def _single(doc, resolve):
    """$select / $expand on one resource (4.1.6.3/4)."""
    params = {k: request.args.getlist(k) for k in SINGLE if k in request.args}
    if not params:
        return doc
    items, _count = query.apply_query([doc], params, resolve)
    return items[0]


def _resolver(base):
    service = daemon().service
    return lambda href: service.resolve(g.principal, href, base)


def _listing(cls, collection_id, docs, resolve=None, ops=None):
    """A collection's document under the request's query parameters (4.1.6), $select applying to the
    Collection itself (4.1.6.3: query.apply_collection_query)."""
    return query.apply_collection_query(
        docs, request.args, cls.entries_key or cls.collection_key,  # as model.collection_json names them
        lambda items, count: model.collection_json(cls, collection_id, items, count, ops), resolve)


@bp.get("/")
@bp.get("/cloudEntryPoint")
def cloud_entry_point():
    base = base_uri()
    doc = {"resourceURI": type_uri("CloudEntryPoint"), "id": base + "cloudEntryPoint", "name": "siroccod",
           "description": "Sirocco CIMI endpoint over local hypervisor hosts", "baseURI": base,
           METADATA_KEY: {"href": base + METADATA_KEY}}
    for key in KINDS:
        doc[key] = {"href": base + key}
    if g.principal.is_admin:  # Sirocco extension: the administration API
        doc["hosts"] = {"href": root_url() + "admin/hosts"}
        doc["users"] = {"href": root_url() + "admin/users"}
    return respond(doc)


# -- resource metadata (api/metadata.py) ---------------------------------------------------
@bp.get("/" + METADATA_KEY)
def metadata_collection():
    base = base_uri()
    docs = [metadata.document(base, t) for t in metadata.types()]
    return respond(_listing(model.ResourceMetadata, base + METADATA_KEY, docs))


@bp.get("/" + METADATA_KEY + "/<type_name>")
def metadata_one(type_name):
    if type_name not in metadata.types():
        raise NotFound("no resource metadata for '%s'" % type_name)
    return respond(_single(metadata.document(base_uri(), type_name), None))


# -- collections ------------------------------------------------------------------------
@bp.get("/" + ALL_KEYS)
def collection(key):
    kind = _kind(key)
    base = base_uri()
    service = daemon().service
    docs = service.list_docs(g.principal, key, base)
    ops = [{"rel": "add", "href": base + key}] if kind.create_cls is not None else None
    return respond(_listing(kind.cls, base + key, docs, _listing_resolver(key, base), ops))


def _listing_resolver(key, base):
    """_resolver, the entries' own collections asked for in $expand read first, in one go (4.1.6.4 on a
    listing: what the cimi connector asks of machines)."""
    resolve = _resolver(base)
    wanted = []
    for text in request.args.getlist(query.EXPAND):
        try:
            names = query.parse_expand(text)
        except query.QueryError:
            return resolve  # refused by the query itself, with its message
        wanted += list(SUBCOLLECTIONS.get(key, ())) if names == "*" else names
    if not wanted:
        return resolve
    found = daemon().service.collection_documents(g.principal, key, wanted, base)
    return lambda href: found.get(href) or resolve(href)


@bp.post("/" + CREATABLE_KEYS)
def create(key):
    body = json_body()
    return reply(daemon().service.create(g.principal, key, body, base_uri()))


@bp.get("/%s/<uuid>" % ALL_KEYS)
def read(key, uuid):
    _kind(key)
    base = base_uri()
    doc = daemon().service.get_doc(g.principal, key, uuid, base)
    return respond(_single(doc, _resolver(base)))


@bp.put("/%s/<uuid>" % WRITABLE_KEYS)
def update(key, uuid):
    body = json_body()
    return respond(daemon().service.update(g.principal, key, uuid, body, base_uri()))


@bp.delete("/%s/<uuid>" % WRITABLE_KEYS)
def delete(key, uuid):
    return reply(daemon().service.delete(g.principal, key, uuid, base_uri()))


@bp.delete("/jobs/<uuid>")  # jobs are READONLY but a finished one may be deleted (5.17.1.1)
def delete_job(uuid):
    return reply(daemon().service.delete_job(g.principal, uuid, base_uri()))


def act(key, uuid, verb):
    body = json_body()
    return reply(daemon().service.action(g.principal, key, uuid, verb, body, base_uri()))


@bp.post("/machines/<uuid>/resize")
def resize_machine(uuid):
    body = json_body()
    dry_run = request.args.get(DRY_RUN)
    if dry_run not in (None, "true"):
        raise InvalidInput("%s: only 'true' (check the resize and say whether a stop is needed, change nothing)"
                           % DRY_RUN, attribute=DRY_RUN)
    return reply(daemon().service.resize(g.principal, "machines", uuid, body, base_uri(), dry_run=dry_run is not None))


@bp.post("/volumes/<uuid>/resize")
def resize_volume(uuid):
    body = json_body()
    if DRY_RUN in request.args:  # refused rather than ignored: the caller expects nothing to change
        raise InvalidInput("%s: only a machine's resize has a dry run" % DRY_RUN, attribute=DRY_RUN)
    return reply(daemon().service.resize(g.principal, "volumes", uuid, body, base_uri()))


# -- a resource's own collections (5.5.12): a Machine's disks, interfaces, volumes, meters; ... ----------
SUB_KEYS = _any("key", SUBCOLLECTIONS)
SUB_ATTRS = _any("attr", sorted({a for attrs in SUBCOLLECTIONS.values() for a in attrs}))


@bp.get("/%s/<uuid>/%s" % (SUB_KEYS, SUB_ATTRS))
def resource_collection(key, uuid, attr):
    base = base_uri()
    doc = daemon().service.collection(g.principal, key, uuid, attr, base)
    entries = model.RESOURCE_TYPES[KINDS[key].type_name].attributes[attr].collection[1]

    def build(items, count):
        doc["count"] = count
        if items:
            doc[entries] = items
        return doc
    return respond(query.apply_collection_query(doc.pop(entries, []), request.args, entries, build,
                                                _resolver(base)))


@bp.get("/%s/<uuid>/%s/<item>" % (SUB_KEYS, SUB_ATTRS))
def resource_collection_item(key, uuid, attr, item):
    base = base_uri()
    return respond(_single(daemon().service.collection_item(g.principal, key, uuid, attr, item, base),
                           _resolver(base)))


@bp.post("/machines/<uuid>/volumes")
def machine_volumes_post(uuid):
    body = json_body()
    return reply(daemon().service.machine_volumes_post(g.principal, uuid, body, base_uri()))


@bp.delete("/machines/<uuid>/volumes/<volume>")
def detach(uuid, volume):
    return reply(daemon().service.detach(g.principal, uuid, volume, base_uri()))


for _key, _verbs in ACTIONS.items():
    if KINDS[_key].lifecycle == ASYNC:
        bp.add_url_rule("/%s/<uuid>/%s" % (_any("key", [_key]), _any("verb", _verbs)), "act_" + _key, act,
                        methods=["POST"])

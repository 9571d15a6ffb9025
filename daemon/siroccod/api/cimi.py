"""The CIMI endpoint: /cimi/cloudEntryPoint and every collection of kinds.KINDS."""

from __future__ import annotations

from flask import Blueprint, g, request

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, query
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri, type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, NotFound
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import SIROCCO_CAPABILITY_NS
from siroccod.api.common import authenticate, base_uri, daemon, reply, respond
from siroccod.errors import json_body
from siroccod.guard import root_url
from siroccod.guests import guest_offer
from siroccod.kinds import ACTIONS, ASYNC, BY_TYPE, EXTENSION_ACTIONS, KINDS, METADATA_KEY, READONLY

bp = Blueprint("cimi", __name__, url_prefix="/cimi")
bp.before_request(authenticate)


@bp.before_app_request
def _authenticate_unrouted():
    """A path under /cimi or /admin that no route takes (404), or not with this method (405),
    asks for credentials first like every routed one: anonymous callers learn nothing."""
    if request.url_rule is None and request.path.startswith(("/cimi", "/admin")):
        authenticate()


EXTENSION_DESCRIPTIONS = {
    ("machines", "resize"): "give a machine another machineConfig's cpu and memory (Sirocco extension)",
    ("volumes", "resize"): "grow a volume to a larger capacity in KB (Sirocco extension)"}
SINGLE = ("$select", "$expand")
# the query parameter of a machine resize's dry run (resources.resize.resize_dry_run)
DRY_RUN = "dryRun"
# Sirocco's capabilities in the Machine ResourceMetadata: what the hosts put into a guest (guests.guest_offer)


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


# -- resource metadata ------------------------------------------------------------------
def _metadata(base, type_name):
    kind = BY_TYPE[type_name]
    actions = []
    if kind.key in ACTIONS:
        actions = [{"name": verb, "uri": action_uri(verb), "description": "%s a %s" % (verb, type_name),
                    "method": "POST", "inputMessage": "application/json", "outputMessage": "application/json"}
                   for verb in ACTIONS[kind.key]]
    actions += [{"name": verb, "uri": uri, "description": EXTENSION_DESCRIPTIONS[(kind.key, verb)], "method": "POST",
                 "inputMessage": "application/json", "outputMessage": "application/json"}
                for verb, (uri, operation) in EXTENSION_ACTIONS.get(kind.key, {}).items()
                if any(h.supports(operation) for h in daemon().pool.handles.values())]
    capabilities = _guest_capabilities() if kind.key == "machines" else []
    if kind.key == "machines" and any(a["uri"] == model.SIROCCO_RESIZE for a in actions):
        capabilities.append({"name": "resizeDryRun", "uri": SIROCCO_CAPABILITY_NS + "resizeDryRun", "value": DRY_RUN,
                             "description": "POST a resize with ?dryRun=true: its input checked, nothing changed, "
                                            "and {needsStop, reason} says whether a stop is needed first"})
    doc = model.resource_metadata(kind.cls, capabilities=capabilities, actions=actions).to_json()
    doc["id"] = base + METADATA_KEY + "/" + type_name
    return doc


def _guest_capabilities():
    """guestInputs (space-separated: credential, userData) and userDataLimit (bytes of raw userData, when
    every host taking it says), over every enabled host and upstream whose capabilities are known."""
    pool = daemon().pool
    handles = [h for h in pool.handles.values() if h.cfg.enabled]
    handles += [u for u in pool.upstreams.values() if u.known_capabilities() is not None]
    inputs, limit = guest_offer(handles)
    found = [{"name": "guestInputs", "uri": SIROCCO_CAPABILITY_NS + "guestInputs", "value": " ".join(sorted(inputs)),
              "description": "what a machine's creation can put into its guest (Sirocco extension)"}]
    if limit is not None:
        found.append({"name": "userDataLimit", "uri": SIROCCO_CAPABILITY_NS + "userDataLimit", "value": str(limit),
                      "description": "the most userData a host takes, in bytes (Sirocco extension)"})
    return found


@bp.get("/" + METADATA_KEY)
def metadata_collection():
    base = base_uri()
    docs = [_metadata(base, t) for t in BY_TYPE]
    items, count = query.apply_query(docs, request.args)
    return respond(model.collection_json(model.ResourceMetadata, base + METADATA_KEY, items, count))


@bp.get("/" + METADATA_KEY + "/<type_name>")
def metadata_one(type_name):
    if type_name not in BY_TYPE:
        raise NotFound("no resource metadata for '%s'" % type_name)
    return respond(_single(_metadata(base_uri(), type_name), None))


# -- collections ------------------------------------------------------------------------
@bp.get("/" + ALL_KEYS)
def collection(key):
    kind = _kind(key)
    base = base_uri()
    service = daemon().service
    docs = service.list_docs(g.principal, key, base)
    items, count = query.apply_query(docs, request.args, _resolver(base))
    ops = [{"rel": "add", "href": base + key}] if kind.create_cls is not None else None
    return respond(model.collection_json(kind.cls, base + key, items, count, ops))


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


# -- a machine's volumes -------------------------------------------------------------------
@bp.get("/machines/<uuid>/volumes")
def machine_volumes(uuid):
    doc = daemon().service.machine_volumes(g.principal, uuid, base_uri())
    items, count = query.apply_query(doc.get("machineVolumes", []), request.args)
    doc["count"] = count
    doc["machineVolumes"] = items
    if not items:
        doc.pop("machineVolumes")
    return respond(doc)


@bp.post("/machines/<uuid>/volumes")
def attach(uuid):
    body = json_body()
    return reply(daemon().service.attach(g.principal, uuid, body, base_uri()))


@bp.get("/machines/<uuid>/volumes/<volume>")
def machine_volume(uuid, volume):
    doc = daemon().service.machine_volumes(g.principal, uuid, base_uri())
    for item in doc.get("machineVolumes", []):
        if item["id"].endswith("/" + volume):
            return respond(item)
    raise NotFound("machine has no volume '%s'" % volume)


@bp.delete("/machines/<uuid>/volumes/<volume>")
def detach(uuid, volume):
    return reply(daemon().service.detach(g.principal, uuid, volume, base_uri()))


for _key, _verbs in ACTIONS.items():
    if KINDS[_key].lifecycle == ASYNC:
        bp.add_url_rule("/%s/<uuid>/%s" % (_any("key", [_key]), _any("verb", _verbs)), "act_" + _key, act,
                        methods=["POST"])

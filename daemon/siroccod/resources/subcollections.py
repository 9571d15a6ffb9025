"""A resource's own collections (5.5.12): a Machine's disks, interfaces, volumes and meters (5.14.1.1), a
Meter's samples (5.17.3.1), a System's machines, volumes and networks (5.13.1.1).

A resource's document refers to each by ``{"href": <resource id>/<attribute>}``; the collection document
lists its items under the model's entry key, each with an id of its own (a component's, or the member's
own id when the items are resources of their own). Nothing here writes: attaching and detaching a volume
(the volumes collection's add, insert and remove) are resources.attachments'.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Text, cast, select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import type_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import NotFound
from siroccod import hrefs, metering
from siroccod.kinds import KINDS, SUBCOLLECTIONS
from siroccod.resources import rendering
from siroccod.store import Resource

# the collections built from their owner's stored document alone (no other row read)
FROM_DOCUMENT = frozenset({("machines", "disks"), ("machines", "interfaces"), ("machines", "volumes")})
# the collections whose items are resources of their own (their ids are theirs, no item route here)
OF_RESOURCES = {("machines", "meters"), ("systems", "machines"), ("systems", "volumes"), ("systems", "networks")}


def entry_key(key: str, attr: str) -> str:
    return KINDS[key].cls.attributes[attr].collection[1]


def collection_document(ctx, p, key: str, uuid: str, attr: str, base: str) -> dict[str, Any]:
    """The collection ``attr`` of the ``key`` resource ``uuid`` the caller owns; NotFound otherwise."""
    if attr not in SUBCOLLECTIONS.get(key, ()):
        raise NotFound("%s: no collection '%s'" % (key, attr))
    with ctx.store.read() as session:
        row = ctx.find(session, p, KINDS[key].type_name, uuid)
        return _document(ctx, session, p, row, key, attr, base)


def collection_documents(ctx, p, key: str, attrs, base: str) -> dict[str, dict[str, Any]]:
    """The collections ``attrs`` of every ``key`` resource the caller owns, by href, read in one go: what
    $expand on a listing puts inline (a resolve per href would read the CMDB once per machine and collection).
    A machine's disks, interfaces and volumes come from its stored document alone: built once per version of
    it and kept with the rendered documents (reading.rendered's cache), as listings are."""
    attrs = [a for a in dict.fromkeys(attrs) if a in SUBCOLLECTIONS.get(key, ())]
    if not attrs:
        return {}
    kind = KINDS[key]
    own = [a for a in attrs if (key, a) in FROM_DOCUMENT]
    found = {}
    with ctx.store.read() as session:
        if own:
            listed = session.connection().execute(select(Resource.uuid, cast(Resource.doc, Text)).where(
                Resource.type == kind.type_name, Resource.tenant_id == p.tenant_id)).all()
            cache = ctx.rendered
            for uuid, text in listed:
                row = None
                for attr in own:
                    href = base + hrefs.ref(key, uuid, attr)
                    hit = cache.get((base, uuid, attr))
                    if hit is None or hit[0] != text:
                        row = row or SimpleNamespace(uuid=uuid, doc=json.loads(text) if isinstance(text, str) else text)
                        hit = cache[(base, uuid, attr)] = (text, _document(ctx, session, p, row, key, attr, base))
                    found[href] = hit[1]
        rest = [a for a in attrs if (key, a) not in FROM_DOCUMENT]
        if rest:
            rows = list(session.scalars(select(Resource).where(Resource.type == kind.type_name,
                                                               Resource.tenant_id == p.tenant_id)))
            wanted = {h["href"].rsplit("/", 1)[1] for row in rows for attr in rest if (key, attr) in OF_RESOURCES
                      for h in (row.doc or {}).get(attr) or [] if isinstance(h, dict) and "href" in h}
            members = _rows(session, wanted)
            found.update({base + hrefs.ref(key, row.uuid, attr): _document(ctx, session, p, row, key, attr, base,
                                                                           members)
                          for row in rows for attr in rest})
    return found


def _rows(session, uuids):
    return {r.uuid: r for r in session.scalars(select(Resource).where(Resource.uuid.in_(uuids)))} if uuids else {}


def _document(ctx, session, p, row, key, attr, base, members=None):
    kind = KINDS[key]
    cid = base + hrefs.ref(key, row.uuid, attr)
    items = _items(ctx, session, p, row, key, attr, cid, base, members)
    item_type = kind.cls.attributes[attr].collection[0]
    doc: dict[str, Any] = {"resourceURI": type_uri(item_type + "Collection"), "id": cid, "count": len(items)}
    if items:  # never an empty array (5.5.11)
        doc[entry_key(key, attr)] = items
    if key == "machines" and attr == "volumes":
        # add: a new locatedVolume (the volume and its initialLocation); insert and remove: an Action naming
        # the volume (5.5.12.1-3). One href takes all three: the body says which
        doc["operations"] = [{"rel": rel, "href": cid} for rel in ("add", "insert", "remove")]
    return doc


def collection_item(ctx, p, key: str, uuid: str, attr: str, item: str, base: str) -> dict[str, Any]:
    """One item of a collection of components (a disk, an interface, a located volume, a sample)."""
    if (key, attr) in OF_RESOURCES:
        raise NotFound("%s: the items of '%s' are resources of their own: follow their ids" % (key, attr))
    doc = collection_document(ctx, p, key, uuid, attr, base)
    for entry in doc.get(entry_key(key, attr), ()):
        if entry["id"] == doc["id"] + "/" + item:
            return entry
    raise NotFound("%s '%s' has no %s item '%s'" % (KINDS[key].type_name, uuid, attr, item))


def _items(ctx, session, p, row, key, attr, cid, base, members=None):
    stored = row.doc or {}
    if attr in ("disks", "interfaces"):
        type_name = "Disk" if attr == "disks" else "NetworkInterface"
        return [dict({"resourceURI": type_uri(type_name), "id": "%s/%d" % (cid, i)}, **hrefs.absolute(entry, base))
                for i, entry in enumerate(stored.get(attr) or [])]
    if key == "machines" and attr == "volumes":
        return [_located_volume(entry, cid, base) for entry in stored.get("volumes") or []]
    if attr == "samples":
        shown = metering.latest(session, row.uuid).get("samples") or []  # the newest metering.SHOWN
        return [dict({"resourceURI": type_uri("Sample"), "id": "%s/%d" % (cid, i)}, **sample)
                for i, sample in enumerate(shown)]
    # collections of resources: a machine's meters, a system's members, rendered as when read on their own
    uuids = [h["href"].rsplit("/", 1)[1] for h in stored.get(attr) or [] if isinstance(h, dict) and "href" in h]
    if not uuids:
        return []
    rows = members if members is not None else _rows(session, uuids)
    return [rendering.render(ctx, rows[u], base, p, session, live=rows[u].type == "Meter") for u in uuids
            if u in rows and (rows[u].tenant_id == row.tenant_id)]


def _located_volume(entry, cid, base):
    vuuid = entry["volume"]["href"].rsplit("/", 1)[1]
    item = {"resourceURI": type_uri("locatedVolume"), "id": "%s/%s" % (cid, vuuid),
            "volume": {"href": base + entry["volume"]["href"]}}
    if entry.get("initialLocation"):
        item["initialLocation"] = entry["initialLocation"]
    item["operations"] = [{"rel": "delete", "href": item["id"]}]
    return item

"""The paths of a resource's own collections (5.5.12, kinds.SUBCOLLECTIONS): a Machine's disks, interfaces,
volumes and meters, a Meter's samples, a System's members; and the volumes collection's add, insert and
remove (resources.attachments)."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri, type_uri
from siroccod.kinds import KINDS, SUBCOLLECTIONS
from siroccod.openapi.operations import (
    ASYNC_HEADERS,
    COLLECTION_PARAMS,
    SINGLE_PARAMS,
    path_param,
    query_params,
    reply,
    request_body,
    responses,
)
from siroccod.openapi.schemas import ref


def subcollection_paths(b, paths, job):
    for key, attrs in SUBCOLLECTIONS.items():
        kind = KINDS[key]
        uuid = path_param("uuid", "the %s's id" % kind.type_name)
        for attr in attrs:
            declared = kind.cls.attributes[attr]
            item_type, entries = declared.collection
            coll = b.collection_of(declared)
            name = attr[0].upper() + attr[1:]
            paths["/cimi/%s/{uuid}/%s" % (key, attr)] = {"parameters": [uuid], "get": {
                "operationId": "list%s%s" % (kind.type_name, name), "tags": [kind.type_name],
                "summary": "the %s's %s: a collection (entries under %s)" % (kind.type_name, attr, entries),
                "parameters": query_params(COLLECTION_PARAMS),
                "responses": responses({200: reply(coll, "the collection")})}}
            if item_type in model.RESOURCE_TYPES:
                continue  # resources of their own: their ids lead to them
            item = {"parameters": [uuid, path_param("item", "the item's id (the last segment of its href)")],
                    "get": {"operationId": "get%s%s" % (kind.type_name, item_type[0].upper() + item_type[1:]),
                            "tags": [kind.type_name], "summary": "one item of the %s's %s" % (kind.type_name, attr),
                            "parameters": query_params(SINGLE_PARAMS),
                            "responses": responses({200: reply(item_type + "Entry", "the item")})}}
            paths["/cimi/%s/{uuid}/%s/{item}" % (key, attr)] = item
    machine_volumes(b, paths, job)


def machine_volumes(b, paths, job):
    """A machine's volumes collection takes a new locatedVolume (add), or an Action inserting or removing a
    volume (5.5.12.1-3); deleting an item removes it. Each is a job attaching or detaching the volume."""
    add = dict(b.schemas[b.structure(model.MachineVolume, "in")])
    add["properties"] = dict(add["properties"], resourceURI={  # MachineVolume: what siroccod took before 2.0's
        "type": "string", "enum": [type_uri("locatedVolume"), type_uri("MachineVolume")]})
    b.schemas["locatedVolumeInput"] = add
    for verb in ("insert", "remove"):
        props = {"resourceURI": {"type": "string", "enum": [type_uri("Action")]},
                 "action": {"type": "string", "enum": [action_uri(verb)]}, "volume": ref("HrefInput"),
                 "properties": {"type": "object", "additionalProperties": {"type": "string"}}}
        if verb == "insert":
            props["initialLocation"] = {"type": "string"}
        b.schemas["Volumes%sAction" % verb.capitalize()] = {
            "type": "object", "additionalProperties": False, "required": ["action", "volume"], "properties": props}
    b.schemas["MachineVolumesInput"] = {"anyOf": [ref("locatedVolumeInput"), ref("VolumesInsertAction"),
                                                  ref("VolumesRemoveAction")]}
    accepted = {202: dict(reply(job, "accepted: the job attaching or detaching the volume"), headers=ASYNC_HEADERS)}
    paths["/cimi/machines/{uuid}/volumes"]["post"] = {
        "operationId": "addToMachineVolumes", "tags": ["Machine"],
        "summary": "attach a volume of the same host (add: a locatedVolume; insert: an Action naming it) or detach "
                   "one (remove: an Action naming it)",
        "requestBody": request_body("MachineVolumesInput"), "responses": responses(accepted, body=True)}
    paths["/cimi/machines/{uuid}/volumes/{item}"]["delete"] = {
        "operationId": "detachVolume", "tags": ["Machine"], "summary": "detach the volume (the item's remove)",
        "responses": responses(accepted, body=True)}

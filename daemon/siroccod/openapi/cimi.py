"""The CIMI paths of the OpenAPI description: the Cloud Entry Point, the resource metadata, every
collection of ``kinds.KINDS`` (list, create, get, update, delete, actions), and Sirocco's extensions
(a machine's volumes, resize)."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import type_uri
from siroccod.kinds import ACTIONS, ASYNC, KINDS, METADATA_KEY, READONLY, SYNC
from siroccod.openapi.operations import (
    ASYNC_HEADERS,
    COLLECTION_PARAMS,
    SINGLE_PARAMS,
    header,
    path_param,
    query_params,
    reply,
    request_body,
    responses,
)
from siroccod.openapi.schemas import ERROR, ref

# Records that may live on a host too: deleting one of those may be asynchronous (202 + job).
HOSTED_RECORDS = ("machineImages",)


def cimi_paths(b, paths, job):
    """The CIMI paths into ``paths``, their schemas into ``b``; ``job``: the name of the Job schema."""
    cep_links = {key: ref("Href") for key in [METADATA_KEY, *KINDS, "hosts", "users"]}
    cep = b.structure(model.CloudEntryPoint, "out")
    b.schemas[cep] = dict(b.schemas[cep], properties=dict(b.schemas[cep]["properties"], **cep_links))
    paths["/cimi/cloudEntryPoint"] = {"get": {
        "operationId": "getCloudEntryPoint", "tags": ["CIMI"], "summary": "the Cloud Entry Point: a link to "
        "every collection the caller may use (hosts and users for administrators)",
        "responses": responses({200: reply(cep, "the Cloud Entry Point")})}}

    meta = b.structure(model.ResourceMetadata, "out")
    paths["/cimi/" + METADATA_KEY] = {"get": {
        "operationId": "listResourceMetadata", "tags": ["CIMI"], "summary": "ResourceMetadata of every served type",
        "parameters": query_params(COLLECTION_PARAMS),
        "responses": responses({200: reply(b.collection(model.ResourceMetadata, METADATA_KEY), "the collection")})}}
    paths["/cimi/%s/{typeName}" % METADATA_KEY] = {"get": {
        "operationId": "getResourceMetadata", "tags": ["CIMI"], "summary": "ResourceMetadata of one type",
        "parameters": [path_param("typeName", "a type name, e.g. Machine"), *query_params(SINGLE_PARAMS)],
        "responses": responses({200: reply(meta, "the metadata")})}}

    for key, kind in KINDS.items():
        cls, type_name = kind.cls, kind.type_name
        title = key[0].upper() + key[1:]
        one = b.structure(cls, "out")
        tag = [type_name]
        coll = {"get": {
            "operationId": "list" + title, "tags": tag, "summary": "the %s the caller may see" % key,
            "parameters": query_params(COLLECTION_PARAMS),
            "responses": responses({200: reply(b.collection(cls, key), "the (filtered) collection")})}}
        if kind.create_cls is not None:
            create_body = b.structure(kind.create_cls, "in")
            if kind.lifecycle == ASYNC:
                ok = {202: dict(reply(one, "accepted: the new %s (state CREATING), carried out by a job" % type_name),
                                headers=ASYNC_HEADERS)}
            else:
                ok = {201: dict(reply(one, "created"), headers={"Location": header("the new resource")})}
                if key == "machineImages":  # never a mere record: a capture, or an import (image_sources.py)
                    ok = {202: dict(reply(one, "accepted: imageLocation is one of the caller's machines, being "
                                          "captured, or an allowed image source, being fetched and registered "
                                          "on the hosts"), headers=ASYNC_HEADERS)}
            if key in ("machines", "systems"):  # routing.py: a provider that might take a machine is down
                ok[503] = reply(ERROR, "no provider can take the machine now: an upstream that might could not "
                                "be asked (which, and why, in statusMessage)")
            coll["post"] = {"operationId": "create" + title[:-1], "tags": tag,
                            "summary": "create a %s (templates by reference or by value)" % type_name,
                            "requestBody": request_body(create_body), "responses": responses(ok, body=True)}
        paths["/cimi/" + key] = coll

        uuid = path_param("uuid", "the %s's id (the last segment of its href)" % type_name)
        item = {"parameters": [uuid], "get": {
            "operationId": "get" + type_name, "tags": tag, "summary": "one %s" % type_name,
            "parameters": query_params(SINGLE_PARAMS), "responses": responses({200: reply(one, "the %s" % type_name)})}}
        if kind.lifecycle != READONLY:
            item["put"] = {"operationId": "update" + type_name, "tags": tag,
                           "summary": "change a %s%s" % (
                               type_name, " (name, description, properties)" if kind.lifecycle == ASYNC else ""),
                           "requestBody": request_body(b.update(cls)),
                           "responses": responses({200: reply(one, "the changed %s" % type_name)}, body=True)}
            if kind.lifecycle == SYNC:
                ok = {200: {"description": "deleted (no body)"}}
                if key in HOSTED_RECORDS:
                    ok[202] = dict(reply(job, "accepted: the job removing it from its host"), headers=ASYNC_HEADERS)
            else:
                ok = {202: dict(reply(job, "accepted: the job deleting it"), headers=ASYNC_HEADERS)}
            item["delete"] = {"operationId": "delete" + type_name, "tags": tag, "summary": "delete a %s" % type_name,
                              "responses": responses(ok, body=True)}
        paths["/cimi/%s/{uuid}" % key] = item

        for verb in ACTIONS.get(key, ()) if kind.lifecycle == ASYNC else ():
            paths["/cimi/%s/{uuid}/%s" % (key, verb)] = {"post": {
                "operationId": "%s%s" % (verb, type_name), "tags": tag, "parameters": [uuid],
                "summary": "%s a %s (offered in its operations only when its state allows)" % (verb, type_name),
                "requestBody": request_body(b.action(key, verb)),
                "responses": responses({202: dict(reply(job, "accepted: the job"), headers=ASYNC_HEADERS)},
                                       body=True)}}
    machine_volumes(b, paths, job)
    resize(b, paths, job)


def machine_volumes(b, paths, job):
    uuid = path_param("uuid", "the machine's id")
    item = {"type": "object", "additionalProperties": False, "required": ["resourceURI", "id", "volume"],
            "properties": {"resourceURI": {"type": "string", "enum": [type_uri("MachineVolume")]},
                           "id": {"type": "string"}, "volume": ref("Reference"),
                           "initialLocation": {"type": "string"},
                           "operations": {"type": "array", "items": ref("Operation")}}}
    b.schemas["MachineVolume"] = item
    b.schemas["MachineVolumeCollection"] = {
        "type": "object", "additionalProperties": False, "required": ["resourceURI", "id", "count"],
        "properties": {"resourceURI": {"type": "string", "enum": [type_uri("MachineVolumeCollection")]},
                       "id": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                       "machineVolumes": {"type": "array", "items": ref("MachineVolume")},
                       "operations": {"type": "array", "items": ref("Operation")}}}
    attach = dict(b.schemas[b.structure(model.MachineVolume, "in")])
    attach["properties"] = dict(attach["properties"], resourceURI={
        "type": "string", "enum": [type_uri("MachineVolume"), type_uri("locatedVolume")]})
    b.schemas["MachineVolumeInput"] = attach
    tag = ["Machine"]
    paths["/cimi/machines/{uuid}/volumes"] = {"parameters": [uuid], "get": {
        "operationId": "listMachineVolumes", "tags": tag, "summary": "volumes attached to a machine (extension)",
        "parameters": query_params(COLLECTION_PARAMS),
        "responses": responses({200: reply("MachineVolumeCollection", "the machine's volumes")})},
        "post": {"operationId": "attachVolume", "tags": tag, "summary": "attach a volume of the same host",
                 "requestBody": request_body("MachineVolumeInput"),
                 "responses": responses({202: dict(reply(job, "accepted: the job"), headers=ASYNC_HEADERS)},
                                        body=True)}}
    volume = path_param("volume", "the volume's id")
    paths["/cimi/machines/{uuid}/volumes/{volume}"] = {"parameters": [uuid, volume], "get": {
        "operationId": "getMachineVolume", "tags": tag, "summary": "one attachment",
        "responses": responses({200: reply("MachineVolume", "the attachment")})},
        "delete": {"operationId": "detachVolume", "tags": tag, "summary": "detach the volume",
                   "responses": responses({202: dict(reply(job, "accepted: the job"), headers=ASYNC_HEADERS)},
                                          body=True)}}


def resize(b, paths, job):
    """Sirocco's resize actions (kinds.EXTENSION_ACTIONS): a machine's machineConfig, a volume's capacity."""
    for key, type_name, parameter, summary in (
            ("machines", "Machine", "machineConfig", "give a machine the cpu and memory of a machineConfig (by "
             "reference or by value; Sirocco extension, offered in its operations when its host can and its state "
             "allows: 409 when the host has not the room or needs it stopped first)"),
            ("volumes", "Volume", "capacity", "grow a volume to a capacity in KB (Sirocco extension, offered in its "
             "operations when its host can; 400 unless larger than now)")):
        ok = {202: dict(reply(job, "accepted: the job"), headers=ASYNC_HEADERS)}
        params = [path_param("uuid", "the %s's id" % type_name.lower())]
        if key == "machines":  # its dry run (api.cimi.DRY_RUN): whether a stop is needed first
            b.schemas["ResizeDryRun"] = {"type": "object", "required": ["needsStop"], "properties": {
                "needsStop": {"type": "boolean"}, "reason": {"type": "string", "description": "what to do first"}}}
            ok[200] = reply("ResizeDryRun", "with dryRun: the resize's input is valid; nothing changed")
            params += query_params([("dryRun", {"type": "string", "enum": ["true"]},
                                     "check only: nothing changes, the answer says whether the machine must be stopped "
                                     "first (Sirocco extension)")])
        paths["/cimi/%s/{uuid}/resize" % key] = {"post": {
            "operationId": "resize" + type_name, "tags": [type_name], "summary": summary, "parameters": params,
            "requestBody": request_body(b.resize_action(key, parameter)), "responses": responses(ok, body=True)}}

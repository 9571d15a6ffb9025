"""The CIMI paths of the OpenAPI description: the Cloud Entry Point, the resource metadata, every
collection of ``kinds.KINDS`` (list, create, get, update, delete, actions), a resource's own collections
(openapi.subcollections), and Sirocco's extensions (resize)."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
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
from siroccod.openapi.subcollections import subcollection_paths

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
        "responses": responses({200: reply(b.collection(model.ResourceMetadata, model.ResourceMetadata.entries_key),
                                           "the collection")})}}
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
            if kind.direct:  # the resource itself is taken too (kinds.Kind.direct)
                b.schemas[type_name + "OrCreate"] = {"anyOf": [ref(create_body), ref(b.structure(cls, "in"))]}
                create_body = type_name + "OrCreate"
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
        elif key == "jobs":  # read-only, but a finished job may be deleted (5.17.1.1; resources/jobs.py)
            item["delete"] = {
                "operationId": "deleteJob", "tags": tag, "summary": "delete a finished job (SUCCESS, FAILED or "
                "STOPPED) and the jobs nested in it; offered in its operations then",
                "responses": responses({200: {"description": "deleted, with its nested jobs (no body)"},
                                        409: reply(ERROR, "the job is QUEUED or RUNNING (jobs cannot be stopped "
                                                   "here), or nested in a job that is")})}
            b.schemas[one] = dict(b.schemas[one], properties=dict(b.schemas[one]["properties"], operations={
                "type": "array", "items": ref("Operation"),
                "description": "a finished job offers delete (rel delete, href its id) to its owner"}))
        paths["/cimi/%s/{uuid}" % key] = item

        for verb in ACTIONS.get(key, ()) if kind.lifecycle == ASYNC else ():
            paths["/cimi/%s/{uuid}/%s" % (key, verb)] = {"post": {
                "operationId": "%s%s" % (verb, type_name), "tags": tag, "parameters": [uuid],
                "summary": "%s a %s (offered in its operations only when its state allows)" % (verb, type_name),
                "requestBody": request_body(b.action(key, verb)),
                "responses": responses({202: dict(reply(job, "accepted: the job"), headers=ASYNC_HEADERS)},
                                       body=True)}}
    subcollection_paths(b, paths, job)
    resize(b, paths, job)


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

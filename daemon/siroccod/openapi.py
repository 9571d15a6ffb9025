"""The OpenAPI 3 description of the endpoint, derived — never written by hand.

Everything comes from what is already declared once:

* the collections, their lifecycle (which methods each serves) and create bodies: ``kinds.KINDS``;
* every attribute of every resource and structure: the ``Attr`` declarations of the shared model
  (wire name, kind, ``many``, ``required``, ``read_only``, ``write_only``, ``choices``,
  ``minimum``, ``of`` for references that may also come by value, ``doc``);
* the actions of each collection: ``api.cimi.ACTIONS``; the error body: ``errors.error_document``.

Each model type gives two schemas: ``<Type>`` (what the daemon sends: read-only attributes
included, write-only ones such as a credential's password left out) and ``<Type>Input`` (what a
client may send on create: writable attributes only, ``required`` ones required, anything else
refused); ``<Type>Update`` is the input without ``required`` (PUT takes partial documents).
Sirocco's extensions to the served documents are the few entries of ``EXTENSIONS`` below.

Served (no authentication needed) at ``/cimi/openapi.json``; ``servers`` is the requesting base.
"""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, query, states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import (
    ANY,
    BOOLEAN,
    DATETIME,
    INTEGER,
    MAP,
    REF,
    STRING,
    action_uri,
    type_uri,
)
from siroccod import __version__
from siroccod.kinds import ASYNC, KINDS, METADATA_KEY, READONLY, SYNC
from siroccod.service import RESIZE_PARAMETERS

REF_SCHEMA = "#/components/schemas/"
ERROR = "CimiError"
# Sirocco's additions to served documents (the shared model declares the CIMI attributes).
EXTENSIONS = {
    "Machine": {"machineVolumes": {"$ref": REF_SCHEMA + "Href",
                                   "description": "Sirocco extension: the machine's volumes (attach/detach)"}},
}
# Records that may live on a host too: deleting one of those may be asynchronous (202 + job).
HOSTED_RECORDS = ("machineImages",)
# Status codes every authenticated operation may answer with, besides its own.
COMMON_ERRORS = {400: "bad request (malformed query parameter, invalid input)", 401: "authentication required",
                 403: "forbidden (administrators only, or a public record)",
                 404: "unknown (or another tenant's) resource", 414: "the URL is too long",
                 429: "too many failed logins from this user name or address: try again after Retry-After seconds"}
BODY_ERRORS = {409: "conflict: the resource's state does not allow it", 413: "request body too large",
               415: "the request body is not application/json"}
COLLECTION_PARAMS = (
    (query.FILTER, {"type": "string"}, "CIMI filter expression (DSP0263 4.1.6.1), e.g. state='STARTED' and cpu>=2"),
    (query.SELECT, {"type": "string"}, "comma-separated attributes to return (4.1.6.3)"),
    (query.EXPAND, {"type": "string"}, "comma-separated reference attributes to expand, or * (4.1.6.4)"),
    (query.ORDERBY, {"type": "string"}, "attr[:asc|:desc],... (4.1.6.6)"),
    (query.FIRST, {"type": "integer", "minimum": 1}, "1-based position of the first entry (4.1.6.2)"),
    (query.LAST, {"type": "integer", "minimum": 1}, "1-based position of the last entry (4.1.6.2)"),
)
SINGLE_PARAMS = COLLECTION_PARAMS[1:3]
_SCALARS = {STRING: {"type": "string"}, INTEGER: {"type": "integer"}, BOOLEAN: {"type": "boolean"},
            DATETIME: {"type": "string", "format": "date-time"},
            MAP: {"type": "object", "additionalProperties": {"type": "string"}}, ANY: {}}


def _ref(name):
    return {"$ref": REF_SCHEMA + name}


def _nullable(schema):
    if "$ref" in schema:  # OpenAPI 3.0 ignores siblings of $ref
        return {"allOf": [schema], "nullable": True}
    schema = dict(schema, nullable=True)
    if "enum" in schema:  # OpenAPI 3.0.3: a nullable enum lists null among its values
        schema["enum"] = [*schema["enum"], None]
    return schema


class _Builder:
    """Collects component schemas while walking the model."""

    def __init__(self):
        self.schemas = {}

    # -- schemas from Attr declarations ----------------------------------------------------
    def attr_schema(self, attr, mode):
        """One attribute's schema; mode "out" (served) or "in" (sent by clients)."""
        kind = attr.kind
        if not isinstance(kind, str):
            item = _ref(self.structure(kind, mode))
        elif kind == REF:
            item = self.reference(attr, mode)
        else:
            item = dict(_SCALARS[kind])
            if attr.choices:
                item["enum"] = list(attr.choices)
            if attr.minimum is not None:
                item["minimum"] = attr.minimum
            if attr.maximum is not None and mode == "in":
                item["maximum"] = attr.maximum
            if attr.max_length is not None and mode == "in" and not attr.choices:
                item["maxLength"] = attr.max_length
        if attr.many:
            item = {"type": "array", "items": item}
        if attr.doc:
            if "$ref" in item:
                item = {"allOf": [item], "description": attr.doc}
            else:
                item = dict(item, description=attr.doc)
        return item

    def reference(self, attr, mode):
        if mode == "out":
            # {"href"} as stored, the referenced attributes when held by value or $expand-ed
            return _ref("Reference")
        if attr.of is None:
            return _ref("HrefInput")
        return _ref(self.by_ref_or_value(attr.of))

    def by_ref_or_value(self, cls):
        """Input of a reference that may carry the referenced resource by value (5.14.x: a
        machineConfig by href, by value, or by href with overriding attributes)."""
        name = cls.type_name + "RefOrValue"
        if name not in self.schemas:
            self.schemas[name] = {}  # recursion guard
            props = {"href": {"type": "string", "minLength": 1, "nullable": True}}
            props.update(self.properties(cls, "in"))
            schema = {"type": "object", "properties": props, "additionalProperties": False,
                      "description": "a %s by reference (href, with overriding attributes) or by value"
                                     % cls.type_name}
            required = self.required(cls)
            if required:
                schema["anyOf"] = [{"required": ["href"]}, {"required": required}]
            self.schemas[name] = schema
        return name

    def properties(self, cls, mode):
        """Properties of ``cls``; on input, null stands for absent (from_json skips it), so an
        optional attribute is nullable and a required one is not."""
        props = {}
        if issubclass(cls, model.Resource) and cls.type_name:
            props["resourceURI"] = {"type": "string", "enum": [type_uri(cls.type_name)]}
            if mode == "in":
                props["resourceURI"] = _nullable(props["resourceURI"])
        for wire, attr in cls.attributes.items():
            if mode == "out" and attr.write_only or mode == "in" and attr.read_only:
                continue
            schema = self.attr_schema(attr, mode)
            if mode == "in" and not attr.required:
                schema = _nullable(schema)
            props[wire] = schema
        if mode == "out":
            props.update(EXTENSIONS.get(cls.type_name, {}))
        return props

    @staticmethod
    def required(resource_cls):
        return [w for w, a in resource_cls.attributes.items() if a.required and not a.read_only]

    def structure(self, cls, mode):
        """Component name of ``cls`` for ``mode``, building it on first use."""
        name = cls.type_name + ("" if mode == "out" else "Input")
        if name in self.schemas:
            return name
        self.schemas[name] = {}  # recursion guard
        schema = {"type": "object", "properties": self.properties(cls, mode), "additionalProperties": False}
        if cls.__doc__ and cls.__doc__ != model.Structure.__doc__ and cls.__doc__ != model.Resource.__doc__:
            schema["description"] = " ".join(cls.__doc__.split())
        if mode == "out" and issubclass(cls, model.Resource):
            schema["required"] = ["resourceURI"]  # $select may drop anything else (4.1.6.3)
        elif mode == "in" and self.required(cls):
            schema["required"] = self.required(cls)
        self.schemas[name] = schema
        return name

    def update(self, cls):
        name = cls.type_name + "Update"
        if name not in self.schemas:
            schema = dict(self.schemas[self.structure(cls, "in")])
            schema.pop("required", None)  # partial: even a required attribute may be absent, or null
            schema["properties"] = {k: v if v.get("nullable") else _nullable(v)
                                    for k, v in schema["properties"].items()}
            schema["description"] = "a partial %s: the attributes to change (read-only ones are ignored)" \
                % cls.type_name
            self.schemas[name] = schema
        return name

    def collection(self, kind_cls, key):
        name = kind_cls.type_name + "Collection"
        if name not in self.schemas:
            self.schemas[name] = {
                "type": "object", "additionalProperties": False, "required": ["resourceURI", "id", "count"],
                "properties": {
                    "resourceURI": {"type": "string", "enum": [type_uri(name)]},
                    "id": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                    key: {"type": "array", "items": _ref(self.structure(kind_cls, "out"))},
                    "operations": {"type": "array", "items": _ref("Operation")}}}
        return name

    def action(self, key, verb):
        """The Action body one action href takes: its own action URI and no other."""
        name = "%s%sAction" % (key[0].upper() + key[1:-1], verb.capitalize())
        if name not in self.schemas:
            schema = dict(self.schemas[self.structure(model.Action, "in")])
            props = dict(schema["properties"])
            props["action"] = {"type": "string", "enum": [action_uri(verb)], "description": "this href's action"}
            if verb not in (states.STOP, states.RESTART):
                props.pop("force", None)
            if verb != states.CAPTURE:
                props.pop("image", None)
            for extra in ("volume", "initialLocation", "host", "machineConfig", "capacity"):  # not these actions'
                props.pop(extra, None)
            schema["properties"] = props
            self.schemas[name] = schema
        return name

    def resize_action(self, key, parameter):
        """The Action body of Sirocco's resize of ``key``: its action URI and its one parameter, required."""
        name = "%s%sResizeAction" % (key[0].upper(), key[1:-1])
        if name not in self.schemas:
            schema = dict(self.schemas[self.structure(model.Action, "in")])
            props = {k: v for k, v in schema["properties"].items() if k == parameter or k not in RESIZE_PARAMETERS}
            props["action"] = {"type": "string", "enum": [model.SIROCCO_RESIZE],
                               "description": "Sirocco's resize action"}
            schema["properties"] = props
            schema["required"] = ["action", parameter]
            self.schemas[name] = schema
        return name


def _base_schemas():
    error_props = {"resourceURI": {"type": "string", "enum": [type_uri("Job")]},
                   "state": {"type": "string", "enum": ["FAILED"]},
                   "returnCode": {"type": "integer", "minimum": 400, "maximum": 599},
                   "statusMessage": {"type": "string", "minLength": 1},
                   "timeOfStatusChange": {"type": "string", "format": "date-time"},
                   "progress": {"type": "integer"},
                   "properties": {"type": "object", "required": ["error"], "additionalProperties": False,
                                  "properties": {"error": {"type": "string"}, "attribute": {"type": "string"},
                                                 "explanations": {"type": "array", "items": {"type": "object"}}}}}
    return {
        ERROR: {"type": "object", "additionalProperties": False, "properties": error_props,
                "required": ["resourceURI", "state", "returnCode", "statusMessage"],
                "description": "every error: a Job-shaped document (DSP0263 4.2.2); properties.error names its "
                               "kind, properties.attribute the offending attribute or parameter"},
        "Href": {"type": "object", "required": ["href"], "additionalProperties": False,
                 "properties": {"href": {"type": "string"}}},
        "HrefInput": {"type": "object", "required": ["href"], "additionalProperties": False,
                      "properties": {"href": {"type": "string", "minLength": 1}}},
        "Reference": {"type": "object", "properties": {"href": {"type": "string"}},
                      "description": "a reference {href}; with the referenced attributes when held by value "
                                     "or $expand-ed"},
        "Operation": {"type": "object", "required": ["rel", "href"], "additionalProperties": False,
                      "properties": {"rel": {"type": "string"}, "href": {"type": "string"}}},
    }


def _json(schema_name, description):
    return {"description": description, "content": {"application/json": {"schema": _ref(schema_name)}}}


def _header(description):
    return {"description": description, "schema": {"type": "string"}}


def _responses(ok, body=False):
    """``ok``: {status: response}; every error status documented with the CIMI error body."""
    out = {str(code): value for code, value in ok.items()}
    errors = dict(COMMON_ERRORS)
    if body:
        errors.update(BODY_ERRORS)
    for code, text in errors.items():
        out.setdefault(str(code), _json(ERROR, text))
    retry_after = {"description": "seconds to wait", "schema": {"type": "integer"}}
    out["429"] = dict(out["429"], headers={"Retry-After": retry_after})
    return out


def _params(specs, location="query"):
    return [{"name": name, "in": location, "required": False, "description": text, "schema": schema}
            for name, schema, text in specs]


def _path_param(name, description, schema=None):
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


def _body(schema_name, description=None):
    body = {"required": True, "content": {"application/json": {"schema": _ref(schema_name)}}}
    if description:
        body["description"] = description
    return body


PLAN_STATUSES = ("optimal", "feasible", "heuristic", "infeasible")
ASYNC_HEADERS = {"Location": _header("the resource (or the job)"), "CIMI-Job-URI": _header("the job carrying it out")}


def build(server_url=None):
    """The OpenAPI 3.0 document (a dict); ``server_url`` e.g. ``http://127.0.0.1:8080``."""
    from siroccod.api.cimi import ACTIONS  # the routes module owns the action table

    b = _Builder()
    b.schemas.update(_base_schemas())
    paths = {}
    job = b.structure(model.Job, "out")

    cep_links = {key: _ref("Href") for key in [METADATA_KEY, *KINDS, "hosts", "users"]}
    cep = b.structure(model.CloudEntryPoint, "out")
    b.schemas[cep] = dict(b.schemas[cep], properties=dict(b.schemas[cep]["properties"], **cep_links))
    paths["/cimi/cloudEntryPoint"] = {"get": {
        "operationId": "getCloudEntryPoint", "tags": ["CIMI"], "summary": "the Cloud Entry Point: a link to "
        "every collection the caller may use (hosts and users for administrators)",
        "responses": _responses({200: _json(cep, "the Cloud Entry Point")})}}

    meta = b.structure(model.ResourceMetadata, "out")
    paths["/cimi/" + METADATA_KEY] = {"get": {
        "operationId": "listResourceMetadata", "tags": ["CIMI"], "summary": "ResourceMetadata of every served type",
        "parameters": _params(COLLECTION_PARAMS),
        "responses": _responses({200: _json(b.collection(model.ResourceMetadata, METADATA_KEY), "the collection")})}}
    paths["/cimi/%s/{typeName}" % METADATA_KEY] = {"get": {
        "operationId": "getResourceMetadata", "tags": ["CIMI"], "summary": "ResourceMetadata of one type",
        "parameters": [_path_param("typeName", "a type name, e.g. Machine"), *_params(SINGLE_PARAMS)],
        "responses": _responses({200: _json(meta, "the metadata")})}}

    for key, kind in KINDS.items():
        cls, type_name = kind.cls, kind.type_name
        title = key[0].upper() + key[1:]
        one = b.structure(cls, "out")
        tag = [type_name]
        coll = {"get": {
            "operationId": "list" + title, "tags": tag, "summary": "the %s the caller may see" % key,
            "parameters": _params(COLLECTION_PARAMS),
            "responses": _responses({200: _json(b.collection(cls, key), "the (filtered) collection")})}}
        if kind.create_cls is not None:
            create_body = b.structure(kind.create_cls, "in")
            if kind.lifecycle == ASYNC:
                ok = {202: dict(_json(one, "accepted: the new %s (state CREATING), carried out by a job" % type_name),
                                headers=ASYNC_HEADERS)}
            else:
                ok = {201: dict(_json(one, "created"), headers={"Location": _header("the new resource")})}
                if key == "machineImages":  # never a mere record: a capture, or an import (image_sources.py)
                    ok = {202: dict(_json(one, "accepted: imageLocation is one of the caller's machines, being "
                                          "captured, or an allowed image source, being fetched and registered "
                                          "on the hosts"), headers=ASYNC_HEADERS)}
            if key in ("machines", "systems"):  # routing.py: a provider that might take a machine is down
                ok[503] = _json(ERROR, "no provider can take the machine now: an upstream that might could not "
                                "be asked (which, and why, in statusMessage)")
            coll["post"] = {"operationId": "create" + title[:-1], "tags": tag,
                            "summary": "create a %s (templates by reference or by value)" % type_name,
                            "requestBody": _body(create_body), "responses": _responses(ok, body=True)}
        paths["/cimi/" + key] = coll

        uuid = _path_param("uuid", "the %s's id (the last segment of its href)" % type_name)
        item = {"parameters": [uuid], "get": {
            "operationId": "get" + type_name, "tags": tag, "summary": "one %s" % type_name,
            "parameters": _params(SINGLE_PARAMS), "responses": _responses({200: _json(one, "the %s" % type_name)})}}
        if kind.lifecycle != READONLY:
            item["put"] = {"operationId": "update" + type_name, "tags": tag,
                           "summary": "change a %s%s" % (
                               type_name, " (name, description, properties)" if kind.lifecycle == ASYNC else ""),
                           "requestBody": _body(b.update(cls)),
                           "responses": _responses({200: _json(one, "the changed %s" % type_name)}, body=True)}
            if kind.lifecycle == SYNC:
                ok = {200: {"description": "deleted (no body)"}}
                if key in HOSTED_RECORDS:
                    ok[202] = dict(_json(job, "accepted: the job removing it from its host"), headers=ASYNC_HEADERS)
            else:
                ok = {202: dict(_json(job, "accepted: the job deleting it"), headers=ASYNC_HEADERS)}
            item["delete"] = {"operationId": "delete" + type_name, "tags": tag, "summary": "delete a %s" % type_name,
                              "responses": _responses(ok, body=True)}
        paths["/cimi/%s/{uuid}" % key] = item

        for verb in ACTIONS.get(key, ()) if kind.lifecycle == ASYNC else ():
            paths["/cimi/%s/{uuid}/%s" % (key, verb)] = {"post": {
                "operationId": "%s%s" % (verb, type_name), "tags": tag, "parameters": [uuid],
                "summary": "%s a %s (offered in its operations only when its state allows)" % (verb, type_name),
                "requestBody": _body(b.action(key, verb)),
                "responses": _responses({202: dict(_json(job, "accepted: the job"), headers=ASYNC_HEADERS)},
                                        body=True)}}

    _machine_volumes(b, paths, job)
    _resize(b, paths, job)
    _admin(b, paths)
    doc = {
        "openapi": "3.0.3",
        "info": {"title": "siroccod CIMI endpoint", "version": __version__,
                 "description": "DMTF CIMI (DSP0263 2.0.0, JSON) over local hypervisor hosts. Clients follow "
                                "hrefs from the Cloud Entry Point; the paths below are what those hrefs look "
                                "like. Derived from the resource model's declarations (siroccod/openapi.py)."},
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


def _machine_volumes(b, paths, job):
    uuid = _path_param("uuid", "the machine's id")
    item = {"type": "object", "additionalProperties": False, "required": ["resourceURI", "id", "volume"],
            "properties": {"resourceURI": {"type": "string", "enum": [type_uri("MachineVolume")]},
                           "id": {"type": "string"}, "volume": _ref("Reference"),
                           "initialLocation": {"type": "string"},
                           "operations": {"type": "array", "items": _ref("Operation")}}}
    b.schemas["MachineVolume"] = item
    b.schemas["MachineVolumeCollection"] = {
        "type": "object", "additionalProperties": False, "required": ["resourceURI", "id", "count"],
        "properties": {"resourceURI": {"type": "string", "enum": [type_uri("MachineVolumeCollection")]},
                       "id": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                       "machineVolumes": {"type": "array", "items": _ref("MachineVolume")},
                       "operations": {"type": "array", "items": _ref("Operation")}}}
    attach = dict(b.schemas[b.structure(model.MachineVolume, "in")])
    attach["properties"] = dict(attach["properties"], resourceURI={
        "type": "string", "enum": [type_uri("MachineVolume"), type_uri("locatedVolume")]})
    b.schemas["MachineVolumeInput"] = attach
    tag = ["Machine"]
    paths["/cimi/machines/{uuid}/volumes"] = {"parameters": [uuid], "get": {
        "operationId": "listMachineVolumes", "tags": tag, "summary": "volumes attached to a machine (extension)",
        "parameters": _params(COLLECTION_PARAMS),
        "responses": _responses({200: _json("MachineVolumeCollection", "the machine's volumes")})},
        "post": {"operationId": "attachVolume", "tags": tag, "summary": "attach a volume of the same host",
                 "requestBody": _body("MachineVolumeInput"),
                 "responses": _responses({202: dict(_json(job, "accepted: the job"), headers=ASYNC_HEADERS)},
                                         body=True)}}
    volume = _path_param("volume", "the volume's id")
    paths["/cimi/machines/{uuid}/volumes/{volume}"] = {"parameters": [uuid, volume], "get": {
        "operationId": "getMachineVolume", "tags": tag, "summary": "one attachment",
        "responses": _responses({200: _json("MachineVolume", "the attachment")})},
        "delete": {"operationId": "detachVolume", "tags": tag, "summary": "detach the volume",
                   "responses": _responses({202: dict(_json(job, "accepted: the job"), headers=ASYNC_HEADERS)},
                                           body=True)}}


def _resize(b, paths, job):
    """Sirocco's resize actions (api.cimi.EXTENSION_ACTIONS): a machine's machineConfig, a volume's capacity."""
    for key, type_name, parameter, summary in (
            ("machines", "Machine", "machineConfig", "give a machine the cpu and memory of a machineConfig (by "
             "reference or by value; Sirocco extension, offered in its operations when its host can and its state "
             "allows: 409 when the host has not the room or needs it stopped first)"),
            ("volumes", "Volume", "capacity", "grow a volume to a capacity in KB (Sirocco extension, offered in its "
             "operations when its host can; 400 unless larger than now)")):
        ok = {202: dict(_json(job, "accepted: the job"), headers=ASYNC_HEADERS)}
        params = [_path_param("uuid", "the %s's id" % type_name.lower())]
        if key == "machines":  # its dry run (api.cimi.DRY_RUN): whether a stop is needed first
            b.schemas["ResizeDryRun"] = {"type": "object", "required": ["needsStop"], "properties": {
                "needsStop": {"type": "boolean"}, "reason": {"type": "string", "description": "what to do first"}}}
            ok[200] = _json("ResizeDryRun", "with dryRun: the resize's input is valid; nothing changed")
            params += _params([("dryRun", {"type": "string", "enum": ["true"]},
                                "check only: nothing changes, the answer says whether the machine must be stopped "
                                "first (Sirocco extension)")])
        paths["/cimi/%s/{uuid}/resize" % key] = {"post": {
            "operationId": "resize" + type_name, "tags": [type_name], "summary": summary, "parameters": params,
            "requestBody": _body(b.resize_action(key, parameter)), "responses": _responses(ok, body=True)}}


def _admin(b, paths):
    """/admin: hosts and users (administrators only). Not CIMI: plain JSON, CIMI error bodies."""
    from siroccod.auth import _NAME

    name_schema = {"type": "string", "pattern": "^%s$" % _NAME.pattern}
    password = {"type": "string", "minLength": 8, "maxLength": 1024, "nullable": True,
                "description": "absent or null: generated"}
    b.schemas["Host"] = {"type": "object", "required": ["name", "provider", "state"], "properties": {
        "name": {"type": "string"}, "provider": {"type": "string"}, "uri": {"type": "string", "nullable": True},
        "simulated": {"type": "boolean"}, "state": {"type": "string", "enum": ["UP", "DOWN", "UNKNOWN"]},
        "enabled": {"type": "boolean"}, "cpu": {"type": "integer"}, "memoryMiB": {"type": "integer"},
        "cpuMHz": {"type": "integer", "nullable": True}, "usedCpu": {"type": "integer"},
        "usedMemoryMiB": {"type": "integer"}, "machines": {"type": "integer"},
        "powerIdle": {"type": "number", "nullable": True}, "powerMax": {"type": "number", "nullable": True},
        "powerEstimate": {"type": "number"}, "updated": {"type": "string", "format": "date-time"},
        "statusMessage": {"type": "string"}}}
    b.schemas["User"] = {"type": "object", "required": ["name", "tenant", "role"], "properties": {
        "name": {"type": "string"}, "tenant": {"type": "string"}, "role": {"type": "string", "enum": ["admin", "user"]},
        "created": {"type": "string", "format": "date-time"},
        "password": {"type": "string", "description": "the generated password, shown once"}}}
    b.schemas["UserInput"] = {"type": "object", "required": ["name", "tenant"], "additionalProperties": False,
                              "properties": {"name": name_schema, "tenant": name_schema,
                                             "role": {"type": "string", "enum": ["admin", "user", None],
                                                      "nullable": True},
                                             "password": password}}
    b.schemas["PasswordInput"] = {"type": "object", "additionalProperties": False,
                                  "properties": {"password": password}}
    b.schemas["TokenInput"] = {"type": "object", "additionalProperties": False,
                               "properties": {"label": {"type": "string", "maxLength": 64, "nullable": True},
                                              "lifetimeDays": {"type": "integer", "minimum": 0, "maximum": 3650,
                                                               "nullable": True,
                                                               "description": "0: never expires; absent: the "
                                                                              "daemon's token_lifetime_days"}}}
    b.schemas["Token"] = {"type": "object", "required": ["id"], "properties": {
        "id": {"type": "integer"}, "label": {"type": "string", "nullable": True},
        "created": {"type": "string", "format": "date-time"},
        "expires": {"type": "string", "format": "date-time", "nullable": True},
        "token": {"type": "string", "description": "the token itself, shown once when it is made"}}}
    limits = {key: {"type": "integer", "minimum": 0, "maximum": 2 ** 31 - 1, "nullable": True}
              for key in ("cpu", "memoryMiB", "machines", "volumes")}
    b.schemas["QuotaInput"] = {"type": "object", "additionalProperties": False, "properties": limits,
                               "description": "the whole quota: an absent or null limit is no limit"}
    b.schemas["Tenant"] = {"type": "object", "required": ["name", "quota", "usage"], "properties": {
        "name": {"type": "string"}, "quota": {"type": "object", "properties": limits},
        "usage": {"type": "object", "properties": {key: {"type": "integer"} for key in limits}}}}
    tag = ["admin"]
    name = _path_param("name", "a user name", name_schema)
    obj = {"type": "object"}
    b.schemas["Reconcile"] = dict(obj, description="what reconciling changed, per host")
    paths["/admin/hosts"] = {"get": {"operationId": "listHosts", "tags": tag, "summary": "every host",
                                     "responses": _responses({200: {"description": "the hosts", "content": {
                                         "application/json": {"schema": {
                                             "type": "object", "required": ["hosts"],
                                             "properties": {"hosts": {"type": "array",
                                                                      "items": _ref("Host")}}}}}}})}}
    paths["/admin/hosts/{name}"] = {"get": {
        "operationId": "getHost", "tags": tag, "summary": "one host",
        "parameters": [_path_param("name", "a host name")], "responses": _responses({200: _json("Host", "the host")})}}
    paths["/admin/reconcile"] = {"post": {
        "operationId": "reconcile", "tags": tag, "summary": "re-read every host now",
        "responses": _responses({200: _json("Reconcile", "the changes")})}}
    _consolidation(b, paths)
    paths["/admin/users"] = {
        "get": {"operationId": "listUsers", "tags": tag, "summary": "every user",
                "responses": _responses({200: {"description": "the users", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["users"],
                               "properties": {"users": {"type": "array", "items": _ref("User")}}}}}}})},
        "post": {"operationId": "addUser", "tags": tag, "summary": "add a user (and its tenant if new)",
                 "requestBody": _body("UserInput"),
                 "responses": _responses({201: dict(_json("User", "the user"), headers={
                     "Location": _header("the user")})}, body=True)}}
    paths["/admin/users/{name}"] = {"parameters": [name], "get": {
        "operationId": "getUser", "tags": tag, "summary": "one user",
        "responses": _responses({200: _json("User", "the user")})},
        "delete": {"operationId": "removeUser", "tags": tag, "summary": "remove a user and its tokens",
                   "responses": _responses({200: {"description": "removed", "content": {
                       "application/json": {"schema": obj}}}}, body=True)}}
    paths["/admin/users/{name}/password"] = {"parameters": [name], "put": {
        "operationId": "setPassword", "tags": tag, "summary": "set (or generate) a password",
        "requestBody": _body("PasswordInput"),
        "responses": _responses({200: {"description": "changed; a generated password is shown once", "content": {
            "application/json": {"schema": dict(obj, properties={"password": {"type": "string"}})}}}}, body=True)}}
    paths["/admin/users/{name}/tokens"] = {"parameters": [name], "get": {
        "operationId": "listTokens", "tags": tag, "summary": "the user's tokens (never the tokens themselves)",
        "responses": _responses({200: {"description": "the tokens", "content": {"application/json": {
            "schema": dict(obj, required=["tokens"], properties={"tokens": {"type": "array",
                                                                            "items": _ref("Token")}})}}}})},
        "post": {"operationId": "newToken", "tags": tag, "summary": "a new API token, shown once",
                 "requestBody": _body("TokenInput"),
                 "responses": _responses({201: dict(_json("Token", "the token"), headers={
                     "Location": _header("the token")})}, body=True)}}
    token_id = _path_param("id", "a token's id", {"type": "integer"})
    paths["/admin/users/{name}/tokens/{id}"] = {"parameters": [name, token_id], "delete": {
        "operationId": "revokeToken", "tags": tag, "summary": "revoke a token, at once",
        "responses": _responses({200: {"description": "revoked", "content": {
            "application/json": {"schema": obj}}}})}}
    tenant_name = _path_param("name", "a tenant name", name_schema)
    paths["/admin/tenants"] = {"get": {
        "operationId": "listTenants", "tags": tag, "summary": "every tenant: quota and usage",
        "responses": _responses({200: {"description": "the tenants", "content": {"application/json": {
            "schema": dict(obj, required=["tenants"], properties={"tenants": {"type": "array",
                                                                              "items": _ref("Tenant")}})}}}})}}
    paths["/admin/tenants/{name}"] = {"parameters": [tenant_name], "get": {
        "operationId": "getTenant", "tags": tag, "summary": "one tenant: quota and usage",
        "responses": _responses({200: _json("Tenant", "the tenant")})}}
    paths["/admin/tenants/{name}/quota"] = {"parameters": [tenant_name], "put": {
        "operationId": "setQuota", "tags": tag, "summary": "set a tenant's whole quota",
        "requestBody": _body("QuotaInput"), "responses": _responses({200: _json("Tenant", "the tenant")}, body=True)}}


def _consolidation(b, paths):
    """POST /admin/consolidation (siroccod/consolidation.py)."""
    from siroccod.consolidation import MAX_TIME_LIMIT
    num = {"type": "number"}
    b.schemas["ConsolidationInput"] = {"type": "object", "additionalProperties": False, "properties": {
        "dryRun": {"type": "boolean", "nullable": True, "description": "default true: only answer the plan"},
        "maxMigrations": {"type": "integer", "minimum": 0, "nullable": True},
        "constraints": {"type": "array", "nullable": True, "items": {"type": "object"},
                        "description": "constraints of `siroccod place` (machines by uuid or href, hosts by name)"},
        "migrationCost": {"type": "number", "minimum": 0, "nullable": True, "description": "watts per move"},
        "timeLimit": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": MAX_TIME_LIMIT,
                      "nullable": True, "description": "seconds the optimizer may take (default 5)"}}}
    move = {"type": "object", "required": ["machine", "from", "to", "mode"], "properties": {
        "machine": _ref("Href"), "name": {"type": "string", "nullable": True}, "from": {"type": "string"},
        "to": {"type": "string"}, "mode": {"type": "string", "enum": ["live", "offline", "simulated"]}}}
    b.schemas["ConsolidationPlan"] = {"type": "object", "required": ["dryRun", "status"], "properties": {
        "dryRun": {"type": "boolean"}, "status": {"type": "string", "enum": list(PLAN_STATUSES)},
        "hosts": {"type": "integer"}, "machines": {"type": "integer"}, "solveSeconds": num,
        "migrations": {"type": "array", "items": move, "description": "in the order they are carried out"},
        "hostsOff": {"type": "array", "items": {"type": "string"}, "description": "hosts emptied: to switch off"},
        "hostsOn": {"type": "array", "items": {"type": "string"}}, "powerBefore": num, "powerAfter": num,
        "activeHostsBefore": {"type": "integer"}, "activeHostsAfter": {"type": "integer"},
        "staying": {"type": "array", "items": {"type": "object"}, "description": "machines that cannot move, why"},
        "reason": {"type": "string"}, "explanations": {"type": "array", "items": {"type": "object"}},
        "job": _ref("Href")}}
    paths["/admin/consolidation"] = {"post": {
        "operationId": "consolidate", "tags": ["admin"], "summary": "empty hosts by moving machines: plan, or do",
        "requestBody": _body("ConsolidationInput"),
        "responses": _responses({
            200: _json("ConsolidationPlan", "the dry run's plan (status infeasible: why, which constraint)"),
            202: dict(_json("ConsolidationPlan", "the plan, carried out by the job"), headers=ASYNC_HEADERS),
            409: _json(ERROR, "infeasible (properties.explanations), or a consolidation already under way")},
            body=True)}}


def register(app):
    """``GET /cimi/openapi.json``: the description, built once per base URL; no authentication."""
    import json
    import threading

    from siroccod.guard import root_url

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

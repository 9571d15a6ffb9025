"""The component schemas of the OpenAPI description, derived from the shared model's ``Attr``
declarations: ``<Type>`` (served), ``<Type>Input`` (sent on create), ``<Type>Update`` (PUT, partial),
collections and action bodies; and the few that are not the model's (the error body, hrefs)."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
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
from siroccod.kinds import RESIZE_PARAMETERS

REF_SCHEMA = "#/components/schemas/"
ERROR = "CimiError"
SCALARS = {STRING: {"type": "string"}, INTEGER: {"type": "integer"}, BOOLEAN: {"type": "boolean"},
           DATETIME: {"type": "string", "format": "date-time"},
           MAP: {"type": "object", "additionalProperties": {"type": "string"}}, ANY: {}}


def ref(name):
    return {"$ref": REF_SCHEMA + name}


def nullable(schema):
    if "$ref" in schema:  # OpenAPI 3.0 ignores siblings of $ref
        return {"allOf": [schema], "nullable": True}
    schema = dict(schema, nullable=True)
    if "enum" in schema:  # OpenAPI 3.0.3: a nullable enum lists null among its values
        schema["enum"] = [*schema["enum"], None]
    return schema


class Builder:
    """Collects component schemas while walking the model."""

    def __init__(self):
        self.schemas = {}

    # -- schemas from Attr declarations ----------------------------------------------------
    def attr_schema(self, attr, mode):
        """One attribute's schema; mode "out" (served) or "in" (sent by clients)."""
        kind = attr.kind
        if attr.collection and mode == "out":  # a reference to a collection (5.5.12), its items if expanded
            return ref(self.collection_reference(attr))
        if not isinstance(kind, str):
            item = ref(self.structure(kind, mode))
        elif kind == REF:
            item = self.reference(attr, mode)
        else:
            item = dict(SCALARS[kind])
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
            return ref("Reference")
        if attr.of is None:
            return ref("HrefInput")
        return ref(self.by_ref_or_value(attr.of))

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
                props["resourceURI"] = nullable(props["resourceURI"])
        for wire, attr in cls.attributes.items():
            if mode == "out" and attr.write_only or mode == "in" and attr.read_only:
                continue
            schema = self.attr_schema(attr, mode)
            if mode == "in" and not attr.required:
                schema = nullable(schema)
            props[wire] = schema
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
            schema["properties"] = {k: v if v.get("nullable") else nullable(v)
                                    for k, v in schema["properties"].items()}
            schema["description"] = "a partial %s: the attributes to change (read-only ones are ignored)" \
                % cls.type_name
            self.schemas[name] = schema
        return name

    def collection(self, kind_cls, key):
        name = kind_cls.type_name + "Collection"
        if name not in self.schemas:
            self.schemas[name] = {
                # $select applies to the Collection itself (4.1.6.3): count,operations drops id and the entries
                "type": "object", "additionalProperties": False, "required": ["resourceURI"],
                "properties": {
                    "resourceURI": {"type": "string", "enum": [type_uri(name)]},
                    "id": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                    key: {"type": "array", "items": ref(self.structure(kind_cls, "out"))},
                    "operations": {"type": "array", "items": ref("Operation")}}}
        return name

    def collection_of(self, attr):
        """The collection document an attribute's collection (5.5.12) is: of resources (a System's machines, a
        Machine's meters) as their own collections; of components (disks, interfaces, located volumes, samples)
        each item with an id and its resourceURI."""
        item_type, entries = attr.collection
        if item_type in model.RESOURCE_TYPES:
            return self.collection(model.RESOURCE_TYPES[item_type], entries)
        name = item_type + "Collection"
        if name not in self.schemas:
            entry = item_type + "Entry"
            props = {"resourceURI": {"type": "string", "enum": [type_uri(item_type)]}, "id": {"type": "string"}}
            props.update(self.properties(attr.kind, "out"))
            props["operations"] = {"type": "array", "items": ref("Operation")}
            self.schemas[entry] = {"type": "object", "additionalProperties": False, "properties": props,
                                   "required": ["resourceURI"]}  # $select may drop the rest (4.1.6.3)
            self.schemas[name] = {
                "type": "object", "additionalProperties": False, "required": ["resourceURI"],  # $select (4.1.6.3)
                "properties": {
                    "resourceURI": {"type": "string", "enum": [type_uri(name)]},
                    "id": {"type": "string"}, "count": {"type": "integer", "minimum": 0},
                    entries: {"type": "array", "items": ref(entry)},
                    "operations": {"type": "array", "items": ref("Operation")}}}
        return name

    def collection_reference(self, attr):
        """A collection attribute as served: {href}, the collection's attributes too when $expand-ed."""
        coll = self.collection_of(attr)
        name = coll + "Reference"
        if name not in self.schemas:
            props = dict(self.schemas[coll]["properties"], href={"type": "string"})
            self.schemas[name] = {"type": "object", "additionalProperties": False, "required": ["href"],
                                  "properties": props, "description": "a reference to a collection (5.5.12): "
                                  "follow href for its items, or ask $expand to have them here"}
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


def base_schemas():
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

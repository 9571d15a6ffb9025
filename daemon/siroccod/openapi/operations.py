"""The parts of the OpenAPI description's operations: query and path parameters, request bodies,
responses (every error status documented with the CIMI error body)."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import query
from siroccod.openapi.schemas import ERROR, ref

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


def reply(schema_name, description):
    return {"description": description, "content": {"application/json": {"schema": ref(schema_name)}}}


def header(description):
    return {"description": description, "schema": {"type": "string"}}


def responses(ok, body=False):
    """``ok``: {status: response}; every error status documented with the CIMI error body."""
    out = {str(code): value for code, value in ok.items()}
    errors = dict(COMMON_ERRORS)
    if body:
        errors.update(BODY_ERRORS)
    for code, text in errors.items():
        out.setdefault(str(code), reply(ERROR, text))
    retry_after = {"description": "seconds to wait", "schema": {"type": "integer"}}
    out["429"] = dict(out["429"], headers={"Retry-After": retry_after})
    return out


def query_params(specs, location="query"):
    return [{"name": name, "in": location, "required": False, "description": text, "schema": schema}
            for name, schema, text in specs]


def path_param(name, description, schema=None):
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "string"}}


def request_body(schema_name, description=None):
    body = {"required": True, "content": {"application/json": {"schema": ref(schema_name)}}}
    if description:
        body["description"] = description
    return body


ASYNC_HEADERS = {"Location": header("the resource (or the job)"), "CIMI-Job-URI": header("the job carrying it out")}

"""The /admin paths of the OpenAPI description: hosts, users and their tokens, tenants and their
quotas, consolidation (administrators only; plain JSON, CIMI error bodies)."""

from __future__ import annotations

from siroccod.auth import _NAME
from siroccod.consolidation import MAX_TIME_LIMIT
from siroccod.openapi.operations import ASYNC_HEADERS, header, path_param, reply, request_body, responses
from siroccod.openapi.schemas import ERROR, ref

PLAN_STATUSES = ("optimal", "feasible", "heuristic", "infeasible")


def admin(b, paths):
    """/admin: hosts and users (administrators only). Not CIMI: plain JSON, CIMI error bodies."""
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
    name = path_param("name", "a user name", name_schema)
    obj = {"type": "object"}
    b.schemas["Reconcile"] = dict(obj, description="what reconciling changed, per host")
    paths["/admin/hosts"] = {"get": {"operationId": "listHosts", "tags": tag, "summary": "every host",
                                     "responses": responses({200: {"description": "the hosts", "content": {
                                         "application/json": {"schema": {
                                             "type": "object", "required": ["hosts"],
                                             "properties": {"hosts": {"type": "array",
                                                                      "items": ref("Host")}}}}}}})}}
    paths["/admin/hosts/{name}"] = {"get": {
        "operationId": "getHost", "tags": tag, "summary": "one host",
        "parameters": [path_param("name", "a host name")], "responses": responses({200: reply("Host", "the host")})}}
    paths["/admin/reconcile"] = {"post": {
        "operationId": "reconcile", "tags": tag, "summary": "re-read every host now",
        "responses": responses({200: reply("Reconcile", "the changes")})}}
    consolidation(b, paths)
    paths["/admin/users"] = {
        "get": {"operationId": "listUsers", "tags": tag, "summary": "every user",
                "responses": responses({200: {"description": "the users", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["users"],
                               "properties": {"users": {"type": "array", "items": ref("User")}}}}}}})},
        "post": {"operationId": "addUser", "tags": tag, "summary": "add a user (and its tenant if new)",
                 "requestBody": request_body("UserInput"),
                 "responses": responses({201: dict(reply("User", "the user"), headers={
                     "Location": header("the user")})}, body=True)}}
    paths["/admin/users/{name}"] = {"parameters": [name], "get": {
        "operationId": "getUser", "tags": tag, "summary": "one user",
        "responses": responses({200: reply("User", "the user")})},
        "delete": {"operationId": "removeUser", "tags": tag, "summary": "remove a user and its tokens",
                   "responses": responses({200: {"description": "removed", "content": {
                       "application/json": {"schema": obj}}}}, body=True)}}
    paths["/admin/users/{name}/password"] = {"parameters": [name], "put": {
        "operationId": "setPassword", "tags": tag, "summary": "set (or generate) a password",
        "requestBody": request_body("PasswordInput"),
        "responses": responses({200: {"description": "changed; a generated password is shown once", "content": {
            "application/json": {"schema": dict(obj, properties={"password": {"type": "string"}})}}}}, body=True)}}
    paths["/admin/users/{name}/tokens"] = {"parameters": [name], "get": {
        "operationId": "listTokens", "tags": tag, "summary": "the user's tokens (never the tokens themselves)",
        "responses": responses({200: {"description": "the tokens", "content": {"application/json": {
            "schema": dict(obj, required=["tokens"], properties={"tokens": {"type": "array",
                                                                            "items": ref("Token")}})}}}})},
        "post": {"operationId": "newToken", "tags": tag, "summary": "a new API token, shown once",
                 "requestBody": request_body("TokenInput"),
                 "responses": responses({201: dict(reply("Token", "the token"), headers={
                     "Location": header("the token")})}, body=True)}}
    token_id = path_param("id", "a token's id", {"type": "integer"})
    paths["/admin/users/{name}/tokens/{id}"] = {"parameters": [name, token_id], "delete": {
        "operationId": "revokeToken", "tags": tag, "summary": "revoke a token, at once",
        "responses": responses({200: {"description": "revoked", "content": {
            "application/json": {"schema": obj}}}})}}
    tenant_name = path_param("name", "a tenant name", name_schema)
    paths["/admin/tenants"] = {"get": {
        "operationId": "listTenants", "tags": tag, "summary": "every tenant: quota and usage",
        "responses": responses({200: {"description": "the tenants", "content": {"application/json": {
            "schema": dict(obj, required=["tenants"], properties={"tenants": {"type": "array",
                                                                              "items": ref("Tenant")}})}}}})}}
    paths["/admin/tenants/{name}"] = {"parameters": [tenant_name], "get": {
        "operationId": "getTenant", "tags": tag, "summary": "one tenant: quota and usage",
        "responses": responses({200: reply("Tenant", "the tenant")})}}
    paths["/admin/tenants/{name}/quota"] = {"parameters": [tenant_name], "put": {
        "operationId": "setQuota", "tags": tag, "summary": "set a tenant's whole quota",
        "requestBody": request_body("QuotaInput"),
        "responses": responses({200: reply("Tenant", "the tenant")}, body=True)}}


def consolidation(b, paths):
    """POST /admin/consolidation (siroccod/consolidation.py)."""
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
        "machine": ref("Href"), "name": {"type": "string", "nullable": True}, "from": {"type": "string"},
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
        "job": ref("Href")}}
    paths["/admin/consolidation"] = {"post": {
        "operationId": "consolidate", "tags": ["admin"], "summary": "empty hosts by moving machines: plan, or do",
        "requestBody": request_body("ConsolidationInput"),
        "responses": responses({
            200: reply("ConsolidationPlan", "the dry run's plan (status infeasible: why, which constraint)"),
            202: dict(reply("ConsolidationPlan", "the plan, carried out by the job"), headers=ASYNC_HEADERS),
            409: reply(ERROR, "infeasible (properties.explanations), or a consolidation already under way")},
            body=True)}}

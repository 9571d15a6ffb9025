"""/admin: hosts and users, for the admin role only (403 for everyone else).

    GET    /admin/hosts                  capacity, usage, power and state of every host
    GET    /admin/hosts/<name>
    POST   /admin/reconcile              re-read every host now (see recovery.py)
    GET    /admin/users                  name, tenant, role (never a hash)
    POST   /admin/users                  {"name", "tenant", "role"?, "password"?}: 201; a generated
                                         password is in the reply, once
    DELETE /admin/users/<name>
    PUT    /admin/users/<name>/password  {"password"?}: a generated one is returned once; the user's tokens
                                         are revoked
    GET    /admin/users/<name>/tokens    id, label, created, expires of each (never the token)
    POST   /admin/users/<name>/tokens    {"label"?, "lifetimeDays"?}: 201 {"token", "id", ...}, shown once
    DELETE /admin/users/<name>/tokens/<id>   revoked at once, in every process
    GET    /admin/tenants                every tenant: its quota (null: no limit) and what it holds
    GET    /admin/tenants/<name>
    PUT    /admin/tenants/<name>/quota   {"cpu"?, "memoryMiB"?, "machines"?, "volumes"?}: the whole quota
                                         (absent or null: no limit); see quotas.py
    POST   /admin/consolidation          {"dryRun"?, "maxMigrations"?, "constraints"?, "migrationCost"?,
                                         "timeLimit"?}: the plan (200), or its job (202); see consolidation.py
"""

from __future__ import annotations

from flask import Blueprint, g
from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, NotFound
from siroccod import consolidation, quotas
from siroccod.api.common import base_uri, daemon, require_admin, respond
from siroccod.errors import json_body
from siroccod.guard import root_url
from siroccod.store import Host, Tenant, iso

bp = Blueprint("admin", __name__, url_prefix="/admin")
bp.before_request(require_admin)


def host_views(session, d):
    """One JSON view per configured host: capacity, what is placed on it, power."""
    loads = {h.id: h for h in d.service.host_loads(session)}
    views = []
    for handle in d.pool.handles.values():
        row = session.get(Host, handle.id)
        load = loads.get(handle.id)
        used_cpu = load.used_cpu if load else 0
        view = {"name": row.name, "provider": row.provider, "uri": row.uri, "simulated": row.simulated,
                "state": row.state, "enabled": row.enabled, "cpu": row.cpu, "memoryMiB": row.memory_kib // 1024,
                "cpuMHz": row.cpu_mhz, "usedCpu": used_cpu,
                "usedMemoryMiB": (load.used_memory_kib if load else 0) // 1024,
                "machines": load.machines if load else 0, "powerIdle": row.power_idle, "powerMax": row.power_max,
                "updated": iso(row.updated)}
        if row.status_message:
            view["statusMessage"] = row.status_message
        if row.power_idle is not None and row.power_max is not None:
            utilisation = min(1.0, used_cpu / row.cpu) if row.cpu else 0.0
            view["powerEstimate"] = round(row.power_idle + (row.power_max - row.power_idle) * utilisation, 1) \
                if view["machines"] else 0.0
        views.append(view)
    return views


def user_view(user):
    return {"name": user.name, "tenant": user.tenant.name, "role": user.role, "created": iso(user.created)}


@bp.get("/hosts")
def hosts():
    d = daemon()
    with d.store.read() as session:
        return respond({"hosts": host_views(session, d)})


@bp.get("/hosts/<name>")
def host(name):
    d = daemon()
    with d.store.read() as session:
        for view in host_views(session, d):
            if view["name"] == name:
                return respond(view)
    raise NotFound("no host '%s'" % name)


@bp.post("/reconcile")
def reconcile():
    return respond(daemon().recovery.reconcile())


@bp.get("/users")
def users():
    d = daemon()
    with d.store.read() as session:
        return respond({"users": [user_view(u) for u in d.users.list(session)]})


def _string(body, key, required=False):
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidInput("%s: expected a string" % key, attribute=key)
    return value


def _only(body, *allowed):
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidInput("unknown attribute(s): %s" % ", ".join(unknown), attribute=unknown[0])
    return body


@bp.post("/users")
def add_user():
    body = _only(json_body(), "name", "tenant", "role", "password")
    d = daemon()
    with d.store.transaction() as session:
        user, generated = d.users.add(session, _string(body, "name", True), _string(body, "tenant", True),
                                      _string(body, "role") or "user", _string(body, "password"))
        view = user_view(user)
    if generated:
        view["password"] = generated
    return respond(view, 201, {"Location": root_url() + "admin/users/" + view["name"]})


@bp.get("/users/<name>")
def get_user(name):
    d = daemon()
    with d.store.read() as session:
        return respond(user_view(d.users.get(session, name)))


@bp.delete("/users/<name>")
def remove_user(name):
    d = daemon()
    with d.store.transaction() as session:
        d.users.remove(session, name)
    return respond({}, 200)


@bp.put("/users/<name>/password")
def set_password(name):
    body = _only(json_body(), "password")
    d = daemon()
    with d.store.transaction() as session:
        generated = d.users.set_password(session, name, _string(body, "password"))
    return respond({"password": generated} if generated else {}, 200)


def token_view(row):
    return {"id": row.id, "label": row.label, "created": iso(row.created), "expires": iso(row.expires_at)}


@bp.get("/users/<name>/tokens")
def list_tokens(name):
    d = daemon()
    with d.store.read() as session:
        return respond({"tokens": [token_view(t) for t in d.users.tokens(session, name)]})


@bp.post("/users/<name>/tokens")
def new_token(name):
    body = _only(json_body(), "label", "lifetimeDays")
    d = daemon()
    with d.store.transaction() as session:
        token, row = d.users.new_token(session, name, _string(body, "label"), body.get("lifetimeDays"))
        view = dict(token_view(row), token=token)
    return respond(view, 201, {"Location": root_url() + "admin/users/%s/tokens/%d" % (name, view["id"])})


@bp.delete("/users/<name>/tokens/<int:token_id>")
def revoke_token(name, token_id):
    d = daemon()
    with d.store.transaction() as session:
        d.users.revoke_token(session, name, token_id)
    return respond({}, 200)


def _tenant(session, name):
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        raise NotFound("no tenant '%s'" % name)
    return tenant


@bp.get("/tenants")
def tenants():
    d = daemon()
    with d.store.read() as session:
        rows = session.scalars(select(Tenant).order_by(Tenant.name)).all()
        return respond({"tenants": [quotas.view(session, t) for t in rows]})


@bp.get("/tenants/<name>")
def tenant(name):
    d = daemon()
    with d.store.read() as session:
        return respond(quotas.view(session, _tenant(session, name)))


@bp.put("/tenants/<name>/quota")
def set_quota(name):
    body = json_body()
    d = daemon()
    with d.store.transaction() as session:
        row = _tenant(session, name)
        quotas.set_quota(session, row, body)
        session.flush()
        return respond(quotas.view(session, row))


@bp.post("/consolidation")
def consolidate():
    status, doc, headers = consolidation.request(daemon(), g.principal, json_body(), base_uri())
    return respond(doc, status, headers)

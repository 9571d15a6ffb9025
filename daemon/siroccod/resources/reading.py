"""Reading: a collection's documents (rendered once per change, cached), one resource, an href ($expand)."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from sqlalchemy import Text, bindparam, cast, or_, select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    NotFound,
)
from siroccod import hrefs
from siroccod.kinds import KINDS
from siroccod.resources import machines, rendering, subcollections
from siroccod.store import Job, Resource

log = logging.getLogger(__name__)
# doc as its stored text: decoded only when the rendered document is not cached yet
LIST_COLUMNS = (Resource.uuid, Resource.tenant_id, Resource.type, Resource.host_id, Resource.native_id,
                Resource.state, cast(Resource.doc, Text).label("doc"), Resource.created, Resource.updated)
# rendered documents kept (one per resource and base URI): ~6.5 KB each for a machine, so at most
# ~130 MB; past that the cache starts again (a larger listing is then rendered as without it)
RENDERED_MAX = 20000


def decoded(row):
    """A listed row (doc as stored text) with its doc decoded, for rendering."""
    values = dict(row._mapping)
    if isinstance(values["doc"], str):
        values["doc"] = json.loads(values["doc"])
    return SimpleNamespace(**values)


def list_rows(ctx, session, p, key):
    if key == "jobs":
        return list(session.scalars(select(Job).where(Job.tenant_id == p.tenant_id).order_by(Job.created)))
    # plain rows, not ORM objects, on the session's connection (Core), from a statement built
    # once: listing 1,000 machines must stay cheap
    return session.connection().execute(statement(ctx, key, False), {"tenant": p.tenant_id}).all()


def statement(ctx, key, one):
    """SELECT LIST_COLUMNS of a collection the caller (:tenant) sees, ordered; ``one``: of :uuid."""
    stmt = ctx.statements.get((key, one))
    if stmt is None:
        kind = KINDS[key]
        tenant = Resource.tenant_id == bindparam("tenant")
        query = select(*LIST_COLUMNS).where(
            Resource.type == kind.type_name, or_(tenant, Resource.tenant_id.is_(None)) if kind.shared else tenant)
        if one:
            query = query.where(Resource.uuid == bindparam("uuid"))
        stmt = ctx.statements[(key, one)] = query.order_by(Resource.created, Resource.uuid)
    return stmt


def list_docs(ctx, p, key, base):
    """The rendered documents of a collection. Rendering is cached per resource and base URI,
    keyed by everything it reads (stored text, state, host, native id, updated): a row that
    did not change is not decoded or rendered again. The documents returned are shared:
    callers copy before changing one (query.apply_query does)."""
    with ctx.store.read() as session:
        rows = list_rows(ctx, session, p, key)
        if key == "jobs":
            return [rendering.render_job(ctx, row, base, p, session) for row in rows]
        if key == "systems":  # a system's state and operations follow its machines': not cached
            rows = [decoded(row) for row in rows]
            extra = rendering.render_context(ctx, session, rows)
            return [rendering.render(ctx, row, base, p, session, extra) for row in rows]
        return rendered(ctx, rows, base, p, session, {"ops": {}})


def rendered(ctx, rows, base, p, session, extra):
    """The rendered documents of listed rows, from the cache while each row is unchanged (a
    plain loop: this runs once per resource of a listing)."""
    cache, admin, out = ctx.rendered, p.is_admin, []
    for row in rows:
        uuid, tenant_id, _type, host_id, native_id, state, doc, _created, updated = row  # LIST_COLUMNS
        version = (doc, state, host_id, native_id, updated, tenant_id is None and admin)
        hit = cache.get((base, uuid))
        if hit is None or hit[0] != version:
            hit = (version, rendering.render(ctx, decoded(row), base, p, session, extra))
            if len(cache) >= RENDERED_MAX:
                cache.clear()
            cache[(base, uuid)] = hit
        out.append(hit[1])
    return out


def get_doc(ctx, p, key, uuid, base):
    if key == "machines" and ctx.pool.upstreams:
        machines.refresh_routed(ctx, p, uuid)  # a routed machine's state from its upstream
    with ctx.store.read() as session:
        if key == "jobs":
            return rendering.render_job(ctx, find_job(ctx, session, p, uuid), base, p, session)
        if key not in ("meters", "systems"):  # one row as listed (no ORM object), rendered once
            row = session.connection().execute(statement(ctx, key, True), {
                "tenant": p.tenant_id, "uuid": uuid}).first() if isinstance(uuid, str) and len(uuid) <= 64 else None
            if row is None:
                raise NotFound("%s: no %s '%s'" % (key, KINDS[key].type_name, uuid))
            return rendered(ctx, (row,), base, p, session, None)[0]
        row = ctx.find(session, p, KINDS[key].type_name, uuid)
        if key == "meters":
            return rendering.render(ctx, row, base, p, session, live=True)
        return rendering.render(ctx, row, base, p, session)


def resolve(ctx, p, href, base):
    """The rendered document behind an href the caller may see, else None ($expand)."""
    parts = hrefs.split(href)
    if not parts or len(parts) not in (2, 3) or parts[0] not in KINDS:
        return None
    try:
        if len(parts) == 3:  # one of a resource's collections (a Machine's disks, ...)
            return subcollections.collection_document(ctx, p, parts[0], parts[1], parts[2], base)
        return get_doc(ctx, p, parts[0], parts[1], base)
    except NotFound:
        return None


def find_job(ctx, session, p, uuid):
    job = session.get(Job, uuid) if isinstance(uuid, str) and len(uuid) <= 64 else None
    if job is None or job.tenant_id != p.tenant_id:
        raise NotFound("jobs: no Job '%s'" % uuid)
    return job

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``job_info`` does: a CIMI endpoint's Jobs, one job with the jobs nested under it, or those a filter keeps."""

from __future__ import annotations

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import NotFound
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.query import parse_filter


def _href(ref):
    return ref.get("href") if isinstance(ref, dict) else ref


def family(docs, job_id):
    """The job ``job_id`` and every job nested under it, at any depth (parents first), or NotFound."""
    by_id = {d.get("id"): d for d in docs}
    if job_id not in by_id:
        raise NotFound("job '%s' not found" % job_id)
    children = {}
    for doc in docs:
        parent = _href(doc.get("parentJob"))
        if parent:
            children.setdefault(parent, []).append(doc)
    out, todo = [], [by_id[job_id]]
    while todo:
        job = todo.pop(0)
        out.append(job)
        nested = {_href(n) for n in job.get("nestedJobs") or []}
        todo += [by_id[h] for h in sorted(nested) if h in by_id and by_id[h] not in out and by_id[h] not in todo]
        todo += [c for c in children.get(job.get("id"), []) if c not in out and c not in todo]
    return out


def _when(doc):
    return doc.get("timeOfStatusChange") or doc.get("created") or ""


def read(connector, job_id=None, expression=None, target=None):
    """{jobs} for ``job_info``; the filter is parsed before any provider call."""
    match = parse_filter(expression) if expression is not None else None
    connector.require("job.list")
    docs = [job.to_json() for job in connector.list_jobs()]
    if job_id is not None:
        docs = family(docs, job_id)
    else:
        docs = sorted(docs, key=lambda d: (_when(d), d.get("id") or ""))
    if target is not None:
        docs = [d for d in docs if _href(d.get("targetResource")) == target
                or target in (_href(a) for a in d.get("affectedResources") or [])]
    if match is not None:
        docs = [d for d in docs if match.matches(d)]
    return {"jobs": docs}

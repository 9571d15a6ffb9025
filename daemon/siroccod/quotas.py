"""Per-tenant quotas: how much cpu, memory, how many machines and volumes a tenant may hold at most.

An administrator sets them (``PUT /admin/tenants/<name>/quota``, ``siroccod tenant quota``); no quota
means no limit. What a tenant holds is counted like capacity claims (capacity.py): its machines that
have not FAILED, from the moment they are accepted, wherever they run (a host or an upstream), and its
volumes. A creation is checked while the capacity lock is held, so concurrent requests cannot together
exceed a quota either.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Forbidden, InvalidInput
from siroccod import capacity
from siroccod.store import Quota, Resource, utcnow

# wire name -> (column, unit factor from the wire unit to the column's)
LIMITS = {"cpu": ("cpu", 1), "memoryMiB": ("memory_kib", 1024), "machines": ("machines", 1),
          "volumes": ("volumes", 1)}
MAX_LIMIT = 2 ** 31 - 1


class QuotaExceeded(Forbidden):
    """A request would take a tenant beyond one of its quotas."""

    kind = "quota-exceeded"

    def __init__(self, message, quota):
        super().__init__(message, attribute=quota)
        self.attribute = quota


@dataclass
class Holding:
    cpu: int = 0
    memory_kib: int = 0
    machines: int = 0
    volumes: int = 0


def holding(session: Session, tenant_id: int) -> Holding:
    """What the tenant holds now."""
    held = Holding()
    for state, doc, private in session.execute(select(Resource.state, Resource.doc, Resource.private).where(
            Resource.type == "Machine", Resource.tenant_id == tenant_id)):
        if state != states.FAILED:
            cpu, memory = capacity.machine_claim(doc, private)  # a resize under way counts its larger size
            held.cpu += cpu
            held.memory_kib += memory
            held.machines += 1
    held.volumes = session.scalar(select(func.count()).select_from(Resource).where(
        Resource.type == "Volume", Resource.tenant_id == tenant_id)) or 0
    return held


def check(session: Session, tenant_id: int, tenant_name: str, **asked: int) -> None:
    """QuotaExceeded naming the first quota that ``asked`` (cpu, memory_kib, machines, volumes) would pass."""
    quota = session.get(Quota, tenant_id)
    if quota is None:
        return
    held = holding(session, tenant_id)
    for wire, (column, factor) in LIMITS.items():
        limit, want = getattr(quota, column), asked.get(column, 0)
        if limit is not None and want and getattr(held, column) + want > limit:
            raise QuotaExceeded("tenant '%s': quota %s is %d; %d in use, %d asked" % (
                tenant_name, wire, limit // factor, getattr(held, column) // factor, want // factor), wire)


def view(session: Session, tenant) -> dict:
    """A tenant's quota (None: no limit) and what it holds, in wire units."""
    quota = session.get(Quota, tenant.id)
    held = holding(session, tenant.id)
    limits = {wire: (getattr(quota, column) // factor if quota is not None and getattr(quota, column) is not None
                     else None) for wire, (column, factor) in LIMITS.items()}
    usage = {wire: getattr(held, column) // factor for wire, (column, factor) in LIMITS.items()}
    return {"name": tenant.name, "quota": limits, "usage": usage}


def set_quota(session: Session, tenant, values: dict) -> None:
    """Replace the tenant's quota by ``values`` (wire names; absent or null: no limit)."""
    unknown = sorted(set(values) - set(LIMITS))
    if unknown:
        raise InvalidInput("unknown quota(s) %s (known: %s)" % (", ".join(unknown), ", ".join(LIMITS)),
                           attribute=unknown[0])
    quota = session.get(Quota, tenant.id) or Quota(tenant_id=tenant.id)
    for wire, (column, factor) in LIMITS.items():
        value = values.get(wire)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_LIMIT):
            raise InvalidInput("%s: expected an integer from 0 to %d, or null for no limit" % (wire, MAX_LIMIT),
                               attribute=wire)
        setattr(quota, column, value * factor if value is not None else None)
    quota.updated = utcnow()
    session.add(quota)

"""The CMDB's resources as the daemon's code sees them: lookups by id and href, a new record, a record
marked gone, a machine forgotten with everything that points to it.

Request handling, job handlers, routing and recovery go through these rather than writing their own
queries over the tables (store.py holds the tables, jobs.py the Job rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Forbidden, InvalidInput, NotFound
from siroccod import hrefs
from siroccod.kinds import BY_TYPE
from siroccod.store import Resource, Store, iso, new_uuid, utcnow

if TYPE_CHECKING:  # for the annotations only: auth.py is no dependency of the CMDB's code
    from datetime import datetime

    from sqlalchemy import Select

    from siroccod.auth import Principal
    from siroccod.kinds import Kind

# the property of a resource whose provider object vanished (or did not survive its simulated host): when
# and where it was noticed
GONE = "sirocco.gone"
# SELECT ... FOR UPDATE OF resources: the resource's row only (not its host, an outer join)
ROW_LOCK = {"of": Resource}
# where a collection keeps a System's members of each type
MEMBER_KEYS = {"Machine": "machines", "Volume": "volumes", "Network": "networks"}


def visible(query: Select, p: Principal, kind: Kind) -> Select:
    """``query`` narrowed to the resources ``p`` sees of ``kind`` (their tenant's, and public ones)."""
    if kind.shared:
        return query.where(or_(Resource.tenant_id == p.tenant_id, Resource.tenant_id.is_(None)))
    return query.where(Resource.tenant_id == p.tenant_id)


def find(store: Store, session: Session, p: Principal, type_name: str, uuid: object, write: bool = False,
         what: str | None = None, lock: bool = False) -> Resource:
    """The row of a resource the caller may see, else NotFound (foreign ones look absent).
    ``write`` or ``lock``: the row is locked until the transaction ends (SELECT ... FOR UPDATE on
    PostgreSQL, the database's write lock on SQLite), so two requests changing one resource at
    once, in any processes or threads, take turns and the second sees the state the first left."""
    kind = BY_TYPE[type_name]
    lock = bool(write or lock)
    if lock and store.is_sqlite:
        store.write_lock(session)
        lock = False
    row = session.get(Resource, uuid, with_for_update=ROW_LOCK if lock else None) if isinstance(
        uuid, str) and len(uuid) <= 64 else None
    if row is None or row.type != type_name or not (
            row.tenant_id == p.tenant_id or (kind.shared and row.tenant_id is None)):
        raise NotFound("%s: no %s '%s'" % (what or kind.key, type_name, uuid))
    if write and row.tenant_id is None and not p.is_admin:
        raise Forbidden("%s '%s' is public: only administrators change it" % (type_name, uuid))
    return row


def find_ref(store: Store, session: Session, p: Principal, href: str, type_name: str, path: str) -> Resource:
    """The row an href in a request body points to; InvalidInput when it is not one of the
    caller's resources of that type (unknown, malformed and foreign hrefs read the same)."""
    parts = hrefs.split(href)
    kind = BY_TYPE.get(type_name)
    if parts is None or kind is None or len(parts) != 2 or parts[0] != kind.key:
        raise InvalidInput("%s.href: '%s' is not a %s of this endpoint" % (path, href, type_name),
                           attribute=path + ".href")
    try:
        return find(store, session, p, type_name, parts[1])
    except NotFound:
        raise InvalidInput("%s.href: no %s at '%s'" % (path, type_name, href), attribute=path + ".href") from None


def by_href(session: Session, href: str) -> Resource | None:
    """The row a stored (relative) href names, whoever owns it; None when it is gone."""
    return session.get(Resource, href.rsplit("/", 1)[-1])


def new_resource(session: Session, type_name: str, tenant_id: int | None, doc: dict, *, name: str | None = None,
                 host_id: int | None = None, native_id: str | None = None, state: str | None = None,
                 private: dict | None = None, uuid: str | None = None, machine_uuid: str | None = None) -> Resource:
    """A new record, added and flushed (its uuid is usable at once); ``machine_uuid``: the machine a Meter
    measures."""
    row = Resource(uuid=uuid or new_uuid(), tenant_id=tenant_id, type=type_name,
                   name=name if name is not None else doc.get("name"), host_id=host_id, native_id=native_id,
                   state=state, doc=doc, private=dict(private or {}), machine_uuid=machine_uuid)
    row.created = row.updated = utcnow()
    session.add(row)
    session.flush()
    return row


def mark_gone(row: Resource, why: str, now: datetime | None = None) -> None:
    """A machine whose provider object vanished: FAILED, with the GONE property saying ``why`` and when (only
    delete is then allowed, which just forgets it)."""
    now = now or utcnow()
    props = dict(row.doc.get("properties") or {})
    props[GONE] = "%s (noticed %s)" % (why, iso(now))
    row.doc = dict(row.doc, properties=props)
    row.state, row.private, row.updated = states.FAILED, dict(row.private, gone=True), now


def image_natives(row: Resource) -> dict[str, str]:
    """Host name -> native id of a MachineImage on each host holding it."""
    natives = dict(row.private.get("natives") or {})
    if row.host_id is not None and row.native_id is not None and row.host is not None:
        natives[row.host.name] = row.native_id
    return natives


def join_system(row: Resource, system: Resource) -> None:
    """``row`` (a Machine, Volume or Network) is a member of ``system``; the System's document lists it."""
    row.private = dict(row.private, system=system.uuid)
    row.system_uuid = system.uuid
    key = MEMBER_KEYS[row.type]
    system.doc = dict(system.doc, **{key: list(system.doc.get(key, [])) + [{"href": hrefs.ref(key, row.uuid)}]})


def forget_in_systems(session: Session, row: Resource) -> None:
    """The System ``row`` belongs to no longer lists it."""
    system_uuid = row.system_uuid or row.private.get("system")
    system = session.get(Resource, system_uuid) if system_uuid else None
    if system is not None:
        key = MEMBER_KEYS[row.type]
        system.doc = dict(system.doc, **{key: [h for h in system.doc.get(key, [])
                                               if not h["href"].endswith("/" + row.uuid)]})


def mark_attaching(vol: Resource, machine_uuid: str) -> None:
    """Volume ``vol`` is on its way to machine ``machine_uuid`` (a job attaches it): no one else takes it."""
    vol.private = dict(vol.private, attaching=machine_uuid)
    vol.machine_uuid = machine_uuid


def attached(vol: Resource, machine: Resource, location: str | None = None) -> None:
    """Volume ``vol`` is attached to ``machine`` (at ``location``): both documents say so."""
    entry: dict[str, Any] = {"volume": {"href": hrefs.ref("volumes", vol.uuid)}}
    if location:
        entry["initialLocation"] = location
    machine.doc = dict(machine.doc, volumes=list(machine.doc.get("volumes", [])) + [entry])
    vol.doc = dict(vol.doc, attachedTo=[{"href": hrefs.ref("machines", machine.uuid)}])
    vol.private = {k: v for k, v in vol.private.items() if k != "attaching"}
    vol.machine_uuid = machine.uuid
    machine.updated = vol.updated = utcnow()


def detached(vol: Resource | None, machine: Resource | None, volume_uuid: str) -> None:
    """Volume ``volume_uuid`` is no longer attached to ``machine``: neither document says it is."""
    if machine is not None:
        left = [e for e in machine.doc.get("volumes", []) if not e["volume"]["href"].endswith("/" + volume_uuid)]
        machine.doc = dict(machine.doc, volumes=left) if left else {
            k: v for k, v in machine.doc.items() if k != "volumes"}
        machine.updated = utcnow()
    if vol is not None:
        vol.doc = {k: v for k, v in vol.doc.items() if k != "attachedTo"}
        vol.machine_uuid = None
        vol.updated = utcnow()


def release_attaching(session: Session, machine_uuid: str) -> None:
    """The volumes on their way to ``machine_uuid`` (an attach or a creation that will not happen) are free."""
    for vol in session.scalars(select(Resource).where(Resource.type == "Volume",
                                                      Resource.machine_uuid == machine_uuid)):
        if vol.private.get("attaching") == machine_uuid:
            vol.private = {k: v for k, v in vol.private.items() if k != "attaching"}
            if not vol.doc.get("attachedTo"):
                vol.machine_uuid = None


def forget_machine(session: Session, uuid: str) -> None:
    """Remove a machine from the CMDB with everything that points to it."""
    row = session.get(Resource, uuid)
    if row is None:
        return
    for entry in row.doc.get("volumes", []):
        detached(by_href(session, entry["volume"]["href"]), None, "")
    release_attaching(session, uuid)
    for meter in session.scalars(select(Resource).where(Resource.type == "Meter", Resource.machine_uuid == uuid)):
        session.delete(meter)
    forget_in_systems(session, row)
    session.delete(row)


def interfaces(session: Session, host_id: int, found: list[dict]) -> list[dict]:
    """A host's NetworkInterfaces with their network hrefs mapped to our Networks (dropped when
    the network is not one of ours: native ids are no hrefs)."""
    out = []
    for iface in found:
        iface = dict(iface)
        net = iface.pop("network", None)
        if net and net.get("href"):
            row = session.scalar(select(Resource).where(Resource.type == "Network", Resource.host_id == host_id,
                                                        Resource.native_id == net["href"]))
            if row is not None:
                iface["network"] = {"href": hrefs.ref("networks", row.uuid)}
        out.append(iface)
    return out

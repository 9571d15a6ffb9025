"""Host capacity as claims that cannot be double-spent.

A machine claims its cpu and memory on its host from the moment its creation is accepted (CREATING)
until its row is deleted, except once it has FAILED (its creation failed or its domain is gone: nothing
runs). A machine being moved (``private.moving``) claims on the host it goes to as well, until the move
is recorded. A machine being resized (``private.resizing``: its new cpu and memory) claims the larger of
its two sizes, figure by figure, until the resize ends (resources.resize.resize_machine, then its job's
handler, handlers.machines.resize).

Whoever decides on capacity (placing a new machine, starting a move) first takes ``lock``: until its
transaction ends, every other such decision, in any thread or process, waits, and then reads the claims
this one added. On PostgreSQL that is a row lock on every host (``SELECT ... FOR UPDATE``, the same
order for everyone, so no deadlock); SQLite serves one process and locks the whole database for writing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from siroccod import placing
from siroccod.store import Host, Resource, Store


def lock(store: Store, session: Session) -> None:
    """Hold the pool's capacity until ``session``'s transaction ends."""
    if store.is_sqlite:
        store.write_lock(session)
    else:
        session.execute(select(Host.id).order_by(Host.id).with_for_update()).all()


def claims(session: Session) -> dict[int, tuple[int, int, int]]:
    """{host id: (cpu, memory KiB, machines)} claimed now."""
    used: dict[int, tuple[int, int, int]] = {}

    def add(host_id, size):
        cpu, memory, count = used.get(host_id, (0, 0, 0))
        used[host_id] = (cpu + size[0], memory + size[1], count + 1)

    rows = session.execute(select(Resource.host_id, Resource.state, Resource.doc, Resource.private)
                           .where(Resource.type == "Machine", Resource.host_id.is_not(None)))
    for host_id, state, doc, private in rows:
        if state == states.FAILED:
            continue
        size = machine_claim(doc, private)
        add(host_id, size)
        moving = (private or {}).get("moving")
        if isinstance(moving, dict) and moving.get("to") not in (None, host_id):
            add(moving["to"], size)
    return used


def machine_claim(doc: dict, private: dict | None) -> tuple[int, int]:
    """(cpu, memory KiB) one machine claims: its recorded size, or during a resize the larger of the
    two sizes, figure by figure (a failed resize leaves the old size, a finished one the new)."""
    cpu, memory = int(doc.get("cpu") or 0), int(doc.get("memory") or 0)
    resizing = (private or {}).get("resizing")
    if isinstance(resizing, dict):
        cpu, memory = max(cpu, int(resizing.get("cpu") or 0)), max(memory, int(resizing.get("memory") or 0))
    return cpu, memory


def loads(pool, session: Session) -> list[placing.HostLoad]:
    """Capacity and claims of every enabled, reachable host, in configuration order."""
    used = claims(session)
    order = {host_id: i for i, host_id in enumerate(pool.handles)}
    out = []
    for host in session.scalars(select(Host).where(Host.enabled.is_(True))):
        if host.id not in pool.handles or host.state == "DOWN":
            continue
        cpu, memory, count = used.get(host.id, (0, 0, 0))
        out.append(placing.HostLoad(id=host.id, name=host.name, cpu=host.cpu, memory_kib=host.memory_kib,
                                    used_cpu=cpu, used_memory_kib=memory, machines=count,
                                    power_idle=host.power_idle, power_max=host.power_max,
                                    cpu_mhz=host.cpu_mhz, arch=host.arch))
    out.sort(key=lambda h: order.get(h.id, 0))
    return out


def room(session: Session, host_id: int) -> tuple[int, int]:
    """(free cpu, free memory KiB) of one host by its claims."""
    host = session.get(Host, host_id)
    cpu, memory, _count = claims(session).get(host_id, (0, 0, 0))
    return host.cpu - cpu, host.memory_kib - memory

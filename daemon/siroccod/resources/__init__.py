"""Request handling: what the CIMI endpoint does with each request, framework-free.

Every request-side function runs in one CMDB transaction: it validates everything first (bad input raises
before anything is written), then records the change and the job that will carry it out, all or nothing.
One module per kind (machines, volumes, networks, systems, images; generic for the CMDB-only kinds),
beside reading/rendering; context.py holds what they share. The job handlers that talk to the hosts are in
handlers/. ``Service`` is the one entry api/ calls: it sends each request to its kind's code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from siroccod import placing
from siroccod.auth import Principal
from siroccod.resources import attachments, generic, jobs, machines, reading, resize, subcollections, systems
from siroccod.resources.context import Context, Outcome

if TYPE_CHECKING:  # for the annotations only
    from siroccod.auth import Users
    from siroccod.config import Config
    from siroccod.hosts import HostPool
    from siroccod.sealing import Sealer
    from siroccod.store import Store


class Service(Context):
    """The request side of the daemon (see the module's docstring); each method is one API request."""

    def __init__(self, store: Store, pool: HostPool, users: Users | None, placer: Callable | None = None,
                 wake: Callable | None = None, sealer: Sealer | None = None, config: Config | None = None) -> None:
        super().__init__(store=store, pool=pool, users=users, sealer=sealer, config=config,
                         placer=placer or placing.place, wake=wake or (lambda: None))

    # reading
    def list_docs(self, p: Principal, key: str, base: str) -> list[dict]:
        return reading.list_docs(self, p, key, base)

    def get_doc(self, p: Principal, key: str, uuid: str, base: str) -> dict:
        return reading.get_doc(self, p, key, uuid, base)

    def resolve(self, p: Principal, href: str, base: str) -> dict | None:
        return reading.resolve(self, p, href, base)

    # writing
    def create(self, p: Principal, key: str, body: Any, base: str) -> Outcome:
        return generic.create(self, p, key, body, base)

    def update(self, p: Principal, key: str, uuid: str, body: Any, base: str) -> dict:
        return generic.update(self, p, key, uuid, body, base)

    def delete(self, p: Principal, key: str, uuid: str, base: str) -> Outcome:
        return generic.delete(self, p, key, uuid, base)

    def delete_job(self, p: Principal, uuid: str, base: str) -> Outcome:
        return jobs.delete_job(self, p, uuid, base)

    def action(self, p: Principal, key: str, uuid: str, verb: str, body: Any, base: str) -> Outcome:
        if key == "systems":
            return systems.system_action(self, p, uuid, verb, body, base)
        return machines.action(self, p, uuid, verb, body, base)

    def resize(self, p: Principal, key: str, uuid: str, body: Any, base: str, dry_run: bool = False) -> Outcome:
        return resize.resize(self, p, key, uuid, body, base, dry_run=dry_run)

    # a resource's own collections (a Machine's disks, interfaces, volumes, meters; ...)
    def collection(self, p: Principal, key: str, uuid: str, attr: str, base: str) -> dict:
        return subcollections.collection_document(self, p, key, uuid, attr, base)

    def collection_documents(self, p: Principal, key: str, attrs: list[str], base: str) -> dict[str, dict]:
        return subcollections.collection_documents(self, p, key, attrs, base)

    def collection_item(self, p: Principal, key: str, uuid: str, attr: str, item: str, base: str) -> dict:
        return subcollections.collection_item(self, p, key, uuid, attr, item, base)

    def machine_volumes_post(self, p: Principal, uuid: str, body: Any, base: str) -> Outcome:
        return attachments.post(self, p, uuid, body, base)

    def detach(self, p: Principal, uuid: str, volume_uuid: str, base: str) -> Outcome:
        return attachments.detach(self, p, uuid, volume_uuid, base)

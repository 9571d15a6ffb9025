"""What a host's connector is given for a recorded resource: a machine's MachineSpec, a volume's and a
network's creation options. Job handlers create with them; recovery re-creates simulated hosts' resources
with them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from sqlalchemy.orm import Session

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model, states
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
from siroccod import routing
from siroccod.guests import guest_credential
from siroccod.sealing import Sealer
from siroccod.store import Resource


def machine_spec(session: Session, row: Resource, sealer: Sealer) -> MachineSpec:
    """The connector's MachineSpec of a recorded machine (creation and restore); ``sealer`` opens its
    credential's password, if it has one."""
    spec = row.private.get("spec") or {}
    config = spec.get("config") or {"cpu": row.doc.get("cpu") or 1, "memory": row.doc.get("memory") or 65536}
    credential = guest_credential(spec.get("credential_value") or {})
    if spec.get("credential"):
        cred = session.get(Resource, spec["credential"])
        if cred is not None:
            credential = guest_credential(dict(cred.doc, password=cred.private.get("password")))
    if credential.get("password") is not None:
        credential["password"] = sealer.open(credential["password"])
    given = {k: v for k, v in credential.items() if v is not None} or None
    return MachineSpec(
        # a recorded machine always has a name: its native one (private "domain", set when it is recorded)
        name=cast(str, row.private.get("domain") or row.name), config=model.MachineConfiguration(**config),
        image=_image(spec.get("image"), row), initial_state=spec.get("initial_state") or states.STOPPED,
        description=row.doc.get("description"), properties=routing.provider_properties(row.doc),
        user_data=spec.get("user_data"), credential=given,
        volumes=_natives(session, (vol["volume"] for vol in spec.get("volumes") or [])),
        networks=_natives(session, spec.get("networks") or []), location=spec.get("location"))


def _image(image: str | dict | None, row: Resource) -> str | None:
    if isinstance(image, dict):  # host name -> native id: the one of this machine's host
        return image.get(row.host.name) if row.host is not None else None
    return image


def _natives(session: Session, uuids: Iterable[str]) -> list[str]:
    """The native ids of the recorded resources ``uuids`` that have one."""
    rows = (session.get(Resource, uuid) for uuid in uuids)
    return [row.native_id for row in rows if row is not None and row.native_id is not None]


def volume_options(doc: dict) -> dict:
    """create_volume's options for a recorded Volume: its type, when it has one (connectors without
    types refuse it, naming ``type``)."""
    return {"volume_type": doc["type"]} if doc.get("type") else {}


def network_options(doc: dict) -> dict:
    """create_network's options for a recorded Network: its cidr and dhcp, when given."""
    return {k: doc[k] for k in ("cidr", "dhcp") if doc.get(k) is not None}

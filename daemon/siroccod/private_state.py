"""What the CMDB keeps of a resource beside its CIMI document, never shown to users (``Resource.private``),
declared per resource type. Every key a row's ``private`` may hold is a field here; a row written with
another key is refused when the session flushes (store.py), so a new key is declared before it is used.

``state(row)`` reads a row's private state typed; writers keep assigning a new dict (JSON columns are
not mutation-tracked), ``dict(row.private, key=value)``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for the annotations only: store.py imports this module
    from siroccod.store import Resource


@dataclass(frozen=True)
class Common:
    """What any resource may carry."""

    stock: bool = False  # a public record made at start from what the hosts hold (app._stock)
    before: str | None = None  # the state it had before the transition under way (a failed job returns to it)
    system: str | None = None  # the uuid of the System it belongs to (the column system_uuid says it too)


@dataclass(frozen=True)
class MachineState(Common):
    domain: str | None = None  # its name on its host or upstream (the backend's native_name)
    spec: dict | None = None  # how it was created (host_specs.machine_spec): re-created from it on a simulated host
    upstream: str | None = None  # the upstream it was routed to
    resizing: dict | None = None  # {cpu, memory} claimed on its host while its resize job runs
    moving: dict | None = None  # {to: host id, job: uuid} while consolidation moves it
    gone: bool = False  # its provider object vanished (cmdb.mark_gone)
    adopted: bool = False  # found on a host, not made by this daemon (reconcile)


@dataclass(frozen=True)
class VolumeState(Common):
    native_name: str | None = None  # its name on its host
    format: str | None = None  # the disk format its VolumeConfiguration asked for
    attaching: str | None = None  # the machine it is being attached to (a job under way)
    resizing: int | None = None  # the capacity (KB) its resize job gives it


@dataclass(frozen=True)
class NetworkState(Common):
    native_name: str | None = None


@dataclass(frozen=True)
class ImageState(Common):
    natives: dict | None = None  # host name -> native id, on each host holding it
    source: str | None = None  # where an import fetches it from (image_sources.py)
    machine: str | None = None  # the machine a capture makes it from
    native_name: str | None = None  # its name on the capturing host


@dataclass(frozen=True)
class CredentialState(Common):
    password: str | None = None  # sealed (sealing.py)


@dataclass(frozen=True)
class MeterState(Common):
    machine: str | None = None  # the machine it measures (the column machine_uuid says it too)


STATES: dict[str, type[Common]] = {
    "Machine": MachineState, "Volume": VolumeState, "Network": NetworkState, "MachineImage": ImageState,
    "Credential": CredentialState, "CredentialTemplate": CredentialState, "Meter": MeterState,
}
_DECLARED = {type_name: frozenset(f.name for f in fields(cls)) for type_name, cls in STATES.items()}
_COMMON = frozenset(f.name for f in fields(Common))


def undeclared(type_name: str, private: dict | None) -> list[str]:
    """The keys of ``private`` that the state of ``type_name`` does not declare."""
    return sorted(set(private or {}) - _DECLARED.get(type_name, _COMMON))


def state(row: Resource) -> Common:
    """A row's private state, typed (fields it does not hold take their defaults)."""
    cls = STATES.get(row.type, Common)
    return cls(**(row.private or {}))

"""A machine creation request once resolved (resources.machines.machine_request): what its host will be given
and what is checked before the 202 only. Routing, the guests' checks and request handling read it; its
``spec()`` is what the machine's record keeps (``private.spec``, read back by host_specs.machine_spec).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MachinePlan:
    config: dict  # cpu, memory (KiB), cpuArch, ...: a checked MachineConfiguration's attributes
    image: dict | None = None  # host name -> native id of its image, on each host holding it
    credential: str | None = None  # a Credential by reference: its uuid
    credential_value: dict | None = None  # a credential given by value (its password sealed)
    initial_state: str = "STOPPED"
    user_data: str | None = None
    volumes: list[dict] = field(default_factory=list)  # [{volume: uuid, initialLocation}] attached at creation
    networks: list[str] = field(default_factory=list)  # uuids of this daemon's networks it joins
    # checked before the 202 only, never kept with the machine:
    allowed: tuple[str, ...] | None = None  # the hosts that may take it (those holding its image, volumes, networks)
    guest: dict[str, Any] = field(default_factory=dict)  # {credential: {username, key, password: "set" or None}}

    def spec(self) -> dict[str, Any]:
        """What the machine's record keeps to create it (again, on a simulated host): all but the checks'."""
        return {"config": self.config, "image": self.image, "credential": self.credential,
                "credential_value": self.credential_value, "initial_state": self.initial_state,
                "user_data": self.user_data, "volumes": self.volumes, "networks": self.networks}

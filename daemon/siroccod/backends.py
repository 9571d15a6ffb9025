"""The one protocol through which the daemon reaches a provider: a host of its pool (hosts.py) or an
upstream cloud (upstreams.py). Both are a ``Backend``: the contract operations the daemon uses, each a
typed method, over one ``_invoke`` that each kind implements (under the handle's lock, errors saying
where they came from). Callers never probe a handle's kind or name a connector method by a string.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import model
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    ACTION_OPERATIONS,
    OPERATIONS,
    Capabilities,
    Connector,
    DiskImage,
    MachineSpec,
)

if TYPE_CHECKING:  # for the annotations only: the configurations' modules are layers above this one
    from siroccod.config import HostConfig
    from siroccod.upstream_config import UpstreamConfig


log = logging.getLogger(__name__)


class Backend:
    """A provider the daemon reaches: identity, the names it gives there, capabilities, operations."""

    simulated = False  # a host on libvirt's test driver, re-created from the CMDB at start (recovery.py)

    def __init__(self, cfg: HostConfig | UpstreamConfig, row_id: int, uri: str | None) -> None:
        self.cfg = cfg
        self.id = row_id  # its row in the CMDB's hosts table
        self.name: str = cfg.name
        self.provider: str = cfg.provider
        self.uri = uri
        self.lock = threading.RLock()  # one call at a time on its connector
        self._connector: Connector | None = None
        self._caps: Capabilities | None = None

    # -- what each kind provides ----------------------------------------------------------------
    @property
    def label(self) -> str:
        """How messages name it: "host <name>", "upstream <name>"."""
        raise NotImplementedError

    def connector(self) -> Connector:
        raise NotImplementedError

    def _invoke(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run the connector's ``method``; its errors name this backend."""
        raise NotImplementedError

    def all_machines(self) -> list[model.Machine]:
        """Every machine the provider lists (reconcile)."""
        raise NotImplementedError

    def capabilities(self) -> Capabilities:
        raise NotImplementedError

    def supports(self, operation: str) -> bool:
        raise NotImplementedError

    def redact(self, text: object) -> str:
        """``text`` as it may be logged or shown: an upstream scrubs its credentials from it."""
        return str(text)

    def close(self) -> None:
        """Close its connector (opened again on the next call)."""
        with self.lock:
            if self._connector is not None:
                try:
                    self._connector.close()
                except Exception as exc:  # closing must not stop a shutdown
                    log.debug("%s: close failed: %s", self.label, self.redact(exc))
                self._connector = None
                self._caps = None

    def resizes_live(self) -> bool:
        """Whether a machine that is not stopped may be resized here (a host decides per machine)."""
        return False

    # -- naming -------------------------------------------------------------------------------------
    def native_name(self, uuid: str) -> str:
        """The name there of what the daemon makes for resource ``uuid``: found again by it after a crash."""
        return self.cfg.name_prefix + uuid

    def manages(self, name: str | None) -> bool:
        """Whether the provider's machine named ``name`` is this daemon's business."""
        raise NotImplementedError

    # -- the contract operations the daemon uses ------------------------------------------------------
    def get_machine(self, native: str) -> model.Machine:
        return self._invoke("get_machine", native)

    def find_machine(self, name: str) -> model.Machine | None:
        return self._invoke("find_machine", name)

    def create_machine(self, spec: MachineSpec) -> model.Machine:
        return self._invoke("create_machine", spec)

    def act(self, verb: str, native: str, **kwargs: Any) -> Any:
        """A CIMI action that changes a machine's state (start, stop, restart, pause, suspend) on ``native``;
        ``force`` for stop and restart."""
        return self._invoke(OPERATIONS[ACTION_OPERATIONS[verb]], native, **kwargs)

    def capture_machine(self, native: str, name: str, description: str | None = None) -> model.MachineImage:
        return self._invoke("capture_machine", native, name, description=description)

    def delete_machine(self, native: str) -> None:
        self._invoke("delete_machine", native)

    def resize_machine(self, native: str, config: model.MachineConfiguration) -> model.Machine | None:
        return self._invoke("resize_machine", native, config)

    def resize_needs_stop(self, machine: model.Machine, config: model.MachineConfiguration) -> bool:
        return self._invoke("resize_needs_stop", machine, config)

    def attach_volume(self, native: str, volume: str, location: str | None = None) -> None:
        self._invoke("attach_volume", native, volume, location)

    def detach_volume(self, native: str, volume: str) -> None:
        self._invoke("detach_volume", native, volume)

    def create_volume(self, name: str, capacity_kb: int, **options: Any) -> model.Volume:
        return self._invoke("create_volume", name, capacity_kb, **options)

    def resize_volume(self, native: str, capacity_kb: int) -> model.Volume | None:
        return self._invoke("resize_volume", native, capacity_kb)

    def delete_volume(self, native: str) -> None:
        self._invoke("delete_volume", native)

    def create_network(self, name: str, **options: Any) -> model.Network:
        return self._invoke("create_network", name, **options)

    def delete_network(self, native: str) -> None:
        self._invoke("delete_network", native)

    def list_meters(self, native: str) -> list[model.Meter]:
        return self._invoke("list_meters", native)

    def list_machine_configs(self) -> list[model.MachineConfiguration]:
        return self._invoke("list_machine_configs")

    def list_machine_images(self) -> list[model.MachineImage]:
        return self._invoke("list_machine_images")

    def import_machine_image(self, image: DiskImage) -> model.MachineImage:
        return self._invoke("import_machine_image", image)

    def delete_machine_image(self, native: str) -> None:
        self._invoke("delete_machine_image", native)

    def migrate_machine(self, native: str, destination: Backend) -> model.Machine:
        """Move machine ``native`` to the host ``destination`` (both hosts of one provider), holding both
        hosts' locks (taken in one order, so two moves the other way round cannot deadlock)."""
        first, second = sorted((self, destination), key=lambda backend: backend.id)
        with first.lock, second.lock:
            return self._invoke("migrate_machine", native, destination.connector())

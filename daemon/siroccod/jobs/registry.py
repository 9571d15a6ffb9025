"""The handler registry: which function carries out a job, by the type of its target and its operation.

    @handles("Machine", "create")
    def create(worker, job_uuid): ...

A handler takes the worker (handlers.Worker: the store, the hosts, the ledger's bookkeeping) and the
uuid of a job this thread has claimed. ``None`` as the type: the daemon's own jobs (a consolidation).
The handlers register themselves when their module is imported (handlers/__init__.py imports them all).
"""

from __future__ import annotations

from collections.abc import Callable

Handler = Callable[..., object]
_HANDLERS: dict[tuple[str | None, str | None], Handler] = {}


def handles(target_type: str | None, op: str | None) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``op`` jobs on ``target_type`` resources."""
    def register(func: Handler) -> Handler:
        key = (target_type, op)
        if key in _HANDLERS and _HANDLERS[key] is not func:
            raise ValueError("two handlers for %s on %s: %s and %s" % (op, target_type, _HANDLERS[key], func))
        _HANDLERS[key] = func
        return func
    return register


def lookup(target_type: str | None, op: str | None) -> Handler | None:
    """The handler of ``op`` on ``target_type``, or None."""
    return _HANDLERS.get((target_type, op))


def registered() -> list[tuple[str | None, str | None]]:
    """Every (type, op) with a handler."""
    return sorted(_HANDLERS, key=lambda key: (key[0] or "", key[1] or ""))

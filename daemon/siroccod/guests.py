"""What goes into a guest: the inputs a machine's creation asks a host to put there (credential,
userData), whether a host or upstream can, and how a connector's reply is read back.

Used by request handling (checked before 202), routing (which providers can) and the job handlers
(the spec a host gets, what a guest reports); it knows no tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, SiroccoError
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    HOST_KEY_PROPERTY,
    USER_PROPERTY,
    MachineSpec,
    check_guest_inputs,
    user_data_size,
)

if TYPE_CHECKING:  # for the annotations only
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import Machine, MachineConfiguration
    from siroccod.backends import Backend
    from siroccod.hosts import HostPool
    from siroccod.placing import HostLoad
    from siroccod.plans import MachinePlan

# what a host's connector reports on a machine so that a controller can reach its guest (the credential's
# user, the SSH host key the guest presents): kept with the machine's properties, served with them, kept
# when a user PUTs other properties
GUEST_REACH = (USER_PROPERTY, HOST_KEY_PROPERTY)


def guest_inputs(plan: MachinePlan) -> frozenset[str]:
    """What a machine's creation asks its host to put into the guest."""
    needs = set()
    if plan.user_data:
        needs.add("userData")
    if plan.credential or plan.credential_value:
        needs.add("credential")
    return frozenset(needs)


def guest_caps(handle: Backend | None) -> tuple[frozenset[str], int | None, bool]:
    """(guest inputs, userData limit in bytes or None, whether the limit counts base64) of a host or
    upstream handle, from its connector's Capabilities; nothing when it cannot say."""
    try:
        caps = handle.capabilities() if handle is not None else None
    except SiroccoError:
        caps = None
    if caps is None:
        return frozenset(), None, False
    return frozenset(caps.guest_inputs), caps.user_data_limit, caps.user_data_encoded


def guest_offer(handles: Iterable[Backend | None]) -> tuple[frozenset[str], int | None]:
    """What the daemon can put into a guest (the union of what ``handles`` take) and the most raw userData
    one of them takes in bytes (None: unknown or unlimited). Published in the Machine ResourceMetadata."""
    inputs: set[str] = set()
    limits: list[int | None] = []
    for handle in handles:
        accepts, limit, encoded = guest_caps(handle)
        inputs |= accepts
        if "userData" in accepts:
            limits.append(None if limit is None else (limit // 4) * 3 if encoded else limit)
    limit = max(cast("list[int]", limits)) if limits and None not in limits else None  # None is not in it
    return frozenset(inputs), limit


def checked_credential(credential: dict, path: str) -> dict:
    """A machine's credential (stored form: userName, key, password sealed) checked for a guest before
    anything is made: an SSH public key is required and must be one (normalised to one line), the user
    name must be one a guest OS takes. Returns what the hosts' checks need: {username, key, password}
    (password: whether there is one, never its value)."""
    user = credential.get("userName")
    if user is None:
        user = credential.get("username")  # a MachineTemplate recorded before migration 0006
    if not credential.get("key"):
        raise InvalidInput("%s.credential.key: a machine's credential needs an SSH public key (a line such as "
                           "'ssh-ed25519 AAAA... me@host'): the guest is reached with it" % path,
                           attribute="credential.key")
    # a probe for the guest checks only, which never read its config
    probe = MachineSpec(name="check", config=cast("MachineConfiguration", None),
                        credential={"username": user, "key": credential["key"],
                                    "password": "set" if credential.get("password") else None})
    try:
        check_guest_inputs(probe, "siroccod", frozenset({"credential"}), passwords=True)
    except InvalidInput as exc:
        raise InvalidInput("%s.%s" % (path, exc.message), attribute=exc.attribute) from None
    # check_guest_inputs replaced the (non-empty) credential by its checked copy: never None here
    return cast(dict, probe.credential)


def guest_refusal(handle: Backend | None, plan: MachinePlan, name: str | None = None,
                  upstream: bool = False) -> InvalidInput | None:
    """Why the host (or upstream) behind ``handle`` cannot put the guest inputs of ``plan`` into the
    machine's guest (an InvalidInput naming the attribute), else None: an input it does not take,
    userData over its limit, a credential with a password (the hosts take SSH keys only; an upstream's
    connector decides for itself)."""
    needs = guest_inputs(plan)
    if not needs:
        return None
    what = "%s %s" % ("upstream" if upstream else "host", name or (handle.name if handle is not None else "?"))
    accepts, limit, encoded = guest_caps(handle)
    missing = sorted(needs - accepts)
    if missing:
        return InvalidInput("%s cannot put %s into a guest" % (what, " or ".join(missing)), attribute=missing[0])
    refusal = None
    size = user_data_size(plan.user_data, encoded)
    if limit is not None and size > limit:
        refusal = InvalidInput("userData is %d bytes%s; %s takes at most %d" % (
            size, " once base64-encoded" if encoded else "", what, limit), attribute="userData")
    elif not upstream and (plan.guest.get("credential") or {}).get("password"):
        refusal = InvalidInput("credential.password: %s takes no password credential: give a credential with "
                               "an SSH public key (key) and no password" % what, attribute="credential.password")
    if refusal is not None:
        # it takes such inputs, not these: what the user can change (an attribute InvalidInput does not declare)
        refusal.specific = True  # type: ignore[attr-defined]
    return refusal


def guest_hosts(pool: HostPool, loads: list[HostLoad],
                plan: MachinePlan) -> tuple[list[HostLoad], dict[str, InvalidInput]]:
    """The hosts among ``loads`` that can put the plan's guest inputs into the guest, and why each
    other one cannot (host name -> InvalidInput)."""
    capable: list[HostLoad] = []
    refused: dict[str, InvalidInput] = {}
    for load in loads:
        refusal = guest_refusal(pool.handles.get(load.id), plan, name=load.name)
        if refusal is None:
            capable.append(load)
        else:
            refused[load.name] = refusal
    return capable, refused


def guest_properties(machine: Machine) -> dict[str, str]:
    """The GUEST_REACH properties a connector reported on ``machine`` (a cimi.model.Machine)."""
    found = machine.properties or {}
    return {k: found[k] for k in GUEST_REACH if isinstance(found.get(k), str) and found[k]}


def guest_credential(doc: dict) -> dict:
    """A Credential as the connectors take it (MachineSpec.credential: username, key, password) from its
    stored form: DSP0263's ``userName``, or ``username`` as CMDBs made before migration 0006 kept it."""
    user = doc.get("userName")
    return {"username": doc.get("username") if user is None else user, "key": doc.get("key"),
            "password": doc.get("password")}

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the dynamic inventory (plugins/inventory/cimi.py) does, without Ansible.

* ``fetch_all``: list the machines of several providers at once, one thread per
  provider, each within its own deadline; a provider that fails or does not answer
  in time becomes an ``Outcome`` with an error, never an exception.
* ``list_provider``: one provider's machines, every page, every state, as CIMI JSON.
* ``assign_hostnames``: inventory host names from a preference list, duplicates
  across providers disambiguated the same way on every run.
* ``default_groups``, ``safe_name``: group names by provider, state, location and property.
* ``cache_key``: one cache entry per provider account, never with a secret in it.

The threads start one after the other: each once the one before it waits (on its
network, its CPU clock standing still) or has run ``START_TURN`` seconds. A provider's
start-up (imports, client set-up, login) is CPU-bound Python that threads cannot run
side by side; started all at once they share the GIL and each sends its first request
late, started in turn the first ones are already waiting on their provider while the
next ones start. Each provider's timeout counts from its own start.

The threads are daemon threads rather than a ``concurrent.futures`` pool on purpose:
a pool's workers are joined when the interpreter exits, so one provider stalled in
a socket read would hold ``ansible-inventory`` after it printed the inventory. A
daemon thread that overruns its deadline is simply left behind.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import re
import shlex
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, SiroccoError

DEFAULT_PAGE_SIZE = None  # the connector pages through its provider in the provider's own page size
START_TURN = 0.5  # longest a provider's start-up holds back the start of the next one (s)
TURN_POLL = 0.01  # how often the start-up is checked (s)
TURN_STILL = 3  # polls in a row without CPU that tell a thread waits
GROUP_KINDS = ("provider", "state", "location", "properties")
HOSTNAME_KINDS = ("name", "id", "address", "property:<key>")
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


# -- names -----------------------------------------------------------------------------

def safe_name(text):
    """``text`` with every character but ASCII letters, digits and ``_`` replaced by ``_``."""
    return _UNSAFE.sub("_", str(text))


def check_hostnames(preferences):
    """The ``hostnames`` preference list, checked: raises InvalidInput naming the bad entry."""
    if not isinstance(preferences, (list, tuple)) or not preferences:
        raise InvalidInput("hostnames: expected a non-empty list", attribute="hostnames")
    for item in preferences:
        if not isinstance(item, str) or not (item in ("name", "id", "address")
                                             or (item.startswith("property:") and len(item) > len("property:"))):
            raise InvalidInput("hostnames: '%s' is none of %s" % (item, ", ".join(HOSTNAME_KINDS)),
                               attribute="hostnames")
    return list(preferences)


def addresses(machine):
    """Every IP address of a Machine JSON document, interface by interface, in order."""
    found = []
    for iface in machine.get("interfaces") or ():
        for address in (iface or {}).get("addresses") or ():
            if isinstance(address, str):
                value = address
            elif isinstance(address, dict):
                value = address.get("ip") or address.get("address")
            else:
                value = None
            if value and value not in found:
                found.append(str(value))
    return found


# Machine properties a connector writes for reaching the guest (connectors/base.py: USER_PROPERTY,
# HOST_KEY_PROPERTY; the inventory imports no connector code). A host key makes no group.
USER_PROPERTY = "sirocco.user"
HOST_KEY_PROPERTY = "sirocco.sshHostKey"


def ssh_endpoint(machine):
    """(address, port or None) Ansible reaches the machine at over SSH: the first address, with the port a
    provider forwards to the guest's SSH when it reports one (``sshPort``, e.g. libvirt's user-mode network)."""
    for iface in machine.get("interfaces") or ():
        for address in (iface or {}).get("addresses") or ():
            if isinstance(address, dict) and address.get("sshPort") and (address.get("ip") or address.get("address")):
                return str(address.get("ip") or address.get("address")), int(address["sshPort"])
    return next(iter(addresses(machine)), None), None


def host_key_alias(machine_id):
    """The name a guest's host key is filed under in the known_hosts file: the machine, not its address,
    so a new guest behind a reused address and port is never mistaken for the old one."""
    return "sirocco-" + hashlib.sha256(str(machine_id).encode("utf-8")).hexdigest()[:24]


def connection_vars(machine, known_hosts=None):
    """ansible_host, ansible_port, ansible_user and (when the provider knows the guest's host key and a
    ``known_hosts`` file is kept) the SSH arguments that check the key against that file."""
    out = {}
    address, port = ssh_endpoint(machine)
    if address:
        out["ansible_host"] = address
    if port:
        out["ansible_port"] = port
    properties = machine.get("properties") or {}
    if properties.get(USER_PROPERTY):
        out["ansible_user"] = properties[USER_PROPERTY]
    if known_hosts and properties.get(HOST_KEY_PROPERTY):
        out["ansible_ssh_common_args"] = "-o UserKnownHostsFile=%s -o HostKeyAlias=%s" % (
            shlex.quote(known_hosts), host_key_alias(machine["id"]))
    return out


def write_known_hosts(path, machines):
    """Record the host keys of ``machines`` (Machine JSON) in the known_hosts file ``path`` under their
    aliases, replacing older lines for the same alias and keeping every other line; written whole and
    renamed into place, so a concurrent reader sees the old file or the new one."""
    keys = {host_key_alias(m["id"]): (m.get("properties") or {}).get(HOST_KEY_PROPERTY) for m in machines}
    keys = {alias: key.strip() for alias, key in keys.items() if key and len(key.split()) >= 2}
    if not keys:
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    lines = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            lines = [line.rstrip("\n") for line in handle if line.split(None, 1)[:1] and
                     line.split(None, 1)[0] not in keys]
    lines += ["%s %s" % (alias, " ".join(key.split()[:2])) for alias, key in sorted(keys.items())]
    handle = tempfile.NamedTemporaryFile("w", dir=directory, prefix=".known_hosts.", delete=False,
                                         encoding="utf-8")
    try:
        with handle:
            handle.write("\n".join(lines) + "\n")
        os.chmod(handle.name, 0o600)
        os.replace(handle.name, path)
    except BaseException:
        os.unlink(handle.name)
        raise


def preferred_hostname(machine, preferences):
    """The first of ``preferences`` that this machine has a value for; its id if none."""
    for item in preferences:
        if item == "address":
            value = next(iter(addresses(machine)), None)
        elif item.startswith("property:"):
            value = (machine.get("properties") or {}).get(item[len("property:"):])
        else:
            value = machine.get(item)
        if value not in (None, ""):
            return str(value)
    return str(machine["id"])


def assign_hostnames(candidates):
    """Unique host names for ``candidates``, a list of ``(label, machine_id, preferred_name)``.

    A preferred name only one machine has is kept. Machines sharing one all become
    ``<name>_<label>``; if that is still not unique (the same name twice within one
    provider, or a clash with another machine's own name) ``<name>_<label>_<id>``.
    Names that stayed as preferred always win, so adding a provider never renames
    a machine that had a unique name, and the result does not depend on the order
    in which the providers answered. A last, theoretical clash gets ``_2``, ``_3``...
    in the order of ``candidates``.
    """
    counts = Counter(name for _label, _id, name in candidates)
    names = [name if counts[name] == 1 else "%s_%s" % (name, label) for label, _id, name in candidates]
    kept = {name for (_l, _i, preferred), name in zip(candidates, names, strict=True) if name == preferred}
    counts = Counter(names)
    for i, (label, machine_id, preferred) in enumerate(candidates):
        if names[i] != preferred and (counts[names[i]] > 1 or names[i] in kept):
            names[i] = "%s_%s_%s" % (preferred, label, machine_id)
    seen, out = set(), []
    for name in names:
        final, n = name, 1
        while final in seen:
            n += 1
            final = "%s_%d" % (name, n)
        seen.add(final)
        out.append(final)
    return out


def default_labels(entries):
    """Labels of provider entries (dicts with ``provider`` and maybe ``name``/``cloud``): the given ``name``,
    else the ``cloud`` it comes from, else the provider type when it is the only entry of that type, else
    ``<type>_<n>`` (n counts the entries of that type from 1). Raises InvalidInput on a bad or repeated label."""
    per_type = Counter(e["provider"] for e in entries if not e.get("name") and not e.get("cloud"))
    seen_type = Counter()
    labels = []
    for i, entry in enumerate(entries):
        label = entry.get("name") or entry.get("cloud")
        if not label:
            kind = entry["provider"]
            seen_type[kind] += 1
            label = kind if per_type[kind] == 1 else "%s_%d" % (kind, seen_type[kind])
        label = str(label)
        if not LABEL.match(label):
            raise InvalidInput("providers[%d].name: '%s' must be letters, digits, '_' or '-'" % (i, label),
                               attribute="name")
        if label in labels:
            raise InvalidInput("providers[%d].name: '%s' names two providers; give each a unique name"
                               % (i, label), attribute="name")
        labels.append(label)
    return labels


def default_groups(label, machine, location=None, kinds=GROUP_KINDS):
    """Group names of one machine: ``provider_<label>``, ``state_<state>`` (lower case), ``location_<location>``,
    ``prop_<key>_<value>`` (``prop_<key>`` for an empty value), all through ``safe_name``."""
    groups = []
    if "provider" in kinds:
        groups.append(safe_name("provider_%s" % label))
    if "state" in kinds and machine.get("state"):
        groups.append(safe_name("state_%s" % machine["state"].lower()))
    if "location" in kinds and location:
        groups.append(safe_name("location_%s" % location))
    if "properties" in kinds:
        for key, value in sorted((machine.get("properties") or {}).items()):
            if key == HOST_KEY_PROPERTY:
                continue
            groups.append(safe_name("prop_%s_%s" % (key, value) if value not in (None, "") else "prop_%s" % key))
    return groups


# -- caching ---------------------------------------------------------------------------

def cache_key(base, provider, uri, username, region=None, options=None):
    """``<base>_<sha256>`` of one provider account: the provider type, where it is (uri, region), who asks
    (username) and the connector options that change what a listing holds. The password is not part of it
    (hashing a secret would let a stolen cache file be used to check guesses) nor is the label."""
    material = json.dumps([provider, uri, username, region, options or {}], sort_keys=True, default=str)
    return "%s_%s" % (base, hashlib.sha256(material.encode("utf-8")).hexdigest()[:32])


# -- listing ---------------------------------------------------------------------------

@contextlib.contextmanager
def collector_paused():
    """Python's cyclic garbage collector off for the block, then back as it was. A listing and the hosts made
    of it are many thousands of new containers that all stay alive: each full collection meanwhile would
    scan them all and free nothing (about 0.3 s of 2,000 EC2 instances). Reference counting still frees."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class DeadlineExceeded(SiroccoError):
    kind = "timeout"


def list_provider(connector, page_size=DEFAULT_PAGE_SIZE, deadline=None, region=None, want_location=True,
                  clock=time.monotonic):
    """``{"machines": [Machine JSON...], "location": str|None}`` of one connector: every page of its machine
    listing, in every state. Stops between pages once ``deadline`` (a ``clock()`` value) has passed.

    ``location`` is the provider's when it has one: its region (``region``, else the connector's own default
    region), else the only location its capabilities advertise (a libvirt host, a standalone ESX host); a
    machine's own ``location`` attribute, when its connector sets one, wins over it (see the plugin)."""
    machines = []
    marker = None
    while True:
        page = connector.list_machines(limit=page_size, marker=marker)
        machines.extend(m.to_json() for m in page.items)
        if page.marker is None or not page.items:
            break
        marker = page.marker
        if deadline is not None and clock() > deadline:
            raise DeadlineExceeded("gave up after %d machines: past the provider's timeout" % len(machines))
    location = region or getattr(connector, "region", None) or None
    if location is None and want_location:
        try:
            locations = connector.capabilities().locations
        except Exception:  # noqa: BLE001 - a location is a nicety: the listing stands without one
            locations = ()
        location = locations[0] if len(locations) == 1 else None
    return {"machines": machines, "location": location}


@dataclass
class Outcome:
    """What became of one provider's fetch."""

    value: object = None
    error: BaseException | None = None
    timed_out: bool = False
    seconds: float = 0.0

    @property
    def ok(self):
        return self.error is None and not self.timed_out


@dataclass
class _Job:
    call: object
    timeout: float
    outcome: Outcome = field(default_factory=Outcome)
    done: threading.Event = field(default_factory=threading.Event)
    started: float = 0.0

    def run(self, clock):
        started = clock()
        try:
            self.outcome.value = self.call()
        except BaseException as exc:  # noqa: BLE001 - reported to the caller, whatever it is
            self.outcome.error = exc
        self.outcome.seconds = clock() - started
        self.done.set()


def fetch_all(calls, clock=time.monotonic):
    """Run ``calls`` (``{key: (callable, timeout_seconds)}``) at once, each in its own daemon thread, started
    in turn (see the module's docstring).

    Returns ``{key: Outcome}`` as soon as every call returned or ran out of its time, whichever
    comes first for each: the wait is the longest timeout (plus at most ``START_TURN`` per call
    started after the first), not their sum."""
    jobs = {key: _Job(call, float(timeout)) for key, (call, timeout) in calls.items()}
    for n, (key, job) in enumerate(jobs.items()):
        job.started = clock()
        thread = threading.Thread(target=job.run, args=(clock,), name="sirocco-inventory-%s" % key, daemon=True)
        thread.start()
        if n < len(jobs) - 1:
            _wait_turn(thread, job.done, min(START_TURN, job.timeout))
    outcomes = {}
    for key, job in jobs.items():
        if job.done.wait(max(0.0, job.started + job.timeout - clock())):
            outcomes[key] = job.outcome
        else:
            outcomes[key] = Outcome(timed_out=True, seconds=clock() - job.started)
    return outcomes


def _cpu_clock(thread):
    """A function giving ``thread``'s CPU seconds, or None where the platform has no per-thread clock."""
    try:
        clock_id = time.pthread_getcpuclockid(thread.ident)
        time.clock_gettime(clock_id)
    except (AttributeError, OSError):  # not POSIX, or the thread is already gone
        return None
    return lambda: time.clock_gettime(clock_id)


def _wait_turn(thread, done, longest):
    """Return once ``thread`` is done, waits (used under a tenth of a poll's CPU in each of ``TURN_STILL`` polls
    in a row), or has run ``longest`` seconds. Without a per-thread CPU clock, at once (all start together)."""
    cpu = _cpu_clock(thread)
    if cpu is None:
        return
    end = time.monotonic() + longest
    used, still = cpu(), 0
    while not done.wait(TURN_POLL) and time.monotonic() < end:
        try:
            now = cpu()
        except OSError:  # the thread ended between two polls
            return
        # a blocked thread uses next to none; one merely short of CPU on a busy machine gets some in 3 polls
        still = still + 1 if now - used < TURN_POLL / 10 else 0
        if still >= TURN_STILL:
            return
        used = now


def fetch_provider(connect, page_size=DEFAULT_PAGE_SIZE, timeout=None, region=None, want_location=True,
                   clock=time.monotonic):
    """A callable for ``fetch_all``: open a connector with ``connect()``, list it, close it (even on failure)."""
    def call():
        deadline = clock() + timeout if timeout else None
        connector = connect()
        try:
            return list_provider(connector, page_size, deadline, region, want_location, clock)
        finally:
            try:
                connector.close()
            except Exception:  # noqa: BLE001 - closing must not hide the listing or its error
                pass
    return call

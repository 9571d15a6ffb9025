"""Consolidation: empty hosts (so they can be switched off) by moving machines, within a bound.

``POST /admin/consolidation`` (api/admin.py) calls ``request``. The CMDB's current placement
becomes a problem of the placement optimizer (plugins/module_utils/placement): every enabled,
reachable host with its capacity and power figures, every machine placed on one with its cpu and
memory and current host, the caller's constraints (the JSON of ``siroccod place``, machines named by
uuid or href), and what the hosts allow (see ``_mobility``: a machine that cannot move is fenced to
its host, one that cannot go somewhere is fenced away from there). ``energy.consolidate`` plans,
``check.check`` must pass, ``migrate.order`` sequences the moves so no host ever overflows.

A dry run answers the plan (200; an infeasible request is a 200 too, ``status: infeasible`` with
the reason and which constraint and resource stop it: the answer to the question asked). Otherwise
the plan becomes a Job of the admin's tenant (202; an infeasible one is 409, nothing queued) that
``run`` carries out move by move: each move re-checked against the CMDB as it is then, run as a
nested Job targeting its machine (so a user's action on that machine waits for it), and recorded
(machine's host and native id) as soon as the host has done it. A failed move ends the job FAILED
naming the move and the reason; the moves done before it stay done and recorded.
"""

from __future__ import annotations

import logging
import math

from sqlalchemy import select

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.attrs import action_uri
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import Conflict, InvalidInput, SiroccoError
from ansible_collections.sirocco.cimi.plugins.module_utils.placement import check, energy, migrate
from ansible_collections.sirocco.cimi.plugins.module_utils.placement.model import parse_problem
from siroccod import capacity, hrefs, jobs
from siroccod.errors import error_document
from siroccod.jobs import ACTIVE, FAILED, SUCCESS, handles
from siroccod.store import Job, Resource, utcnow

log = logging.getLogger(__name__)
OP = "consolidate"
FIELDS = ("dryRun", "maxMigrations", "constraints", "migrationCost", "timeLimit")
DEFAULT_TIME_LIMIT = 5.0
MAX_TIME_LIMIT = 20.0  # below the request timeouts of HTTP clients (the fuzzer waits 30 s)
# a machine in one of these states can move (live when it runs or is paused, offline when stopped)
MOVABLE = (states.STARTED, states.STOPPED, states.PAUSED)
MIB = 1024


# -- the request ---------------------------------------------------------------------------------
def parse(body):
    """The request's settings, each field checked (InvalidInput names it)."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise InvalidInput("unknown attribute '%s' (expected: %s)" % (unknown[0], ", ".join(FIELDS)),
                           attribute=unknown[0])
    dry = body.get("dryRun")
    dry = True if dry is None else dry
    if not isinstance(dry, bool):
        raise InvalidInput("dryRun: expected true or false", attribute="dryRun")
    cap = body.get("maxMigrations")
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 0):
        raise InvalidInput("maxMigrations: expected a non-negative integer", attribute="maxMigrations")
    cost = _number(body, "migrationCost", 0.0, lambda v: v >= 0, "a number >= 0 (watts per migration)")
    limit = _number(body, "timeLimit", DEFAULT_TIME_LIMIT, lambda v: 0 < v <= MAX_TIME_LIMIT,
                    "a number of seconds in (0, %g]" % MAX_TIME_LIMIT)
    constraints = body.get("constraints")
    if constraints is None:
        constraints = []
    if not isinstance(constraints, list):
        raise InvalidInput("constraints: expected a list (the constraints of `siroccod place`)",
                           attribute="constraints")
    return {"dryRun": dry, "maxMigrations": cap, "migrationCost": cost, "timeLimit": limit,
            "constraints": [_by_uuid(c) for c in constraints]}


def _number(body, key, default, ok, wanted):
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not ok(value):
        raise InvalidInput("%s: expected %s" % (key, wanted), attribute=key)
    return float(value)


def _by_uuid(constraint):
    """Machines of a constraint may be named by href: the optimizer knows them by uuid."""
    if not isinstance(constraint, dict) or not isinstance(constraint.get("vms"), list):
        return constraint  # parse_problem says what is wrong with it
    return dict(constraint, vms=[v.rsplit("/", 1)[-1] if isinstance(v, str) and "/machines/" in v else v
                                 for v in constraint["vms"]])


# -- the pool as it is now ---------------------------------------------------------------------------
def snapshot(d, session):
    """(hosts: name -> HostLoad, machines: uuid -> facts) of the enabled, reachable hosts."""
    loads = capacity.loads(d.pool, session)
    unpowered = [h.name for h in loads if h.power_idle is None or h.power_max is None]
    if unpowered:
        raise Conflict("consolidation needs the power figures of every host: set power_idle and power_max "
                       "of %s in the configuration" % ", ".join(unpowered))
    unknown = [h.name for h in loads if h.cpu <= 0 or h.memory_kib <= 0]
    if unknown:
        raise Conflict("host(s) %s report no cpu or memory capacity: set cpu and memory_mib in the configuration"
                       % ", ".join(unknown))
    hosts = {h.name: h for h in loads}
    by_id = {h.id: h.name for h in loads}
    busy = set(session.scalars(select(Job.target_uuid).where(Job.state.in_(ACTIVE), Job.target_uuid.is_not(None))))
    machines = {}
    rows = session.scalars(select(Resource).where(Resource.type == "Machine", Resource.host_id.in_(list(by_id)))
                           .order_by(Resource.created, Resource.uuid))
    for row in rows:
        machines[row.uuid] = {
            "name": row.name, "host": by_id[row.host_id], "state": row.state, "native": row.native_id,
            "cpu": int(row.doc.get("cpu") or 0), "memory_kib": int(row.doc.get("memory") or 0),
            "domain": row.private.get("domain") or row.name, "tenant": row.tenant_id,
            "disks": bool(row.doc.get("disks")), "volumes": bool(row.doc.get("volumes")),
            "busy": row.uuid in busy}
    return hosts, machines


def _stays(d, m):
    """Why a machine cannot move at all, else None."""
    if m["native"] is None:
        return "it has no domain on its host"
    if m["busy"]:
        return "a job is running or queued on it"
    if m["state"] not in MOVABLE:
        return "it is %s (only started, paused or stopped machines move)" % m["state"]
    if m["volumes"]:
        return "volumes are attached to it (they live on its host)"
    handle = d.pool.by_name(m["host"])
    if not handle.supports("machine.migrate"):
        return "its host (%s, provider %s) cannot migrate machines" % (handle.name, handle.provider)
    if m["disks"] and handle.provider == "libvirt":
        return "its disks are on its host's storage (libvirt hosts here exchange diskless machines only)"
    return None


def _can_reach(d, m, name):
    """Whether machine ``m`` may move to host ``name``."""
    src, dst = d.pool.by_name(m["host"]), d.pool.by_name(name)
    if src.provider != dst.provider or not dst.supports("machine.migrate") or src.simulated != dst.simulated:
        return False
    if src.provider == "vsphere" and src.uri != dst.uri:
        return False  # relocation stays within one vCenter
    return dst.manages(m["domain"])


def _mobility(d, hosts, machines):
    """(implicit constraints, {uuid: why it stays}): what the hosts allow, as fence constraints."""
    out, staying = [], {}
    names = sorted(hosts)
    for uuid, m in machines.items():
        why = _stays(d, m)
        if why is None:
            reach = [h for h in names if h == m["host"] or _can_reach(d, m, h)]
            if reach == [m["host"]]:
                why = "no other host can take it (provider, simulated or not, endpoint, managed names)"
            elif len(reach) < len(names):
                out.append({"type": "fence", "vms": [uuid], "hosts": reach})
        if why is not None:
            staying[uuid] = why
            out.append({"type": "fence", "vms": [uuid], "hosts": [m["host"]]})
    return out, staying


def problem(d, hosts, machines, settings):
    """(Problem, staying, count of the caller's constraints); InvalidInput names a bad constraint field."""
    implicit, staying = _mobility(d, hosts, machines)
    data = {
        "hosts": [{"name": h.name, "cpu": h.cpu, "memory": h.memory_kib / MIB, "power_idle": h.power_idle,
                   "power_max": h.power_max, "on": bool(h.machines)} for h in hosts.values()],
        "vms": [{"name": uuid, "cpu": m["cpu"], "memory": m["memory_kib"] / MIB, "host": m["host"]}
                for uuid, m in machines.items()],
        "constraints": list(settings["constraints"]) + implicit,
        "migration_cost": settings["migrationCost"], "time_limit": settings["timeLimit"]}
    if settings.get("maxMigrations") is not None:  # so that check.check holds the plan to it too
        data["max_migrations"] = settings["maxMigrations"]
    return parse_problem(data), staying, len(settings["constraints"])


# -- planning ------------------------------------------------------------------------------------------
def plan(d, settings, base):
    """The plan as served (a dict), and its moves in execution order (for the job)."""
    with d.store.read() as session:
        hosts, machines = snapshot(d, session)
    prob, staying, given = problem(d, hosts, machines, settings)
    current = {uuid: m["host"] for uuid, m in machines.items()}
    before = check.measure(prob, current) if machines else {"power_watts": 0.0, "active_hosts": 0}
    doc = {"dryRun": settings["dryRun"], "hosts": len(hosts), "machines": len(machines),
           "powerBefore": round(before["power_watts"], 1), "activeHostsBefore": before["active_hosts"],
           "staying": [{"machine": _ref(base, u), "name": machines[u]["name"], "host": machines[u]["host"],
                        "reason": why} for u, why in staying.items()]}
    if not machines:
        doc.update(status="optimal", migrations=[], hostsOff=[], hostsOn=[], powerAfter=0.0, activeHostsAfter=0)
        return doc, []
    result = energy.consolidate(prob, max_migrations=settings["maxMigrations"], time_limit=settings["timeLimit"])
    moves = []
    if result.found:
        violations = check.check(prob, result.placement)
        if violations:  # never offer a plan the independent checker rejects
            result.status, result.reason = "infeasible", "the plan failed the checker: " + "; ".join(violations[:3])
        else:
            moves, blocked = migrate.order(prob, result.placement)
            if blocked:
                result.status = "infeasible"
                result.reason = "no order of single moves keeps every host within capacity: " + "; ".join(
                    "machine %s from %s to %s: %s" % (b["vm"], b["from"], b["to"], b["reason"]) for b in blocked)
    doc["status"] = result.status
    doc["solveSeconds"] = round(result.solve_seconds, 3)
    if result.status == "infeasible":
        doc["reason"] = result.reason
        doc["explanations"] = [_explanation(e, given) for e in result.explanations] or [{"message": result.reason}]
        return doc, []
    after = check.measure(prob, result.placement)
    doc["migrations"] = [{"machine": _ref(base, mv["vm"]), "name": machines[mv["vm"]]["name"],
                          "from": mv["from"], "to": mv["to"],
                          "mode": _mode(d, machines[mv["vm"]])} for mv in moves]
    doc["hostsOff"] = sorted(h for h in hosts if hosts[h].machines and h not in set(result.placement.values()))
    doc["hostsOn"] = sorted(h for h in set(result.placement.values()) if not hosts[h].machines)
    doc["powerAfter"] = round(after["power_watts"], 1)
    doc["activeHostsAfter"] = after["active_hosts"]
    return doc, moves


def _ref(base, uuid):
    return {"href": base + hrefs.ref("machines", uuid)}


def _mode(d, m):
    if d.pool.by_name(m["host"]).simulated:
        return "simulated"  # the test driver redefines the domain on the target: not a migration
    return "offline" if m["state"] == states.STOPPED else "live"


def _explanation(e, given):
    out = e.to_json()
    if e.index is not None and e.index >= given:
        out.pop("index")  # a constraint the daemon added: what the hosts allow, not one of the caller's
        out["implicit"] = True
    return out


def request(d, p, body, base):
    """(status, document, headers) of POST /admin/consolidation."""
    settings = parse(body)
    if not settings["dryRun"]:
        with d.store.read() as session:
            if _running(session) is not None:
                raise Conflict("a consolidation is already under way: %s" % (base + hrefs.ref(
                    "jobs", _running(session))))
    doc, moves = plan(d, settings, base)
    if settings["dryRun"]:
        return 200, doc, {}
    if doc["status"] == "infeasible":  # nothing queued: a CIMI error naming why, explanations included
        error = error_document(409, "infeasible: %s" % doc["reason"], "infeasible")
        error["properties"]["explanations"] = doc["explanations"]
        return 409, error, {}
    with d.store.transaction() as session:
        d.store.write_lock(session)
        if _running(session) is not None:  # another request got there first
            raise Conflict("a consolidation is already under way")
        job = jobs.queue(session, p.tenant_id, OP, None, params={
            "moves": moves, "settings": {k: settings[k] for k in FIELDS if k != "dryRun"},
            "hostsOff": doc["hostsOff"], "done": []})
        job_href = base + hrefs.ref("jobs", job.uuid)
    d.service.wake()
    doc["job"] = {"href": job_href}
    return 202, doc, {"Location": job_href, "CIMI-Job-URI": job_href}


def _running(session):
    return session.scalar(select(Job.uuid).where(Job.action == action_uri(OP), Job.state.in_(ACTIVE)))


# -- carrying a plan out ---------------------------------------------------------------------------
class StepFailed(SiroccoError):
    """A move cannot be made (the CMDB or the host says no): the job ends FAILED with this."""

    http_status = 409


@handles(None, OP)
def run(worker, job_uuid):
    """The job: re-check the whole plan, then each move in order. Never raises."""
    d = worker  # what planning reads: the store and the pool
    with worker.store.read() as session:
        job = session.get(Job, job_uuid)
        params = dict(job.params)
    moves, settings = params.get("moves") or [], params.get("settings") or {}
    done = []
    try:
        recheck(d, moves, settings)
        for i, move in enumerate(moves):
            note = "move %d of %d: machine %s from %s to %s" % (
                i + 1, len(moves), move["vm"], move["from"], move["to"])
            worker.progress(job_uuid, 10 + 85 * i // max(1, len(moves)), note)
            mode = step(d, job_uuid, move)
            done.append(dict(move, mode=mode))
            _record_done(worker, job_uuid, done)
    except SiroccoError as exc:
        failed_at = len(done)
        what = ("move %d of %d (machine %s from %s to %s)" % (
            failed_at + 1, len(moves), moves[failed_at]["vm"], moves[failed_at]["from"], moves[failed_at]["to"])
            if failed_at < len(moves) else "the plan")
        message = "%s failed: %s; %d of %d moves done before it (recorded)" % (what, exc, failed_at, len(moves))
        return worker.finish(job_uuid, FAILED, message, getattr(exc, "http_status", 409) or 409)
    except Exception:  # noqa: BLE001  a bug must still end the job, with what was done recorded
        log.exception("consolidation job %s failed", job_uuid)
        return worker.finish(job_uuid, FAILED, "internal error after %d of %d moves (details are in the "
                                               "daemon's log)" % (len(done), len(moves)), 500)
    off = params.get("hostsOff") or []
    worker.finish(job_uuid, SUCCESS, "%d machine(s) moved; hosts emptied, to switch off: %s"
                  % (len(done), ", ".join(off) or "none"), 200)


def recheck(d, moves, settings):
    """The plan applied to the CMDB as it is now must pass check.check (capacity, the caller's constraints,
    what the hosts allow): machines may have come, gone or changed since it was made."""
    with d.store.read() as session:
        hosts, machines = snapshot(d, session)
    for move in moves:
        m = machines.get(move["vm"])
        if m is None or m["host"] != move["from"]:
            raise StepFailed("machine %s is no longer on host %s" % (move["vm"], move["from"]))
        m["busy"] = False  # its own step will take it
    settings = dict(settings, constraints=settings.get("constraints") or [])
    try:
        prob, _staying, _given = problem(d, hosts, machines, settings)
    except InvalidInput as exc:
        raise StepFailed("the plan's constraints no longer apply: %s" % exc) from None
    placement = {uuid: m["host"] for uuid, m in machines.items()}
    placement.update({mv["vm"]: mv["to"] for mv in moves})
    violations = check.check(prob, placement)
    if violations:
        raise StepFailed("the plan no longer holds: %s" % "; ".join(violations[:3]))


def step(d, job_uuid, move):
    """One move: checked and marked (``begin``), carried out on the hosts, then recorded. Returns its mode
    (live, offline, simulated)."""
    src, dst = d.pool.by_name(move["from"]), d.pool.by_name(move["to"])
    child, native, before, mode = begin(d, job_uuid, move)
    try:
        moved = src.migrate_machine(native, dst)
    except SiroccoError as exc:
        where = _where_now(src, dst, native)
        _record(d, move, child, where, None, FAILED, "not moved: %s" % exc, exc.http_status or 500)
        raise
    except Exception as exc:
        log.exception("moving machine %s", move["vm"])
        where = _where_now(src, dst, native)
        _record(d, move, child, where, None, FAILED, "not moved: internal error", 500)
        raise StepFailed("internal error while moving it (details are in the daemon's log)") from exc
    message = "moved from %s to %s (%s)" % (src.name, dst.name, {
        "live": "live migration", "offline": "offline migration",
        "simulated": "simulated hosts: redefined on the target, not a migration"}[mode])
    state = moved.state if moved.state in states.STABLE_MACHINE_STATES else before
    _record(d, move, child, (dst, moved.id), state, SUCCESS, message, 200)
    return mode


def begin(d, job_uuid, move):
    """Check a move against the CMDB and mark it, in one transaction: a nested RUNNING job on the machine
    (its other jobs wait) and ``private.moving`` (where it goes: see ``settle``). Returns
    (nested job uuid, native id, state, mode)."""
    src, dst = d.pool.by_name(move["from"]), d.pool.by_name(move["to"])
    with d.store.transaction() as session:
        capacity.lock(d.store, session)  # the target's room, read below, stays free for this move
        row = session.get(Resource, move["vm"], with_for_update=not d.store.is_sqlite)
        if row is None or row.host_id != src.id:
            raise StepFailed("the machine is no longer on host %s" % src.name)
        if row.state not in MOVABLE:
            raise StepFailed("the machine is %s now" % row.state)
        other = session.scalar(select(Job.uuid).where(Job.target_uuid == row.uuid, Job.state.in_(ACTIVE)))
        if other is not None:
            raise StepFailed("job %s runs on the machine" % other)
        room = capacity.room(session, dst.id)
        if int(row.doc.get("cpu") or 0) > room[0] or int(row.doc.get("memory") or 0) > room[1]:
            raise StepFailed("host %s has no room for it now (free: %d cpu, %d MiB)"
                             % (dst.name, room[0], room[1] // MIB))
        child = jobs.start_nested(d.store, session, job_uuid, "migrate", row, params={"to": dst.name},
                                  affected=[hrefs.ref("machines", row.uuid)])
        if child is None:
            raise StepFailed("this run lost its claim on the consolidation job (taken over)")
        mode = "simulated" if src.simulated else "offline" if row.state == states.STOPPED else "live"
        row.private = dict(row.private, moving={"to": dst.id, "job": child.uuid})
        return child.uuid, row.native_id, row.state, mode


def _where_now(src, dst, native):
    """(host, native id) where a machine is after a failed move: the target if it has it, else the source."""
    try:
        machine = dst.get_machine(native)
        return dst, machine.id
    except Exception:  # noqa: BLE001  not there (or the target is unreachable): it did not leave
        return src, native


def _record(d, move, child_uuid, where, state, outcome, message, code):
    handle, native = where

    def moved(session, _child):
        row = session.get(Resource, move["vm"])
        if row is not None:
            row.host_id, row.native_id = handle.id, native
            if state is not None:
                row.state = state
            row.private = {k: v for k, v in row.private.items() if k != "moving"}
            row.updated = utcnow()
    jobs.finish(d.store, child_uuid, outcome, message, code, moved)


def _record_done(worker, job_uuid, done):
    """The moves done so far, in the job's params and affected resources (taken over: not recorded; the run
    that holds it now records its own)."""
    jobs.note(worker.store, job_uuid, params={"done": list(done)},
              affected=[hrefs.ref("machines", mv["vm"]) for mv in done])


def settle(store, pool):
    """Moves a dead process left unrecorded (its jobs ended FAILED "interrupted"): a machine marked
    ``moving`` whose move's job is over is recorded where its domain is now, the target if it arrived
    there (asked by native id), else where it was. Reconcile calls this first, so it neither marks such a
    machine gone on its old host nor adopts its domain on the new one. Returns how many it moved."""
    with store.read() as session:
        moved_ever = select(Job.target_uuid).where(Job.action == action_uri("migrate"))  # each move is such a job
        rows = [(row.uuid, row.host_id, row.native_id, row.private["moving"]) for row in session.scalars(
            select(Resource).where(Resource.type == "Machine", Resource.uuid.in_(moved_ever)))
            if isinstance(row.private.get("moving"), dict)]
        active = set(session.scalars(select(Job.uuid).where(Job.state.in_(ACTIVE))))
    moved = 0
    for uuid, host_id, native, moving in rows:
        if moving.get("job") in active or native is None:
            continue  # still under way (POST /admin/reconcile beside a running job)
        target = pool.handles.get(moving.get("to"))
        try:
            arrived = target is not None and target.get_machine(native) is not None
        except SiroccoError:
            arrived = False  # not there (or the target is down): it is where it was
        with store.transaction() as session:
            row = session.get(Resource, uuid)
            if row is None or row.host_id != host_id:
                continue
            if arrived:
                row.host_id, moved = target.id, moved + 1
                log.warning("machine %s: found on host %s, where an interrupted move took it", uuid, target.name)
            row.private = {k: v for k, v in row.private.items() if k != "moving"}
            row.updated = utcnow()
    return moved

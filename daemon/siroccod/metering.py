"""Meters are sampled in the background, requests only read the samples.

Every ``meter_interval`` seconds one thread asks each host that meters (``meter.list``) for the meters of
its machines that have a domain, and writes one sample per Meter resource into the CMDB (table
``meter_samples``); samples older than ``meter_retention_hours`` are deleted. A request for a Meter, or
``$expand=meters``, reads the latest samples there: it never waits for a host (sampling a machine's cpu
takes a tenth of a second of the host's time, under the host's lock).

Processes sharing a PostgreSQL CMDB sample once between them: the sampler that holds a session-level
advisory lock (on a connection of its own, released if its process dies) samples; the others wait for it.
SQLite serves one process.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from datetime import timedelta

from sqlalchemy import delete, select, text

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import SiroccoError
from siroccod.store import MeterSample, Resource, Store, utcnow

log = logging.getLogger(__name__)
# pg_try_advisory_lock key held by the one sampling process (any constant of our own)
SAMPLER_LOCK_KEY = 0x51_52_6D_74
SHOWN = 60  # samples a Meter's document carries (the newest)


class Sampler:
    def __init__(self, store: Store, pool, interval: float = 60.0, retention_hours: float = 24.0):
        self.store = store
        self.pool = pool
        self.interval = interval
        self.retention = timedelta(hours=retention_hours)
        self._stop = threading.Event()
        self._thread = None
        self._lock_conn = None  # PostgreSQL: the connection holding the sampler lock

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self.interval <= 0:
            return
        self._thread = threading.Thread(target=self._run, name="siroccod-metering", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._release()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample_once()
            except Exception:  # noqa: BLE001  a failed round must not end the sampling
                log.exception("metering: a sampling round failed")

    # -- one process samples -------------------------------------------------------------------
    def _leader(self) -> bool:
        if self.store.is_sqlite:
            return True
        if self._lock_conn is not None:
            try:
                self._lock_conn.execute(text("SELECT 1"))
                return True
            except Exception:  # noqa: BLE001  the connection (and its lock) is gone: try again below
                self._release()
        conn = self.store.engine.connect()
        held = conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": SAMPLER_LOCK_KEY}).scalar()
        conn.commit()
        if held:
            self._lock_conn = conn
            return True
        conn.close()
        return False

    def _release(self) -> None:
        if self._lock_conn is not None:
            try:  # unlocked now (the end of a session frees it too, but only once its server process is gone)
                self._lock_conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SAMPLER_LOCK_KEY})
                self._lock_conn.commit()
            except Exception:  # noqa: BLE001  a broken connection: its session ends below
                pass
            try:  # the pool would keep the connection (and its session): end it
                self._lock_conn.invalidate()
                self._lock_conn.close()
            except Exception:  # noqa: BLE001  closing a broken connection
                pass
            self._lock_conn = None

    # -- a round ---------------------------------------------------------------------------------
    def sample_once(self) -> int:
        """Sample every metered machine once (if this process samples); the number of samples written."""
        if not self._leader():
            return 0
        with self.store.read() as session:
            meters = defaultdict(dict)  # machine uuid -> {aspect: meter uuid}
            for uuid, machine, doc in session.execute(select(Resource.uuid, Resource.machine_uuid, Resource.doc)
                                                      .where(Resource.type == "Meter",
                                                             Resource.machine_uuid.is_not(None))):
                meters[machine][doc.get("aspect")] = uuid
            machines = session.execute(select(Resource.uuid, Resource.host_id, Resource.native_id)
                                       .where(Resource.type == "Machine", Resource.uuid.in_(list(meters)),
                                              Resource.native_id.is_not(None), Resource.host_id.is_not(None),
                                              Resource.state != states.FAILED)).all() if meters else []
        by_host = defaultdict(list)
        for uuid, host_id, native in machines:
            by_host[host_id].append((uuid, native))
        samples, units = [], {}
        for host_id, listed in by_host.items():
            handle = self.pool.handles.get(host_id)
            if handle is None or not handle.supports("meter.list"):
                continue
            for uuid, native in listed:
                if self._stop.is_set():
                    return 0
                try:
                    read = handle.list_meters(native)
                except SiroccoError as exc:  # a machine gone meanwhile, a host down: the next round will tell
                    log.debug("metering: machine %s on host %s: %s", uuid, handle.name, exc)
                    continue
                for meter in read:
                    meter_uuid, found = meters[uuid].get(meter.aspect), reading(meter)
                    if meter_uuid is None or found is None:
                        continue
                    samples.append(MeterSample(meter_uuid=meter_uuid, taken=utcnow(), value=found[0]))
                    if found[1]:
                        units[meter_uuid] = found[1]
        self._record(samples, units)
        return len(samples)

    def _record(self, samples, units) -> None:
        with self.store.transaction() as session:
            session.add_all(samples)
            if units:  # a meter's units, once it knows them (its document says how to read the values)
                for row in session.scalars(select(Resource).where(Resource.uuid.in_(list(units)))):
                    if row.doc.get("units") != units[row.uuid] or row.doc.get("sampleInterval") != int(self.interval):
                        row.doc = dict(row.doc, units=units[row.uuid], sampleInterval=int(self.interval))
            session.execute(delete(MeterSample).where(MeterSample.taken < utcnow() - self.retention))


def reading(meter) -> tuple[str, str | None] | None:
    """(value, units) of a connector's Meter: its newest sample; None without one."""
    if meter is None or not meter.samples:
        return None
    return str(meter.samples[-1].value)[:64], meter.units


def latest(session, meter_uuid: str, count: int = SHOWN) -> dict:
    """What a Meter's document shows of its samples: the newest ``count`` (oldest first), min and max."""
    rows = session.execute(select(MeterSample.taken, MeterSample.value).where(MeterSample.meter_uuid == meter_uuid)
                           .order_by(MeterSample.taken.desc(), MeterSample.id.desc()).limit(count)).all()
    if not rows:
        return {}
    rows.reverse()
    out = {"samples": [{"timestamp": taken.isoformat(timespec="milliseconds") + "Z", "value": value}
                       for taken, value in rows]}
    numbers = [float(v) for _t, v in rows if _number(v)]
    if numbers:
        out["minValue"], out["maxValue"] = _show(min(numbers)), _show(max(numbers))
    return out


def _number(value):
    try:
        float(value)
        return True
    except ValueError:
        return False


def _show(number):
    return ("%.2f" % number).rstrip("0").rstrip(".")

# -*- coding: utf-8 -*-
# Copyright: Sirocco contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What ``meter_info`` does: a machine's samples over a time window, in one shape on every provider.

Each connector reads its own source (libvirt domain stats, CloudWatch, vSphere performance counters, the
daemon's stored history) through ``list_meters(machine_id, start, end)``; here the window is parsed,
the samples outside it are dropped (a source may return more) and every sample also becomes one flat row
(machine, aspect, units, timestamp, value), the shape a CSV file or a chart wants.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, NotFound

ASPECT_PREFIX = "http://schemas.dmtf.org/cimi/2/aspect/"
ASPECTS = ("cpu", "memory", "disk", "inputBandwidth", "outputBandwidth")
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 date and time as an aware datetime (UTC when it names no zone), or InvalidInput."""
    if isinstance(text, datetime):
        value = text
    else:
        try:
            value = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("%s: '%s' is not an ISO 8601 date and time (e.g. 2026-12-07T10:00:00Z)"
                               % (option, text), attribute=option) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_duration(text: str, option: str) -> timedelta:
    """``30m``, ``2h``, ``1d``, ``90s`` as a timedelta, or InvalidInput."""
    found = _DURATION.match(str(text))
    if not found or int(found.group(1)) == 0:
        raise InvalidInput("%s: '%s' is not a duration such as 90s, 30m, 2h or 1d" % (option, text),
                           attribute=option)
    return timedelta(seconds=int(found.group(1)) * _SECONDS[found.group(2)])


def window(start=None, end=None, last=None, now=None):
    """(start, end) as aware datetimes from the module's options; (None, None) asks for the latest sample.

    ``last`` (a duration) is the window ending at ``end``, or now; it excludes ``start``. Without ``end`` the
    window stays open (end None): a provider's sample taken while it answers is still in it."""
    now = now or datetime.now(UTC).replace(microsecond=0)  # whole seconds: providers stamp samples so
    if last is not None and start is not None:
        raise InvalidInput("last: give either start or last, not both", attribute="last")
    until = parse_time(end, "end") if end is not None else None
    if last is not None:
        return (until or now) - parse_duration(last, "last"), until
    since = parse_time(start, "start") if start is not None else None
    if since is not None and until is not None and since >= until:
        raise InvalidInput("start: %s is not before end %s" % (since.isoformat(), until.isoformat()),
                           attribute="start")
    return since, until


def check_aspects(aspects):
    """The aspects asked for (all when none), each one of ASPECTS, or InvalidInput."""
    unknown = sorted(set(aspects or ()) - set(ASPECTS))
    if unknown:
        raise InvalidInput("aspects: unknown %s (known: %s)" % (", ".join(unknown), ", ".join(ASPECTS)),
                           attribute="aspects")
    return tuple(aspects) if aspects else ASPECTS


def aspect_of(meter) -> str:
    """The short aspect name of a Meter (``cpu`` for .../aspect/cpu)."""
    aspect = meter.get("aspect") or meter.get("name") or ""
    return aspect[len(ASPECT_PREFIX):] if aspect.startswith(ASPECT_PREFIX) else aspect


def _inside(timestamp, since, until):
    when = parse_time(timestamp, "timestamp")
    return (since is None or when >= since) and (until is None or when <= until)


def select(meters, aspects, since=None, until=None):
    """The Meter documents of ``aspects``, each keeping only its samples inside the window, sorted by aspect."""
    chosen = []
    for meter in meters:
        if aspect_of(meter) not in aspects:
            continue
        meter = dict(meter)
        samples = [s for s in meter.get("samples") or [] if _inside(s["timestamp"], since, until)]
        meter["samples"] = sorted(samples, key=lambda s: parse_time(s["timestamp"], "timestamp"))
        chosen.append(meter)
    return sorted(chosen, key=lambda m: aspects.index(aspect_of(m)))


def _number(value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        return value
    return int(number) if number.is_integer() else number


def rows(machine_name, meters):
    """One flat row per sample: machine, aspect, units, timestamp (ISO 8601, UTC), value (a number when it is one)."""
    out = []
    for meter in meters:
        for sample in meter.get("samples") or []:
            stamp = parse_time(sample["timestamp"], "timestamp").astimezone(UTC)
            out.append({"machine": machine_name, "aspect": aspect_of(meter), "units": meter.get("units"),
                        "timestamp": stamp.isoformat().replace("+00:00", "Z"), "value": _number(sample["value"])})
    return sorted(out, key=lambda r: (r["timestamp"], ASPECTS.index(r["aspect"]) if r["aspect"] in ASPECTS else 99))


def find_machine(connector, ref):
    """The machine ``ref`` names: its native id, else its unique name."""
    try:
        return connector.get_machine(ref)
    except (NotFound, InvalidInput):  # not an id of this provider: a name
        pass
    machine = connector.find_machine(ref)
    if machine is None:
        raise InvalidInput("machine: no machine '%s' on provider '%s'" % (ref, connector.name), attribute="machine")
    return machine


def read(connector, ref, aspects=None, start=None, end=None, last=None):
    """{machine, window, meters, samples} for ``meter_info``; options checked before any provider call."""
    aspects = check_aspects(aspects)
    since, until = window(start, end, last)
    connector.require("meter.list")
    machine = find_machine(connector, ref)
    window_given = {"start": since, "end": until} if since or until else {}
    meters = [m.to_json() for m in connector.list_meters(machine.id, **window_given)]
    meters = select(meters, aspects, since, until)
    name = machine.name or machine.id
    shown = {"start": since.isoformat() if since else None, "end": until.isoformat() if until else None}
    return {"machine": {"id": machine.id, "name": name}, "window": shown, "meters": meters,
            "samples": rows(name, meters)}

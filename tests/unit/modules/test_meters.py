"""Pure logic of sirocco.cimi.meter_info: the window, the aspects, the samples kept and their flat rows."""

from datetime import UTC, datetime, timedelta

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils import meters
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
CPU = {"aspect": meters.ASPECT_PREFIX + "cpu", "units": "percent",
       "samples": [{"timestamp": "2026-12-07T09:58:00.000Z", "value": "2.5"},
                   {"timestamp": "2026-12-07T08:00:00Z", "value": "40"},
                   {"timestamp": "2026-12-07T09:59:00+00:00", "value": "3"}]}
MEMORY = {"aspect": meters.ASPECT_PREFIX + "memory", "units": "KiB",
          "samples": [{"timestamp": "2026-12-07T09:59:00Z", "value": "65536"}]}


def test_no_window_asks_for_the_latest():
    assert meters.window(now=NOW) == (None, None)


def test_last_ends_now_or_at_end():
    assert meters.window(last="30m", now=NOW) == (NOW - timedelta(minutes=30), None)  # open: up to now
    expected = (NOW - timedelta(hours=2), NOW - timedelta(hours=1))
    assert meters.window(end="2026-12-07T09:00:00Z", last="1h", now=NOW) == expected


def test_a_time_without_a_zone_is_utc():
    assert meters.parse_time("2026-12-07T10:00:00", "start") == NOW


@pytest.mark.parametrize("kwargs, option", [
    (dict(start="yesterday"), "start"),
    (dict(end="2026-13-01T00:00:00Z"), "end"),
    (dict(last="an hour"), "last"),
    (dict(last="0m"), "last"),
    (dict(start="2026-12-07T10:00:00Z", end="2026-12-07T09:00:00Z"), "start"),
    (dict(start="2026-12-07T10:00:00Z", last="1h"), "last"),
])
def test_a_bad_window_names_its_option(kwargs, option):
    with pytest.raises(InvalidInput) as info:
        meters.window(now=NOW, **kwargs)
    assert info.value.attribute == option and option in info.value.message


def test_unknown_aspects_are_refused_and_none_means_all():
    assert meters.check_aspects(None) == meters.ASPECTS
    with pytest.raises(InvalidInput, match="aspects: unknown gpu"):
        meters.check_aspects(["cpu", "gpu"])


def test_select_keeps_the_window_and_the_aspects_asked_for():
    since, until = meters.window(start="2026-12-07T09:55:00Z", end="2026-12-07T10:00:00Z", now=NOW)
    [cpu] = meters.select([MEMORY, CPU], ("cpu",), since, until)
    assert [s["value"] for s in cpu["samples"]] == ["2.5", "3"]  # oldest first, the 08:00 one left out
    assert [meters.aspect_of(m) for m in meters.select([MEMORY, CPU], meters.ASPECTS)] == ["cpu", "memory"]


def test_rows_are_flat_numbers_in_utc_sorted_by_time():
    rows = meters.rows("web-1", meters.select([CPU, MEMORY], meters.ASPECTS))
    assert rows[0] == {"machine": "web-1", "aspect": "cpu", "units": "percent", "timestamp": "2026-12-07T08:00:00Z",
                       "value": 40}
    assert [(r["aspect"], r["value"]) for r in rows[-2:]] == [("cpu", 3), ("memory", 65536)]
    assert rows[1]["value"] == 2.5

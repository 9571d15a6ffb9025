"""plugin_utils/inventory.py: host names, groups, cache keys, concurrent fetching with deadlines, paging."""

from __future__ import annotations

import gc
import threading
import time

import pytest
import yaml

from ansible_collections.sirocco.cimi.plugins.doc_fragments import provider as provider_fragment
from ansible_collections.sirocco.cimi.plugins.inventory import cimi as plugin
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput, ProviderUnavailable
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector
from ansible_collections.sirocco.cimi.plugins.module_utils.module import provider_argument_spec
from ansible_collections.sirocco.cimi.plugins.plugin_utils import inventory as inv

# -- host names -----------------------------------------------------------------------------------

MACHINE = {"id": "u-1", "name": "web1", "state": "STARTED", "properties": {"role": "web", "empty": ""},
           "interfaces": [{"macAddress": "aa"}, {"addresses": [{"address": "10.0.0.5"}, {"ip": "fe80::1"}]},
                          {"addresses": ["10.0.0.5", "192.168.1.9"]}]}


def test_addresses_in_interface_order_without_repeats():
    assert inv.addresses(MACHINE) == ["10.0.0.5", "fe80::1", "192.168.1.9"]
    assert inv.addresses({"id": "x"}) == []


@pytest.mark.parametrize("preferences, expected", [
    (["name"], "web1"),
    (["id"], "u-1"),
    (["address", "name"], "10.0.0.5"),
    (["property:role"], "web"),
    (["property:empty", "property:missing", "name"], "web1"),  # empty or absent: the next preference
    (["property:missing"], "u-1"),  # nothing: the id
])
def test_preferred_hostname(preferences, expected):
    assert inv.preferred_hostname(MACHINE, preferences) == expected


@pytest.mark.parametrize("bad", [[], "name", ["fqdn"], ["property:"], [3]])
def test_check_hostnames_refuses(bad):
    with pytest.raises(InvalidInput, match="hostnames"):
        inv.check_hostnames(bad)


def test_unique_names_are_kept_duplicates_get_the_label():
    got = inv.assign_hostnames([("a", "1", "web"), ("b", "2", "web"), ("a", "3", "db")])
    assert got == ["web_a", "web_b", "db"]


def test_duplicates_within_one_provider_get_the_id():
    got = inv.assign_hostnames([("a", "1", "web"), ("a", "2", "web"), ("b", "3", "web")])
    assert got == ["web_a_1", "web_a_2", "web_b"]


def test_a_machine_named_like_a_suffixed_one_keeps_its_name():
    # "web_b" is a real, unique name: the duplicate "web" of provider b must not take it
    got = inv.assign_hostnames([("a", "1", "web"), ("b", "2", "web"), ("c", "3", "web_b")])
    assert got == ["web_a", "web_b_2", "web_b"]


def test_names_do_not_depend_on_the_order_of_the_providers():
    candidates = [("a", "1", "web"), ("b", "2", "web"), ("b", "3", "db"), ("c", "4", "db"), ("c", "5", "x")]
    forward = dict(zip([(c[0], c[1]) for c in candidates], inv.assign_hostnames(candidates), strict=True))
    backward = list(reversed(candidates))
    assert dict(zip([(c[0], c[1]) for c in backward], inv.assign_hostnames(backward), strict=True)) == forward


def test_names_are_always_unique():
    candidates = [("a", "1", "w_a_1"), ("a", "1", "w"), ("a", "1", "w"), ("b", "2", "w_a")]
    names = inv.assign_hostnames(candidates)
    assert len(set(names)) == len(names)


# -- labels and groups -------------------------------------------------------------------------------

def test_default_labels():
    entries = [{"provider": "libvirt"}, {"provider": "xenserver"}, {"provider": "libvirt"},
               {"provider": "vsphere", "name": "vc"}, {"provider": "xenserver", "cloud": "lab"}]
    assert inv.default_labels(entries) == ["libvirt_1", "xenserver", "libvirt_2", "vc", "lab"]


@pytest.mark.parametrize("entries, message", [
    ([{"provider": "libvirt", "name": "x"}, {"provider": "vsphere", "name": "x"}], "names two providers"),
    ([{"provider": "libvirt", "name": "no spaces"}], "must be letters"),
])
def test_bad_labels(entries, message):
    with pytest.raises(InvalidInput, match=message):
        inv.default_labels(entries)


def test_default_groups_are_safe_names():
    machine = {"state": "SUSPENDED", "properties": {"team": "a.b c", "tier": "", "x-y": "1"}}
    assert inv.default_groups("lab-1", machine, "host-2.example.org") == [
        "provider_lab_1", "state_suspended", "location_host_2_example_org", "prop_team_a_b_c", "prop_tier",
        "prop_x_y_1"]
    assert inv.default_groups("a", machine, None, kinds=("state",)) == ["state_suspended"]


# -- cache keys ----------------------------------------------------------------------------------------

def test_cache_keys_differ_per_account_and_hold_no_secret():
    base = "sirocco.cimi.cimi_kabc123"
    alice = inv.cache_key(base, "xenserver", "https://xs.example.org", "alice")
    assert alice.startswith(base + "_") and len(alice) == len(base) + 33
    assert alice == inv.cache_key(base, "xenserver", "https://xs.example.org", "alice")  # stable
    others = {inv.cache_key(base, "xenserver", "https://xs.example.org", "bob"),
              inv.cache_key(base, "xenserver", "https://xs2.example.org", "alice"),
              inv.cache_key(base, "vsphere", "https://xs.example.org", "alice"),
              inv.cache_key(base, "xenserver", "https://xs.example.org", "alice", region="eu"),
              inv.cache_key(base, "xenserver", "https://xs.example.org", "alice", options={"sr": "b"}),
              inv.cache_key(base + "x", "xenserver", "https://xs.example.org", "alice")}
    assert alice not in others and len(others) == 6
    for clear in ("alice", "xs.example.org", "xenserver"):
        assert clear not in alice[len(base):]


# -- fetching concurrently, within deadlines ----------------------------------------------------------------

def test_fetch_all_runs_at_once_and_gives_up_on_the_slow_one():
    release = threading.Event()

    def slow():
        release.wait(10)
        return "late"

    def broken():
        raise ProviderUnavailable("cannot reach it")

    started = time.monotonic()
    outcomes = inv.fetch_all({"fast1": (lambda: time.sleep(0.3) or "one", 5),
                              "fast2": (lambda: time.sleep(0.3) or "two", 5),
                              "slow": (slow, 0.5), "broken": (broken, 5)})
    elapsed = time.monotonic() - started
    release.set()
    assert outcomes["fast1"].ok and outcomes["fast1"].value == "one" and outcomes["fast2"].value == "two"
    assert outcomes["slow"].timed_out and not outcomes["slow"].ok
    assert isinstance(outcomes["broken"].error, ProviderUnavailable)
    assert elapsed < 1.0  # the longest wait (0.5 s), not the sum


def test_fetch_all_of_nothing():
    assert inv.fetch_all({}) == {}


# -- listing a real connector page by page (libvirt's test driver) --------------------------------------------

HOST = """<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
<cpu><mhz>2400</mhz><model>i686</model><active>4</active><nodes>1</nodes><sockets>1</sockets><cores>4</cores>
<threads>1</threads></cpu><memory>4194304</memory>%s</node>"""
DOMAIN = ("<domain type='test'><name>m%d</name><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>%s"
          "</domain>")


@pytest.fixture
def five_machines(tmp_path):
    path = tmp_path / "host.xml"
    path.write_text(HOST % "".join(DOMAIN % (i, "<test:runstate>5</test:runstate>" if i % 2 else "")
                                   for i in range(5)))
    return "test://%s" % path


class CountingConnector(LibvirtConnector):
    """The real libvirt connector, counting the pages it was asked for."""

    pages = 0

    def list_machines(self, limit=None, marker=None):
        type(self).pages += 1
        return super().list_machines(limit=limit, marker=marker)


def test_every_page_and_every_state(five_machines):
    CountingConnector.pages = 0
    with CountingConnector(uri=five_machines) as conn:
        got = inv.list_provider(conn, page_size=2)
    assert sorted(m["name"] for m in got["machines"]) == ["m0", "m1", "m2", "m3", "m4"]
    assert {m["state"] for m in got["machines"]} == {"STARTED", "STOPPED"}
    assert CountingConnector.pages == 3
    assert got["location"]  # a libvirt host has one location: its host name


def test_region_is_the_location_and_paging_stops_at_the_deadline(five_machines):
    ticks = iter(range(100))
    with LibvirtConnector(uri=five_machines) as conn:
        assert inv.list_provider(conn, region="eu-west-1")["location"] == "eu-west-1"
        with pytest.raises(inv.DeadlineExceeded, match="gave up after 2 machines"):
            inv.list_provider(conn, page_size=2, deadline=-1, clock=lambda: next(ticks))


def test_fetch_provider_closes_the_connector_even_on_failure(five_machines):
    closed = []

    class Closing(LibvirtConnector):
        def close(self):
            closed.append(True)
            super().close()

    assert len(inv.fetch_provider(lambda: Closing(uri=five_machines), timeout=10)()["machines"]) == 5
    with pytest.raises(ProviderUnavailable):
        inv.fetch_provider(lambda: Closing(uri="test:///nonexistent/host.xml"))()
    assert closed == [True, True]


# -- the plugin's documentation -------------------------------------------------------------------------------

def test_plugin_documents_the_provider_options_once_and_its_own():
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert "sirocco.cimi.provider" in doc["extends_documentation_fragment"]
    fragment = yaml.safe_load(provider_fragment.ModuleDocFragment.DOCUMENTATION)["options"]
    assert not set(fragment) & set(doc["options"])  # reused, not declared again
    assert plugin.PROVIDER_OPTIONS == tuple(provider_argument_spec())
    providers = " ".join(doc["options"]["providers"]["description"])
    for key in plugin.ENTRY_KEYS + ("timeout",):
        assert "C(%s)" % key in providers
    assert doc["options"]["default_groups"]["choices"] == list(inv.GROUP_KINDS)
    assert doc["options"]["page_size"].get("default") == inv.DEFAULT_PAGE_SIZE


def _burn(seconds):
    """Busy CPU for ``seconds`` of this thread's own CPU time (as a start-up does)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.mark.skipif(not hasattr(time, "pthread_getcpuclockid"),
                    reason="no per-thread CPU clock on this platform: the calls then all start at once")
def test_fetch_all_starts_a_call_once_the_one_before_waits():
    events = []

    def first():
        events.append("first starts")
        _burn(0.05)
        events.append("first waits")
        time.sleep(0.5)
        events.append("first done")
        return 1

    def second():
        events.append("second starts")
        return 2

    outcomes = inv.fetch_all({"first": (first, 5), "second": (second, 5)})
    assert outcomes["first"].value == 1 and outcomes["second"].value == 2
    assert events == ["first starts", "first waits", "second starts", "first done"]


def test_fetch_all_does_not_hold_a_call_back_longer_than_start_turn():
    events = []

    def busy():
        _burn(inv.START_TURN + 1.0)
        events.append("busy done")

    outcomes = inv.fetch_all({"busy": (busy, 10), "next": (lambda: events.append("next starts"), 10)})
    assert outcomes["busy"].ok and outcomes["next"].ok
    assert events == ["next starts", "busy done"]


def test_collector_paused_restores_the_collector_as_it_was():
    assert gc.isenabled()
    with inv.collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), inv.collector_paused():
        raise RuntimeError("a failing listing")
    assert gc.isenabled()
    gc.disable()
    try:
        with inv.collector_paused():
            pass
        assert not gc.isenabled()  # it was off: it stays off
    finally:
        gc.enable()

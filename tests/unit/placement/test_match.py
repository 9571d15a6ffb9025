"""Provider matchmaking (plugins/module_utils/placement/match.py).

Two halves: policies and fitting rules on hand-built Capabilities (data, not mocks), then
surveys of REAL connectors - libvirt's test driver on a host XML, the XAPI wire-protocol
stand-in (tests/standins/xapi) and govmomi's vcsim as an ESX host (tests/standins/vcsim) -
matched together, concurrently surveyed, with what each really advertises.
"""

import importlib.util
import time
from pathlib import Path

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    ProviderUnavailable,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import (
    Machine,
    MachineConfiguration,
    MachineImage,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    OPERATIONS,
    Capabilities,
    MachineSpec,
    Range,
    sizes_from_options,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match as m

ALL_OPS = frozenset(OPERATIONS)
STANDINS = Path(__file__).resolve().parents[2] / "standins"


# -- hand-built offers (data) ---------------------------------------------------------------------

def caps(provider="libvirt", ops=ALL_OPS, cpu=(1, 16), mem=(1, 16384), mhz=(None, None), archs=("x86_64",),
         locations=("here",), **extras):
    return Capabilities(provider=provider, operations=frozenset(ops), cpu=Range(*cpu), memory_mib=Range(*mem),
                        cpu_mhz=Range(*mhz), archs=archs, locations=locations, extras=extras)


def sizes(*rows):
    """Sizes from (name, cpu, memory MiB[, disk GiB]) rows; default: the connectors' default sizes."""
    if not rows:
        return sizes_from_options()
    return sizes_from_options([dict(name=r[0], cpu=r[1], memory_mib=r[2], disk_gib=(r[3] if len(r) > 3 else 0))
                               for r in rows])


def offer(label, provider="libvirt", capabilities=None, offered=(), machines=0, **kw):
    return m.Offer(label=label, provider=provider, capabilities=capabilities or caps(provider),
                   sizes=sizes(*offered) if offered is not None else None, machines=machines, **kw)


def req(cpu=1, memory_mib=64, properties=None, operations=(), size=None, image=None, **config):
    conf = None if size else MachineConfiguration(cpu=cpu, memory=memory_mib * 1024, **config)
    return m.Request.build(config=conf, size=size, properties=properties, operations=operations, image=image)


# -- the request ------------------------------------------------------------------------------------

def test_request_reads_hardware_and_wishes():
    r = req(2, 300, cpuArch="x86_64", cpuSpeed=2000, disks=[{"capacity": 3 * 1024 * 1024 + 1}],
            properties={m.WISH_PROVIDER: "b, a,b", m.WISH_LOCATION: "rack-2",
                        m.WISH_OPERATIONS: "machine.capture", "other": "x"},
            operations=["machine.pause"])
    assert (r.cpu, r.memory_mib, r.cpu_mhz, r.arch, r.disk_gib, r.location) == (2, 300, 2000, "x86_64", 4, "rack-2")
    assert r.providers == ("b", "a")
    assert r.operations == m.BASE_OPERATIONS | {"machine.pause", "machine.capture"}
    assert r.describe() == "2 vCPUs, 300 MiB, 2000 MHz, 4 GiB disk, x86_64, at rack-2"
    assert req(size="small").describe() == "size 'small'"
    with pytest.raises(InvalidInput):
        m.Request.build()


# -- fitting rules ------------------------------------------------------------------------------------

def test_size_choice_is_the_smallest_fit():
    assert m.check(offer("a"), req(2, 200))[0].name == "medium"
    assert m.check(offer("a"), req(1, 100))[0].name == "small"
    assert m.check(offer("a"), req(1, 64))[0].name == "tiny"
    assert m.check(offer("a", offered=[("big", 4, 4096), ("odd", 2, 8192)]), req(2, 1024))[0].name == "odd"


def test_reasons_name_what_is_missing():
    ec2 = offer("ec2", "ec2", caps("ec2", cpu=(1, 128), mem=(1, 1 << 20)),
                offered=[("t3.micro", 2, 1024), ("m5.xlarge", 4, 16384)])
    assert m.check(ec2, req(64, 1024))[1] == ["no size with ≥ 64 vCPUs (largest: 'm5.xlarge' (4 vCPUs, 16384 MiB))"]
    assert m.check(ec2, req(2, 32768))[1] == [
        "no size with ≥ 32768 MiB memory (largest: 'm5.xlarge' (4 vCPUs, 16384 MiB))"]
    assert m.check(ec2, req(8, 32768))[1] == [
        "no size with ≥ 8 vCPUs and ≥ 32768 MiB memory (largest: 'm5.xlarge' (4 vCPUs, 16384 MiB))"]
    both = offer("x", offered=[("cpu-heavy", 8, 512), ("mem-heavy", 1, 8192)])
    assert m.check(both, req(4, 4096))[1] == ["no single size has ≥ 4 vCPUs, ≥ 4096 MiB memory"]
    vsphere = offer("vsphere", "vsphere", caps("vsphere", ops=ALL_OPS - {"machine.pause"}, cpu=(1, 2)))
    assert m.check(vsphere, req(4, 64, operations=["machine.pause"]))[1] == [
        "operation machine.pause unsupported", "cpu 4 outside [1, 2]"]
    arm = offer("arm", capabilities=caps(archs=("aarch64",)))
    assert m.check(arm, req(cpuArch="x86_64"))[1] == ["architecture x86_64 not in aarch64"]
    assert m.check(offer("a"), req(properties={m.WISH_LOCATION: "there"}))[1] == [
        "location 'there' not offered (offers: here)"]
    assert m.check(offer("a", error="cannot connect"), req())[1] == ["unavailable: cannot connect"]


def test_sizes_beyond_the_provider_ranges_do_not_count():
    small_host = offer("h", capabilities=caps(cpu=(1, 2), mem=(1, 4096)))
    size, reasons = m.check(small_host, req(3, 64))
    assert size is None and reasons == ["cpu 3 outside [1, 2]"]
    size, reasons = m.check(offer("h", capabilities=caps(cpu=(1, 2)), offered=[("big", 4, 128)]), req(1, 100))
    assert reasons == ["the sizes that fit exceed what the provider admits: 'big' (4 vCPUs, 128 MiB): "
                       "cpu 4 outside [1, 2]"]


def test_disk_arch_and_speed_of_sizes():
    disky = offer("d", offered=[("nodisk", 1, 128), ("d10", 1, 128, 10), ("d20", 2, 128, 20)])
    assert m.check(disky, req(1, 64, disks=[{"capacity": 15 * 1024 * 1024}]))[0].name == "nodisk"
    declared = offer("d", offered=[("d10", 1, 128, 10), ("d20", 2, 128, 20)])
    assert m.check(declared, req(1, 64, disks=[{"capacity": 15 * 1024 * 1024}]))[0].name == "d20"
    assert m.check(declared, req(1, 64, disks=[{"capacity": 50 * 1024 * 1024}]))[1] == [
        "no size with ≥ 50 GiB disk (largest: 'd20' (2 vCPUs, 128 MiB, 20 GiB disk))"]


def test_images():
    images = [MachineImage(id="/pool/img-%d" % i, name="img-%d" % i) for i in range(10)]
    stocked = offer("a", images=images)
    assert m.check(stocked, req(image="img-3"))[1] == []
    assert m.check(stocked, req(image="/pool/img-9"))[1] == []
    assert m.check(stocked, req(image="debian"))[1] == [
        "no image 'debian' (offers: img-0, img-1, img-2, img-3, img-4, img-5, img-6, img-7, ...)"]
    assert m.check(offer("b", images_error="it lists no images"), req(image="debian"))[1] == [
        "cannot look up image 'debian': it lists no images"]
    assert req(image="debian").describe() == "1 vCPU, 64 MiB, image 'debian'"


def test_named_sizes_and_by_value_providers():
    assert m.check(offer("a"), req(size="large"))[0].name == "large"
    assert m.check(offer("a"), req(size="huge"))[1] == [
        "no size named 'huge' (offers: tiny, small, medium, large, xlarge)"]
    byvalue = offer("cimi", "cimi", offered=None)
    assert m.check(byvalue, req(3, 3000)) == (None, [])
    assert m.check(byvalue, req(size="small"))[1] == ["lists no named sizes (size 'small' asked)"]
    tight = offer("t", capabilities=caps(cpu=(1, 2)))
    assert m.check(tight, req(size="xlarge"))[1] == ["size 'xlarge' exceeds what the provider admits: cpu 8 outside "
                                                     "[1, 2]"]


# -- match, wishes, errors ----------------------------------------------------------------------------------

def test_no_candidate_lists_every_provider_and_is_a_conflict():
    offers = [offer("ec2", "ec2", caps("ec2", cpu=(1, 128)), offered=[("t3.micro", 2, 1024)]),
              offer("vsphere", "vsphere", caps("vsphere", ops=ALL_OPS - {"machine.pause"}))]
    with pytest.raises(m.NoCandidate) as err:
        m.match(offers, req(64, 512, operations=["machine.pause"]))
    assert isinstance(err.value, Conflict)
    assert err.value.rejected == {
        "ec2": ["no size with ≥ 64 vCPUs (largest: 't3.micro' (2 vCPUs, 1024 MiB))"],
        "vsphere": ["operation machine.pause unsupported", "cpu 64 outside [1, 16]"]}
    assert str(err.value).startswith("no provider can take a machine of 64 vCPUs, 512 MiB: ec2: no size with ≥ 64")


def test_provider_wish_filters_and_explicit_follows_its_order():
    offers = [offer("a"), offer("b"), offer("c", "xenserver")]
    placed = m.match(offers, req(properties={m.WISH_PROVIDER: "c,b"}), "explicit")
    assert placed.label == "c" and placed.rejected == {"a": ["not named by sirocco.provider (c, b)"]}
    assert "chosen by policy explicit: named by sirocco.provider (c, b)" in placed.why
    assert m.match(offers, req(properties={m.WISH_PROVIDER: "c,b"}), "first").label == "b"
    assert m.match(offers, req(properties={m.WISH_PROVIDER: "xenserver"}), "first").label == "c"
    with pytest.raises(InvalidInput, match="needs properties\\['sirocco.provider'\\]"):
        m.match(offers, req(), "explicit")
    with pytest.raises(InvalidInput, match="no configured provider is called 'z' \\(configured: a, b, c\\)"):
        m.match(offers, req(properties={m.WISH_PROVIDER: "z"}))


def test_bad_calls():
    with pytest.raises(InvalidInput, match="unknown placement policy 'nope'"):
        m.match([offer("a")], req(), "nope")
    with pytest.raises(InvalidInput, match="unique"):
        m.match([offer("a"), offer("a")], req())
    with pytest.raises(InvalidInput, match="no provider"):
        m.match([], req())


def test_placement_json_and_why():
    offers = [offer("tiny-box", offered=[("mini", 1, 32)]), offer("big-box")]
    placed = m.match(offers, req(1, 96))
    assert placed.to_json() == {
        "provider": "big-box", "connector": "libvirt", "policy": "first", "size": "small",
        "candidates": ["big-box"],
        "rejected": {"tiny-box": ["no size with ≥ 96 MiB memory (largest: 'mini' (1 vCPU, 32 MiB))"]},
        "why": "big-box chosen by policy first: the only provider that fits; size 'small' (1 vCPU, 128 MiB, "
               "1 GiB disk). Rejected: tiny-box: no size with ≥ 96 MiB memory (largest: 'mini' (1 vCPU, 32 MiB))"}


# -- policies, one by one (hand-built data) --------------------------------------------------------------------

def test_policy_registry():
    assert m.policy_names()[:6] == ["first", "explicit", "smallest", "cheapest", "least-loaded", "lowest-energy"]
    assert all(m.POLICIES[name].summary for name in m.policy_names())


def test_first():
    placed = m.match([offer("a", offered=[("x", 8, 8192)]), offer("b")], req())
    assert placed.label == "a" and placed.size.name == "x"
    assert "the first fitting provider in the configured order (a, b)" in placed.why


def test_smallest():
    offers = [offer("a", offered=[("x", 2, 1024)]), offer("b", offered=[("y", 1, 2048)]),
              offer("c", offered=[("z", 1, 512)])]
    placed = m.match(offers, req(1, 256), "smallest")
    assert placed.label == "c" and placed.size.name == "z"
    assert "its size 'z' (1 vCPU, 512 MiB) is the smallest that fits (others: a 'x'" in placed.why


def test_cheapest_with_prices_from_configuration_and_size_properties():
    priced = sizes(("m1", 1, 1024))
    priced[0].properties = {m.PRICE_PROPERTY: "0.05"}
    offers = [offer("a", prices={"small": 0.10}), m.Offer("b", "ec2", caps("ec2"), priced, 0),
              offer("c"), offer("d", prices={"tiny": "0.2"})]
    placed = m.match(offers, req(1, 100), "cheapest")
    assert placed.label == "b"
    assert "'m1' (1 vCPU, 1024 MiB) at 0.05 per hour is the lowest known price (others: a 0.1)" in placed.why
    assert "no price known for c, d" in placed.why  # d prices only tiny, which does not fit 100 MiB
    none = m.match([offer("a", offered=[("x", 2, 1024)]), offer("b")], req(1, 100), "cheapest")
    assert none.label == "b" and "no fitting provider has a known price (a, b), so the smallest size" in none.why


def test_least_loaded_by_machines_then_by_free_capacity():
    offers = [offer("a", machines=5), offer("b", machines=2), offer("c", machines=None)]
    placed = m.match(offers, req(), "least-loaded")
    assert placed.label == "b" and "fewest machines: 2 (others: a 5); machines not counted on c" in placed.why
    free = [offer("a", capabilities=caps(freeCpu=4, freeMemoryMiB=4096)),
            offer("b", capabilities=caps(freeCpu=12, freeMemoryMiB=1024))]
    placed = m.match(free, req(), "least-loaded")
    assert placed.label == "b" and "most free capacity: 12 vCPUs and 1024 MiB free" in placed.why
    unknown = m.match([offer("a", machines=None), offer("b", machines=None)], req(), "least-loaded")
    assert unknown.label == "a" and "no fitting provider says how loaded it is" in unknown.why


def power_hosts(*rows):
    return [{"name": n, "cpu": c, "memoryMiB": 16384, "usedCpu": u, "usedMemoryMiB": 0, "machines": k,
             "powerIdle": idle, "powerMax": peak} for n, c, u, k, idle, peak in rows]


def test_lowest_energy_from_advertised_power():
    # A daemon whose busy host adds (250-70)/8 = 22.5 W per vCPU, another whose only host is off (idle 30 W
    # to switch on + 65/4 per vCPU), a provider that says 10 W per vCPU, and one that says nothing.
    hosts1 = power_hosts(("h1", 8, 2, 3, 70, 250), ("h2", 16, 0, 0, 95, 320))
    daemon1 = offer("daemon1", "cimi", caps("cimi", powerHosts=hosts1))
    daemon2 = offer("daemon2", "cimi", caps("cimi", powerHosts=power_hosts(("s3", 4, 0, 0, 30, 95))))
    rated = offer("rated", capabilities=caps(wattsPerCpu=10))
    silent = offer("silent")
    placed = m.match([silent, daemon1, daemon2, rated], req(2, 64), "lowest-energy")
    assert placed.label == "rated" and "it adds the least power, 20.0 W (10 W per vCPU)" in placed.why
    assert "others: daemon1 45.0 W, daemon2 62.5 W; no power figures from silent" in placed.why
    placed = m.match([silent, daemon1, daemon2], req(1, 64), "lowest-energy")
    assert placed.label == "daemon1" and "22.5 W (host h1)" in placed.why
    full = offer("full", "cimi", caps("cimi", powerHosts=power_hosts(("h", 2, 2, 1, 50, 100))))
    assert m.added_watts(full, 1, 64) is None


def test_lowest_energy_falls_back_to_first_and_says_so():
    placed = m.match([offer("a"), offer("b")], req(), "lowest-energy")
    assert placed.label == "a"
    assert "no fitting provider advertises power figures (extras powerHosts or wattsPerCpu), so fell back to " \
           "policy first" in placed.why


def test_a_policy_of_ones_own():
    m.register_policy("last", lambda cands, request: (cands[-1], "the last one"), "the last fitting provider")
    try:
        assert m.match([offer("a"), offer("b")], req(), "last").label == "b"
    finally:
        del m.POLICIES["last"]


# -- an existing machine wins --------------------------------------------------------------------------------

def test_existing_machine_is_used_where_it_is():
    there = Machine(id="42", name="web", state="STOPPED")
    offers = [offer("a"), offer("b", existing=there)]
    placed = m.choose(offers, req(64, 64), "first", name="web")  # fits nowhere, but exists: that is enough
    assert (placed.label, placed.policy, placed.existing) == ("b", "existing", there)
    assert placed.why == "machine 'web' already exists on b, so it is used there (no second one is made elsewhere)"
    with pytest.raises(Conflict, match="exists on several providers \\(a, b\\)"):
        m.choose([offer("a", existing=there), offer("b", existing=there)], req(), name="web")
    with pytest.raises(ProviderUnavailable, match="cannot tell whether machine 'web' exists on b"):
        m.choose([offer("a"), offer("b", error="connection refused")], req(), name="web")
    with pytest.raises(ProviderUnavailable, match="lists no machines"):
        m.choose([offer("a", machines=None)], req(), name="web")
    assert m.choose([offer("a")], req(), name="web").label == "a"


# -- real connectors --------------------------------------------------------------------------------------------

TEST_HOST_XML = """<node>
  <cpu><mhz>2400</mhz><model>i686</model><active>4</active><nodes>1</nodes>
       <sockets>1</sockets><cores>4</cores><threads>1</threads></cpu>
  <memory>4194304</memory>
  <domain type='test'>
    <name>resident</name><memory>65536</memory><vcpu>1</vcpu><os><type>hvm</type></os>
  </domain>
  <pool type='dir'>
    <name>default</name>
    <target><path>/sirocco-match-pool</path></target>
    <volume type='file'>
      <name>seed.qcow2</name><capacity unit='MiB'>16</capacity><target><format type='qcow2'/></target>
    </volume>
  </pool>
</node>
"""


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def test_driver_uri(tmp_path_factory):
    pytest.importorskip("libvirt")
    path = tmp_path_factory.mktemp("libvirt-test") / "host.xml"
    path.write_text(TEST_HOST_XML)
    return "test://" + str(path)


@pytest.fixture(scope="module")
def xapi():
    pytest.importorskip("XenAPI")
    server = _load("sirocco_xapi_standin_control", STANDINS / "xapi" / "control.py").start(hosts=2)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def esx():
    pytest.importorskip("pyVmomi")
    sim = _load("sirocco_vcsim_standin", STANDINS / "vcsim" / "standin.py").Vcsim("esx")
    try:
        sim.start()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the vcsim stand-in cannot start: %s (run `make vcsim`)" % exc, pytrace=False)
    yield sim
    sim.stop()


@pytest.fixture
def connectors(test_driver_uri, xapi, esx):
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
    conns = {
        "lab": registry.connect("libvirt", uri=test_driver_uri),
        "xen": registry.connect("xenserver", uri=xapi.url, username=xapi.username, password=xapi.password,
                                options={"sizes": [{"name": "std", "cpu": 2, "memory_mib": 2048},
                                                   {"name": "wide", "cpu": 12, "memory_mib": 8192}]}),
        "esx": registry.connect("vsphere", **esx.params),
    }
    yield conns
    for conn in conns.values():
        conn.close()


def test_real_offers(connectors):
    started = time.monotonic()
    offers = m.survey_all(connectors, name="resident")
    elapsed = time.monotonic() - started
    assert [o.label for o in offers] == ["lab", "xen", "esx"]
    assert [o.provider for o in offers] == ["libvirt", "xenserver", "vsphere"]
    assert all(o.error is None for o in offers), [o.error for o in offers]
    lab, xen, esx = offers
    assert lab.existing is not None and lab.existing.name == "resident" and lab.machines == 1
    assert xen.existing is None and esx.existing is None
    assert [s.name for s in xen.sizes] == ["std", "wide"]
    assert elapsed < 30


def test_real_matching(connectors):
    offers = m.survey_all(connectors)
    # ESX (vcsim) cannot pause and has 2 vCPUs per host; the test driver's host is i686 only.
    placed = m.match(offers, req(1, 64, operations=["machine.pause"], cpuArch="x86_64"))
    assert placed.label == "xen" and placed.size.name == "std"
    assert placed.rejected["lab"] == ["architecture x86_64 not in x86"]
    assert placed.rejected["esx"] == ["operation machine.pause unsupported"]
    # 12 vCPUs: only the XenServer pool's 'wide' size; the test driver admits 32 vCPUs but its sizes stop at 8.
    placed = m.match(offers, req(12, 1024), "smallest")
    assert (placed.label, placed.size.name) == ("xen", "wide")
    assert placed.rejected["lab"] == ["no size with ≥ 12 vCPUs (largest: 'xlarge' (8 vCPUs, 1024 MiB, 8 GiB disk))"]
    assert placed.rejected["esx"][0].startswith("cpu 12 outside [1, 2]")
    # a location only the XenServer pool has
    placed = m.match(offers, req(1, 64, properties={m.WISH_LOCATION: "xs-host-2"}))
    assert placed.label == "xen" and set(placed.rejected) == {"lab", "esx"}
    # every provider fits a tiny machine: first by order, smallest is a tie broken by order, least-loaded counts
    assert m.match(offers, req(1, 64)).label == "lab"
    assert m.match(offers, req(1, 64), "smallest").size.name == "tiny"
    loaded = m.match(offers, req(1, 64), "least-loaded")
    assert "fewest machines" in loaded.why
    assert "no fitting provider advertises power figures" in m.match(offers, req(1, 64), "lowest-energy").why


def test_real_images(connectors):
    offers = m.survey_all(connectors, images=True)
    placed = m.match(offers, req(1, 64, image="seed.qcow2"))
    assert placed.label == "lab" and placed.candidates == ["lab"]
    assert placed.rejected["xen"][0].startswith("no image 'seed.qcow2' (offers: ")
    assert "tiny-linux" in placed.rejected["xen"][0]
    assert m.match(offers, req(1, 64, image="tiny-linux")).label == "xen"
    assert "image 'tiny-linux'" in m.match(offers, req(1, 64, image="tiny-linux")).why


def test_real_existing_machine_on_the_xapi_standin(connectors):
    xen = connectors["xen"]
    made = xen.create_machine(MachineSpec(name="sirocco-match-it", config=xen.get_machine_config("std")))
    try:
        offers = m.survey_all(connectors, name="sirocco-match-it")
        placed = m.choose(offers, req(64, 64), name="sirocco-match-it")
        assert (placed.label, placed.existing.id) == ("xen", made.id)
        assert "already exists on xen" in placed.why
    finally:
        xen.delete_machine(made.id)


def test_real_unreachable_provider_blocks_creation(connectors):
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
    dead = registry.connect("xenserver", uri="http://127.0.0.1:9", username="root", password="x", timeout=2)
    offers = m.survey_all({"lab": connectors["lab"], "dead": dead}, name="nobody")
    assert offers[1].error.startswith("cannot reach XenServer at http://127.0.0.1:9")
    with pytest.raises(ProviderUnavailable, match="cannot tell whether machine 'nobody' exists on dead"):
        m.choose(offers, req(), name="nobody")
    assert m.match(offers, req()).rejected["dead"][0].startswith("unavailable: cannot reach XenServer")

"""Sirocco's resize action (urn:sirocco:cimi:action:resize) on machines and volumes, a volume's type and a
network's cidr/dhcp, through siroccod (issue 14, daemon part).

A machine's resize is offered in its operations when its host's connector offers machine.resize (and, for a
running machine, decides itself whether a stop is needed); it runs as a Job and the CMDB records the size the
host reports. Until that Job ends the machine claims the larger of its two sizes on its host, so two resizes
that together exceed a host cannot both be accepted. Bad input is a 400 and a refusal a 409, both before
anything changes. On the embedded default's simulated hosts (libvirt's test driver) machines resize and
volumes do not; on a real QEMU host (libvirtd, TCG) both do, and libvirt's own view is checked.
"""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from daemon_helpers import ADMIN_PASSWORD, CIMI, PASSWORDS, Api, add_users, assert_cimi_error, make_app

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MAX_MEMORY_KIB, SIROCCO_RESIZE

MIB = 1024  # KiB


def resize(**params):
    return {"resourceURI": CIMI + "Action", "action": SIROCCO_RESIZE, **params}


def resize_href(doc):
    """The href a resource offers for the resize action, else None."""
    return next((op["href"] for op in doc.get("operations", []) if op["rel"] == SIROCCO_RESIZE), None)


def host_of(app, doc):
    """(host handle, native id) of a machine or volume the daemon serves."""
    from siroccod.store import Resource
    service = app.extensions["siroccod"]
    with service.store.read() as session:
        row = session.get(Resource, doc["id"].rsplit("/", 1)[1])
        return service.pool.get(row.host_id), row.native_id


def domain_size(dom):
    """(vcpus, memory KiB) of a libvirt domain's persistent definition."""
    root = ET.fromstring(dom.XMLDesc(0))
    return int(root.find("vcpu").text), int(root.find("memory").text)


def host_view(admin, name):
    return admin.get("/admin/hosts/" + name).json


def jobs_count(api):
    return len(api.items("jobs"))


def create_volume(api, name, capacity_kb, properties=None, **config):
    body = {"resourceURI": CIMI + "VolumeCreate", "name": name,
            "volumeTemplate": {"volumeConfig": {"capacity": capacity_kb, **config}}}
    if properties:
        body["properties"] = properties
    r = api.post(api.collection("volumes"), body)
    assert r.status_code == 202, r.json
    return api.wait(r.headers["CIMI-Job-URI"]), api.get(r.headers["Location"]).json


def submit(api, href, body):
    """POST a resize; (status, job or None)."""
    r = api.post(href, body)
    if r.status_code != 202:
        return r.status_code, r
    return 202, api.wait(r.headers["CIMI-Job-URI"], timeout=60)


# -- the embedded default: libvirt's test driver ---------------------------------------------------
def test_resize_a_stopped_machine_on_a_simulated_host(app, alice, admin):
    machine = alice.create_machine("rs-stopped", properties={"sirocco.host": "sim2"})
    handle, native = host_of(app, machine)
    assert handle.supports("machine.resize")  # the test driver changes a domain's vcpus and memory
    href = resize_href(machine)
    assert href == machine["id"] + "/resize"
    before = host_view(admin, "sim2")
    status, job = submit(alice, href, resize(machineConfig={"cpu": 2, "memory": 128 * MIB}))
    assert status == 202 and job["state"] == "SUCCESS", job
    assert job["action"] == SIROCCO_RESIZE and job["targetResource"]["href"] == machine["id"]
    after = alice.get(machine["id"]).json
    assert (after["cpu"], after["memory"], after["state"]) == (2, 128 * MIB, states.STOPPED)
    dom = handle.connector().conn.lookupByUUIDString(native)
    assert domain_size(dom) == (2, 128 * MIB)
    view = host_view(admin, "sim2")  # the claim is the new size
    assert (view["usedCpu"] - before["usedCpu"], view["usedMemoryMiB"] - before["usedMemoryMiB"]) == (1, 64)
    # by reference: a stored MachineConfiguration
    config = alice.post(alice.collection("machineConfigs"), {"name": "rs-3", "cpu": 3, "memory": 96 * MIB}).json
    status, job = submit(alice, href, resize(machineConfig={"href": config["id"]}))
    assert job["state"] == "SUCCESS", job
    assert domain_size(dom) == (3, 96 * MIB)
    assert host_view(admin, "sim2")["usedMemoryMiB"] - before["usedMemoryMiB"] == 32  # shrunk below the first
    alice.remove(alice.get(machine["id"]).json)


BAD = [
    (resize(action=CIMI + "action/start", machineConfig={"cpu": 2, "memory": 65536}), "action"),
    (resize(), "machineConfig"),
    (resize(machineConfig={"cpu": 0, "memory": 65536}), "machineConfig.cpu"),
    (resize(machineConfig={"cpu": 1, "memory": MAX_MEMORY_KIB + 1}), "machineConfig.memory"),
    (resize(machineConfig={"cpu": 100000, "memory": 65536}), "machineConfig.cpu"),
    (resize(machineConfig={"href": "http://localhost/cimi/machineConfigs/nope"}), "machineConfig.href"),
    (resize(machineConfig={"cpu": 1, "memory": 65536}, capacity=5), "capacity"),
    (resize(machineConfig={"cpu": 1, "memory": 65536}, force=True), "force"),
]


def test_bad_resizes_are_400_and_change_nothing(app, alice):
    machine = alice.create_machine("rs-bad", properties={"sirocco.host": "sim1"})
    handle, native = host_of(app, machine)
    dom = handle.connector().conn.lookupByUUIDString(native)
    jobs = jobs_count(alice)
    for body, attribute in BAD:
        error = assert_cimi_error(alice.post(machine["id"] + "/resize", body), 400)
        assert error["properties"]["attribute"].endswith(attribute), (body, error)
    # beyond what the host gives one machine (its connector's ranges): 400 too
    too_many = resize(machineConfig={"cpu": 4000, "memory": 65536})
    error = assert_cimi_error(alice.post(machine["id"] + "/resize", too_many), 400)
    assert "sim1" in error["statusMessage"]
    assert jobs_count(alice) == jobs
    assert domain_size(dom) == (1, 64 * MIB)
    assert alice.get(machine["id"]).json["cpu"] == 1
    # not JSON, not an object
    assert_cimi_error(alice.post(machine["id"] + "/resize", data="[]", headers={"Content-Type": "application/json"}),
                      400)
    alice.remove(machine)


def test_a_running_machine_beyond_its_maximum_needs_a_stop(app, alice):
    machine = alice.create_machine("rs-running", states.STARTED, properties={"sirocco.host": "sim1"})
    handle, native = host_of(app, machine)
    dom = handle.connector().conn.lookupByUUIDString(native)
    assert resize_href(machine)  # the libvirt connector decides itself: offered on a running machine
    jobs = jobs_count(alice)
    # the dry run asks the host's resize_needs_stop and changes nothing: within its maximums, beyond them
    dry = resize_href(machine) + "?dryRun=true"
    assert alice.post(dry, resize(machineConfig={"cpu": 1, "memory": 64 * MIB})).json == {"needsStop": False}
    answer = alice.post(dry, resize(machineConfig={"cpu": 1, "memory": 512 * MIB})).json
    assert answer["needsStop"] is True and "stop it first" in answer["reason"], answer
    error = assert_cimi_error(alice.post(dry, resize(machineConfig={"cpu": 0, "memory": 65536})), 400)
    assert error["properties"]["attribute"].endswith("machineConfig.cpu")
    error = assert_cimi_error(alice.post(resize_href(machine) + "?dryRun=yes", resize(
        machineConfig={"cpu": 1, "memory": 65536})), 400)
    assert error["properties"]["attribute"] == "dryRun"
    assert jobs_count(alice) == jobs and domain_size(dom) == (1, 64 * MIB)
    error = assert_cimi_error(alice.post(resize_href(machine), resize(machineConfig={"cpu": 1, "memory": 512 * MIB})),
                              409)
    assert "stop it first" in error["statusMessage"]
    assert jobs_count(alice) == jobs and domain_size(dom) == (1, 64 * MIB)
    stopped = alice.act(machine, "stop", force=True)
    status, job = submit(alice, resize_href(stopped), resize(machineConfig={"cpu": 1, "memory": 512 * MIB}))
    assert job["state"] == "SUCCESS", job
    assert domain_size(dom) == (1, 512 * MIB)
    alice.remove(alice.get(machine["id"]).json)


def _race(api, hrefs, body):
    """POST the same resize to every href at once; their statuses, in order."""
    statuses = [None] * len(hrefs)
    barrier = threading.Barrier(len(hrefs))

    def one(i):
        client = Api(api.client.application.test_client(), api.name, PASSWORDS[api.name])
        barrier.wait()
        statuses[i] = client.post(hrefs[i], body).status_code
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(hrefs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return statuses


def test_capacity_is_shared_by_concurrent_resizes(app, alice, admin):
    """sim3 has 4 cpu: two 1-cpu machines each asking for 3 at once would need 6; exactly one is accepted."""
    machines = [alice.create_machine("rs-race-%d" % i, properties={"sirocco.host": "sim3"}) for i in range(2)]
    assert host_view(admin, "sim3")["usedCpu"] == 2
    statuses = _race(alice, [resize_href(m) for m in machines], resize(machineConfig={"cpu": 3, "memory": 64 * MIB}))
    assert sorted(statuses) == [202, 409], statuses
    for job in alice.items("jobs"):
        if job["action"] == SIROCCO_RESIZE and job["state"] not in ("SUCCESS", "FAILED"):
            alice.wait(job["id"])
    sizes = sorted(alice.get(m["id"]).json["cpu"] for m in machines)
    assert sizes == [1, 3]
    assert host_view(admin, "sim3")["usedCpu"] == 4
    # no room left: a grow is refused, a shrink is not
    small = next(m for m in machines if alice.get(m["id"]).json["cpu"] == 1)
    big = next(m for m in machines if m is not small)
    error = assert_cimi_error(alice.post(resize_href(small), resize(machineConfig={"cpu": 2, "memory": 64 * MIB})), 409)
    assert "sim3" in error["statusMessage"] and "free" in error["statusMessage"]
    status, job = submit(alice, resize_href(big), resize(machineConfig={"cpu": 1, "memory": 64 * MIB}))
    assert job["state"] == "SUCCESS", job
    assert host_view(admin, "sim3")["usedCpu"] == 2
    for m in machines:
        alice.remove(alice.get(m["id"]).json)


def test_volumes_of_simulated_hosts_do_not_resize(app, alice):
    job, volume = create_volume(alice, "rs-vol", 1024)
    assert job["state"] == "SUCCESS", job
    handle, _native = host_of(app, volume)
    assert not handle.supports("volume.resize") and resize_href(volume) is None  # the test driver cannot
    jobs = jobs_count(alice)
    assert assert_cimi_error(alice.post(volume["id"] + "/resize", resize(capacity=512)), 400)[
        "properties"]["attribute"] == "capacity"  # grow only, whatever the host
    error = assert_cimi_error(alice.post(volume["id"] + "/resize", resize()), 400)
    assert error["properties"]["attribute"] == "capacity"
    error = assert_cimi_error(alice.post(volume["id"] + "/resize?dryRun=true", resize(capacity=2048)), 400)
    assert error["properties"]["attribute"] == "dryRun"  # machines only: never a real resize instead
    error = assert_cimi_error(alice.post(volume["id"] + "/resize", resize(capacity=2048)), 409)
    assert "does not resize volumes" in error["statusMessage"]
    assert jobs_count(alice) == jobs and alice.get(volume["id"]).json["capacity"] == 1024
    alice.remove(volume)


def test_network_cidr_and_dhcp_reach_the_host(app, alice):
    jobs = jobs_count(alice)
    for cidr in ("10.77.0.1/24", "fd00::/64", "10.77.0.0/30", "nope"):
        body = {"resourceURI": CIMI + "NetworkCreate", "name": "rs-net-bad",
                "networkTemplate": {"networkConfig": {"cidr": cidr}}}
        error = assert_cimi_error(alice.post(alice.collection("networks"), body), 400)
        assert error["properties"]["attribute"] == "cidr", error
    body = {"resourceURI": CIMI + "NetworkCreate", "name": "rs-net-bad",
            "networkTemplate": {"networkConfig": {"dhcp": True}}}  # no addresses to lease
    error = assert_cimi_error(alice.post(alice.collection("networks"), body), 400)
    assert error["properties"]["attribute"] == "dhcp", error
    assert jobs_count(alice) == jobs and not [n for n in alice.items("networks") if n["name"] == "rs-net-bad"]
    body = {"resourceURI": CIMI + "NetworkCreate", "name": "rs-net",
            "networkTemplate": {"networkConfig": {"cidr": "10.77.0.0/24", "dhcp": True}}}
    r = alice.post(alice.collection("networks"), body)
    assert r.status_code == 202, r.json
    assert alice.wait(r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    network = alice.get(r.headers["Location"]).json
    assert (network["cidr"], network["dhcp"]) == ("10.77.0.0/24", True)
    handle, native = host_of(app, network)
    root = ET.fromstring(handle.connector().conn.networkLookupByUUIDString(native).XMLDesc(0))
    ip = root.find("ip")
    assert ip.get("address").startswith("10.77.0.") and ip.find("dhcp") is not None, ET.tostring(root)
    alice.remove(network)


def test_a_volume_type_goes_to_the_host(alice):
    """The type of a VolumeConfiguration reaches the host's create_volume: libvirt has no volume types and
    refuses it there (the job fails, the volume is ERROR)."""
    job, volume = create_volume(alice, "rs-typed", 1024, type="gp3")
    assert job["state"] == "FAILED" and "refused there as invalid" in job["statusMessage"], job
    assert alice.get(volume["id"]).json["state"] == "ERROR"
    alice.remove(alice.get(volume["id"]).json)


# -- a real QEMU host ---------------------------------------------------------------------------
@pytest.fixture
def qemu_daemon(tmp_path, qemu):
    """A daemon whose one host is this run's QEMU host (4 cpu, 1 GiB to hand out), volumes in a transient
    dir pool of this run."""
    pool_name = qemu.prefix + "pool"
    target = Path("/tmp") / pool_name
    target.mkdir(mode=0o755)
    pool = qemu.conn.storagePoolCreateXML("<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>"
                                          % (pool_name, target), 0)
    kvm = dict(qemu.host_config("kvm"), cpu=4, memory_mib=1024)
    kvm["options"] = dict(kvm["options"], volume_pool=pool_name, image_pool=pool_name)
    app = make_app(tmp_path / "data", hosts=[kvm])
    try:
        admin = Api(app.test_client(), "admin", ADMIN_PASSWORD)
        add_users(admin, ("alice",))
        yield app, admin, Api(app.test_client(), "alice", PASSWORDS["alice"]), pool
    finally:
        app.extensions["siroccod"].close()
        qemu.clean()
        for vol in pool.listAllVolumes(0):
            vol.delete(0)
        pool.destroy()
        target.rmdir()


def test_resize_on_a_real_qemu_host(qemu_daemon, qemu):
    app, admin, alice, pool = qemu_daemon
    first = alice.create_machine("rs-q1")
    [(_name, (uuid, _state))] = qemu.domains().items()
    dom = qemu.conn.lookupByUUIDString(uuid)
    assert domain_size(dom) == (1, 64 * MIB)
    status, job = submit(alice, resize_href(first), resize(machineConfig={"cpu": 2, "memory": 128 * MIB}))
    assert job["state"] == "SUCCESS", job
    assert domain_size(dom) == (2, 128 * MIB)  # libvirt's definition
    assert (alice.get(first["id"]).json["cpu"], host_view(admin, "kvm")["usedCpu"]) == (2, 2)
    # beyond the host's room (1 GiB to hand out): 409, nothing changes
    error = assert_cimi_error(alice.post(resize_href(first), resize(machineConfig={"cpu": 2, "memory": 2048 * MIB})),
                              409)
    assert "kvm" in error["statusMessage"]
    assert domain_size(dom) == (2, 128 * MIB) and host_view(admin, "kvm")["usedMemoryMiB"] == 128
    # running, beyond its maximum memory: stop it first
    running = alice.act(alice.get(first["id"]).json, "start")
    error = assert_cimi_error(alice.post(resize_href(running), resize(machineConfig={"cpu": 2, "memory": 256 * MIB})),
                              409)
    assert "stop it first" in error["statusMessage"]
    assert domain_size(dom) == (2, 128 * MIB) and dom.isActive()
    alice.act(running, "stop", force=True)
    # two machines racing for the last cpus: 2 + 1 used of 4, each asks 2 more
    second = alice.create_machine("rs-q2")
    statuses = _race(alice, [resize_href(alice.get(first["id"]).json), resize_href(second)],
                     resize(machineConfig={"cpu": 3, "memory": 128 * MIB}))
    assert sorted(statuses) == [202, 409], statuses
    for job in alice.items("jobs"):
        if job["action"] == SIROCCO_RESIZE and job["state"] not in ("SUCCESS", "FAILED"):
            alice.wait(job["id"], timeout=60)
    assert host_view(admin, "kvm")["usedCpu"] == 4
    assert sorted(domain_size(qemu.conn.lookupByUUIDString(u))[0] for u, _s in qemu.domains().values()) in (
        [2, 3], [1, 3])
    # a volume grows in the pool
    job, volume = create_volume(alice, "rs-qvol", 1024)
    assert job["state"] == "SUCCESS", job
    href = resize_href(volume)
    assert href == volume["id"] + "/resize"
    status, job = submit(alice, href, resize(capacity=4096))
    assert job["state"] == "SUCCESS", job
    assert alice.get(volume["id"]).json["capacity"] == 4096
    [vol] = [v for v in pool.listAllVolumes(0) if v.name().endswith(volume["id"].rsplit("/", 1)[1])]
    assert vol.info()[1] == 4096 * 1024  # bytes, as libvirt sees the file
    assert_cimi_error(alice.post(href, resize(capacity=4096)), 400)  # not a grow
    assert vol.info()[1] == 4096 * 1024
    for doc in (volume, first, second):
        alice.remove(alice.get(doc["id"]).json)
    assert qemu.domains() == {}


# -- the cimi connector against a served daemon --------------------------------------------------
def test_cimi_connector_resizes_through_the_daemon(tmp_path):
    """The client side (connectors/cimi_http.py): machine.resize offered from the endpoint's metadata, a resize
    by value followed to its Job, resize_needs_stop, a volume's type and a network's cidr/dhcp sent as the
    daemon takes them, volume.resize absent where its hosts cannot (the simulated hosts)."""
    from realhost_helpers import ADMIN, Served, write_config

    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.cimi_http import CimiConnector

    sim = {"name": "sim", "simulated": {"cpu": 8, "memory_mib": 4096, "mhz": 2400}}
    config = write_config(tmp_path / "siroccod.yml", tmp_path / "data", [sim])
    served = Served(config, tmp_path / "siroccod.log").wait_ready()
    try:
        cimi = CimiConnector(uri=served.base + "/cimi/cloudEntryPoint", username=ADMIN[0], password=ADMIN[1])
        caps = cimi.capabilities()
        assert "machine.resize" in caps.operations and "volume.resize" not in caps.operations
        assert caps.guest_inputs == frozenset()  # as the daemon publishes: the test driver's hosts take none
        machine = cimi.create_machine(MachineSpec(name="rs-cimi", config=cimi.get_machine_config("tiny")))
        bigger = MachineConfiguration(cpu=2, memory=256 * MIB)
        assert cimi.resize_needs_stop(machine, bigger) is False
        resized = cimi.resize_machine(machine.id, bigger)
        assert (resized.cpu, resized.memory) == (2, 256 * MIB)
        started = cimi.start_machine(machine.id)
        assert cimi.resize_needs_stop(started, bigger) is False  # the libvirt host resizes live, within limits
        beyond = MachineConfiguration(cpu=2, memory=1024 * MIB)
        assert cimi.resize_needs_stop(started, beyond) is True  # the host's answer, through the dry run
        with pytest.raises(Exception, match="stop it first") as refused:
            cimi.resize_machine(machine.id, beyond)
        assert refused.value.http_status == 409
        with pytest.raises(InvalidInput) as outside:  # beyond the endpoint's configurations, as at creation
            cimi.resize_machine(machine.id, MachineConfiguration(cpu=64, memory=256 * MIB))
        assert outside.value.attribute == "machineConfig"
        assert cimi.get_machine(machine.id).cpu == 2
        with pytest.raises(InvalidInput, match="refused there as invalid"):  # libvirt: no volume types
            cimi.create_volume("rs-cimi-typed", 1024, volume_type="gp3")
        network = cimi.create_network("rs-cimi-net", cidr="10.78.0.0/24", dhcp=False)
        assert (network.cidr, network.dhcp) == ("10.78.0.0/24", False)
        with pytest.raises(InvalidInput) as bad:
            cimi.create_network("rs-cimi-bad", cidr="10.78.0.1/24")
        assert bad.value.attribute == "cidr" and not [n for n in cimi.list_networks() if n.name == "rs-cimi-bad"]
    finally:
        served.stop()
    assert "Traceback" not in served.log()

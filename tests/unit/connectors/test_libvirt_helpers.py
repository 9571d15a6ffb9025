"""Pure helpers of the libvirt connector: state table, XML building and reading, naming rules."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    ProviderUnavailable,
    Unsupported,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import CPU_ARCHS
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt as lv

libvirt = pytest.importorskip("libvirt")


@pytest.mark.parametrize("native, reason, saved, expected", [
    (lv.RUNNING, 1, False, states.STARTED),
    (lv.BLOCKED, 0, False, states.STARTED),
    (lv.PAUSED, 1, False, states.PAUSED),  # paused by the user
    (lv.PAUSED, 3, False, states.SUSPENDING),  # paused while a managed save writes memory out
    (lv.PAUSED, 11, False, states.STARTING),
    (lv.SHUTDOWN, 1, False, states.STOPPING),
    (lv.SHUTOFF, 1, False, states.STOPPED),
    (lv.SHUTOFF, 2, True, states.SUSPENDED),  # shut off with a managed save image
    (lv.CRASHED, 0, False, states.ERROR),
    (lv.PMSUSPENDED, 0, False, states.SUSPENDED),
    (lv.NOSTATE, 0, False, states.ERROR),
    (42, 0, False, states.ERROR),  # a state a newer libvirt may add
])
def test_state_table(native, reason, saved, expected):
    assert lv.cimi_state(native, reason, saved) == expected


def test_every_native_state_maps_to_a_cimi_state():
    assert set(lv.STATE_TABLE) == set(range(8))
    assert set(lv.STATE_TABLE.values()) | set(lv.PAUSED_REASONS.values()) <= set(states.MACHINE_STATES)


def test_state_constants_match_libvirt():
    assert (lv.NOSTATE, lv.RUNNING, lv.PAUSED, lv.SHUTOFF, lv.PMSUSPENDED) == (
        libvirt.VIR_DOMAIN_NOSTATE, libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_PAUSED,
        libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_PMSUSPENDED)
    assert libvirt.VIR_DOMAIN_PAUSED_SAVE == 3 and libvirt.VIR_DOMAIN_PAUSED_STARTING_UP == 11


def test_archs_are_cimi_values():
    assert set(lv.ARCHS.values()) <= set(CPU_ARCHS)
    assert lv.cimi_arch("i686") == "x86" and lv.cimi_arch("x86_64") == "x86_64" and lv.cimi_arch(None) is None


@pytest.mark.parametrize("code, cls", [
    ("VIR_ERR_NO_DOMAIN", NotFound), ("VIR_ERR_NO_STORAGE_VOL", NotFound),
    ("VIR_ERR_OPERATION_INVALID", Conflict), ("VIR_ERR_XML_ERROR", InvalidInput),
    ("VIR_ERR_NO_SUPPORT", Unsupported), ("VIR_ERR_SYSTEM_ERROR", ProviderUnavailable),
    ("VIR_ERR_INTERNAL_ERROR", ProviderUnavailable),
])
def test_error_classes(code, cls):
    assert lv.error_class(getattr(libvirt, code)) is cls


def test_domain_xml_round_trip():
    xml = lv.build_domain_xml(
        "web-1", "6e60c960-ec8f-4adf-b32a-f154cc24d0e0", "qemu", "x86_64", 2, 65536,
        description="a <web> & app", properties={"tier": "front", "owner": "ops"}, created="2026-01-01T00:00:00Z",
        disks=[{"path": "/p/web-1-disk0-6e60c960.qcow2", "format": "qcow2", "dev": "vda", "bus": "virtio"}],
        owned_disks=["/p/web-1-disk0-6e60c960.qcow2"], interfaces=[{"network": "default"}, {"user": True}])
    root = ET.fromstring(xml)
    assert root.get("type") == "qemu" and root.find("features/acpi") is not None
    facts = lv.parse_domain_xml(xml)
    assert facts["name"] == "web-1" and facts["vcpus"] == 2 and facts["memory_kib"] == 65536
    assert facts["description"] == "a <web> & app" and facts["arch"] == "x86_64"
    assert facts["meta"] == {"created": "2026-01-01T00:00:00Z", "properties": {"tier": "front", "owner": "ops"},
                             "disks": ["/p/web-1-disk0-6e60c960.qcow2"], "description": None, "guest": {}}
    assert [(d["path"], d["dev"], d["format"]) for d in facts["disks"]] == [
        ("/p/web-1-disk0-6e60c960.qcow2", "vda", "qcow2")]
    assert [(i["type"], i["network"]) for i in facts["interfaces"]] == [("network", "default"), ("user", None)]


def test_domain_xml_without_sirocco_metadata():
    facts = lv.parse_domain_xml("<domain type='kvm'><name>x</name><memory unit='MiB'>2</memory>"
                                "<vcpu>1</vcpu><os><type arch='aarch64'>hvm</type></os></domain>")
    assert facts["memory_kib"] == 2048 and facts["meta"]["properties"] == {} and facts["disks"] == []


def test_arm_domain_has_no_x86_features():
    root = ET.fromstring(lv.build_domain_xml("a", "6e60c960-ec8f-4adf-b32a-f154cc24d0e0", "qemu", "aarch64", 1, 1024))
    assert root.find("features") is None and root.find("devices/interface") is None


def test_volume_xml():
    xml = lv.build_volume_xml("d.qcow2", 1048576, "qcow2", backing=("/p/seed.qcow2", "raw"))
    root = ET.fromstring(xml)
    assert root.findtext("backingStore/path") == "/p/seed.qcow2"
    assert root.find("backingStore/format").get("type") == "raw"
    facts = lv.parse_volume_xml(xml)
    assert facts["capacity_kib"] == 1024 and facts["format"] == "qcow2" and facts["backing"] == "/p/seed.qcow2"


def test_network_xml_is_isolated_with_safe_bridge():
    xml = lv.build_network_xml("a very/long network name; rm -rf", "desc", {"k": "v"}, "2026-01-01T00:00:00Z")
    root = ET.fromstring(xml)
    assert root.find("forward") is None and root.find("ip") is None  # isolated: no routing, no DHCP
    bridge = root.find("bridge").get("name")
    assert re.fullmatch(r"[a-z0-9-]{1,15}", bridge)
    assert bridge == lv.bridge_name("a very/long network name; rm -rf") != lv.bridge_name("other")
    assert lv._read_meta(root, "network")["description"] == "desc"


@pytest.mark.parametrize("name, pool, image_pool, volume_pool, role", [
    ("debian.qcow2", "default", "default", "default", "image"),
    ("vol-data", "default", "default", "default", "volume"),
    ("web-disk0-6e60c960.qcow2", "default", "default", "default", "disk"),
    ("debian.qcow2", "images", "images", "vols", "image"),
    ("data", "vols", "images", "vols", "volume"),
    ("web-disk1-6e60c960.qcow2", "vols", "images", "vols", "disk"),
    ("x", "other", "images", "vols", None),
    ("x", "other", "default", "default", None),
])
def test_volume_role(name, pool, image_pool, volume_pool, role):
    assert lv.volume_role(name, pool, image_pool, volume_pool) == role


def test_next_device():
    assert lv.next_device(set(), "vd") == "vda"
    assert lv.next_device({"vda", "vdb", "hdc"}, "vd") == "vdc"
    with pytest.raises(Conflict):
        lv.next_device({"vd" + c for c in "abcdefghijklmnopqrstuvwxyz"}, "vd")


def test_connector_options():
    with pytest.raises(InvalidInput):
        lv.LibvirtConnector(uri="test:///default", options={"domain_type": "lxc"})
    c = lv.LibvirtConnector(uri="test:///default", options={"image_pool": "images"})
    assert (c.domain_type, c.image_pool, c.volume_pool) == ("test", "images", "images")
    assert lv.LibvirtConnector().uri == "qemu:///system"  # opens nothing until first used
    assert [cfg.name for cfg in c.list_machine_configs()][:1] == ["tiny"]


def test_uri_passwords_never_shown():
    assert lv.redact_uri("qemu+tcp://admin:s3cr3t@host:16509/system") == "qemu+tcp://admin:***@host:16509/system"
    assert lv.redact_uri("qemu+ssh://root@host/system") == "qemu+ssh://root@host/system"
    c = lv.LibvirtConnector(uri="qemu+tcp://admin:s3cr3t@127.0.0.1:1/system")
    assert "s3cr3t" not in repr(c)
    with pytest.raises(ProviderUnavailable) as info:
        c.list_machines()
    assert "s3cr3t" not in str(info.value) and "127.0.0.1" in str(info.value)


def test_missing_default_pool_means_no_images(tmp_path):
    """A host without the default pool has no images; a pool named in the options must exist."""
    host = tmp_path / "host.xml"
    host.write_text("<node><cpu><mhz>1000</mhz><active>1</active><nodes>1</nodes><sockets>1</sockets>"
                    "<cores>1</cores><threads>1</threads></cpu><memory>1048576</memory></node>")
    with lv.LibvirtConnector(uri="test://%s" % host) as c:
        assert c.list_machine_images() == [] and c.list_volumes() == []
    with lv.LibvirtConnector(uri="test://%s" % host, options={"image_pool": "images"}) as c:
        with pytest.raises(NotFound, match="image_pool"):
            c.list_machine_images()


def test_one_machine_per_volume():
    """On the test driver (a real libvirt, no daemon): a volume in use by one machine is refused to another."""
    from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
    from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import MachineSpec

    with lv.LibvirtConnector(uri="test:///default", options={"image_pool": "default-pool"}) as c:
        vol = c.create_volume("data", 1024)
        config = MachineConfiguration(cpu=1, memory=65536)
        a = c.create_machine(MachineSpec(name="a", config=config, volumes=[vol.id]))
        b = c.create_machine(MachineSpec(name="b", config=config))
        with pytest.raises(Conflict, match="attached to machine"):
            c.attach_volume(b.id, vol.id)
        with pytest.raises(Conflict, match="attached to machine"):
            c.create_machine(MachineSpec(name="c", config=config, volumes=["data"]))
        assert [m.id for m in c.iter_machines() if m.name == "c"] == []
        c.detach_volume(a.id, vol.id)
        assert c.attach_volume(b.id, vol.id).volumes[0].volume == {"href": vol.id}

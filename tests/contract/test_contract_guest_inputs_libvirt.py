"""Guest inputs on libvirt: a NoCloud seed ISO per machine and the guest's SSH forwarded to 127.0.0.1.

What libvirtd received is read back through libvirt itself, not through the connector under test: the domain's
persistent XML (the seed CD-ROM, the QEMU command line with its forward) and the seed volume's bytes
(virStorageVolDownload), parsed with pycdlib. The forwarded port is checked on the host: QEMU listens on it as
soon as the domain runs (no guest OS needed), on the same port after a stop and start. Port allocation is
raced by several processes. libvirt's test driver, where no guest boots, refuses both inputs.

Only the libvirt stand-ins take part; the other stand-ins skip, saying where their inputs are checked.
"""

from __future__ import annotations

import email
import io
import multiprocessing
import socket
import time
import xml.etree.ElementTree as ET

import libvirt
import pycdlib
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi import states
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.model import MachineConfiguration
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import libvirt_guest
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    HOST_KEY_PROPERTY,
    USER_PROPERTY,
    MachineSpec,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector

USER_DATA = "#cloud-config\nwrite_files:\n  - {path: /var/tmp/marker, content: \"déjà vu\\n\"}\n"
CONFIG = MachineConfiguration(cpu=1, memory=64 * 1024)


def new_key(comment="ct@sirocco"):
    line = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode("ascii")
    return "%s %s" % (line, comment)


@pytest.fixture
def qemu(standin, connector):
    if standin.id != "libvirt-qemu":
        pytest.skip("this file reads back libvirt with a real QEMU (libvirt-qemu); %s's guest inputs are read back "
                    "in test_contract_guest_inputs.py or _hypervisors.py (the test driver's refusal: below)"
                    % standin.id)
    return connector


def seed_files(conn, dom):
    """{name: text} of the seed ISO attached to ``dom``, downloaded through libvirt."""
    root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    cdroms = root.findall("devices/disk[@device='cdrom']")
    assert len(cdroms) == 1 and cdroms[0].find("readonly") is not None
    vol = conn.storageVolLookupByPath(cdroms[0].find("source").get("file"))
    stream = conn.newStream(0)
    vol.download(stream, 0, 0, 0)
    chunks = []
    stream.recvAll(lambda _s, data, out: out.append(data), chunks)
    stream.finish()
    iso = pycdlib.PyCdlib()
    iso.open_fp(io.BytesIO(b"".join(chunks)))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        out = {}
        for name in ("meta-data", "user-data"):
            buf = io.BytesIO()
            iso.get_file_from_iso_fp(buf, rr_path="/" + name)
            out[name] = buf.getvalue().decode("utf-8")
        return out
    finally:
        iso.close()


def forward(dom):
    return libvirt_guest.forward_of(ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)))


def test_seed_carries_key_user_data_and_host_key(qemu, standin):
    key = new_key()
    spec = MachineSpec(name=standin.name(), config=CONFIG, image=standin.image, user_data=USER_DATA,
                       credential={"username": "ops", "key": key})
    machine = qemu.create_machine(spec)
    dom = qemu.conn.lookupByUUIDString(machine.id)
    files = seed_files(qemu.conn, dom)
    meta = yaml.safe_load(files["meta-data"])
    assert meta["instance-id"] == machine.id and meta["local-hostname"] == machine.name
    assert meta["public-keys"] == [key]
    message = email.message_from_string(files["user-data"])
    parts = [(p.get_content_type(), p.get_payload(decode=True).decode("utf-8"))
             for p in message.walk() if not p.is_multipart()]
    ours = yaml.safe_load(parts[0][1])
    assert ours["users"][1]["name"] == "ops" and ours["users"][1]["ssh_authorized_keys"] == [key]
    assert ours["ssh_keys"]["ed25519_public"] == machine.properties[HOST_KEY_PROPERTY]
    assert "PRIVATE KEY" in ours["ssh_keys"]["ed25519_private"]
    assert parts[1] == ("text/cloud-config", USER_DATA)
    assert machine.properties[USER_PROPERTY] == "ops"
    # the private host key is in the seed only: never in what the connector returns
    assert "PRIVATE" not in str(machine.to_json())


def test_default_user_and_user_data_alone(qemu, standin):
    machine = qemu.create_machine(MachineSpec(name=standin.name(), config=CONFIG, image=standin.image,
                                              credential={"key": new_key()}))
    assert machine.properties[USER_PROPERTY] == "debian"
    plain = qemu.create_machine(MachineSpec(name=standin.name(), config=CONFIG, user_data="#!/bin/sh\ntrue\n"))
    files = seed_files(qemu.conn, qemu.conn.lookupByUUIDString(plain.id))
    assert "public-keys" not in yaml.safe_load(files["meta-data"])
    assert "#!/bin/sh\ntrue\n" in files["user-data"] and USER_PROPERTY not in plain.properties


def test_forwarded_port_reported_listened_on_and_kept_across_restarts(qemu, standin):
    machine = qemu.create_machine(MachineSpec(name=standin.name(), config=CONFIG, initial_state=states.STARTED))
    dom = qemu.conn.lookupByUUIDString(machine.id)
    fwd = forward(dom)
    address = machine.interfaces[0].addresses[0]
    assert (address["ip"], address["sshPort"]) == ("127.0.0.1", fwd["port"])
    lo, hi = libvirt_guest.DEFAULT_PORTS
    assert lo <= fwd["port"] <= hi and machine.interfaces[0].macAddress == fwd["mac"]
    with socket.create_connection(("127.0.0.1", fwd["port"]), timeout=5):
        pass  # QEMU's slirp listens although no guest OS answers behind it
    qemu.stop_machine(machine.id, force=True)
    qemu.wait_for_machine(machine.id, states.STOPPED, timeout=30)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", fwd["port"]), timeout=2).close()
    qemu.start_machine(machine.id)
    qemu.wait_for_machine(machine.id, states.STARTED, timeout=30)
    assert forward(dom)["port"] == fwd["port"]
    with socket.create_connection(("127.0.0.1", fwd["port"]), timeout=5):
        pass


def test_delete_takes_the_seed_with_the_machine(qemu, standin):
    machine = qemu.create_machine(MachineSpec(name=standin.name(), config=CONFIG, image=standin.image,
                                              credential={"key": new_key()}))
    volumes = qemu.conn.storagePoolLookupByName(standin.prefix + "volumes")
    seeds = [v.name() for v in volumes.listAllVolumes(0) if "-seed-" in v.name()]
    assert len(seeds) == 1 and seeds[0].startswith(machine.name)
    assert [i.name for i in qemu.list_machine_images()] == [standin.image]  # a seed is no image
    assert not [v for v in qemu.list_volumes() if "-seed-" in (v.name or "")]  # nor a volume
    qemu.delete_machine(machine.id)
    assert not [v.name() for v in volumes.listAllVolumes(0) if "-seed-" in v.name()]


@pytest.mark.parametrize("credential, user_data, attribute", [
    ({"username": "ops", "password": "s3cret"}, None, "credential.password"),
    ({"username": "ops"}, None, "credential.key"),
    ({"key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP/e"}, None, "credential.key"),
    ({"username": "Not A User", "key": None}, None, "credential.userName"),
    (None, "x" * (1024 * 1024 + 1), "userData"),
])
def test_bad_input_changes_nothing(qemu, standin, credential, user_data, attribute):
    if credential and credential.get("key", "") is None:
        credential = dict(credential, key=new_key())
    before = sorted(d.name() for d in qemu.conn.listAllDomains(0))
    volumes = qemu.conn.storagePoolLookupByName(standin.prefix + "volumes")
    vols_before = sorted(v.name() for v in volumes.listAllVolumes(0))
    with pytest.raises(InvalidInput) as info:
        qemu.create_machine(MachineSpec(name=standin.name(), config=CONFIG, image=standin.image,
                                        credential=credential, user_data=user_data))
    assert info.value.attribute == attribute
    assert sorted(d.name() for d in qemu.conn.listAllDomains(0)) == before
    assert sorted(v.name() for v in volumes.listAllVolumes(0)) == vols_before


def test_test_driver_refuses_guest_inputs(standin, connector):
    if standin.id != "libvirt-test":
        pytest.skip("only libvirt's test driver boots no guest")
    assert not connector.capabilities().guest_inputs
    for credential, user_data, attribute in (({"key": new_key()}, None, "credential"), (None, "#!/bin/sh", "userData")):
        with pytest.raises(InvalidInput) as info:
            connector.create_machine(MachineSpec(name=standin.name(), config=CONFIG, credential=credential,
                                                 user_data=user_data))
        assert info.value.attribute == attribute
    assert not connector.find_machines(standin.name())


def _create_many(options, prefix, count, start, queue):
    """In another process: wait for the start signal, create ``count`` machines, report their ports."""
    conn = LibvirtConnector(uri="qemu:///system", options=options)
    ports = []
    while time.time() < start:
        time.sleep(0.005)
    for i in range(count):
        machine = conn.create_machine(MachineSpec(name="%s%d" % (prefix, i), config=CONFIG))
        ports.append(machine.interfaces[0].addresses[0]["sshPort"])
    conn.close()
    queue.put(ports)


def test_ports_allocated_by_racing_processes_never_collide(qemu, standin):
    options = {"image_pool": standin.prefix + "images", "volume_pool": standin.prefix + "volumes",
               "domain_type": "qemu"}
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start = time.time() + 3  # spawn start-up included: every process creates at the same moment
    procs = [ctx.Process(target=_create_many, args=(options, "%sr%d-" % (standin.prefix, n), 6, start, queue))
             for n in range(3)]
    for proc in procs:
        proc.start()
    ports = [port for _proc in procs for port in queue.get(timeout=120)]
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    assert len(ports) == 18 and len(set(ports)) == 18
    claimed = libvirt_guest.claimed_ports(d.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
                                          for d in qemu.conn.listAllDomains(0))
    assert all(len(claimed[p]) == 1 for p in ports)

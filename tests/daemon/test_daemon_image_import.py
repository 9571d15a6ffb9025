"""MachineImages whose imageLocation is a source to fetch (image_sources.py): from a file under an allowed
directory or an allowed http URL (a real HTTP server here), registered on every host that imports images, in
the format each takes; the checksum, size limit, and addresses the daemon never fetches from; what is refused
is refused with 400 before anything is recorded, and a failed fetch leaves an ERROR record and no disk.

The simulated hosts run libvirt's test driver, which records a volume without its bytes (it implements no
upload): the bytes themselves are checked on real libvirtd in tests/contract/test_libvirt_image_bytes.py.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import threading

import pytest
from daemon_helpers import ADMIN_PASSWORD, PASSWORDS, Api, add_users, assert_cimi_error, make_app

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A directory of disk images: a 4 MiB qcow2, a raw one, a qcow2 with a backing file, a text file."""
    root = tmp_path_factory.mktemp("images")
    raw = root / "tiny.raw"
    raw.write_bytes(bytes(range(256)) * (4 * MIB // 256))
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(root / "tiny.qcow2")],
                   check=True)
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", str(raw), str(root / "overlay.qcow2")],
                   check=True, capture_output=True)
    (root / "big.raw").write_bytes(b"\0" * (3 * MIB))
    return root


@pytest.fixture(scope="module")
def http_source(images):
    """A real HTTP server over the images directory on 127.0.0.1: (base URL, server)."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(images))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def app(tmp_path_factory, images, http_source):
    # listening on 127.0.0.1:8080 (the default): that address is "the daemon itself"
    application = make_app(tmp_path_factory.mktemp("siroccod"), image_sources={
        "urls": [http_source, "http://169.254.169.254/", "http://127.0.0.1:8080/"],
        "directories": [str(images)], "max_bytes": 16 * MIB, "timeout": 60})
    yield application
    application.extensions["siroccod"].close()


@pytest.fixture(scope="module")
def alice(app):
    client = app.test_client()
    add_users(Api(client, "admin", ADMIN_PASSWORD))
    return Api(client, "alice", PASSWORDS["alice"])


@pytest.fixture(scope="module")
def bob(app, alice):
    return Api(app.test_client(), "bob", PASSWORDS["bob"])


def post_image(api, name, location, **extra):
    return api.post(api.collection("machineImages"), dict({"name": name, "imageLocation": location}, **extra))


def imported(api, name, location, expect="SUCCESS", **extra):
    r = post_image(api, name, location, **extra)
    assert r.status_code == 202, r.json
    assert r.json["state"] == "CREATING"
    job = api.wait(r.headers["CIMI-Job-URI"], timeout=60)
    assert job["state"] == expect, job
    return api.get(r.headers["Location"]).json, job


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_image_from_an_allowed_directory_is_registered_and_starts_machines(alice, bob, images):
    image, job = imported(alice, "debian-tiny", (images / "tiny.qcow2").as_uri())
    assert (image["state"], image["type"]) == ("AVAILABLE", "IMAGE")
    props = image["properties"]
    assert props["sirocco.format"] == "qcow2"
    assert props["sirocco.size"] == str(4 * MIB)
    assert props["sirocco.checksum"] == "sha256:" + sha256(images / "tiny.qcow2")
    assert (props["sirocco.image"], props["sirocco.arch"]) == ("debian-tiny", "x86_64")
    # registered on each of the three simulated hosts
    assert "sim1" in job["statusMessage"] and "sim2" in job["statusMessage"] and "sim3" in job["statusMessage"]
    # other tenants do not see it
    assert image["name"] not in {i["name"] for i in bob.items("machineImages")}
    assert bob.get(image["id"]).status_code == 404
    # a machine from it: its disk is the image's
    machine = alice.create_machine("fromimport", "STOPPED", machineImage={"href": image["id"]})
    assert machine["state"] == "STOPPED"
    alice.remove(machine)
    alice.remove(image)
    assert alice.get(image["id"]).status_code == 404


def test_an_image_over_http_with_its_checksum(alice, images, http_source):
    good = "sha256:" + sha256(images / "tiny.raw")
    image, _job = imported(alice, "over-http", http_source + "tiny.raw",
                           properties={"sirocco.checksum": good, "sirocco.image": "debian-12-tiny"})
    assert image["properties"]["sirocco.format"] == "raw"
    assert image["properties"]["sirocco.checksum"] == good
    assert image["properties"]["sirocco.image"] == "debian-12-tiny"  # the generic name given, not the name
    alice.remove(image)


def test_a_checksum_mismatch_fails_the_job_and_leaves_no_disk(alice, http_source):
    wrong = "sha256:" + "0" * 64
    image, job = imported(alice, "tampered", http_source + "tiny.raw", expect="FAILED",
                          properties={"sirocco.checksum": wrong})
    assert "sha256" in job["statusMessage"] and image["state"] == "ERROR"
    # the record can go; no host holds a disk for it
    r = alice.delete(image["id"])
    assert r.status_code in (200, 204), r.json
    assert "tampered" not in {i["name"] for i in alice.items("machineImages")}


def test_an_image_larger_than_the_limit_fails(alice, images, tmp_path_factory):
    (images / "huge.raw").write_bytes(b"\0" * (17 * MIB))
    image, job = imported(alice, "huge", (images / "huge.raw").as_uri(), expect="FAILED")
    assert "max_bytes" in job["statusMessage"] and image["state"] == "ERROR"
    alice.remove(image)


def test_an_image_refering_to_other_files_is_refused(alice, images):
    # qemu-img would read the backing file (any file of the daemon's machine) into the image
    image, job = imported(alice, "overlay", (images / "overlay.qcow2").as_uri(), expect="FAILED")
    assert "self-contained" in job["statusMessage"] and image["state"] == "ERROR"
    alice.remove(image)


@pytest.mark.parametrize("location", [
    "http://images.example.org/tiny.qcow2",  # not allowed
    "ftp://127.0.0.1/tiny.qcow2",
    "file:///etc/passwd",  # not under an allowed directory
    "/etc/passwd",
    "http://169.254.169.254/latest/meta-data/",  # allowed by mistake, but link-local: a metadata service
    "http://127.0.0.1:8080/cimi/cloudEntryPoint",  # allowed by mistake, but the daemon itself
    "",
])
def test_sources_the_daemon_never_fetches_are_refused_before_anything_is_recorded(alice, location):
    before = {i["id"] for i in alice.items("machineImages")}
    assert_cimi_error(post_image(alice, "refused", location), 400)
    assert {i["id"] for i in alice.items("machineImages")} == before


def test_a_missing_file_and_a_bad_checksum_are_refused(alice, images):
    assert_cimi_error(post_image(alice, "nofile", (images / "absent.qcow2").as_uri()), 400)
    r = post_image(alice, "badsum", (images / "tiny.qcow2").as_uri(), properties={"sirocco.checksum": "md5:abc"})
    body = assert_cimi_error(r, 400)
    assert "sirocco.checksum" in body["statusMessage"]


def test_an_image_is_edited_in_its_record_only(alice, images):
    image, _job = imported(alice, "editable", (images / "tiny.qcow2").as_uri())
    r = alice.put(image["id"], {"name": "renamed", "description": "d", "imageLocation": "http://elsewhere/x"})
    assert r.status_code == 200, r.json
    after = alice.get(image["id"]).json
    assert (after["name"], after["description"]) == ("renamed", "d")
    assert after["imageLocation"] == image["imageLocation"]  # what the hosts hold is not edited here
    alice.remove(after)


def test_a_machine_from_an_image_given_by_value_is_refused(alice, images):
    r = alice.post(alice.collection("machines"), {
        "name": "byvalue", "machineTemplate": {"machineConfig": {"href": alice.config_href("tiny")},
                                               "machineImage": {"imageLocation": (images / "tiny.qcow2").as_uri()}}})
    body = assert_cimi_error(r, 400)
    assert "machineImage" in body["statusMessage"]

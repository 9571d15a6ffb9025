"""sirocco.cimi.machine_image and the generic names of sirocco.cimi.machine, against libvirt's test driver.

The test driver (``test:///default``, in-process) keeps a storage pool for the whole connection: images are
registered into it for real (as volumes of the right size; the driver takes no bytes), listed, resolved and
deleted. Disk files are real, made by qemu-img. The module runs through ``machine_images.run`` with a small
stand-in of SiroccoModule (options, check mode, warnings); the Ansible side is proved by the integration
targets machine_image and machine_image_siroccod.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from ansible_collections.sirocco.cimi.plugins.module_utils import machine_images as mi
from ansible_collections.sirocco.cimi.plugins.module_utils import machines as machine_module
from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import (
    Conflict,
    InvalidInput,
    ProviderUnavailable,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.base import (
    IMAGE_NAME_PROPERTY,
    DiskImage,
)
from ansible_collections.sirocco.cimi.plugins.module_utils.connectors.libvirt import LibvirtConnector
from ansible_collections.sirocco.cimi.plugins.module_utils.module import Deadline

MIB = 1 << 20
DEFAULTS = dict(state="present", build=None, file=None, url=None, from_machine=None, generic_name=None,
                description=None, properties=None, arch=None, boot="bios", rebuild=False, max_age_days=None,
                cache_dir=None, force=False, wait=True, wait_timeout=30, timeout=60)


class Module:
    """What machine_images.run uses of a SiroccoModule."""

    def __init__(self, connector, check_mode=False, **params):
        self.connector = connector
        self.check_mode = check_mode
        self.diff_mode = True
        self.params = dict(DEFAULTS, **params)
        self.deadline = Deadline(self.params["wait_timeout"])
        self.warnings = []

    def warn(self, message):
        self.warnings.append(message)


@pytest.fixture
def conn():
    connector = LibvirtConnector(uri="test:///default", options={"image_pool": "default-pool"})
    yield connector
    connector.close()


def qemu_img(*args):
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


@pytest.fixture
def disk(tmp_path):
    """disk(name, size_mib=8, fmt='qcow2') -> path of a fresh disk image."""
    def make(name, size_mib=8, fmt="qcow2"):
        path = tmp_path / ("%s.%s" % (name, fmt))
        qemu_img("create", "-f", fmt, str(path), "%dM" % size_mib)
        return str(path)
    return make


def register(conn, disk, name, generic=None):
    return conn.import_machine_image(DiskImage(name=name, files={"qcow2": disk(name)}, virtual_size=8 * MIB,
                                               generic_name=generic))


def names(conn):
    return sorted(i.name for i in conn.list_machine_images())


# -- one name for all clouds --------------------------------------------------------------------------------
def test_a_generic_name_resolves_to_the_image_registered_under_it(conn, disk):
    image = register(conn, disk, "deb-a", generic="debian-12-web")
    assert mi.resolve_image(conn, "debian-12-web").id == image.id
    assert machine_module.resolve_image(conn, "debian-12-web") == image.id  # what sirocco.cimi.machine uses
    assert mi.resolve_image(conn, "deb-a").id == image.id  # the native name
    assert mi.resolve_image(conn, image.id).id == image.id  # the native id


def test_a_native_name_wins_over_a_generic_name(conn, disk):
    tagged = register(conn, disk, "deb-b", generic="web")
    native = register(conn, disk, "web")
    assert mi.resolve_image(conn, "web").id == native.id != tagged.id


def test_an_unknown_name_lists_the_images_that_exist(conn, disk):
    register(conn, disk, "deb-c", generic="debian-12-db")
    with pytest.raises(InvalidInput) as info:
        mi.resolve_image(conn, "debian-13")
    message = info.value.message
    assert message.startswith("machine_image: no image 'debian-13' on provider 'libvirt'")
    assert "deb-c" in message and "'debian-12-db'" in message
    assert info.value.attribute == "machineImage"


def test_a_generic_name_several_images_carry_is_ambiguous(conn, disk):
    one = register(conn, disk, "deb-d1", generic="twice")
    two = register(conn, disk, "deb-d2", generic="twice")
    with pytest.raises(InvalidInput) as info:
        mi.resolve_image(conn, "twice")
    message = info.value.message
    assert "ambiguous" in message and "2 images" in message
    assert one.id in message and two.id in message


def test_placement_accepts_a_generic_name(conn, disk):
    from ansible_collections.sirocco.cimi.plugins.module_utils.placement import match

    register(conn, disk, "deb-e", generic="placed")
    offer = match.survey("lab", conn, images=True)
    assert match._image_reasons(offer, "placed") == []
    assert match._image_reasons(offer, "nowhere")


# -- the module: file -----------------------------------------------------------------------------------------
def test_file_check_real_check_real(conn, disk):
    path = disk("src")
    opts = dict(name="mi-file", file=path, generic_name="mi-generic", description="from a file")
    checked = mi.run(Module(conn, check_mode=True, **opts))
    assert checked["changed"] and checked["actions"] == ["import"]
    assert "mi-file" not in names(conn)  # check mode registered nothing
    assert checked["machine_image"]["properties"][IMAGE_NAME_PROPERTY] == "mi-generic"
    assert checked["diff"]["before"] == {} and checked["diff"]["after"]["name"] == "mi-file"

    done = mi.run(Module(conn, **opts))
    assert done["changed"] and done["actions"] == ["import"]
    image = done["machine_image"]
    assert image["name"] == "mi-file" and image["state"] == "AVAILABLE"
    assert image["properties"][IMAGE_NAME_PROPERTY] == "mi-generic"
    assert image["properties"]["sirocco.size"] == str(8 * MIB)
    assert mi.resolve_image(conn, "mi-generic").id == image["id"]

    module = Module(conn, check_mode=True, **opts)
    again = mi.run(module)
    assert not again["changed"] and again["actions"] == []
    # libvirt keeps no sirocco.spec: it says so rather than pretend
    assert any("keeps no sirocco.spec" in w for w in module.warnings)
    assert not mi.run(Module(conn, **opts))["changed"]
    assert names(conn).count("mi-file") == 1


def test_a_file_in_a_format_the_provider_does_not_take_is_converted(conn, disk):
    path = disk("vhd-src", fmt="vpc")
    done = mi.run(Module(conn, name="mi-vhd", file=path))
    assert done["changed"]
    assert done["machine_image"]["properties"]["sirocco.format"] in conn.image_formats


def test_a_fixed_vhd_is_read_as_vhd_not_raw(tmp_path):
    # a fixed VHD has only a footer: qemu-img probes it as raw, which would register the footer as data
    raw = tmp_path / "d.raw"
    qemu_img("create", "-f", "raw", str(raw), "8M")
    vhd = tmp_path / "d.vhd"
    qemu_img("convert", "-f", "raw", "-O", "vpc", "-o", "subformat=fixed,force_size=on", str(raw), str(vhd))
    assert mi.disk_facts(str(vhd)) == ("vhd", 8 * MIB)
    assert mi.disk_facts(str(raw)) == ("raw", 8 * MIB)


def test_another_image_under_the_name_fails_unless_force(conn, disk):
    mi.run(Module(conn, name="mi-other", file=disk("first", 8)))
    bigger = disk("second", 16)
    with pytest.raises(Conflict, match="sirocco.size is 8388608, wanted 16777216"):
        mi.run(Module(conn, name="mi-other", file=bigger))
    replaced = mi.run(Module(conn, name="mi-other", file=bigger, force=True))
    assert replaced["actions"] == ["delete", "import"]
    assert replaced["machine_image"]["properties"]["sirocco.size"] == str(16 * MIB)
    assert names(conn).count("mi-other") == 1


def test_absent_is_idempotent(conn, disk):
    mi.run(Module(conn, name="mi-gone", file=disk("gone")))
    checked = mi.run(Module(conn, check_mode=True, name="mi-gone", state="absent"))
    assert checked["changed"] and checked["actions"] == ["delete"] and "mi-gone" in names(conn)
    done = mi.run(Module(conn, name="mi-gone", state="absent"))
    assert done["changed"] and "machine_image" not in done and "mi-gone" not in names(conn)
    assert not mi.run(Module(conn, name="mi-gone", state="absent"))["changed"]


# -- bad input fails naming the option, before anything changes ----------------------------------------------
@pytest.mark.parametrize("case, option", [
    ("missing", "file"),
    ("vdi", "file"),
    ("backing", "file"),
    ("two", "url"),
    ("none", "build"),
    ("arch", "arch"),
    ("url", "url"),
])
def test_bad_input_names_the_option_and_changes_nothing(conn, disk, tmp_path, case, option):
    before = names(conn)
    opts = {"missing": dict(file=str(tmp_path / "nothing.qcow2")),
            "two": dict(file=disk("two"), url="https://images.example.org/x.qcow2"),
            "none": {},
            "arch": dict(file=disk("arch"), arch="pdp11"),
            "url": dict(url="ftp://images.example.org/x.qcow2")}.get(case)
    if case == "vdi":
        opts = dict(file=disk("vdi", fmt="vdi"))
    if case == "backing":
        base = disk("base")
        top = str(tmp_path / "top.qcow2")
        qemu_img("create", "-f", "qcow2", "-b", base, "-F", "qcow2", top)
        opts = dict(file=top)
    with pytest.raises(InvalidInput) as info:
        mi.run(Module(conn, name="mi-bad", **opts))
    assert info.value.attribute == option and option in info.value.message
    assert names(conn) == before


# -- the module: build (the factory's cache; building itself is the factory's tests) -------------------------
def seed_cache(cache_dir, spec, disk):
    """A complete cache entry for ``spec``, as the factory commits one: a tiny qcow2 and its record."""
    from ansible_collections.sirocco.cimi.plugins.module_utils.images.cache import ImageCache

    cache = ImageCache(str(cache_dir))
    spec_hash = spec.spec_hash()
    work = cache.workdir(spec_hash)
    path = disk("built")
    os.replace(path, os.path.join(work, "built.qcow2"))
    record = {"name": spec.name, "spec_hash": spec_hash, "virtual_size": 8 * MIB, "arch": "x86_64", "boot": "bios",
              "built_at": time.time(), "packages": {"cloud-init": "22.4.2-1"},
              "files": {"qcow2": {"file": "built.qcow2", "sha256": mi.sha256_file(os.path.join(work, "built.qcow2"))}}}
    cache.commit(spec_hash, work, record)
    return spec_hash


def test_build_from_the_cache_then_nothing_to_do(conn, disk, tmp_path):
    from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec

    spec_data = {"name": "mi-built", "formats": ["qcow2"], "size_gib": 2}
    cache_dir = tmp_path / "cache"
    opts = dict(name="mi-built", build=spec_data, cache_dir=str(cache_dir))
    checked = mi.run(Module(conn, check_mode=True, **opts))
    assert checked["factory"] == {"plan": "build"} and checked["actions"] == ["build", "import"]
    assert not cache_dir.exists() or not any(cache_dir.iterdir())  # check mode built nothing

    seed_cache(cache_dir, parse_spec(spec_data, check_packages=False), disk)
    checked = mi.run(Module(conn, check_mode=True, **opts))
    assert checked["factory"] == {"plan": "cached"} and checked["actions"] == ["import"]
    done = mi.run(Module(conn, **opts))
    assert done["actions"] == ["import"] and done["factory"]["cached"] is True
    assert done["provenance"]["packages"] == {"cloud-init": "22.4.2-1"}
    assert done["machine_image"]["properties"][IMAGE_NAME_PROPERTY] == "mi-built"
    assert not mi.run(Module(conn, **opts))["changed"]


def test_a_bad_spec_fails_naming_the_field(conn):
    before = names(conn)
    with pytest.raises(InvalidInput) as info:
        mi.run(Module(conn, name="mi-spec", build={"formats": ["iso"]}))
    assert info.value.attribute == "build" and "build: formats" in info.value.message
    with pytest.raises(InvalidInput, match="build: size_gib"):
        mi.run(Module(conn, name="mi-spec", build={"size_gib": 1}))
    assert names(conn) == before


def test_a_build_without_root_fails_naming_it_before_anything_changes(conn, tmp_path, monkeypatch):
    from ansible_collections.sirocco.cimi.plugins.module_utils.images import builder

    monkeypatch.setattr(builder.os, "geteuid", lambda: 1000)  # this machine runs the tests as root
    before = names(conn)
    with pytest.raises(ProviderUnavailable) as info:
        mi.run(Module(conn, name="mi-root", build={"formats": ["qcow2"]}, cache_dir=str(tmp_path)))
    assert info.value.message.startswith("build: ") and "root" in info.value.message
    assert names(conn) == before
    # check mode plans without building: no root needed
    assert mi.run(Module(conn, check_mode=True, name="mi-root", build={}, cache_dir=str(tmp_path)))["changed"]


# -- machine_image_info -----------------------------------------------------------------------------------
def test_info_by_name_generic_name_and_filter(conn, disk):
    register(conn, disk, "info-a", generic="info-g")
    register(conn, disk, "info-b")

    def info(**params):
        return [d["name"] for d in mi.run_info(Module(conn, **dict(dict(name=None, generic_name=None, filter=None),
                                                                   **params)))["machine_images"]]
    assert {"info-a", "info-b"} <= set(info())
    assert info(name="info-b") == ["info-b"]
    assert info(generic_name="info-g") == ["info-a"]
    assert info(filter="name='info-a'") == ["info-a"]
    assert json.dumps(info(filter="property['sirocco.image']='info-g'")) == '["info-a"]'


def test_one_spec_is_one_build_whatever_the_images_are_called(conn, disk, tmp_path):
    from ansible_collections.sirocco.cimi.plugins.module_utils.images.spec import parse_spec

    spec_data = {"formats": ["qcow2"], "size_gib": 2}  # no name: the spec's name does not follow the image's
    seed_cache(tmp_path, parse_spec(dict(spec_data, name=mi.DEFAULT_SPEC_NAME), check_packages=False), disk)
    for name in ("mi-one", "mi-two"):
        planned = mi.run(Module(conn, check_mode=True, name=name, generic_name=name + "-g", build=spec_data,
                                cache_dir=str(tmp_path)))
        assert planned["factory"] == {"plan": "cached"} and planned["actions"] == ["import"]


@pytest.fixture
def http_dir(tmp_path):
    """(directory, base URL) of a real HTTP server on 127.0.0.1 serving that directory."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_url_is_downloaded_then_imported_where_the_provider_does_not_fetch(conn, http_dir):
    root, base = http_dir
    qemu_img("create", "-f", "vpc", str(root / "web.vhd"), "8M")
    opts = dict(name="mi-url", url=base + "web.vhd")
    assert mi.run(Module(conn, check_mode=True, **opts))["actions"] == ["import"]
    done = mi.run(Module(conn, **opts))
    assert done["changed"] and done["machine_image"]["properties"]["sirocco.format"] in conn.image_formats
    assert not mi.run(Module(conn, **opts))["changed"]
    with pytest.raises(InvalidInput) as info:  # nothing there: the download fails naming url
        mi.run(Module(conn, name="mi-url-404", url=base + "missing.qcow2"))
    assert info.value.attribute == "url" and "404" in info.value.message
    assert "mi-url-404" not in names(conn)

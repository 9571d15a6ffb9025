"""playbooks/images.yml, as a user runs it: one image built once, registered on six providers in one run.

libvirt: the real libvirtd at qemu:///system, into a transient pool of this run; OpenStack: the real Glance of
tests/standins/openstack (started unless it runs); EC2: moto's server; vSphere: the govmomi vCenter simulator
(it runs the whole OVF import but keeps no bytes); XenServer: the XAPI stand-in; a real siroccod whose
image_sources allow the factory's cache directory. The clouds file is the playbook's own, with only the
stand-ins' addresses and credentials replaced.

One test: register (changes on every cloud, the build made once: every other cloud is a cache hit), again
(changed=0 everywhere), each provider read back through its connector (the generic name finds exactly the image
registered, in the format that provider takes), check-mode teardown (nothing deleted), teardown, teardown again
(changed=0). The factory's cache is its default one, so the build is cold only the first time on a machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from test_multicloud import (  # noqa: F401 (fixtures)  pylint: disable=unused-import
    libvirt_conn,
    moto,
    openstack_clouds_yaml,
)

from ansible_collections.sirocco.cimi.plugins.module_utils.connectors import registry
from ansible_collections.sirocco.cimi.plugins.module_utils.images.cache import default_dir

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "images.yml"
STANDINS = REPO / "tests" / "standins"
CLOUDS = ("lab", "openstack", "aws", "vcenter", "xen", "siroccod")  # the names of playbooks/images/clouds.yml
FORMATS = {"lab": "qcow2", "openstack": "qcow2", "aws": "raw", "vcenter": "vmdk", "xen": "vhd", "siroccod": "qcow2"}
TIMEOUT = 1800  # seconds per ansible-playbook run (the first may build: about 2 minutes cold on 2 cores)
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pool(libvirt_conn):  # noqa: F811
    """A transient dir pool of this run (it disappears when destroyed)."""
    name = "sirocco-it-images-%s" % secrets.token_hex(3)
    target = Path("/tmp") / name
    xml = "<pool type='dir'><name>%s</name><target><path>%s</path></target></pool>" % (name, target)
    target.mkdir()
    found = libvirt_conn.storagePoolCreateXML(xml, 0)
    yield name
    for vol in found.listAllVolumes(0):
        vol.delete(0)
    found.destroy()
    target.rmdir()


@pytest.fixture(scope="module")
def vcenter():
    sim = _load("sirocco_img_vcsim", STANDINS / "vcsim" / "standin.py").Vcsim("vc")
    try:
        sim.start()
    except RuntimeError as exc:
        pytest.fail("the vcsim stand-in cannot start: %s (run `make vcsim`)" % exc, pytrace=False)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def xapi():
    server = _load("sirocco_img_xapi", STANDINS / "xapi" / "control.py").start(hosts=1)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def siroccod(tmp_path_factory):
    sys.path.insert(0, str(REPO / "tests" / "contract"))
    from standins.siroccod import Daemon

    os.makedirs(default_dir(), exist_ok=True)
    daemon = Daemon(tmp_path_factory.mktemp("siroccod") / "data",
                    config={"image_sources": {"directories": [default_dir()]}}).start()
    yield daemon
    daemon.stop()


class Run:
    """One ansible-playbook run: its output, PLAY RECAP counters and the playbook's per-cloud report."""

    def __init__(self, proc, seconds):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        recap = re.search(r"^localhost\s*:(.*)$", self.stdout[self.stdout.rfind("PLAY RECAP"):], re.M)
        self.recap = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap.group(1))} if recap else {}

    @property
    def report(self):
        """image_report, which the last task prints at -v (the default callback, JSON result format)."""
        section = self.stdout[self.stdout.rindex("TASK [Per cloud, for scripts]"):]
        start = section.index("=> {") + 3
        return json.JSONDecoder().raw_decode(section[start:])[0]["image_report"]

    def __repr__(self):  # what a failed assert shows: the whole run
        return "exit %d after %.1f s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (self.rc, self.seconds, self.stdout,
                                                                                 self.stderr)


@pytest.fixture(scope="module")
def clouds(pool, moto, openstack_clouds_yaml, vcenter, xapi, siroccod):  # noqa: F811
    """The playbook's clouds file, pointed at this run's stand-ins: {name: connection options}."""
    entries = yaml.safe_load((PLAYBOOK.parent / "images" / "clouds.yml").read_text())["image_clouds"]
    by_name = {c["name"]: c for c in entries}
    assert tuple(by_name) == CLOUDS, by_name
    by_name["lab"]["connection"]["provider_options"] = {"image_pool": pool}
    by_name["openstack"]["connection"]["provider_options"]["clouds_yaml"] = str(openstack_clouds_yaml)
    by_name["aws"]["connection"].update(uri=moto.url, username=moto.access_key, password=moto.secret_key)
    by_name["vcenter"]["connection"].update(uri=vcenter.url, username=vcenter.username, password=vcenter.password)
    by_name["xen"]["connection"].update(uri=xapi.url, username=xapi.username, password=xapi.password)
    by_name["siroccod"]["connection"].update(uri=siroccod.cep, username=siroccod.admin[0],
                                             password=siroccod.admin[1])
    return entries


@pytest.fixture(scope="module")
def play(tmp_path_factory, clouds):
    """``play(*extra_vars_or_options)``: run playbooks/images.yml (-v) on the stand-ins; returns a Run."""
    workdir = tmp_path_factory.mktemp("images")
    collections = workdir / "collections"
    (collections / "ansible_collections" / "sirocco").mkdir(parents=True)
    (collections / "ansible_collections" / "sirocco" / "cimi").symlink_to(REPO, target_is_directory=True)
    (workdir / "clouds.yml").write_text(yaml.safe_dump({"image_clouds": clouds}, sort_keys=False))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_STDOUT_CALLBACK="default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
               ANSIBLE_CONFIG=str(workdir / "no-ansible.cfg"))
    for name in ("SIROCCO_PROVIDER", "SIROCCO_URI", "SIROCCO_USERNAME", "SIROCCO_PASSWORD", "SIROCCO_REGION"):
        env.pop(name, None)  # the clouds file says everything
    secrets_shown = [c["connection"]["password"] for c in clouds if c["connection"].get("password")]

    def run(*extra):
        command = [str(Path(sys.executable).parent / "ansible-playbook"), "-v", "-i", "localhost,", str(PLAYBOOK),
                   "-e", "@%s" % (workdir / "clouds.yml")]
        for item in extra:
            command += [item] if item.startswith("-") else ["-e", item]  # an option, else extra vars
        started = time.monotonic()
        try:
            proc = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True, timeout=TIMEOUT,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            pytest.fail("ansible-playbook did not finish within %d s\n%s" % (TIMEOUT, exc.stdout), pytrace=False)
        result = Run(proc, time.monotonic() - started)
        for secret in secrets_shown:
            text = result.stdout + result.stderr
            where = text.find(secret)
            assert where < 0, "a password was printed after: ...%s" % text[max(0, where - 300):where]
        return result

    return run


def connectors(clouds):
    for cloud in clouds:
        options = dict(cloud["connection"])
        provider = options.pop("provider")
        yield cloud["name"], registry.connect(provider, options=options.pop("provider_options", None) or {},
                                              **options)


def registered(clouds, generic):
    """{cloud: [(name, format) of the images its provider finds under the generic name]}, read back."""
    found = {}
    for name, conn in connectors(clouds):
        try:
            images = conn.find_machine_images(generic)
            found[name] = sorted((i.name, (i.properties or {}).get("sirocco.format")) for i in images)
        finally:
            conn.close()
    return found


def remove_everywhere(clouds, generic):
    """Delete what a failed run left, through the connectors; best effort."""
    for name, conn in connectors(clouds):
        try:
            for image in conn.find_machine_images(generic):
                conn.delete_machine_image(image.id)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            print("cleanup on %s failed: %s" % (name, exc))
        finally:
            conn.close()


def test_images_playbook(play, clouds):
    generic = "sirocco-it-img-%s" % secrets.token_hex(3)
    try:
        bad = play("image_name=%s" % generic, "image_state=built")
        assert bad.rc != 0 and "image_state must be present or absent" in bad.stdout, bad
        assert bad.recap.get("changed") == 0, bad

        first = play("image_name=%s" % generic)
        assert first.rc == 0 and first.recap["failed"] == 0, first
        report = first.report
        assert set(report) == set(CLOUDS), report
        for cloud, entry in report.items():
            assert entry["changed"] is True and entry["actions"][-1] == "import", (cloud, entry)
            assert entry["state"] == "AVAILABLE" and entry["name"] == generic, (cloud, entry)
            assert entry["generic_name"] == generic, (cloud, entry)
            assert entry["format"] == FORMATS[cloud], (cloud, entry)
        builds = [cloud for cloud in CLOUDS if "build" in report[cloud]["actions"]]
        assert builds in ([], [CLOUDS[0]]), report  # built once at most, by the first cloud: then from the cache
        assert all(entry["factory"]["cached"] for cloud, entry in report.items() if cloud not in builds), report

        again = play("image_name=%s" % generic)
        assert again.rc == 0 and again.recap["changed"] == 0, again
        for cloud, entry in again.report.items():
            assert entry["actions"] == [] and entry["id"] == report[cloud]["id"], (cloud, entry)

        assert registered(clouds, generic) == {cloud: [(generic, FORMATS[cloud])] for cloud in CLOUDS}

        preview = play("image_name=%s" % generic, "image_state=absent", "--check")
        assert preview.rc == 0 and preview.recap["changed"] == 1, preview
        assert all(e["actions"] == ["delete"] for e in preview.report.values()), preview.report
        assert all(len(images) == 1 for images in registered(clouds, generic).values())

        down = play("image_name=%s" % generic, "image_state=absent")
        assert down.rc == 0 and down.recap["changed"] == 1, down
        down_again = play("image_name=%s" % generic, "image_state=absent")
        assert down_again.rc == 0 and down_again.recap["changed"] == 0, down_again
        assert registered(clouds, generic) == {cloud: [] for cloud in CLOUDS}
        print("images.yml: first %.1f s (%s), again %.1f s, teardown %.1f s"
              % (first.seconds, "built" if builds else "from the cache", again.seconds, down.seconds))
    finally:
        remove_everywhere(clouds, generic)

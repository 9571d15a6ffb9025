"""playbooks/multicloud.yml, as a user runs it, against three real providers at once.

libvirt: the real libvirtd at qemu:///system (tests/standins/start-libvirtd.sh); EC2: moto's server
(tests/standins/moto), started here on a free port; OpenStack: the real Keystone, Glance, Placement and Nova
of tests/standins/openstack, installed and started here unless they already run (then reused, left running).

One test walks the whole life of the application: deploy (changes on every cloud), deploy again (nothing
changes anywhere: PLAY RECAP changed=0 and the playbook's per-cloud report), the machines checked through each
provider's own API, tear down (changes), tear down again (nothing changes), nothing left on any provider.
The clouds file is the playbook's own, with only the stand-ins' addresses and credentials replaced, and a
unique app_name per run, so that parallel runs never touch each other's machines.
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

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = REPO / "playbooks" / "multicloud.yml"
STANDINS = REPO / "tests" / "standins"
URI = os.environ.get("SIROCCO_IT_URI", "qemu:///system")
OPENSTACK_STATE = Path(os.environ.get("SIROCCO_OPENSTACK_DIR", "/var/tmp/sirocco-openstack"))
OPENSTACK_CLOUD = "sirocco-standin"  # the cloud of the clouds.yaml start.sh writes
REGION = "us-east-1"
CLOUDS = ("lab", "aws", "openstack")  # the names of playbooks/multicloud/clouds.yml
ROLES = ("web", "db")
TIMEOUT = 600  # seconds per ansible-playbook run
# openstacksdk's own deprecation notices (its InfluxDB support, ...), raised by the checks, not by the playbook
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning:openstack")


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the three providers ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def libvirt_conn():
    """Fail, not skip, when libvirtd is unreachable: this test exists to run against it."""
    import libvirt

    libvirt.registerErrorHandler(lambda *args: None, None)
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.fail("libvirtd is unreachable at %s (%s): run `make system` (as root)" % (URI, exc), pytrace=False)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def moto():
    """moto's EC2 server, with a secret key of this run (it must never show in the playbook's output)."""
    server = _load("sirocco_mc_moto", STANDINS / "moto" / "standin.py").MotoServer()
    server.secret_key = "sirocco-mc-%s" % secrets.token_hex(8)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        pytest.fail("the moto stand-in cannot start: %s (run `make venv`)" % exc, pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def openstack_clouds_yaml():
    """The clouds.yaml of the running OpenStack stand-in; installed and started first when needed (~1-3 min)."""
    for script, timeout in (("install.sh", 1800), ("start.sh", 600)):
        try:
            done = subprocess.run(["bash", str(STANDINS / "openstack" / script)], capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail("tests/standins/openstack/%s took more than %d s" % (script, timeout), pytrace=False)
        if done.returncode != 0:
            pytest.fail("tests/standins/openstack/%s failed (`make openstack` as root installs and starts it):\n%s"
                        % (script, (done.stderr or done.stdout)[-3000:]), pytrace=False)
    return OPENSTACK_STATE / "clouds.yaml"


# -- each provider's own view of the application ---------------------------------------------------------

def libvirt_machines(conn, app):
    """{name: running?} of the domains named <app>-<role>."""
    names = ["%s-%s" % (app, role) for role in ROLES]
    return {d.name(): bool(d.isActive()) for d in conn.listAllDomains() if d.name() in names}


def ec2_machines(server, app):
    """{Name tag: (state, instance type, tags)} of the instances tagged app=<app> that are not terminated."""
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=server.url, region_name=REGION, **server.credentials)
    try:
        reply = ec2.describe_instances(Filters=[{"Name": "tag:app", "Values": [app]}])
    finally:
        ec2.close()
    found = {}
    for instance in (i for r in reply["Reservations"] for i in r["Instances"]):
        tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
        if instance["State"]["Name"] != "terminated":
            found[tags.get("Name")] = (instance["State"]["Name"], instance["InstanceType"], tags)
    return found


def openstack_machines(clouds_yaml, app):
    """{name: (status, flavor name, metadata)} of the servers named <app>-<role>."""
    import openstack.config
    from openstack import connection

    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud=OPENSTACK_CLOUD)
    conn = connection.Connection(config=config)
    try:
        names = ["%s-%s" % (app, role) for role in ROLES]
        return {s.name: (s.status, s.flavor.get("original_name") or s.flavor.get("name"), dict(s.metadata or {}))
                for s in conn.compute.servers() if s.name in names}
    finally:
        conn.close()


def remove_everywhere(conn, server, clouds_yaml, app):
    """Delete what a failed run left, through each provider's API (not the code under test); best effort, so
    that a provider that is down now does not hide the failure that brought us here."""
    for remove, peer in ((_remove_libvirt, conn), (_remove_ec2, server), (_remove_openstack, clouds_yaml)):
        try:
            remove(peer, app)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            print("cleanup: %s failed: %s" % (remove.__name__, exc))


def _remove_libvirt(conn, app):
    for name in libvirt_machines(conn, app):
        domain = conn.lookupByName(name)
        if domain.isActive():
            domain.destroy()
        domain.undefine()


def _remove_ec2(server, app):
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=server.url, region_name=REGION, **server.credentials)
    try:
        reply = ec2.describe_instances(Filters=[{"Name": "tag:app", "Values": [app]}])
        ids = [i["InstanceId"] for r in reply["Reservations"] for i in r["Instances"]]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
    finally:
        ec2.close()


def _remove_openstack(clouds_yaml, app):
    import openstack.config
    from openstack import connection

    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud=OPENSTACK_CLOUD)
    sdk = connection.Connection(config=config)
    try:
        names = {"%s-%s" % (app, role) for role in ROLES}
        for found in sdk.compute.servers():
            if found.name in names:
                sdk.compute.delete_server(found)
    finally:
        sdk.close()


# -- running the playbook ---------------------------------------------------------------------------------

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
        """multicloud_report, which the last task prints at -v (the default callback, JSON result format)."""
        section = self.stdout[self.stdout.index("TASK [Per cloud"):]
        start = section.index("=> {") + 3
        return json.JSONDecoder().raw_decode(section[start:])[0]["multicloud_report"]

    def __repr__(self):  # what a failed assert shows: the whole run
        return "exit %d after %.1f s\n--- stdout ---\n%s\n--- stderr ---\n%s" % (self.rc, self.seconds, self.stdout,
                                                                                 self.stderr)


@pytest.fixture(scope="module")
def play(tmp_path_factory, libvirt_conn, moto, openstack_clouds_yaml):
    """``play(*extra_vars_or_options)``: run playbooks/multicloud.yml (-v) on the stand-ins; returns a Run."""
    workdir = tmp_path_factory.mktemp("multicloud")
    collections = workdir / "collections"
    (collections / "ansible_collections" / "sirocco").mkdir(parents=True)
    (collections / "ansible_collections" / "sirocco" / "cimi").symlink_to(REPO, target_is_directory=True)

    # the playbook's own clouds file, pointed at this run's stand-ins
    clouds = yaml.safe_load((PLAYBOOK.parent / "multicloud" / "clouds.yml").read_text())["multicloud_clouds"]
    by_name = {c["name"]: c for c in clouds}
    assert set(by_name) == set(CLOUDS), by_name
    by_name["lab"]["connection"]["uri"] = URI
    by_name["aws"]["connection"].update(uri=moto.url, username=moto.access_key, password=moto.secret_key)
    by_name["openstack"]["connection"]["provider_options"]["clouds_yaml"] = str(openstack_clouds_yaml)
    (workdir / "clouds.yml").write_text(yaml.safe_dump({"multicloud_clouds": clouds}, sort_keys=False))

    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_STDOUT_CALLBACK="default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
               ANSIBLE_CONFIG=str(workdir / "no-ansible.cfg"))
    for name in ("SIROCCO_PROVIDER", "SIROCCO_URI", "SIROCCO_USERNAME", "SIROCCO_PASSWORD", "SIROCCO_REGION"):
        env.pop(name, None)  # the clouds file says everything

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
        assert moto.secret_key not in result.stdout + result.stderr, "the EC2 secret key was printed"
        return result

    return run


def assert_deployed(run, app, changed):
    """Every cloud reports its web and db machines STARTED, tagged as the app, db the bigger one."""
    report = run.report
    assert set(report) == set(CLOUDS), report
    for cloud, entry in report.items():
        assert entry["changed"] is changed, (cloud, entry)
        assert entry["warnings"] == [], (cloud, entry)  # the existing machines match the request exactly
        machines = {m["role"]: m for m in entry["machines"]}
        assert sorted(machines) == sorted(ROLES), (cloud, entry)
        for role, machine in machines.items():
            assert machine["name"] == "%s-%s" % (app, role)
            assert machine["state"] == "STARTED", (cloud, machine)
        assert machines["db"]["memory_mib"] > machines["web"]["memory_mib"], (cloud, machines)
    return report


def test_multicloud_playbook(play, libvirt_conn, moto, openstack_clouds_yaml):
    app = "sirocco-it-mc-%s" % secrets.token_hex(3)
    try:
        bad = play("app_name=%s" % app, "app_state=running")
        assert bad.rc != 0 and "app_state must be present or absent" in bad.stdout, bad
        assert bad.recap.get("changed") == 0, bad

        deploy = play("app_name=%s" % app)
        assert deploy.rc == 0 and deploy.recap["failed"] == 0, deploy
        assert deploy.recap["changed"] == len(CLOUDS), deploy  # one machine task per cloud, both items changed
        first = assert_deployed(deploy, app, changed=True)
        for cloud, entry in first.items():
            assert entry["actions"].count("create") == len(ROLES), (cloud, entry)

        again = play("app_name=%s" % app, "-vvv")  # at -vvv too, the secret key stays out (play() checks)
        assert again.rc == 0 and again.recap["changed"] == 0, again
        second = assert_deployed(again, app, changed=False)
        for cloud, entry in second.items():
            assert entry["actions"] == [], (cloud, entry)
            assert {m["id"] for m in entry["machines"]} == {m["id"] for m in first[cloud]["machines"]}, cloud

        # each provider's own API, not the collection, says the machines are there and running
        assert libvirt_machines(libvirt_conn, app) == {"%s-web" % app: True, "%s-db" % app: True}
        ec2 = ec2_machines(moto, app)
        assert {name: (state, kind) for name, (state, kind, _tags) in ec2.items()} == {
            "%s-web" % app: ("running", "t3.micro"), "%s-db" % app: ("running", "t3.small")}, ec2
        assert {tags["role"] for _state, _kind, tags in ec2.values()} == set(ROLES), ec2
        nova = openstack_machines(openstack_clouds_yaml, app)
        assert {name: (status, flavor) for name, (status, flavor, _meta) in nova.items()} == {
            "%s-web" % app: ("ACTIVE", "tiny"), "%s-db" % app: ("ACTIVE", "small")}, nova
        assert {meta.get("cloud") for _status, _flavor, meta in nova.values()} == {"openstack"}, nova

        # check mode: the teardown is announced on every cloud, and nothing is deleted
        preview = play("app_name=%s" % app, "app_state=absent", "--check")
        assert preview.rc == 0 and preview.recap["changed"] == len(CLOUDS), preview
        for cloud, entry in preview.report.items():
            assert entry["actions"] == ["delete"] * len(ROLES) and len(entry["machines"]) == len(ROLES), (cloud, entry)
        assert len(libvirt_machines(libvirt_conn, app)) == len(ec2_machines(moto, app)) == len(ROLES)
        assert len(openstack_machines(openstack_clouds_yaml, app)) == len(ROLES)

        down = play("app_name=%s" % app, "app_state=absent")
        assert down.rc == 0 and down.recap["changed"] == len(CLOUDS), down
        for cloud, entry in down.report.items():
            assert entry["changed"] is True and entry["actions"] == ["delete"] * len(ROLES), (cloud, entry)
            assert entry["machines"] == [], (cloud, entry)

        down_again = play("app_name=%s" % app, "app_state=absent")
        assert down_again.rc == 0 and down_again.recap["changed"] == 0, down_again
        for cloud, entry in down_again.report.items():
            assert entry["changed"] is False and entry["actions"] == [] and entry["machines"] == [], (cloud, entry)

        assert libvirt_machines(libvirt_conn, app) == {}
        assert ec2_machines(moto, app) == {}
        assert openstack_machines(openstack_clouds_yaml, app) == {}
        print("multicloud.yml: deploy %.1f s, again %.1f s, teardown --check %.1f s, teardown %.1f s, again %.1f s"
              % (deploy.seconds, again.seconds, preview.seconds, down.seconds, down_again.seconds))
    finally:
        remove_everywhere(libvirt_conn, moto, openstack_clouds_yaml, app)

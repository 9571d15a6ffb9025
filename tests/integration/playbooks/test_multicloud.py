"""playbooks/multicloud.yml, as a user runs it, against three real providers at once: a real application.

libvirt: the real libvirtd at qemu:///system (tests/standins/start-libvirtd.sh), where the playbook builds an image
with nginx and PostgreSQL (the image factory; from its cache after the first build, as root), boots a web and a db
guest under QEMU from it and configures them over SSH through its inventory; EC2: moto's server
(tests/standins/moto), started here on a free port; OpenStack: the real Keystone, Glance, Placement and Nova of
tests/standins/openstack, installed and started here unless they already run (then reused, left running). On
those two no guest boots: the machines get the same key and userData, read back here through each provider's API.

One test walks the whole life of the application: deploy (changes everywhere), the shop's page fetched from the
web guest through an SSH tunnel (the inventory's address, port, user and known_hosts) with the database's data on
it, deploy again (nothing changes: PLAY RECAP changed=0 on every host), the machines, keys and userData checked
through each provider's own API, tear down in check mode (nothing deleted), tear down (changes), tear down again
(nothing changes), nothing left: no domain, volume, pool or pool directory. The clouds file and inventory are the
playbook's own, with only the stand-ins' addresses, credentials and this run's known_hosts file replaced; the key
pair is this run's own, and a unique app_name per run names the machines and the libvirt pool, so that parallel
runs never touch each other's machines. Key pairs imported on EC2 and OpenStack stay after the playbook's
teardown (other machines may use them); this test deletes the one of its key afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
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
TIMEOUT = 900  # seconds per ansible-playbook run (a deploy boots two guests under TCG: 2-5 min on 2 shared cores)
USER = "sirocco"  # app_user of playbooks/multicloud/settings.yml
PRODUCTS = ("Sirocco desert scarf", "Harmattan thermos", "Khamsin kite")  # the rows of multicloud/shop.sql
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


def libvirt_pool(conn, app):
    """Names of the volumes of the playbook's pool (named app_name), or None when there is no such pool."""
    import libvirt

    try:
        pool = conn.storagePoolLookupByName(app)
    except libvirt.libvirtError:
        return None
    if pool.isActive():
        pool.refresh(0)
        return sorted(pool.listVolumes())
    return []


def pool_dir(app):
    return Path("/var/tmp/%s-pool" % app)  # pool_dir of the lab cloud in playbooks/multicloud/clouds.yml


def _ec2(server):
    import boto3

    return boto3.client("ec2", endpoint_url=server.url, region_name=REGION, **server.credentials)


def ec2_machines(server, app):
    """{Name tag: (state, instance type, tags, KeyName, userData)} of the instances tagged app=<app>, not terminated."""
    ec2 = _ec2(server)
    try:
        reply = ec2.describe_instances(Filters=[{"Name": "tag:app", "Values": [app]}])
        found = {}
        for instance in (i for r in reply["Reservations"] for i in r["Instances"]):
            tags = {t["Key"]: t["Value"] for t in instance.get("Tags", [])}
            if instance["State"]["Name"] != "terminated":
                data = ec2.describe_instance_attribute(InstanceId=instance["InstanceId"],
                                                       Attribute="userData")["UserData"].get("Value")
                found[tags.get("Name")] = (instance["State"]["Name"], instance["InstanceType"], tags,
                                           instance.get("KeyName"), base64.b64decode(data).decode() if data else None)
        return found
    finally:
        ec2.close()


def ec2_key_pairs(server):
    """{name: public key line} of the key pairs of the region."""
    ec2 = _ec2(server)
    try:
        return {p["KeyName"]: p.get("PublicKey") for p in ec2.describe_key_pairs(IncludePublicKey=True)["KeyPairs"]}
    finally:
        ec2.close()


@contextlib.contextmanager
def _nova(clouds_yaml):
    import openstack.config
    from openstack import connection

    config = openstack.config.OpenStackConfig(config_files=[str(clouds_yaml)]).get_one(cloud=OPENSTACK_CLOUD)
    conn = connection.Connection(config=config)
    try:
        yield conn
    finally:
        conn.close()


def openstack_machines(clouds_yaml, app):
    """{name: (status, flavor name, metadata, key_name, user_data)} of the servers named <app>-<role>; user_data
    as an admin reads it (OS-EXT-SRV-ATTR:user_data, microversion 2.3)."""
    names = ["%s-%s" % (app, role) for role in ROLES]
    with _nova(clouds_yaml) as conn:
        found = {}
        for s in conn.compute.servers():
            if s.name in names:
                reply = conn.compute.get("/servers/%s" % s.id, microversion="2.3")
                assert reply.status_code == 200, reply.text
                raw = reply.json()["server"]
                data = raw.get("OS-EXT-SRV-ATTR:user_data")
                found[s.name] = (s.status, s.flavor.get("original_name") or s.flavor.get("name"),
                                 dict(s.metadata or {}), raw.get("key_name"),
                                 base64.b64decode(data).decode() if data else None)
        return found


def openstack_key_pairs(clouds_yaml):
    with _nova(clouds_yaml) as conn:
        return {k.name: k.public_key for k in conn.compute.keypairs()}


def remove_everywhere(conn, server, clouds_yaml, app, key_blob=None):
    """Delete what a failed run left, through each provider's API (not the code under test); best effort, so
    that a provider that is down now does not hide the failure that brought us here. Also the key pair of
    this run's key on OpenStack (moto's server goes with the fixture)."""
    for remove, peer in ((_remove_libvirt, conn), (_remove_ec2, server), (_remove_openstack, clouds_yaml)):
        try:
            remove(peer, app, key_blob)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            print("cleanup: %s failed: %s" % (remove.__name__, exc))


def _remove_libvirt(conn, app, _key_blob):
    import libvirt

    for name in libvirt_machines(conn, app):
        domain = conn.lookupByName(name)
        if domain.isActive():
            domain.destroy()
        domain.undefine()
    try:
        pool = conn.storagePoolLookupByName(app)
    except libvirt.libvirtError:
        pool = None
    if pool is not None:
        persistent = pool.isPersistent()  # a transient pool (the playbook's) is gone once destroyed
        if pool.isActive():
            pool.refresh(0)
            for volume in pool.listAllVolumes():
                volume.delete(0)
            pool.destroy()
        if persistent:
            pool.undefine()
    shutil.rmtree(pool_dir(app), ignore_errors=True)


def _remove_ec2(server, app, _key_blob):
    ec2 = _ec2(server)
    try:
        reply = ec2.describe_instances(Filters=[{"Name": "tag:app", "Values": [app]}])
        ids = [i["InstanceId"] for r in reply["Reservations"] for i in r["Instances"]]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
    finally:
        ec2.close()


def _remove_openstack(clouds_yaml, app, key_blob):
    names = {"%s-%s" % (app, role) for role in ROLES}
    with _nova(clouds_yaml) as sdk:
        for found in sdk.compute.servers():
            if found.name in names:
                sdk.compute.delete_server(found)
        for pair in sdk.compute.keypairs():
            if key_blob and (pair.public_key or "").split()[1:2] == [key_blob]:
                sdk.compute.delete_keypair(pair)


# -- running the playbook ---------------------------------------------------------------------------------

class Run:
    """One ansible-playbook run: its output, PLAY RECAP counters (per host) and the playbook's per-cloud report."""

    def __init__(self, proc, seconds):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        recap = self.stdout[self.stdout.rfind("PLAY RECAP"):] if "PLAY RECAP" in self.stdout else ""
        self.hosts = {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", counters)}
                      for host, counters in re.findall(r"^(\S+)\s*:\s*(ok=.*)$", recap, re.M)}
        self.recap = self.hosts.get("localhost", {})

    def changed(self):
        """changed= of every host of the recap."""
        return {host: counters["changed"] for host, counters in self.hosts.items()}

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
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("multicloud")


@pytest.fixture(scope="module")
def ansible_env(workdir):
    """The environment of every ansible-* command of the test: the collection of this tree, no ansible.cfg."""
    collections = workdir / "collections"
    (collections / "ansible_collections" / "sirocco").mkdir(parents=True)
    (collections / "ansible_collections" / "sirocco" / "cimi").symlink_to(REPO, target_is_directory=True)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0",
               ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_STDOUT_CALLBACK="default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
               ANSIBLE_CONFIG=str(workdir / "no-ansible.cfg"))
    for name in ("SIROCCO_PROVIDER", "SIROCCO_URI", "SIROCCO_USERNAME", "SIROCCO_PASSWORD", "SIROCCO_REGION"):
        env.pop(name, None)  # the clouds file says everything
    return env


@pytest.fixture(scope="module")
def key(workdir):
    """This run's SSH key pair (the playbook's app_key): (private key path, public key blob)."""
    path = workdir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "sirocco-it-mc", "-f", str(path)],
                   check=True, timeout=60)
    return path, path.with_suffix(".pub").read_text().split()[1]


@pytest.fixture(scope="module")
def inventory(workdir):
    """The playbook's inventory, at this run's libvirtd URI and with a known_hosts file of this run."""
    config = yaml.safe_load((PLAYBOOK.parent / "multicloud" / "inventory.cimi.yml").read_text())
    assert [p["provider"] for p in config["providers"]] == ["libvirt"], config
    config["providers"][0]["uri"] = URI
    config["known_hosts_file"] = str(workdir / "known_hosts")
    path = workdir / "inventory.cimi.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def play(workdir, ansible_env, key, inventory, libvirt_conn, moto, openstack_clouds_yaml):
    """``play(*extra_vars_or_options)``: run playbooks/multicloud.yml (-v) on the stand-ins; returns a Run."""
    # the playbook's own clouds file, pointed at this run's stand-ins
    clouds = yaml.safe_load((PLAYBOOK.parent / "multicloud" / "clouds.yml").read_text())["multicloud_clouds"]
    by_name = {c["name"]: c for c in clouds}
    assert set(by_name) == set(CLOUDS), by_name
    by_name["lab"]["connection"]["uri"] = URI
    by_name["aws"]["connection"].update(uri=moto.url, username=moto.access_key, password=moto.secret_key)
    by_name["openstack"]["connection"]["provider_options"]["clouds_yaml"] = str(openstack_clouds_yaml)
    (workdir / "clouds.yml").write_text(yaml.safe_dump({"multicloud_clouds": clouds}, sort_keys=False))

    def run(*extra):
        command = [str(Path(sys.executable).parent / "ansible-playbook"), "-v", "-i", str(inventory), str(PLAYBOOK),
                   "-e", "@%s" % (workdir / "clouds.yml"), "-e", "app_key=%s" % key[0]]
        for item in extra:
            command += [item] if item.startswith("-") else ["-e", item]  # an option, else extra vars
        started = time.monotonic()
        try:
            proc = subprocess.run(command, env=ansible_env, cwd=workdir, capture_output=True, text=True,
                                  timeout=TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            pytest.fail("ansible-playbook did not finish within %d s\n%s" % (TIMEOUT, exc.stdout), pytrace=False)
        result = Run(proc, time.monotonic() - started)
        assert moto.secret_key not in result.stdout + result.stderr, "the EC2 secret key was printed"
        return result

    return run


def host_vars(ansible_env, inventory, host):
    """What ansible-inventory says of one host (ansible_host, ansible_port, ansible_user, ansible_ssh_common_args)."""
    command = [str(Path(sys.executable).parent / "ansible-inventory"), "-i", str(inventory), "--host", host]
    done = subprocess.run(command, env=ansible_env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ssh_command(hostvars, key_path, *options):
    """ssh with the inventory's port, user, key and host key checking (its known_hosts file and HostKeyAlias)."""
    return (["ssh", "-i", str(key_path), "-p", str(hostvars["ansible_port"]), "-o", "BatchMode=yes",
             "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=20"]
            + shlex.split(hostvars.get("ansible_ssh_common_args", "")) + list(options)
            + ["%s@%s" % (hostvars["ansible_user"], hostvars["ansible_host"])])


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def tunnel(hostvars, key_path, remote_port=80, timeout=60):
    """A port of 127.0.0.1 forwarded to the guest's 127.0.0.1:<remote_port> (ssh -N -L); yields the local port."""
    port = free_port()
    proc = subprocess.Popen(ssh_command(hostvars, key_path, "-N", "-o", "ExitOnForwardFailure=yes",
                                        "-L", "%d:127.0.0.1:%d" % (port, remote_port)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail("the SSH tunnel exited %s: %s" % (proc.returncode, proc.stderr.read()), pytrace=False)
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail("the SSH tunnel did not listen within %d s" % timeout, pytrace=False)
            time.sleep(0.5)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fetch(url, timeout=60):
    """GET url: (status, text), retried while the forwarded connection is not ready yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=20) as reply:  # noqa: S310 (a URL of ours, http://127.0.0.1)
                return reply.status, reply.read().decode("utf-8")
        except (urllib.error.URLError, ConnectionError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError("GET %s: %s" % (url, exc)) from exc
            time.sleep(1)


def assert_deployed(run, app, changed):
    """Every cloud reports its web and db machines STARTED, tagged as the app, with my credential's user."""
    report = run.report
    assert set(report) == set(CLOUDS), report
    for cloud, entry in report.items():
        assert entry["changed"] is changed, (cloud, entry)
        assert entry["warnings"] == [], (cloud, entry)  # the existing machines match the request exactly
        assert entry["configured"] is (cloud == "lab"), (cloud, entry)  # guests boot on libvirt only
        machines = {m["role"]: m for m in entry["machines"]}
        assert sorted(machines) == sorted(ROLES), (cloud, entry)
        for role, machine in machines.items():
            assert machine["name"] == "%s-%s" % (app, role)
            assert machine["state"] == "STARTED", (cloud, machine)
            assert machine["user"] == USER, (cloud, machine)
        if cloud == "lab":  # 1 vCPU / 1 GiB each
            assert [(m["cpu"], m["memory_mib"]) for m in machines.values()] == [(1, 1024)] * 2, (cloud, machines)
        else:
            assert machines["db"]["memory_mib"] > machines["web"]["memory_mib"], (cloud, machines)
    return report


def test_multicloud_playbook(play, libvirt_conn, moto, openstack_clouds_yaml, ansible_env, inventory, key):
    app = "sirocco-it-mc-%s" % secrets.token_hex(3)
    key_path, key_blob = key
    web, db = "%s-web" % app, "%s-db" % app
    try:
        bad = play("app_name=%s" % app, "app_state=running")
        assert bad.rc != 0 and "app_state must be present or absent" in bad.stdout, bad
        assert bad.recap.get("changed") == 0, bad
        assert libvirt_pool(libvirt_conn, app) is None, "a refused request made the pool"

        deploy = play("app_name=%s" % app)
        assert deploy.rc == 0 and all(c["failed"] == 0 and c["unreachable"] == 0 for c in deploy.hosts.values()), deploy
        assert set(deploy.hosts) == {"localhost", web, db}, deploy  # configured over SSH: the libvirt guests only
        first = assert_deployed(deploy, app, changed=True)
        for cloud, entry in first.items():
            assert entry["actions"].count("create") == len(ROLES), (cloud, entry)
        assert deploy.changed()[db] >= 3 and deploy.changed()[web] >= 1, deploy  # user, database, data; the page
        assert "Not configured on aws, openstack" in deploy.stdout, deploy
        assert "no guest is configured there" in deploy.stdout, deploy

        # the shop's page, through a forwarded port: an SSH tunnel to the web guest, as the inventory reaches it
        web_vars, db_vars = host_vars(ansible_env, inventory, web), host_vars(ansible_env, inventory, db)
        for found in (web_vars, db_vars):
            assert found["ansible_host"] == "127.0.0.1" and found["ansible_user"] == USER, found
            assert "HostKeyAlias=" in found["ansible_ssh_common_args"], found
        # what the database made itself (no file of the playbook holds it), read inside the db guest
        token = subprocess.run(ssh_command(db_vars, key_path) + [
            "sudo runuser -u postgres -- psql -X -tA -d shop -c \"SELECT value FROM shop_facts WHERE name = 'token'\""],
            capture_output=True, text=True, timeout=120, check=True).stdout.strip()
        assert re.fullmatch(r"[0-9a-f]{32}", token), token
        with tunnel(web_vars, key_path) as port:
            status, page = fetch("http://127.0.0.1:%d/" % port)
        assert status == 200, page
        for product in PRODUCTS:
            assert product in page, page
        assert '<code id="token">%s</code>' % token in page, page
        assert re.search(r"PostgreSQL 15\.\d+", page) and db in page, page

        again = play("app_name=%s" % app, "-vvv")  # at -vvv too, the secret key stays out (play() checks)
        assert again.rc == 0 and again.changed() == {"localhost": 0, web: 0, db: 0}, again
        second = assert_deployed(again, app, changed=False)
        for cloud, entry in second.items():
            assert entry["actions"] == [], (cloud, entry)
            assert {m["id"] for m in entry["machines"]} == {m["id"] for m in first[cloud]["machines"]}, cloud

        # each provider's own API, not the collection, says the machines are there and running, with my key
        # and userData
        assert libvirt_machines(libvirt_conn, app) == {web: True, db: True}
        ec2 = ec2_machines(moto, app)
        assert {name: (state, kind) for name, (state, kind, *_rest) in ec2.items()} == {
            web: ("running", "t3.micro"), db: ("running", "t3.small")}, ec2
        pairs = ec2_key_pairs(moto)
        for name, (_state, _kind, tags, key_name, user_data) in ec2.items():
            assert tags["sirocco.user"] == USER and tags["app"] == app, (name, tags)
            assert key_name and pairs[key_name].split()[1] == key_blob, (name, key_name, pairs)
            assert user_data.startswith("#cloud-config") and "%s %s" % (app, tags["role"]) in user_data, user_data
        nova = openstack_machines(openstack_clouds_yaml, app)
        assert {name: (status, flavor) for name, (status, flavor, *_rest) in nova.items()} == {
            web: ("ACTIVE", "tiny"), db: ("ACTIVE", "small")}, nova
        pairs = openstack_key_pairs(openstack_clouds_yaml)
        for name, (_status, _flavor, meta, key_name, user_data) in nova.items():
            assert meta["cloud"] == "openstack" and meta["sirocco.user"] == USER, (name, meta)
            assert key_name and pairs[key_name].split()[1] == key_blob, (name, key_name, pairs)
            assert user_data.startswith("#cloud-config") and "%s %s" % (app, meta["role"]) in user_data, user_data

        # check mode: the teardown is announced on every cloud, and nothing is deleted
        preview = play("app_name=%s" % app, "app_state=absent", "--check")
        assert preview.rc == 0 and preview.recap["changed"] > 0, preview
        for cloud, entry in preview.report.items():
            assert entry["actions"] == ["delete"] * len(ROLES) and len(entry["machines"]) == len(ROLES), (cloud, entry)
        assert libvirt_machines(libvirt_conn, app) == {web: True, db: True}
        assert len(ec2_machines(moto, app)) == len(openstack_machines(openstack_clouds_yaml, app)) == len(ROLES)
        assert libvirt_pool(libvirt_conn, app) and pool_dir(app).is_dir()

        down = play("app_name=%s" % app, "app_state=absent")
        assert down.rc == 0 and down.recap["changed"] > 0 and set(down.hosts) == {"localhost"}, down
        for cloud, entry in down.report.items():
            assert entry["changed"] is True and entry["actions"] == ["delete"] * len(ROLES), (cloud, entry)
            assert entry["machines"] == [], (cloud, entry)

        down_again = play("app_name=%s" % app, "app_state=absent")
        assert down_again.rc == 0 and down_again.recap["changed"] == 0, down_again
        for cloud, entry in down_again.report.items():
            assert entry["changed"] is False and entry["actions"] == [] and entry["machines"] == [], (cloud, entry)

        # nothing left: domains, their disks and seed ISOs (in the pool), the image, the pool and its directory
        assert libvirt_machines(libvirt_conn, app) == {}
        assert libvirt_pool(libvirt_conn, app) is None
        assert not pool_dir(app).exists()
        assert not any(app in v.path() for p in libvirt_conn.listAllStoragePools() if p.isActive()
                       for v in p.listAllVolumes())
        assert ec2_machines(moto, app) == {}
        assert openstack_machines(openstack_clouds_yaml, app) == {}
        print("multicloud.yml: deploy %.1f s, again %.1f s, teardown --check %.1f s, teardown %.1f s, again %.1f s"
              % (deploy.seconds, again.seconds, preview.seconds, down.seconds, down_again.seconds))
    finally:
        remove_everywhere(libvirt_conn, moto, openstack_clouds_yaml, app, key_blob)

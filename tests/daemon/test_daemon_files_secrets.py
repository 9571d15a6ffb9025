"""Files and secrets at rest (issue 11, item 15).

* From the very first command (`siroccod user add` before any `serve`), the data directory is 0700 and
  every file in it 0600: the CMDB and its -wal/-shm files, the sealing key, the admin password.
* A Credential's password is kept sealed with a key kept apart from the CMDB: the CMDB's bytes do not
  hold it, the worker gets it back; a process given another key refuses to start; a password kept in
  clear by an earlier version is sealed at the next start.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from daemon_helpers import Api, make_app
from realhost_helpers import DAEMON_DIR

from ansible_collections.sirocco.cimi.plugins.module_utils.cimi.errors import InvalidInput


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _modes(root):
    """{relative path: mode} of everything under ``root``, and what it should be (0700 dirs, 0600 files)."""
    found = {str(p.relative_to(root)): _mode(p) for p in root.rglob("*")}
    wanted = {str(p.relative_to(root)): 0o700 if p.is_dir() else 0o600 for p in root.rglob("*")}
    return found, wanted


def test_every_file_is_private_from_the_first_command(tmp_path):
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIROCCOD_")}
    env.update(SIROCCOD_DATA=str(data), PYTHONPATH=str(DAEMON_DIR))
    old = os.umask(0o022)  # what most shells have
    try:
        done = subprocess.run([sys.executable, "-m", "siroccod", "user", "add", "early", "--password-stdin"],
                              input="early-user-pw\n", capture_output=True, text=True, env=env, timeout=120,
                              check=False)
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    assert _mode(data) == 0o700
    found, wanted = _modes(data)
    assert "cmdb.sqlite" in found and found == wanted
    app = make_app(data)  # then the daemon: its key, the WAL while it runs
    try:
        Api(app.test_client(), "early", "early-user-pw").cep()
        found, wanted = _modes(data)
        assert {"cmdb.sqlite", "secret.key", "hosts/sim1.xml"} <= set(found) and found == wanted
    finally:
        app.extensions["siroccod"].close()


def test_credential_passwords_are_sealed(tmp_path, alice):
    secret = "s3cret-credential-pw-%d" % os.getpid()
    r = alice.post(alice.collection("credentials"), {"name": "sealed", "userName": "root", "password": secret,
                                                     "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGHUqsLTMZRA7TWgYv7/"
                                                            "3XdjByah9BL/NJmihXK7XDOg alice@example"})
    assert r.status_code == 201, r.json
    assert secret not in r.get_data(as_text=True)


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def test_sealed_at_rest_opened_for_the_host_and_one_key_per_cmdb(data_dir, tmp_path):
    from siroccod.store import Resource
    secret = "another-s3cret-%d" % os.getpid()
    app = make_app(data_dir)
    daemon = app.extensions["siroccod"]
    try:
        admin = Api(app.test_client(), "admin", "admin-secret-pw")
        assert admin.post("/admin/users", {"name": "keeper", "tenant": "k", "password": "keeper-pw-1"}
                          ).status_code == 201
        keeper = Api(app.test_client(), "keeper", "keeper-pw-1")
        r = keeper.post(keeper.collection("credentials"), {"name": "c", "userName": "root", "password": secret})
        assert r.status_code == 201, r.json
        uuid = r.json["id"].rsplit("/", 1)[1]
        with daemon.store.read() as session:
            stored = session.get(Resource, uuid).private["password"]
        assert stored.startswith("fernet:") and secret not in stored
        # the worker opens it for the host
        with daemon.store.read() as session:
            machine = Resource(uuid="m", type="Machine", name="m", doc={}, private={"spec": {"credential": uuid}})
            spec = daemon.worker.machine_spec(session, machine)
        assert spec.credential["password"] == secret
    finally:
        daemon.close()
    for name in ("cmdb.sqlite", "cmdb.sqlite-wal"):
        if (data_dir / name).exists():
            assert secret.encode() not in (data_dir / name).read_bytes()
    # a process with another key must not start on this CMDB
    with pytest.raises(InvalidInput, match="sealed with another key"):
        make_app(tmp_path / "other-data", database="sqlite:///%s" % (data_dir / "cmdb.sqlite"))


def test_a_password_kept_in_clear_before_is_sealed_at_start(data_dir):
    from siroccod.store import Resource, new_uuid, utcnow
    app = make_app(data_dir)
    daemon = app.extensions["siroccod"]
    uuid = new_uuid()
    with daemon.store.transaction() as session:  # as an earlier version kept it
        now = utcnow()
        session.add(Resource(uuid=uuid, type="Credential", name="old", tenant_id=None, doc={"username": "u"},
                             private={"password": "kept-in-clear"}, created=now, updated=now))
    daemon.close()
    app = make_app(data_dir)
    daemon = app.extensions["siroccod"]
    try:
        with daemon.store.read() as session:
            stored = session.get(Resource, uuid).private["password"]
        assert stored.startswith("fernet:") and daemon.worker.sealer.open(stored) == "kept-in-clear"
    finally:
        daemon.close()
